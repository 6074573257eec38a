//! An async handle on the kernel's IPVS table: long-lived generic netlink
//! sockets, the family id resolved once, bulk changes sent in batches of
//! many messages per send.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::codec::{IPVS_GENL_NAME, IpvsAttr, IpvsCmd, IpvsMessage};
use crate::error::{Error, OpKind, Result};
use crate::model::{
    Daemon, DaemonState, Destination, Info, Service, ServiceKey, Timeouts, fmt_addr_port,
};

/// The `concurrency` argument callers pass to [`Handle::apply_many`]; kept
/// for compatibility (apply_many sizes its batches after the socket's
/// buffers).
pub const DEFAULT_CONCURRENCY: usize = 32;

/// One change to the IPVS table, for [`Handle::apply`] and
/// [`Handle::apply_many`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    EditService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    EditDestination(ServiceKey, Destination),
    DeleteDestination(ServiceKey, Destination),
    Flush,
    Zero(Option<ServiceKey>),
    SetTimeouts(Timeouts),
}

impl Op {
    /// A short description, used as the context of errors.
    pub fn describe(&self) -> String {
        match self {
            Op::AddService(s) => format!("add service {}", s.key),
            Op::EditService(s) => format!("edit service {}", s.key),
            Op::DeleteService(k) => format!("delete service {k}"),
            Op::AddDestination(k, d) => {
                format!("add destination {} to {k}", fmt_addr_port(&d.addr, d.port))
            }
            Op::EditDestination(k, d) => {
                format!("edit destination {} of {k}", fmt_addr_port(&d.addr, d.port))
            }
            Op::DeleteDestination(k, d) => {
                format!(
                    "delete destination {} of {k}",
                    fmt_addr_port(&d.addr, d.port)
                )
            }
            Op::Flush => "flush".into(),
            Op::Zero(Some(k)) => format!("zero {k}"),
            Op::Zero(None) => "zero".into(),
            Op::SetTimeouts(_) => "set timeouts".into(),
        }
    }

    fn kind(&self) -> OpKind {
        match self {
            Op::AddService(_) | Op::EditService(_) => OpKind::Service,
            Op::AddDestination(..) | Op::EditDestination(..) | Op::DeleteDestination(..) => {
                OpKind::Destination
            }
            _ => OpKind::Other,
        }
    }

    /// The netlink message for this change.
    pub fn to_message(&self) -> IpvsMessage {
        let svc = |k: &ServiceKey| IpvsAttr::Service(k.to_attrs());
        match self {
            Op::AddService(s) => {
                IpvsMessage::new(IpvsCmd::NewService, vec![IpvsAttr::Service(s.to_attrs())])
            }
            Op::EditService(s) => {
                IpvsMessage::new(IpvsCmd::SetService, vec![IpvsAttr::Service(s.to_attrs())])
            }
            Op::DeleteService(k) => IpvsMessage::new(IpvsCmd::DelService, vec![svc(k)]),
            Op::AddDestination(k, d) => {
                IpvsMessage::new(IpvsCmd::NewDest, vec![svc(k), IpvsAttr::Dest(d.to_attrs())])
            }
            Op::EditDestination(k, d) => {
                IpvsMessage::new(IpvsCmd::SetDest, vec![svc(k), IpvsAttr::Dest(d.to_attrs())])
            }
            Op::DeleteDestination(k, d) => IpvsMessage::new(
                IpvsCmd::DelDest,
                vec![svc(k), IpvsAttr::Dest(d.key_attrs())],
            ),
            Op::Flush => IpvsMessage::new(IpvsCmd::Flush, vec![]),
            Op::Zero(Some(k)) => IpvsMessage::new(IpvsCmd::Zero, vec![svc(k)]),
            Op::Zero(None) => IpvsMessage::new(IpvsCmd::Zero, vec![]),
            Op::SetTimeouts(t) => IpvsMessage::new(
                IpvsCmd::SetConfig,
                vec![
                    IpvsAttr::TimeoutTcp(t.tcp),
                    IpvsAttr::TimeoutTcpFin(t.tcp_fin),
                    IpvsAttr::TimeoutUdp(t.udp),
                ],
            ),
        }
    }
}

/// Half a table from which [`Handle::table`] dumps destinations on two threads.
const PARALLEL_DUMPS_FROM: usize = 32;

/// Which socket a request goes to.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// One of the small-read sockets.
    Small(usize),
    /// The big-read socket.
    Big,
}

/// A connection to the kernel's IPVS table of one network namespace.
///
/// Cloning is cheap; clones share the socket. The socket lives in the
/// namespace it was created in, whichever thread later uses the handle.
///
/// The socket is a plain blocking netlink socket: the kernel handles every
/// IPVS request inside the send call, so replies are already queued when
/// the handle reads them and no call waits on anything but the kernel's
/// own work. Requests from clones are serialised (one request, dump or
/// batch at a time).
#[derive(Clone, Debug)]
pub struct Handle {
    /// Requests and destination dumps. Reads with a small buffer: the
    /// kernel sizes every dump datagram after the largest read so far, and
    /// zeroes each one it allocates (init_on_alloc), so small reads keep
    /// a dump of a few destinations cheap.
    sock: Arc<[Mutex<sock::Socket>; 2]>,
    /// Dumps of all services (many messages: large datagrams), and the
    /// fallback when a reply did not fit `sock`'s reads.
    big: Arc<Mutex<sock::Socket>>,
    /// Set once a reply did not fit `sock`'s reads: everything then goes to `big`.
    small_broken: Arc<AtomicBool>,
    family_id: u16,
}

impl Handle {
    /// Connect in the calling thread's network namespace.
    pub async fn new() -> Result<Handle> {
        let s = sock::Socket::open_all().map_err(|e| Error::Netlink(e.to_string()))?;
        Handle::resolve(s)
    }

    /// Connect in the named network namespace (`/run/netns/NAME`, as
    /// created by `ip netns add`).
    pub async fn in_netns(name: &str) -> Result<Handle> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::Invalid(format!(
                "invalid network namespace name {name:?}"
            )));
        }
        Handle::in_netns_path(Path::new("/run/netns").join(name)).await
    }

    /// Connect in the network namespace behind `path` (a bind mount such as
    /// `/run/netns/NAME`, or `/proc/PID/ns/net`).
    ///
    /// A dedicated thread enters the namespace with setns(2), creates the
    /// socket there and exits; the socket stays in that namespace.
    pub async fn in_netns_path(path: impl Into<PathBuf>) -> Result<Handle> {
        let path = path.into();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let name = path.display().to_string();
        std::thread::Builder::new()
            .name("ipvs-netns".into())
            .spawn(move || {
                let res = (|| {
                    let f = File::open(&path)?;
                    // SAFETY: plain syscall on a valid fd; affects only this thread.
                    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    sock::Socket::open_all()
                })();
                let _ = tx.send(res);
            })
            .map_err(|source| Error::Netns {
                name: name.clone(),
                source,
            })?;
        let s = rx
            .await
            .map_err(|_| Error::Netlink("namespace thread died".into()))?
            .map_err(|source| Error::Netns { name, source })?;
        Handle::resolve(s)
    }

    fn resolve((mut small, small2, big): sock::Sockets) -> Result<Handle> {
        match small.resolve_family(IPVS_GENL_NAME) {
            Ok(family_id) => Ok(Handle {
                sock: Arc::new([Mutex::new(small), Mutex::new(small2)]),
                big: Arc::new(Mutex::new(big)),
                small_broken: Arc::new(AtomicBool::new(false)),
                family_id,
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Error::FamilyNotFound),
            Err(e) => Err(Error::Netlink(format!(
                "resolve family {IPVS_GENL_NAME}: {e}"
            ))),
        }
    }

    /// The generic-netlink id of the IPVS family in this namespace's kernel.
    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    fn socket(&self, which: usize) -> MutexGuard<'_, sock::Socket> {
        let s = if self.small_broken.load(Ordering::Relaxed) {
            &self.big
        } else {
            &self.sock[which]
        };
        s.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn big_socket(&self) -> MutexGuard<'_, sock::Socket> {
        self.big.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send one message and collect the replies. `dump` asks for a dump;
    /// otherwise the request asks for an acknowledgement.
    pub async fn request(
        &self,
        msg: IpvsMessage,
        dump: bool,
        kind: OpKind,
        what: impl Into<String>,
    ) -> Result<Vec<IpvsMessage>> {
        self.send(msg, dump, kind, what.into()).await
    }

    async fn send(
        &self,
        msg: IpvsMessage,
        dump: bool,
        kind: OpKind,
        what: String,
    ) -> Result<Vec<IpvsMessage>> {
        self.send_sync(msg, dump, kind, what)
    }

    fn send_sync(
        &self,
        msg: IpvsMessage,
        dump: bool,
        kind: OpKind,
        what: String,
    ) -> Result<Vec<IpvsMessage>> {
        self.exchange(msg, dump, Via::Small(0), kind, || what)
    }

    /// One request on the small socket (or on the big one for `big`); a
    /// reply too large for the small socket's reads retries the request on
    /// the big socket, which then serves everything.
    fn exchange(
        &self,
        msg: IpvsMessage,
        dump: bool,
        via: Via,
        kind: OpKind,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<IpvsMessage>> {
        let res = if let Via::Small(which) = via {
            let res = self.socket(which).call(self.family_id, &msg, dump);
            match res {
                Err(e) if sock::is_truncated(&e) => {
                    self.small_broken.store(true, Ordering::Relaxed);
                    self.big_socket().call(self.family_id, &msg, dump)
                }
                other => other,
            }
        } else {
            self.big_socket().call(self.family_id, &msg, dump)
        };
        match res {
            Ok((out, None)) => Ok(out),
            Ok((_, Some(errno))) => Err(Error::from_errno(errno, kind, what())),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(Error::Decode(format!("{}: {e}", what())))
            }
            Err(e) => Err(Error::Netlink(format!("{}: {e}", what()))),
        }
    }

    /// Apply one change.
    pub async fn apply(&self, op: &Op) -> Result<()> {
        self.send_sync(op.to_message(), false, op.kind(), op.describe())
            .map(|_| ())
    }

    /// Apply many independent changes; results come back in input order.
    /// The kernel has no transactions: each change succeeds or fails on its
    /// own, and the kernel applies them in input order.
    ///
    /// The changes go to the kernel in batches, many messages per send
    /// (sized so that every reply fits the socket's receive buffer), and
    /// only failures and the end of each batch are acknowledged.
    /// `concurrency` is kept for compatibility: batching does not need it.
    pub async fn apply_many(&self, ops: &[Op], concurrency: usize) -> Vec<Result<()>> {
        let _ = concurrency;
        let mut results: Vec<Result<()>> = ops.iter().map(|_| Ok(())).collect();
        let outcome = self.socket(0).batch(
            self.family_id,
            ops.iter().map(Op::to_message),
            |i, errno| {
                let op = &ops[i];
                results[i] = Err(Error::from_errno(errno, op.kind(), op.describe()));
            },
        );
        if let Err((first, e)) = outcome {
            // What the kernel did not answer failed with the socket.
            for (op, r) in ops.iter().zip(results.iter_mut()).skip(first) {
                if r.is_ok() {
                    *r = Err(Error::Netlink(format!("{}: {e}", op.describe())));
                }
            }
        }
        results
    }

    pub async fn add_service(&self, svc: &Service) -> Result<()> {
        self.apply(&Op::AddService(svc.clone())).await
    }
    pub async fn edit_service(&self, svc: &Service) -> Result<()> {
        self.apply(&Op::EditService(svc.clone())).await
    }
    pub async fn delete_service(&self, key: &ServiceKey) -> Result<()> {
        self.apply(&Op::DeleteService(*key)).await
    }
    pub async fn add_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::AddDestination(*key, dest.clone())).await
    }
    pub async fn edit_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::EditDestination(*key, dest.clone())).await
    }
    pub async fn delete_destination(&self, key: &ServiceKey, dest: &Destination) -> Result<()> {
        self.apply(&Op::DeleteDestination(*key, dest.clone())).await
    }
    /// Delete every service (and so every destination).
    pub async fn flush(&self) -> Result<()> {
        self.apply(&Op::Flush).await
    }
    /// Zero the counters of one service, or of all.
    pub async fn zero(&self, key: Option<&ServiceKey>) -> Result<()> {
        self.apply(&Op::Zero(key.copied())).await
    }

    /// All services, in kernel order (one dump).
    pub async fn services(&self) -> Result<Vec<Service>> {
        let replies = self.exchange(
            IpvsMessage::new(IpvsCmd::GetService, vec![]),
            true,
            Via::Big,
            OpKind::Other,
            || "list services".into(),
        )?;
        let mut out = Vec::new();
        for m in replies {
            for a in m.nlas {
                if let IpvsAttr::Service(attrs) = a {
                    out.push(Service::from_attrs(&attrs)?);
                }
            }
        }
        Ok(out)
    }

    /// One service, or `NoSuchService`.
    pub async fn service(&self, key: &ServiceKey) -> Result<Service> {
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetService, vec![IpvsAttr::Service(key.to_attrs())]),
                false,
                OpKind::Other,
                format!("get service {key}"),
            )
            .await?;
        for m in replies {
            for a in m.nlas {
                if let IpvsAttr::Service(attrs) = a {
                    return Ok(Service::from_attrs(&attrs)?);
                }
            }
        }
        Err(Error::NoSuchService {
            what: format!("get service {key}"),
        })
    }

    /// The destinations of one service, in kernel order (one dump).
    pub async fn destinations(&self, key: &ServiceKey) -> Result<Vec<Destination>> {
        self.dests_via(Via::Small(0), key)
    }

    fn dests_via(&self, via: Via, key: &ServiceKey) -> Result<Vec<Destination>> {
        let replies = self.exchange(
            IpvsMessage::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.to_attrs())]),
            true,
            via,
            OpKind::Other,
            || format!("list destinations of {key}"),
        )?;
        let family = key.family();
        let mut out = Vec::new();
        for m in replies {
            for a in m.nlas {
                if let IpvsAttr::Dest(attrs) = a {
                    out.push(Destination::from_attrs(&attrs, family)?);
                }
            }
        }
        Ok(out)
    }

    /// The whole table: every service with its destinations, in kernel
    /// order (one service dump, then one destination dump per service).
    ///
    /// A socket runs one dump at a time: with many services, two threads
    /// share the destination dumps, each on a socket of its own.
    pub async fn table(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        let services = self.services().await?;
        let half = services.len() / 2;
        let (first, second) = services.split_at(half);
        let dump = |via: Via, part: &[Service]| -> Result<Vec<Vec<Destination>>> {
            part.iter().map(|s| self.dests_via(via, &s.key)).collect()
        };
        let (a, b) = if half >= PARALLEL_DUMPS_FROM {
            std::thread::scope(|scope| {
                let other = scope.spawn(|| dump(Via::Small(1), second));
                let a = dump(Via::Small(0), first);
                let b = other
                    .join()
                    .unwrap_or_else(|_| Err(Error::Netlink("dump thread panicked".into())));
                (a, b)
            })
        } else {
            (dump(Via::Small(0), first), dump(Via::Small(0), second))
        };
        let dests = a?.into_iter().chain(b?);
        Ok(services.into_iter().zip(dests).collect())
    }

    /// The attributes of every reply to a request that carries none.
    async fn query(
        &self,
        cmd: IpvsCmd,
        dump: bool,
        what: &str,
    ) -> Result<impl Iterator<Item = IpvsAttr>> {
        let replies = self
            .send(
                IpvsMessage::new(cmd, vec![]),
                dump,
                OpKind::Other,
                what.into(),
            )
            .await?;
        Ok(replies.into_iter().flat_map(|m| m.nlas))
    }

    pub async fn timeouts(&self) -> Result<Timeouts> {
        let mut t = Timeouts::default();
        for a in self
            .query(IpvsCmd::GetConfig, false, "get timeouts")
            .await?
        {
            match a {
                IpvsAttr::TimeoutTcp(v) => t.tcp = v,
                IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = v,
                IpvsAttr::TimeoutUdp(v) => t.udp = v,
                _ => {}
            }
        }
        Ok(t)
    }

    /// Set timeouts; a zero field leaves that timeout unchanged.
    pub async fn set_timeouts(&self, t: &Timeouts) -> Result<()> {
        self.apply(&Op::SetTimeouts(*t)).await
    }

    pub async fn info(&self) -> Result<Info> {
        let mut info = Info::default();
        for a in self.query(IpvsCmd::GetInfo, false, "get info").await? {
            match a {
                IpvsAttr::InfoVersion(v) => info.version = v,
                IpvsAttr::InfoConnTabSize(v) => info.conn_tab_size = v,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Running sync daemons (one dump).
    pub async fn daemons(&self) -> Result<Vec<Daemon>> {
        let mut out = Vec::new();
        for a in self.query(IpvsCmd::GetDaemon, true, "list daemons").await? {
            if let IpvsAttr::Daemon(attrs) = a {
                out.push(Daemon::from_attrs(&attrs)?);
            }
        }
        Ok(out)
    }

    pub async fn start_daemon(&self, d: &Daemon) -> Result<()> {
        self.send(
            IpvsMessage::new(IpvsCmd::NewDaemon, vec![IpvsAttr::Daemon(d.to_attrs())]),
            false,
            OpKind::Other,
            format!("start {:?} sync daemon", d.state),
        )
        .await
        .map(|_| ())
    }

    pub async fn stop_daemon(&self, state: DaemonState) -> Result<()> {
        let attrs = vec![crate::codec::DaemonAttr::State(state.raw())];
        self.send(
            IpvsMessage::new(IpvsCmd::DelDaemon, vec![IpvsAttr::Daemon(attrs)]),
            false,
            OpKind::Other,
            format!("stop {state:?} sync daemon"),
        )
        .await
        .map(|_| ())
    }
}

/// The netlink socket under [`Handle`]: blocking, one reusable receive
/// buffer, sequence numbers, batches.
mod sock {
    use std::fmt;
    use std::io;
    use std::mem;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use netlink_packet_core::{
        NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
        NetlinkPayload, NetlinkSerializable,
    };
    use netlink_packet_generic::GenlMessage;
    use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
    use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};

    use crate::codec::IpvsMessage;

    const NLMSG_HDRLEN: usize = 16;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const NLMSG_OVERRUN: u16 = 4;
    /// Larger than the biggest datagram the kernel builds for a dump (it
    /// sizes them after the reader's buffer, up to 32 KiB).
    const RECV_BUF: usize = 64 * 1024;
    /// Receive buffer asked for (root may exceed net.core.rmem_max).
    const WANT_RCVBUF: libc::c_int = 4 << 20;
    const WANT_SNDBUF: libc::c_int = 1 << 20;
    /// Receive-buffer bytes reserved per message of a batch: an error
    /// reply to every message of a batch must fit, or the kernel drops
    /// replies. Generous for a capped (NETLINK_CAP_ACK) error reply.
    const RCVBUF_PER_MESSAGE: usize = 2048;

    /// The read size of the small socket: NLMSG_GOODSIZE for 4 KiB pages,
    /// the kernel's smallest dump datagram (one page with the skb's shared
    /// info), so the kernel keeps allocating single pages for dumps.
    const SMALL_READ: usize = 4096 - 320;

    /// A reply longer than the socket's reads (it was cut).
    #[derive(Debug)]
    struct Truncated;

    impl fmt::Display for Truncated {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("netlink reply truncated")
        }
    }

    impl std::error::Error for Truncated {}

    pub(super) fn is_truncated(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|x| x.is::<Truncated>())
    }

    pub(super) type Sockets = (Socket, Socket, Socket);

    pub(super) struct Socket {
        fd: OwnedFd,
        /// How much one read asks for (at most `buf.len()`).
        read_len: usize,
        seq: u32,
        buf: Vec<u8>,
        out: Vec<u8>,
        max_batch: usize,
        max_bytes: usize,
    }

    impl fmt::Debug for Socket {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Socket")
                .field("fd", &self.fd.as_raw_fd())
                .field("max_batch", &self.max_batch)
                .finish()
        }
    }

    fn setsockopt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
        // SAFETY: valid fd, pointer to a live c_int of the given size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&v as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    fn getsockopt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: valid fd, pointers to a live c_int and its length.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(v)
    }

    fn kernel_addr() -> libc::sockaddr_nl {
        // SAFETY: sockaddr_nl is plain data; all zeroes is valid.
        let mut a: libc::sockaddr_nl = unsafe { mem::zeroed() };
        a.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        a
    }

    /// Append one netlink message to `out`, 4-byte aligned.
    fn encode<T: NetlinkSerializable + fmt::Debug>(
        out: &mut Vec<u8>,
        payload: T,
        flags: u16,
        seq: u32,
    ) {
        let mut nl = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(payload),
        );
        nl.header.flags = flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.header.length as usize, 0);
        nl.serialize(&mut out[start..]);
        out.resize((out.len() + 3) & !3, 0);
    }

    fn ipvs(family: u16, msg: IpvsMessage) -> GenlMessage<IpvsMessage> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(family);
        genl
    }

    fn parse<T: NetlinkDeserializable + fmt::Debug>(msg: &[u8]) -> io::Result<T> {
        match NetlinkMessage::<T>::deserialize(msg) {
            Ok(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(m),
                ..
            }) => Ok(m),
            Ok(other) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected message {:?}", other.header),
            )),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }

    fn read_u32(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The errno of an NLMSG_ERROR or NLMSG_DONE message (0 for an ack or a
    /// clean end), positive.
    fn errno_of(msg: &[u8]) -> i32 {
        if msg.len() >= NLMSG_HDRLEN + 4 {
            -(read_u32(msg, NLMSG_HDRLEN) as i32)
        } else {
            0
        }
    }

    impl Socket {
        /// Three sockets in the calling thread's namespace: two with small
        /// reads, one with big reads.
        pub(super) fn open_all() -> io::Result<Sockets> {
            Ok((
                Socket::open(SMALL_READ)?,
                Socket::open(SMALL_READ)?,
                Socket::open(RECV_BUF)?,
            ))
        }

        /// A generic-netlink socket in the calling thread's namespace.
        fn open(read_len: usize) -> io::Result<Socket> {
            // SAFETY: plain syscall; the fd is owned right below.
            let raw = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_GENERIC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let addr = kernel_addr();
            // SAFETY: valid fd and a sockaddr_nl of the given size.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_nl).cast(),
                    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            // Best effort: bigger buffers allow bigger batches.
            if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, WANT_RCVBUF) {
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, WANT_RCVBUF);
            }
            if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, WANT_SNDBUF) {
                setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, WANT_SNDBUF);
            }
            // Error replies without a copy of the request.
            setsockopt(&fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, 1);
            let rcvbuf = getsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap_or(0);
            let sndbuf = getsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF).unwrap_or(0);
            let max_batch =
                (usize::try_from(rcvbuf).unwrap_or(0) / RCVBUF_PER_MESSAGE).clamp(8, 4096);
            let max_bytes = usize::try_from(sndbuf)
                .unwrap_or(0)
                .saturating_sub(1024)
                .clamp(4096, 1 << 20);
            Ok(Socket {
                fd,
                read_len,
                seq: 0,
                buf: vec![0; RECV_BUF],
                out: Vec::with_capacity(8192),
                max_batch,
                max_bytes,
            })
        }

        fn next_seq(&mut self) -> u32 {
            self.seq = self.seq.wrapping_add(1);
            self.seq
        }

        fn send_out(&self) -> io::Result<()> {
            let addr = kernel_addr();
            loop {
                // SAFETY: valid fd, buffer and sockaddr_nl.
                let n = unsafe {
                    libc::sendto(
                        self.fd.as_raw_fd(),
                        self.out.as_ptr().cast(),
                        self.out.len(),
                        0,
                        (&addr as *const libc::sockaddr_nl).cast(),
                        mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                if n as usize != self.out.len() {
                    return Err(io::Error::other("short netlink send"));
                }
                return Ok(());
            }
        }

        /// Receive datagrams and hand each message (type, sequence number,
        /// bytes) to `f` until it returns true.
        fn receive(
            &mut self,
            mut f: impl FnMut(u16, u32, &[u8]) -> io::Result<bool>,
        ) -> io::Result<()> {
            loop {
                // SAFETY: valid fd and buffer of the given length.
                let n = unsafe {
                    libc::recv(
                        self.fd.as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.read_len,
                        libc::MSG_TRUNC,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                let n = n as usize;
                if n > self.read_len {
                    return Err(io::Error::other(Truncated));
                }
                let data = &self.buf[..n];
                let mut off = 0;
                while off + NLMSG_HDRLEN <= n {
                    let len = read_u32(data, off) as usize;
                    if len < NLMSG_HDRLEN || off + len > n {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "malformed netlink message",
                        ));
                    }
                    let msg = &data[off..off + len];
                    let ty = u16::from_ne_bytes([msg[4], msg[5]]);
                    let seq = read_u32(msg, 8);
                    if ty == NLMSG_OVERRUN {
                        return Err(io::Error::other("receive buffer overrun"));
                    }
                    if f(ty, seq, msg)? {
                        return Ok(());
                    }
                    off += (len + 3) & !3;
                }
            }
        }

        /// The id of a generic-netlink family (ENOENT when unknown).
        pub(super) fn resolve_family(&mut self, name: &str) -> io::Result<u16> {
            let seq = self.next_seq();
            self.out.clear();
            let ctrl = GenlMessage::from_payload(GenlCtrl {
                cmd: GenlCtrlCmd::GetFamily,
                nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
            });
            encode(&mut self.out, ctrl, NLM_F_REQUEST | NLM_F_ACK, seq);
            self.send_out()?;
            let mut id = None;
            let mut errno = 0;
            self.receive(|ty, s, msg| {
                if s != seq {
                    return Ok(false);
                }
                if ty == NLMSG_ERROR {
                    errno = errno_of(msg);
                    return Ok(true);
                }
                if ty != NLMSG_DONE {
                    let m: GenlMessage<GenlCtrl> = parse(msg)?;
                    for a in m.payload.nlas {
                        if let GenlCtrlAttrs::FamilyId(i) = a {
                            id = Some(i);
                        }
                    }
                }
                Ok(false)
            })?;
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            id.ok_or_else(|| io::Error::other(format!("no id for family {name}")))
        }

        /// One request (a dump if `dump`), its replies to `on_msg`; the
        /// kernel's errno if it refused.
        pub(super) fn call(
            &mut self,
            family: u16,
            msg: &IpvsMessage,
            dump: bool,
        ) -> io::Result<(Vec<IpvsMessage>, Option<i32>)> {
            let seq = self.next_seq();
            self.out.clear();
            let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
            encode(&mut self.out, ipvs(family, msg.clone()), flags, seq);
            let mut replies = Vec::new();
            self.send_out()?;
            let mut errno = 0;
            self.receive(|ty, s, msg| {
                if s != seq {
                    return Ok(false);
                }
                match ty {
                    NLMSG_ERROR => {
                        errno = errno_of(msg);
                        Ok(true)
                    }
                    NLMSG_DONE => {
                        errno = errno_of(msg).max(0);
                        Ok(true)
                    }
                    t if t == family => {
                        let m: GenlMessage<IpvsMessage> = parse(msg)?;
                        replies.push(m.payload);
                        Ok(false)
                    }
                    _ => Ok(false),
                }
            })?;
            Ok((replies, (errno != 0).then_some(errno)))
        }

        /// Send change requests (no replies but errors) in batches of many
        /// messages per send; only the last message of a batch asks for an
        /// acknowledgement. The kernel handles them in order, and calls
        /// `on_error(index, errno)` in index order. On a socket error,
        /// returns the index of the first request not known to be handled.
        pub(super) fn batch(
            &mut self,
            family: u16,
            msgs: impl Iterator<Item = IpvsMessage>,
            mut on_error: impl FnMut(usize, i32),
        ) -> Result<(), (usize, io::Error)> {
            let mut msgs = msgs.peekable();
            let mut base = 0usize;
            while msgs.peek().is_some() {
                self.out.clear();
                let first_seq = self.seq.wrapping_add(1);
                let mut count = 0usize;
                let mut last_start = 0;
                while count < self.max_batch && self.out.len() < self.max_bytes {
                    let Some(m) = msgs.next() else { break };
                    last_start = self.out.len();
                    let seq = self.next_seq();
                    encode(&mut self.out, ipvs(family, m), NLM_F_REQUEST, seq);
                    count += 1;
                }
                // The last message asks for an ack: its reply ends the batch.
                let flags =
                    u16::from_ne_bytes([self.out[last_start + 6], self.out[last_start + 7]])
                        | NLM_F_ACK;
                self.out[last_start + 6..last_start + 8].copy_from_slice(&flags.to_ne_bytes());
                let last_seq = self.seq;
                self.send_out().map_err(|e| (base, e))?;
                self.receive(|ty, s, msg| {
                    let i = s.wrapping_sub(first_seq) as usize;
                    if ty != NLMSG_ERROR || i >= count {
                        return Ok(false);
                    }
                    let errno = errno_of(msg);
                    if errno != 0 {
                        on_error(base + i, errno);
                    }
                    Ok(s == last_seq)
                })
                .map_err(|e| (base, e))?;
                base += count;
            }
            Ok(())
        }
    }
}
