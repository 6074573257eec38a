//! [`Handle`]: a synchronous connection to the kernel's IPVS table of one
//! network namespace, with every table operation.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::codec::{DaemonAttr, IPVS_GENL_NAME, IpvsAttr, IpvsCmd, IpvsMessage};
use crate::error::{Error, OpKind, Result};
use crate::netns;
use crate::op::Op;
use crate::socket::{BIG_READ, NetlinkError, SMALL_READ, Socket};
use crate::table::{
    Daemon, DaemonState, Destination, Info, ModelError, Service, ServiceKey, Timeouts,
};

/// A connection to the kernel's IPVS table of one network namespace.
///
/// Every method blocks the calling thread until the kernel has answered:
/// a request takes microseconds, a dump of 10,000 services about a second.
/// Async programs call it from `tokio::task::spawn_blocking` (the handle
/// is `Send + Sync`, and cloning it is cheap: clones share the sockets).
/// Requests from clones and threads are serialised, one request, dump or
/// batch at a time on each socket.
///
/// The sockets live in the namespace they were created in, whichever
/// thread later uses the handle.
#[derive(Clone, Debug)]
pub struct Handle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Changes and destination dumps, with small reads (see
    /// [`SMALL_READ`]).
    requests: Mutex<Socket>,
    /// The dump of all services (many messages: large datagrams), and the
    /// fallback when a reply did not fit the small reads.
    dumps: Mutex<Socket>,
    /// Set once a reply did not fit `requests`' reads: `dumps` then
    /// serves everything.
    small_broken: AtomicBool,
    family_id: u16,
}

fn lock(m: &Mutex<Socket>) -> MutexGuard<'_, Socket> {
    // A panic while a socket was locked leaves no half-done state in it
    // that the next request would trip on (each starts with a new buffer
    // and sequence number).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handle {
    /// Connect in the calling thread's network namespace.
    pub fn new() -> Result<Handle> {
        Handle::resolve(open_sockets())
    }

    /// Connect in the named network namespace (`/run/netns/NAME`, as
    /// created by `ip netns add`).
    pub fn in_netns(name: &str) -> Result<Handle> {
        match netns::named(name) {
            Some(path) => Handle::in_netns_path(path),
            None => Err(Error::InvalidNetnsName(name.to_string())),
        }
    }

    /// Connect in the network namespace behind `path` (a bind mount such as
    /// `/run/netns/NAME`, or `/proc/PID/ns/net`). A short-lived thread
    /// enters the namespace and creates the sockets there.
    pub fn in_netns_path(path: impl AsRef<Path>) -> Result<Handle> {
        let path = path.as_ref();
        let sockets = netns::run_in(path, open_sockets).map_err(|source| Error::Netns {
            name: path.display().to_string(),
            source,
        })?;
        Handle::resolve(sockets)
    }

    /// Connect like ipvsadm: in `netns` (a name under /run/netns) or the
    /// caller's namespace, and if the kernel has no IPVS family yet, run
    /// `modprobe -- ip_vs` once and try again.
    pub fn connect(netns: Option<&str>) -> Result<Handle> {
        let open = || match netns {
            Some(ns) => Handle::in_netns(ns),
            None => Handle::new(),
        };
        match open() {
            Err(Error::FamilyNotFound) => {
                let loaded = std::process::Command::new("modprobe")
                    .args(["--", "ip_vs"])
                    .status()
                    .is_ok_and(|s| s.success());
                if loaded {
                    open()
                } else {
                    Err(Error::FamilyNotFound)
                }
            }
            other => other,
        }
    }

    fn resolve(sockets: Result<(Socket, Socket), NetlinkError>) -> Result<Handle> {
        let netlink = |source| Error::Netlink {
            what: format!("resolve family {IPVS_GENL_NAME}"),
            source,
        };
        let (mut requests, dumps) = sockets.map_err(netlink)?;
        let family_id = requests
            .resolve_family(IPVS_GENL_NAME)
            .map_err(netlink)?
            .ok_or(Error::FamilyNotFound)?;
        Ok(Handle {
            inner: Arc::new(Inner {
                requests: Mutex::new(requests),
                dumps: Mutex::new(dumps),
                small_broken: AtomicBool::new(false),
                family_id,
            }),
        })
    }

    /// The generic-netlink id of the IPVS family in this namespace's kernel.
    pub fn family_id(&self) -> u16 {
        self.inner.family_id
    }

    fn requests(&self) -> MutexGuard<'_, Socket> {
        if self.inner.small_broken.load(Ordering::Relaxed) {
            lock(&self.inner.dumps)
        } else {
            lock(&self.inner.requests)
        }
    }

    /// Send one message and collect the replies: a dump if `dump`, else a
    /// request the kernel acknowledges. A kernel refusal becomes the
    /// [`Error`] for an operation of kind `kind` described by `what`.
    pub fn request(
        &self,
        msg: IpvsMessage,
        dump: bool,
        kind: OpKind,
        what: impl Into<String>,
    ) -> Result<Vec<IpvsMessage>> {
        let what = what.into();
        self.exchange(&msg, dump, kind, || what)
    }

    /// [`Handle::exchange_each`] on the small-read socket, its replies
    /// collected.
    fn exchange(
        &self,
        msg: &IpvsMessage,
        dump: bool,
        kind: OpKind,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<IpvsMessage>> {
        let mut messages = Vec::new();
        self.exchange_each(msg, dump, false, kind, what, &mut |m| match m {
            Some(m) => messages.push(m),
            None => messages.clear(),
        })?;
        Ok(messages)
    }

    /// One request on the small-read socket (or on the big-read one for
    /// `big`); a reply too large for the small reads retries the request
    /// on the big-read socket, which then serves everything. Each reply
    /// goes to `each` as it comes; `None` means the request starts over
    /// (on the big-read socket): forget what came before.
    fn exchange_each(
        &self,
        msg: &IpvsMessage,
        dump: bool,
        big: bool,
        kind: OpKind,
        what: impl FnOnce() -> String,
        each: &mut dyn FnMut(Option<IpvsMessage>),
    ) -> Result<()> {
        let family = self.inner.family_id;
        let mut some = |m| each(Some(m));
        let res = if big {
            lock(&self.inner.dumps).call_each(family, msg, dump, &mut some)
        } else {
            match self.requests().call_each(family, msg, dump, &mut some) {
                Err(NetlinkError::Truncated { .. }) => {
                    self.inner.small_broken.store(true, Ordering::Relaxed);
                    each(None);
                    let mut some = |m| each(Some(m));
                    lock(&self.inner.dumps).call_each(family, msg, dump, &mut some)
                }
                other => other,
            }
        };
        match res {
            Ok(None) => Ok(()),
            Ok(Some(errno)) => Err(Error::from_errno(errno, kind, what())),
            Err(source) => Err(Error::Netlink {
                what: what(),
                source,
            }),
        }
    }

    /// Apply one change.
    pub fn apply(&self, op: &Op) -> Result<()> {
        self.exchange(&op.to_message(), false, op.kind(), || op.describe())
            .map(|_| ())
    }

    /// Apply many independent changes; results come back in input order.
    /// The kernel has no transactions: each change succeeds or fails on its
    /// own, in input order.
    ///
    /// The changes go to the kernel in batches, many messages per send
    /// (sized so that every reply fits the socket's receive buffer), and
    /// only failures and the end of each batch are acknowledged. If the
    /// socket itself fails, the first change not acknowledged gets that
    /// error and the ones after it [`Error::Unconfirmed`].
    pub fn apply_many(&self, ops: &[Op]) -> Vec<Result<()>> {
        let mut results: Vec<Result<()>> = ops.iter().map(|_| Ok(())).collect();
        self.apply_many_failures(ops, |i, e| results[i] = Err(e));
        results
    }

    /// [`Handle::apply_many`] that hands only the failures to `failed`
    /// (index, error): the kernel's refusals in input order, then, if the
    /// socket failed, the changes it left unconfirmed. At tens of
    /// thousands of changes, a result per change is a megabyte held for
    /// nothing.
    pub fn apply_many_failures(&self, ops: &[Op], mut failed: impl FnMut(usize, Error)) {
        // Indices reported, ascending: a socket failure skips them.
        let mut reported: Vec<usize> = Vec::new();
        let outcome = self.requests().batch(
            self.inner.family_id,
            ops.iter().map(Op::to_message),
            |i, errno| {
                let op = &ops[i];
                reported.push(i);
                failed(i, Error::from_errno(errno, op.kind(), op.describe()));
            },
        );
        if let Err((first, source)) = outcome {
            let mut source = Some(source);
            for (i, op) in ops.iter().enumerate().skip(first) {
                if reported.binary_search(&i).is_ok() {
                    continue;
                }
                failed(
                    i,
                    match source.take() {
                        Some(source) => Error::Netlink {
                            what: op.describe(),
                            source,
                        },
                        None => Error::Unconfirmed {
                            what: op.describe(),
                        },
                    },
                );
            }
        }
    }

    pub fn add_service(&self, svc: &Service) -> Result<()> {
        self.apply(&Op::AddService(svc.clone()))
    }
    pub fn edit_service(&self, svc: &Service) -> Result<()> {
        self.apply(&Op::EditService(svc.clone()))
    }
    pub fn delete_service(&self, key: &ServiceKey) -> Result<()> {
        self.apply(&Op::DeleteService(*key))
    }
    pub fn add_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::AddDestination(*key, dest.clone()))
    }
    pub fn edit_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::EditDestination(*key, dest.clone()))
    }
    pub fn delete_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::DeleteDestination(*key, dest.clone()))
    }
    /// Delete every service (and so every destination).
    pub fn flush(&self) -> Result<()> {
        self.apply(&Op::Flush)
    }
    /// Zero the counters of one service, or of all.
    pub fn zero(&self, key: Option<&ServiceKey>) -> Result<()> {
        self.apply(&Op::Zero(key.copied()))
    }
    /// Set timeouts; a zero field leaves that timeout unchanged.
    pub fn set_timeouts(&self, t: &Timeouts) -> Result<()> {
        self.apply(&Op::SetTimeouts(*t))
    }

    /// All services, in kernel order (one dump).
    pub fn services(&self) -> Result<Vec<Service>> {
        let msg = IpvsMessage::new(IpvsCmd::GetService, vec![]);
        self.dump_decoded(
            &msg,
            true,
            || "list services".to_string(),
            |a| match a {
                IpvsAttr::Service(attrs) => Some(Service::from_attrs(&attrs)),
                _ => None,
            },
        )
    }

    /// A dump whose replies are decoded as they come, so that its messages
    /// are never held whole (2,000 services were 3 MB of attributes):
    /// `decode` makes an item of an attribute, or `None` to skip it.
    fn dump_decoded<T>(
        &self,
        msg: &IpvsMessage,
        big: bool,
        what: impl Fn() -> String,
        mut decode: impl FnMut(IpvsAttr) -> Option<std::result::Result<T, ModelError>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut bad = None;
        self.exchange_each(msg, true, big, OpKind::Query, &what, &mut |m| {
            let Some(m) = m else {
                // Started over: what the first attempt decoded is void.
                out.clear();
                bad = None;
                return;
            };
            // After a bad reply the dump is still read to its end (the
            // socket must stay in step), but nothing more is decoded.
            if bad.is_some() {
                return;
            }
            for a in m.nlas {
                match decode(a) {
                    Some(Ok(item)) => out.push(item),
                    Some(Err(e)) => {
                        bad = Some(e);
                        return;
                    }
                    None => {}
                }
            }
        })?;
        match bad {
            Some(source) => Err(Error::Model {
                what: what(),
                source,
            }),
            None => Ok(out),
        }
    }

    /// One service, or [`Error::NoSuchService`].
    pub fn service(&self, key: &ServiceKey) -> Result<Service> {
        let what = || format!("get service {key}");
        let msg = IpvsMessage::new(IpvsCmd::GetService, vec![IpvsAttr::Service(key.to_attrs())]);
        let replies = self.exchange(&msg, false, OpKind::Query, what)?;
        for a in replies.into_iter().flat_map(|m| m.nlas) {
            if let IpvsAttr::Service(attrs) = a {
                return Service::from_attrs(&attrs).map_err(|source| Error::Model {
                    what: what(),
                    source,
                });
            }
        }
        Err(Error::NoSuchService {
            op: OpKind::Query,
            what: what(),
        })
    }

    /// The destinations of one service, in kernel order (one dump).
    pub fn destinations(&self, key: &ServiceKey) -> Result<Vec<Destination>> {
        let msg = IpvsMessage::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.to_attrs())]);
        let family = key.family();
        let what = || format!("list destinations of {key}");
        let mut out = self.dump_decoded(&msg, false, what, |a| match a {
            IpvsAttr::Dest(attrs) => Some(Destination::from_attrs(&attrs, family)),
            _ => None,
        })?;
        // Exact: callers keep these (a daemon's view of 20,000 servers
        // held a third more in the slack of doubled vectors).
        out.shrink_to_fit();
        Ok(out)
    }

    /// The whole table: every service with its destinations, in kernel
    /// order (one service dump, then one destination dump per service).
    pub fn table(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        self.services()?
            .into_iter()
            .map(|s| {
                let dests = self.destinations(&s.key)?;
                Ok((s, dests))
            })
            .collect()
    }

    /// [`Handle::table`] without the traffic counters (what planning
    /// needs; the connection counts stay). Each service's counters are
    /// dropped as soon as its destinations are read, so a table of 20,000
    /// destinations is never held with 20,000 of them.
    pub fn table_without_stats(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        self.services()?
            .into_iter()
            .map(|mut s| {
                s.stats = None;
                let mut dests = self.destinations(&s.key)?;
                for d in &mut dests {
                    d.stats = None;
                }
                Ok((s, dests))
            })
            .collect()
    }

    /// The attributes of every reply to a request that carries none.
    fn query(&self, cmd: IpvsCmd, dump: bool, what: &str) -> Result<Vec<IpvsAttr>> {
        let msg = IpvsMessage::new(cmd, vec![]);
        let replies = self.exchange(&msg, dump, OpKind::Query, || what.into())?;
        Ok(replies.into_iter().flat_map(|m| m.nlas).collect())
    }

    pub fn timeouts(&self) -> Result<Timeouts> {
        let mut t = Timeouts::default();
        for a in self.query(IpvsCmd::GetConfig, false, "get timeouts")? {
            match a {
                IpvsAttr::TimeoutTcp(v) => t.tcp = v,
                IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = v,
                IpvsAttr::TimeoutUdp(v) => t.udp = v,
                _ => {}
            }
        }
        Ok(t)
    }

    pub fn info(&self) -> Result<Info> {
        let mut info = Info::default();
        for a in self.query(IpvsCmd::GetInfo, false, "get info")? {
            match a {
                IpvsAttr::InfoVersion(v) => info.version = v,
                IpvsAttr::InfoConnTabSize(v) => info.conn_tab_size = v,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Running sync daemons (one dump).
    pub fn daemons(&self) -> Result<Vec<Daemon>> {
        let mut out = Vec::new();
        for a in self.query(IpvsCmd::GetDaemon, true, "list daemons")? {
            if let IpvsAttr::Daemon(attrs) = a {
                out.push(Daemon::from_attrs(&attrs).map_err(|source| Error::Model {
                    what: "list daemons".into(),
                    source,
                })?);
            }
        }
        Ok(out)
    }

    pub fn start_daemon(&self, d: &Daemon) -> Result<()> {
        let msg = IpvsMessage::new(IpvsCmd::NewDaemon, vec![IpvsAttr::Daemon(d.to_attrs())]);
        self.exchange(&msg, false, OpKind::StartDaemon, || {
            format!("start {:?} sync daemon", d.state)
        })
        .map(|_| ())
    }

    pub fn stop_daemon(&self, state: DaemonState) -> Result<()> {
        let attrs = vec![DaemonAttr::State(state.raw())];
        let msg = IpvsMessage::new(IpvsCmd::DelDaemon, vec![IpvsAttr::Daemon(attrs)]);
        match self.exchange(&msg, false, OpKind::StopDaemon, || {
            format!("stop {state:?} sync daemon")
        }) {
            // The kernel answers a stop with the exit code of the daemon's
            // thread, or EINTR when the thread was stopped before it first
            // ran (a stop right after the start): stopped all the same.
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

/// The two sockets of a handle, in the calling thread's namespace.
fn open_sockets() -> Result<(Socket, Socket), NetlinkError> {
    Ok((Socket::open(SMALL_READ)?, Socket::open(BIG_READ)?))
}
