//! Wire codec for the kernel's "IPVS" generic-netlink family.
//!
//! The shape follows `netlink_packet_generic::ctrl`: one payload type
//! ([`IpvsMessage`]) holding a command and a list of top-level attributes,
//! with one enum per attribute space (service, destination, daemon,
//! statistics). Every enum keeps an `Other` variant so attributes added by
//! newer kernels survive a decode/encode round trip instead of failing.
//!
//! Byte order follows the kernel: ports (service, destination, tunnel) are
//! big-endian 16-bit values, everything else is host order. Addresses are
//! always 16 bytes (`union nf_inet_addr`), an IPv4 address taking the first
//! four. The persistence netmask is a raw 32-bit field whose meaning depends
//! on the address family (see [`crate::table::Service::netmask`]).

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator,
    Parseable, ParseableParametrized, emit_u16, emit_u16_be, emit_u32, emit_u64, parse_string,
    parse_u8, parse_u16, parse_u16_be, parse_u32, parse_u64,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

mod daemon;
mod dest;
mod service;
mod stats;
#[cfg(test)]
mod tests;

pub use daemon::DaemonAttr;
pub use dest::DestAttr;
pub use service::{FlagsMask, ServiceAttr};
pub use stats::StatsAttr;
use stats::{emit_stats, stats_len};

/// Name under which the kernel registers the family.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// Protocol version of the family.
pub const IPVS_GENL_VERSION: u8 = 1;

/// Commands of the IPVS family (`IPVS_CMD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpvsCmd {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    NewDaemon,
    DelDaemon,
    GetDaemon,
    SetConfig,
    GetConfig,
    SetInfo,
    GetInfo,
    Zero,
    Flush,
}

impl IpvsCmd {
    /// Every command, in kernel numbering order (1..=17).
    pub const ALL: [IpvsCmd; 17] = [
        IpvsCmd::NewService,
        IpvsCmd::SetService,
        IpvsCmd::DelService,
        IpvsCmd::GetService,
        IpvsCmd::NewDest,
        IpvsCmd::SetDest,
        IpvsCmd::DelDest,
        IpvsCmd::GetDest,
        IpvsCmd::NewDaemon,
        IpvsCmd::DelDaemon,
        IpvsCmd::GetDaemon,
        IpvsCmd::SetConfig,
        IpvsCmd::GetConfig,
        IpvsCmd::SetInfo,
        IpvsCmd::GetInfo,
        IpvsCmd::Zero,
        IpvsCmd::Flush,
    ];

    /// Whether the top-level attributes of this command are the INFO space
    /// (version, connection table size) rather than the command space.
    pub fn carries_info(self) -> bool {
        matches!(self, IpvsCmd::SetInfo | IpvsCmd::GetInfo)
    }
}

impl From<IpvsCmd> for u8 {
    fn from(cmd: IpvsCmd) -> u8 {
        // The kernel numbers commands from 1 in declaration order.
        IpvsCmd::ALL.iter().position(|c| *c == cmd).unwrap() as u8 + 1
    }
}

impl TryFrom<u8> for IpvsCmd {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        match v {
            1..=17 => Ok(IpvsCmd::ALL[usize::from(v) - 1]),
            _ => Err(DecodeError::from(format!("unknown IPVS command {v}"))),
        }
    }
}

// Top-level (command) attribute kinds.
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;
// Info attribute kinds (top level of SET_INFO / GET_INFO messages).
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;
// Service attribute kinds.
pub const IPVS_SVC_ATTR_AF: u16 = 1;
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;
// Destination attribute kinds.
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;
// Daemon attribute kinds.
pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;
// Statistics attribute kinds (same numbering in STATS and STATS64).
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;

/// Payload of one IPVS generic-netlink message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    pub nlas: Vec<IpvsAttr>,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, nlas: Vec<IpvsAttr>) -> Self {
        IpvsMessage { cmd, nlas }
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }
    fn command(&self) -> u8 {
        self.cmd.into()
    }
    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.nlas.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.nlas.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::try_from(header.cmd)?;
        let nlas = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttr::parse_with_param(&nla, cmd)))
            .collect::<Result<Vec<_>, _>>()
            .context("failed to parse IPVS message attributes")?;
        Ok(IpvsMessage { cmd, nlas })
    }
}

/// Parse every attribute of a nested attribute list with `f`.
fn parse_nested<T>(
    payload: &[u8],
    what: &str,
    f: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| f(&nla)))
        .collect::<Result<Vec<_>, _>>()
        .context(format!("failed to parse nested {what} attributes"))
}

fn parse_addr(payload: &[u8]) -> Result<[u8; 16], DecodeError> {
    // The kernel always sends the full union; accept a bare IPv4 address too.
    let mut out = [0u8; 16];
    match payload.len() {
        16 => out.copy_from_slice(payload),
        4 => out[..4].copy_from_slice(payload),
        n => return Err(DecodeError::invalid_ip_address(n)),
    }
    Ok(out)
}

fn emit_string(buffer: &mut [u8], s: &str) {
    buffer[..s.len()].copy_from_slice(s.as_bytes());
    buffer[s.len()] = 0;
}

/// Top-level attribute of an IPVS message.
///
/// Kinds 1 and 2 mean SERVICE / DEST in most commands but VERSION /
/// CONN_TAB_SIZE in SET_INFO / GET_INFO, so parsing takes the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpvsAttr {
    Service(Vec<ServiceAttr>),
    Dest(Vec<DestAttr>),
    Daemon(Vec<DaemonAttr>),
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    InfoVersion(u32),
    InfoConnTabSize(u32),
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            IpvsAttr::Service(v) => v.as_slice().buffer_len(),
            IpvsAttr::Dest(v) => v.as_slice().buffer_len(),
            IpvsAttr::Daemon(v) => v.as_slice().buffer_len(),
            IpvsAttr::TimeoutTcp(_)
            | IpvsAttr::TimeoutTcpFin(_)
            | IpvsAttr::TimeoutUdp(_)
            | IpvsAttr::InfoVersion(_)
            | IpvsAttr::InfoConnTabSize(_) => 4,
            IpvsAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            IpvsAttr::Service(_) => IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED,
            IpvsAttr::Dest(_) => IPVS_CMD_ATTR_DEST | NLA_F_NESTED,
            IpvsAttr::Daemon(_) => IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED,
            IpvsAttr::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            IpvsAttr::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            IpvsAttr::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            IpvsAttr::InfoVersion(_) => IPVS_INFO_ATTR_VERSION,
            IpvsAttr::InfoConnTabSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            IpvsAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            IpvsAttr::Service(v) => v.as_slice().emit(buffer),
            IpvsAttr::Dest(v) => v.as_slice().emit(buffer),
            IpvsAttr::Daemon(v) => v.as_slice().emit(buffer),
            IpvsAttr::TimeoutTcp(v)
            | IpvsAttr::TimeoutTcpFin(v)
            | IpvsAttr::TimeoutUdp(v)
            | IpvsAttr::InfoVersion(v)
            | IpvsAttr::InfoConnTabSize(v) => emit_u32(buffer, *v).unwrap(),
            IpvsAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'a T>, IpvsCmd> for IpvsAttr {
    fn parse_with_param(buf: &NlaBuffer<&'a T>, cmd: IpvsCmd) -> Result<Self, DecodeError> {
        let payload = buf.value();
        if cmd.carries_info() {
            return Ok(match buf.kind() {
                IPVS_INFO_ATTR_VERSION => IpvsAttr::InfoVersion(
                    parse_u32(payload).context("invalid IPVS_INFO_ATTR_VERSION")?,
                ),
                IPVS_INFO_ATTR_CONN_TAB_SIZE => IpvsAttr::InfoConnTabSize(
                    parse_u32(payload).context("invalid IPVS_INFO_ATTR_CONN_TAB_SIZE")?,
                ),
                _ => IpvsAttr::Other(DefaultNla::parse(buf)?),
            });
        }
        Ok(match buf.kind() {
            IPVS_CMD_ATTR_SERVICE => {
                IpvsAttr::Service(parse_nested(payload, "service", |n| ServiceAttr::parse(n))?)
            }
            IPVS_CMD_ATTR_DEST => IpvsAttr::Dest(parse_nested(payload, "destination", |n| {
                DestAttr::parse(n)
            })?),
            IPVS_CMD_ATTR_DAEMON => {
                IpvsAttr::Daemon(parse_nested(payload, "daemon", |n| DaemonAttr::parse(n))?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP => {
                IpvsAttr::TimeoutTcp(parse_u32(payload).context("invalid TIMEOUT_TCP")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => {
                IpvsAttr::TimeoutTcpFin(parse_u32(payload).context("invalid TIMEOUT_TCP_FIN")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_UDP => {
                IpvsAttr::TimeoutUdp(parse_u32(payload).context("invalid TIMEOUT_UDP")?)
            }
            _ => IpvsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
