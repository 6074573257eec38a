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
//! on the address family (see [`crate::model::Service::netmask`]).

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator,
    Parseable, ParseableParametrized, emit_u16, emit_u16_be, emit_u32, emit_u64, parse_string,
    parse_u8, parse_u16, parse_u16_be, parse_u32, parse_u64,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

#[cfg(test)]
mod tests;

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

/// The `struct ip_vs_flags { u32 flags; u32 mask; }` carried by SVC_ATTR_FLAGS.
/// The kernel applies `(old & !mask) | (flags & mask)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlagsMask {
    pub flags: u32,
    pub mask: u32,
}

/// Attribute of a nested SERVICE attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceAttr {
    /// Address family (AF_INET = 2, AF_INET6 = 10).
    Af(u16),
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    Protocol(u16),
    /// Virtual address, 16 bytes; IPv4 uses the first four.
    Addr([u8; 16]),
    /// Virtual port, host order here, big-endian on the wire.
    Port(u16),
    Fwmark(u32),
    SchedName(String),
    Flags(FlagsMask),
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Raw netmask field, native byte order as the kernel stores it.
    Netmask(u32),
    /// Legacy 32-bit statistics (some counters are 64-bit even here).
    Stats(Vec<StatsAttr>),
    PeName(String),
    Stats64(Vec<StatsAttr>),
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            ServiceAttr::Af(_) | ServiceAttr::Protocol(_) | ServiceAttr::Port(_) => 2,
            ServiceAttr::Addr(_) => 16,
            ServiceAttr::Fwmark(_) | ServiceAttr::Timeout(_) | ServiceAttr::Netmask(_) => 4,
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => s.len() + 1,
            ServiceAttr::Flags(_) => 8,
            ServiceAttr::Stats(v) => stats_len(v, false),
            ServiceAttr::Stats64(v) => stats_len(v, true),
            ServiceAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            ServiceAttr::Af(_) => IPVS_SVC_ATTR_AF,
            ServiceAttr::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            ServiceAttr::Addr(_) => IPVS_SVC_ATTR_ADDR,
            ServiceAttr::Port(_) => IPVS_SVC_ATTR_PORT,
            ServiceAttr::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            ServiceAttr::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            ServiceAttr::Flags(_) => IPVS_SVC_ATTR_FLAGS,
            ServiceAttr::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            ServiceAttr::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            ServiceAttr::Stats(_) => IPVS_SVC_ATTR_STATS | NLA_F_NESTED,
            ServiceAttr::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            ServiceAttr::Stats64(_) => IPVS_SVC_ATTR_STATS64 | NLA_F_NESTED,
            ServiceAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            ServiceAttr::Af(v) | ServiceAttr::Protocol(v) => emit_u16(buffer, *v).unwrap(),
            ServiceAttr::Port(v) => emit_u16_be(buffer, *v).unwrap(),
            ServiceAttr::Addr(a) => buffer[..16].copy_from_slice(a),
            ServiceAttr::Fwmark(v) | ServiceAttr::Timeout(v) | ServiceAttr::Netmask(v) => {
                emit_u32(buffer, *v).unwrap()
            }
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => emit_string(buffer, s),
            ServiceAttr::Flags(f) => {
                emit_u32(&mut buffer[..4], f.flags).unwrap();
                emit_u32(&mut buffer[4..8], f.mask).unwrap();
            }
            ServiceAttr::Stats(v) => emit_stats(buffer, v, false),
            ServiceAttr::Stats64(v) => emit_stats(buffer, v, true),
            ServiceAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => ServiceAttr::Af(parse_u16(p).context("invalid SVC AF")?),
            IPVS_SVC_ATTR_PROTOCOL => {
                ServiceAttr::Protocol(parse_u16(p).context("invalid SVC PROTOCOL")?)
            }
            IPVS_SVC_ATTR_ADDR => ServiceAttr::Addr(parse_addr(p).context("invalid SVC ADDR")?),
            IPVS_SVC_ATTR_PORT => ServiceAttr::Port(parse_u16_be(p).context("invalid SVC PORT")?),
            IPVS_SVC_ATTR_FWMARK => {
                ServiceAttr::Fwmark(parse_u32(p).context("invalid SVC FWMARK")?)
            }
            IPVS_SVC_ATTR_SCHED_NAME => {
                ServiceAttr::SchedName(parse_string(p).context("invalid SVC SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                if p.len() != 8 {
                    return Err(DecodeError::invalid_number(8, p.len()));
                }
                ServiceAttr::Flags(FlagsMask {
                    flags: parse_u32(&p[..4])?,
                    mask: parse_u32(&p[4..])?,
                })
            }
            IPVS_SVC_ATTR_TIMEOUT => {
                ServiceAttr::Timeout(parse_u32(p).context("invalid SVC TIMEOUT")?)
            }
            IPVS_SVC_ATTR_NETMASK => {
                ServiceAttr::Netmask(parse_u32(p).context("invalid SVC NETMASK")?)
            }
            IPVS_SVC_ATTR_STATS => {
                ServiceAttr::Stats(parse_nested(p, "stats", |n| StatsAttr::parse(n))?)
            }
            IPVS_SVC_ATTR_PE_NAME => {
                ServiceAttr::PeName(parse_string(p).context("invalid SVC PE_NAME")?)
            }
            IPVS_SVC_ATTR_STATS64 => {
                ServiceAttr::Stats64(parse_nested(p, "stats64", |n| StatsAttr::parse(n))?)
            }
            _ => ServiceAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// Attribute of a nested DEST attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAttr {
    Addr([u8; 16]),
    /// Port, host order here, big-endian on the wire.
    Port(u16),
    FwdMethod(u32),
    Weight(u32),
    UThresh(u32),
    LThresh(u32),
    ActiveConns(u32),
    InactConns(u32),
    PersistConns(u32),
    Stats(Vec<StatsAttr>),
    AddrFamily(u16),
    Stats64(Vec<StatsAttr>),
    TunType(u8),
    /// Tunnel port, host order here, big-endian on the wire.
    TunPort(u16),
    TunFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::Addr(_) => 16,
            DestAttr::Port(_)
            | DestAttr::AddrFamily(_)
            | DestAttr::TunPort(_)
            | DestAttr::TunFlags(_) => 2,
            DestAttr::TunType(_) => 1,
            DestAttr::FwdMethod(_)
            | DestAttr::Weight(_)
            | DestAttr::UThresh(_)
            | DestAttr::LThresh(_)
            | DestAttr::ActiveConns(_)
            | DestAttr::InactConns(_)
            | DestAttr::PersistConns(_) => 4,
            DestAttr::Stats(v) => stats_len(v, false),
            DestAttr::Stats64(v) => stats_len(v, true),
            DestAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DestAttr::Addr(_) => IPVS_DEST_ATTR_ADDR,
            DestAttr::Port(_) => IPVS_DEST_ATTR_PORT,
            DestAttr::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            DestAttr::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            DestAttr::UThresh(_) => IPVS_DEST_ATTR_U_THRESH,
            DestAttr::LThresh(_) => IPVS_DEST_ATTR_L_THRESH,
            DestAttr::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            DestAttr::InactConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            DestAttr::PersistConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            DestAttr::Stats(_) => IPVS_DEST_ATTR_STATS | NLA_F_NESTED,
            DestAttr::AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            DestAttr::Stats64(_) => IPVS_DEST_ATTR_STATS64 | NLA_F_NESTED,
            DestAttr::TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            DestAttr::TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            DestAttr::TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            DestAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DestAttr::Addr(a) => buffer[..16].copy_from_slice(a),
            DestAttr::Port(v) | DestAttr::TunPort(v) => emit_u16_be(buffer, *v).unwrap(),
            DestAttr::AddrFamily(v) | DestAttr::TunFlags(v) => emit_u16(buffer, *v).unwrap(),
            DestAttr::TunType(v) => buffer[0] = *v,
            DestAttr::FwdMethod(v)
            | DestAttr::Weight(v)
            | DestAttr::UThresh(v)
            | DestAttr::LThresh(v)
            | DestAttr::ActiveConns(v)
            | DestAttr::InactConns(v)
            | DestAttr::PersistConns(v) => emit_u32(buffer, *v).unwrap(),
            DestAttr::Stats(v) => emit_stats(buffer, v, false),
            DestAttr::Stats64(v) => emit_stats(buffer, v, true),
            DestAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        let u32_of = |what: &str| parse_u32(p).context(format!("invalid DEST {what}"));
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => DestAttr::Addr(parse_addr(p).context("invalid DEST ADDR")?),
            IPVS_DEST_ATTR_PORT => DestAttr::Port(parse_u16_be(p).context("invalid DEST PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => DestAttr::FwdMethod(u32_of("FWD_METHOD")?),
            IPVS_DEST_ATTR_WEIGHT => DestAttr::Weight(u32_of("WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => DestAttr::UThresh(u32_of("U_THRESH")?),
            IPVS_DEST_ATTR_L_THRESH => DestAttr::LThresh(u32_of("L_THRESH")?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => DestAttr::ActiveConns(u32_of("ACTIVE_CONNS")?),
            IPVS_DEST_ATTR_INACT_CONNS => DestAttr::InactConns(u32_of("INACT_CONNS")?),
            IPVS_DEST_ATTR_PERSIST_CONNS => DestAttr::PersistConns(u32_of("PERSIST_CONNS")?),
            IPVS_DEST_ATTR_STATS => {
                DestAttr::Stats(parse_nested(p, "stats", |n| StatsAttr::parse(n))?)
            }
            IPVS_DEST_ATTR_ADDR_FAMILY => {
                DestAttr::AddrFamily(parse_u16(p).context("invalid DEST ADDR_FAMILY")?)
            }
            IPVS_DEST_ATTR_STATS64 => {
                DestAttr::Stats64(parse_nested(p, "stats64", |n| StatsAttr::parse(n))?)
            }
            IPVS_DEST_ATTR_TUN_TYPE => {
                DestAttr::TunType(parse_u8(p).context("invalid DEST TUN_TYPE")?)
            }
            IPVS_DEST_ATTR_TUN_PORT => {
                DestAttr::TunPort(parse_u16_be(p).context("invalid DEST TUN_PORT")?)
            }
            IPVS_DEST_ATTR_TUN_FLAGS => {
                DestAttr::TunFlags(parse_u16(p).context("invalid DEST TUN_FLAGS")?)
            }
            _ => DestAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// Attribute of a nested DAEMON attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonAttr {
    /// 1 = master, 2 = backup.
    State(u32),
    McastIfn(String),
    SyncId(u32),
    SyncMaxLen(u16),
    /// IPv4 multicast group, network order bytes.
    McastGroup([u8; 4]),
    McastGroup6([u8; 16]),
    McastPort(u16),
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        match self {
            DaemonAttr::State(_) | DaemonAttr::SyncId(_) | DaemonAttr::McastGroup(_) => 4,
            DaemonAttr::McastIfn(s) => s.len() + 1,
            DaemonAttr::SyncMaxLen(_) | DaemonAttr::McastPort(_) => 2,
            DaemonAttr::McastGroup6(_) => 16,
            DaemonAttr::McastTtl(_) => 1,
            DaemonAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DaemonAttr::State(_) => IPVS_DAEMON_ATTR_STATE,
            DaemonAttr::McastIfn(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            DaemonAttr::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            DaemonAttr::SyncMaxLen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            DaemonAttr::McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            DaemonAttr::McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            DaemonAttr::McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            DaemonAttr::McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            DaemonAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DaemonAttr::State(v) | DaemonAttr::SyncId(v) => emit_u32(buffer, *v).unwrap(),
            DaemonAttr::McastIfn(s) => emit_string(buffer, s),
            DaemonAttr::SyncMaxLen(v) => emit_u16(buffer, *v).unwrap(),
            // The kernel reads the port with nla_get_u16 (host order).
            DaemonAttr::McastPort(v) => emit_u16(buffer, *v).unwrap(),
            DaemonAttr::McastGroup(a) => buffer[..4].copy_from_slice(a),
            DaemonAttr::McastGroup6(a) => buffer[..16].copy_from_slice(a),
            DaemonAttr::McastTtl(v) => buffer[0] = *v,
            DaemonAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_DAEMON_ATTR_STATE => DaemonAttr::State(parse_u32(p).context("invalid STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                DaemonAttr::McastIfn(parse_string(p).context("invalid MCAST_IFN")?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => {
                DaemonAttr::SyncId(parse_u32(p).context("invalid SYNC_ID")?)
            }
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                DaemonAttr::SyncMaxLen(parse_u16(p).context("invalid SYNC_MAXLEN")?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => {
                if p.len() != 4 {
                    return Err(DecodeError::invalid_ip_address(p.len()));
                }
                DaemonAttr::McastGroup([p[0], p[1], p[2], p[3]])
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                if p.len() != 16 {
                    return Err(DecodeError::invalid_ip_address(p.len()));
                }
                DaemonAttr::McastGroup6(parse_addr(p)?)
            }
            IPVS_DAEMON_ATTR_MCAST_PORT => {
                DaemonAttr::McastPort(parse_u16(p).context("invalid MCAST_PORT")?)
            }
            IPVS_DAEMON_ATTR_MCAST_TTL => {
                DaemonAttr::McastTtl(parse_u8(p).context("invalid MCAST_TTL")?)
            }
            _ => DaemonAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// One counter of a STATS or STATS64 nested attribute.
///
/// Values are widened to `u64`; the enclosing attribute decides the width on
/// the wire (STATS64: all 8 bytes; STATS: 8 bytes for the byte counters,
/// 4 bytes for the rest). Parsing accepts either width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsAttr {
    Conns(u64),
    InPkts(u64),
    OutPkts(u64),
    InBytes(u64),
    OutBytes(u64),
    Cps(u64),
    InPps(u64),
    OutPps(u64),
    InBps(u64),
    OutBps(u64),
    Other(DefaultNla),
}

impl StatsAttr {
    fn kind_value(&self) -> Option<(u16, u64)> {
        Some(match self {
            StatsAttr::Conns(v) => (IPVS_STATS_ATTR_CONNS, *v),
            StatsAttr::InPkts(v) => (IPVS_STATS_ATTR_INPKTS, *v),
            StatsAttr::OutPkts(v) => (IPVS_STATS_ATTR_OUTPKTS, *v),
            StatsAttr::InBytes(v) => (IPVS_STATS_ATTR_INBYTES, *v),
            StatsAttr::OutBytes(v) => (IPVS_STATS_ATTR_OUTBYTES, *v),
            StatsAttr::Cps(v) => (IPVS_STATS_ATTR_CPS, *v),
            StatsAttr::InPps(v) => (IPVS_STATS_ATTR_INPPS, *v),
            StatsAttr::OutPps(v) => (IPVS_STATS_ATTR_OUTPPS, *v),
            StatsAttr::InBps(v) => (IPVS_STATS_ATTR_INBPS, *v),
            StatsAttr::OutBps(v) => (IPVS_STATS_ATTR_OUTBPS, *v),
            StatsAttr::Other(_) => return None,
        })
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        let v = match p.len() {
            4 => u64::from(parse_u32(p)?),
            8 => parse_u64(p)?,
            _ => return Ok(StatsAttr::Other(DefaultNla::parse(buf)?)),
        };
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => StatsAttr::Conns(v),
            IPVS_STATS_ATTR_INPKTS => StatsAttr::InPkts(v),
            IPVS_STATS_ATTR_OUTPKTS => StatsAttr::OutPkts(v),
            IPVS_STATS_ATTR_INBYTES => StatsAttr::InBytes(v),
            IPVS_STATS_ATTR_OUTBYTES => StatsAttr::OutBytes(v),
            IPVS_STATS_ATTR_CPS => StatsAttr::Cps(v),
            IPVS_STATS_ATTR_INPPS => StatsAttr::InPps(v),
            IPVS_STATS_ATTR_OUTPPS => StatsAttr::OutPps(v),
            IPVS_STATS_ATTR_INBPS => StatsAttr::InBps(v),
            IPVS_STATS_ATTR_OUTBPS => StatsAttr::OutBps(v),
            _ => StatsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// A statistics counter bound to its wire width, for emission.
struct StatsNla<'a> {
    attr: &'a StatsAttr,
    wide: bool,
}

impl StatsNla<'_> {
    fn width(&self) -> usize {
        match self.attr.kind_value() {
            Some((k, _))
                if self.wide || k == IPVS_STATS_ATTR_INBYTES || k == IPVS_STATS_ATTR_OUTBYTES =>
            {
                8
            }
            Some(_) => 4,
            None => 0,
        }
    }
}

impl Nla for StatsNla<'_> {
    fn value_len(&self) -> usize {
        match self.attr {
            StatsAttr::Other(n) => n.value_len(),
            _ => self.width(),
        }
    }
    fn kind(&self) -> u16 {
        match self.attr.kind_value() {
            Some((k, _)) => k,
            None => match self.attr {
                StatsAttr::Other(n) => n.kind(),
                _ => unreachable!(),
            },
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self.attr.kind_value() {
            Some((_, v)) if self.width() == 8 => emit_u64(buffer, v).unwrap(),
            Some((_, v)) => emit_u32(buffer, v as u32).unwrap(),
            None => {
                if let StatsAttr::Other(n) = self.attr {
                    n.emit_value(buffer)
                }
            }
        }
    }
}

fn stats_nlas(v: &[StatsAttr], wide: bool) -> Vec<StatsNla<'_>> {
    v.iter().map(|attr| StatsNla { attr, wide }).collect()
}

fn stats_len(v: &[StatsAttr], wide: bool) -> usize {
    stats_nlas(v, wide).as_slice().buffer_len()
}

fn emit_stats(buffer: &mut [u8], v: &[StatsAttr], wide: bool) {
    stats_nlas(v, wide).as_slice().emit(buffer)
}
