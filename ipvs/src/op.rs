//! [`Op`]: one change to the IPVS table. The rules parser produces them
//! ([`crate::rules`], one per ipvsadm command line, printed back by their
//! `Display`), the director plans them, and the handle sends them
//! ([`crate::Handle::apply`], [`crate::Handle::apply_many`]).

use crate::error::OpKind;
use crate::table::{Destination, Service, ServiceKey, Timeouts, fmt_addr_port};

/// One change to the IPVS table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `-A`
    AddService(Service),
    /// `-E`
    EditService(Service),
    /// `-D`
    DeleteService(ServiceKey),
    /// `-a`
    AddDestination(ServiceKey, Destination),
    /// `-e`
    EditDestination(ServiceKey, Destination),
    /// `-d` (only the address and port of the destination matter)
    DeleteDestination(ServiceKey, Destination),
    /// `-C`: delete every service.
    Flush,
    /// `-Z [service]`: zero the counters of one service or of all.
    Zero(Option<ServiceKey>),
    /// `--set TCP TCPFIN UDP` (a zero leaves that timeout unchanged).
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

    /// What kind of operation this is (the meaning of a kernel errno
    /// depends on it).
    pub fn kind(&self) -> OpKind {
        match self {
            Op::AddService(_) => OpKind::AddService,
            Op::EditService(_) => OpKind::EditService,
            Op::DeleteService(_) => OpKind::DeleteService,
            Op::AddDestination(..) => OpKind::AddDestination,
            Op::EditDestination(..) => OpKind::EditDestination,
            Op::DeleteDestination(..) => OpKind::DeleteDestination,
            Op::Flush => OpKind::Flush,
            Op::Zero(_) => OpKind::Zero,
            Op::SetTimeouts(_) => OpKind::SetTimeouts,
        }
    }
}

#[cfg(feature = "netlink")]
mod wire {
    use super::Op;
    use crate::codec::{IpvsAttr, IpvsCmd, IpvsMessage};
    use crate::table::ServiceKey;

    impl Op {
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
}
