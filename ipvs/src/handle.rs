//! An async handle on the kernel's IPVS table: one long-lived generic
//! netlink socket, the family id resolved once, many requests in flight.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, stream};
use genetlink::GenetlinkHandle;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_generic::GenlMessage;

use crate::codec::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::error::{Error, OpKind, Result};
use crate::model::{
    Daemon, DaemonState, Destination, Info, Service, ServiceKey, Timeouts, fmt_addr_port,
};

/// Default number of requests kept in flight by the bulk helpers.
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

/// A connection to the kernel's IPVS table of one network namespace.
///
/// Cloning is cheap; clones share the socket. The socket lives in the
/// namespace it was created in, whichever thread later uses the handle.
#[derive(Clone, Debug)]
pub struct Handle {
    inner: GenetlinkHandle,
    family_id: u16,
    /// A netlink socket runs one dump at a time (the kernel answers EBUSY
    /// to a second): dumps take this lock; plain requests do not.
    dump_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Handle {
    /// Connect in the calling thread's network namespace. Must run inside a
    /// tokio runtime (the connection task is spawned on it).
    pub async fn new() -> Result<Handle> {
        let (conn, inner, _) =
            genetlink::new_connection().map_err(|e| Error::Netlink(e.to_string()))?;
        tokio::spawn(conn);
        Handle::resolve(inner).await
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
        let rt = tokio::runtime::Handle::current();
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
                    let _guard = rt.enter();
                    let (conn, inner, _) = genetlink::new_connection()?;
                    rt.spawn(conn);
                    Ok(inner)
                })();
                let _ = tx.send(res);
            })
            .map_err(|source| Error::Netns {
                name: name.clone(),
                source,
            })?;
        let inner = rx
            .await
            .map_err(|_| Error::Netlink("namespace thread died".into()))?
            .map_err(|source| Error::Netns { name, source })?;
        Handle::resolve(inner).await
    }

    async fn resolve(inner: GenetlinkHandle) -> Result<Handle> {
        match inner.resolve_family::<IpvsMessage>().await {
            Ok(f) => Ok(Handle {
                inner,
                family_id: f.id,
                dump_lock: Arc::new(tokio::sync::Mutex::new(())),
            }),
            Err(genetlink::GenetlinkError::NetlinkError(e))
                if e.raw_os_error() == Some(libc::ENOENT) =>
            {
                Err(Error::FamilyNotFound)
            }
            Err(e) => Err(Error::Netlink(e.to_string())),
        }
    }

    /// The generic-netlink id of the IPVS family in this namespace's kernel.
    pub fn family_id(&self) -> u16 {
        self.family_id
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
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family_id);
        let mut nl =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(genl));
        nl.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        nl.finalize();
        let _dump_guard = if dump {
            Some(self.dump_lock.lock().await)
        } else {
            None
        };
        let mut h = self.inner.clone();
        let mut replies = h
            .send_request(nl)
            .map_err(|e| Error::Netlink(format!("{what}: {e}")))?;
        let mut out = Vec::new();
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|e| Error::Decode(format!("{what}: {e}")))?;
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m.payload),
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        return Err(Error::from_errno(-code.get(), kind, what));
                    }
                }
                NetlinkPayload::Overrun(_) => {
                    return Err(Error::Netlink(format!("{what}: receive buffer overrun")));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Apply one change.
    pub async fn apply(&self, op: &Op) -> Result<()> {
        self.send(op.to_message(), false, op.kind(), op.describe())
            .await
            .map(|_| ())
    }

    /// Apply many independent changes with up to `concurrency` requests in
    /// flight; results come back in input order. The kernel has no
    /// transactions: each change succeeds or fails on its own.
    pub async fn apply_many(&self, ops: &[Op], concurrency: usize) -> Vec<Result<()>> {
        let mut results: Vec<(usize, Result<()>)> = stream::iter(ops.iter().enumerate())
            .map(|(i, op)| async move { (i, self.apply(op).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
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
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetService, vec![]),
                true,
                OpKind::Other,
                "list services".into(),
            )
            .await?;
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
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.to_attrs())]),
                true,
                OpKind::Other,
                format!("list destinations of {key}"),
            )
            .await?;
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
    /// order (one service dump, then one destination dump per service; a
    /// socket runs one dump at a time).
    pub async fn table(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        let services = self.services().await?;
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let d = self.destinations(&s.key).await?;
            out.push((s, d));
        }
        Ok(out)
    }

    pub async fn timeouts(&self) -> Result<Timeouts> {
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetConfig, vec![]),
                false,
                OpKind::Other,
                "get timeouts".into(),
            )
            .await?;
        let mut t = Timeouts::default();
        for m in replies {
            for a in m.nlas {
                match a {
                    IpvsAttr::TimeoutTcp(v) => t.tcp = v,
                    IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = v,
                    IpvsAttr::TimeoutUdp(v) => t.udp = v,
                    _ => {}
                }
            }
        }
        Ok(t)
    }

    /// Set timeouts; a zero field leaves that timeout unchanged.
    pub async fn set_timeouts(&self, t: &Timeouts) -> Result<()> {
        self.apply(&Op::SetTimeouts(*t)).await
    }

    pub async fn info(&self) -> Result<Info> {
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetInfo, vec![]),
                false,
                OpKind::Other,
                "get info".into(),
            )
            .await?;
        let mut info = Info::default();
        for m in replies {
            for a in m.nlas {
                match a {
                    IpvsAttr::InfoVersion(v) => info.version = v,
                    IpvsAttr::InfoConnTabSize(v) => info.conn_tab_size = v,
                    _ => {}
                }
            }
        }
        Ok(info)
    }

    /// Running sync daemons (one dump).
    pub async fn daemons(&self) -> Result<Vec<Daemon>> {
        let replies = self
            .send(
                IpvsMessage::new(IpvsCmd::GetDaemon, vec![]),
                true,
                OpKind::Other,
                "list daemons".into(),
            )
            .await?;
        let mut out = Vec::new();
        for m in replies {
            for a in m.nlas {
                if let IpvsAttr::Daemon(attrs) = a {
                    out.push(Daemon::from_attrs(&attrs)?);
                }
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
