//! The kernel's "fou" generic-netlink family: FOU and GUE receive ports
//! (what `ip fou add port P gue` makes), in the types of [`crate::domain`].
//!
//! The codec follows `netlink_packet_generic::ctrl` (and lvs-ipvs's codec):
//! one payload type holding a command and its attributes, with an `Other`
//! variant so attributes of newer kernels (local and peer addresses, an
//! interface) survive decoding. The socket is netlink-sys's, blocking: a
//! run sends a handful of tiny requests.
//!
//! Resolving the family makes the kernel load the `fou` module if needed
//! (the generic-netlink controller asks for `net-pf-16-proto-16-family-fou`),
//! so changing needs no modprobe and no CAP_SYS_MODULE; observing resolves
//! it only when the module is loaded or absent (see `observe`), so reading
//! never loads a module.

use std::io;

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable,
    NetlinkMessage, NetlinkPayload, NetlinkSerializable, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized, emit_u16_be, parse_u8, parse_u16_be,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};

use crate::domain::{Family, FouEncap, FouListener, FouPort};

/// Name under which the kernel registers the family.
pub const FOU_GENL_NAME: &str = "fou";
const FOU_GENL_VERSION: u8 = 1;

const FOU_CMD_ADD: u8 = 1;
const FOU_CMD_DEL: u8 = 2;
const FOU_CMD_GET: u8 = 3;

const FOU_ATTR_PORT: u16 = 1; // be16
const FOU_ATTR_AF: u16 = 2; // u8
const FOU_ATTR_IPPROTO: u16 = 3; // u8
const FOU_ATTR_TYPE: u16 = 4; // u8

const FOU_ENCAP_DIRECT: u8 = 1;
const FOU_ENCAP_GUE: u8 = 2;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Commands of the family (`FOU_CMD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FouCmd {
    Add,
    Del,
    Get,
}

impl From<FouCmd> for u8 {
    fn from(cmd: FouCmd) -> u8 {
        match cmd {
            FouCmd::Add => FOU_CMD_ADD,
            FouCmd::Del => FOU_CMD_DEL,
            FouCmd::Get => FOU_CMD_GET,
        }
    }
}

impl TryFrom<u8> for FouCmd {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        match v {
            FOU_CMD_ADD => Ok(FouCmd::Add),
            FOU_CMD_DEL => Ok(FouCmd::Del),
            FOU_CMD_GET => Ok(FouCmd::Get),
            _ => Err(DecodeError::from(format!("unknown FOU command {v}"))),
        }
    }
}

/// Attributes of the family (`FOU_ATTR_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FouAttr {
    /// UDP port, big-endian on the wire.
    Port(u16),
    /// Address family of the socket: AF_INET or AF_INET6.
    Af(u8),
    /// Inner protocol of a direct (non-GUE) port.
    IpProto(u8),
    /// FOU_ENCAP_DIRECT or FOU_ENCAP_GUE.
    Type(u8),
    Other(DefaultNla),
}

impl Nla for FouAttr {
    fn value_len(&self) -> usize {
        match self {
            FouAttr::Port(_) => 2,
            FouAttr::Af(_) | FouAttr::IpProto(_) | FouAttr::Type(_) => 1,
            FouAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            FouAttr::Port(_) => FOU_ATTR_PORT,
            FouAttr::Af(_) => FOU_ATTR_AF,
            FouAttr::IpProto(_) => FOU_ATTR_IPPROTO,
            FouAttr::Type(_) => FOU_ATTR_TYPE,
            FouAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            FouAttr::Port(p) => emit_u16_be(buffer, *p).expect("2-byte buffer"),
            FouAttr::Af(v) | FouAttr::IpProto(v) | FouAttr::Type(v) => buffer[0] = *v,
            FouAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for FouAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            FOU_ATTR_PORT => FouAttr::Port(parse_u16_be(payload)?),
            FOU_ATTR_AF => FouAttr::Af(parse_u8(payload)?),
            FOU_ATTR_IPPROTO => FouAttr::IpProto(parse_u8(payload)?),
            FOU_ATTR_TYPE => FouAttr::Type(parse_u8(payload)?),
            _ => FouAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// One message of the family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FouMessage {
    pub cmd: FouCmd,
    pub attrs: Vec<FouAttr>,
}

impl GenlFamily for FouMessage {
    fn family_name() -> &'static str {
        FOU_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        FOU_GENL_VERSION
    }
}

impl Emitable for FouMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for FouMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| FouAttr::parse(&nla)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FouMessage {
            cmd: FouCmd::try_from(header.cmd)?,
            attrs,
        })
    }
}

impl FouMessage {
    /// The request that adds a GUE port.
    pub fn add(port: FouPort) -> FouMessage {
        FouMessage {
            cmd: FouCmd::Add,
            attrs: vec![
                FouAttr::Port(port.port),
                FouAttr::Af(af(port.family)),
                FouAttr::Type(FOU_ENCAP_GUE),
            ],
        }
    }

    /// The request that removes a port (identified by port and family).
    pub fn del(port: FouPort) -> FouMessage {
        FouMessage {
            cmd: FouCmd::Del,
            attrs: vec![FouAttr::Port(port.port), FouAttr::Af(af(port.family))],
        }
    }

    /// A listener of a dump; None when the message lacks the port.
    pub fn listener(&self) -> Option<FouListener> {
        let mut port = None;
        let mut family = Family::Ipv4;
        let mut encap = None;
        let mut ipproto = 0;
        for attr in &self.attrs {
            match attr {
                FouAttr::Port(p) => port = Some(*p),
                FouAttr::Af(AF_INET6) => family = Family::Ipv6,
                FouAttr::Af(_) => family = Family::Ipv4,
                FouAttr::IpProto(p) => ipproto = *p,
                FouAttr::Type(t) => encap = Some(*t),
                FouAttr::Other(_) => {}
            }
        }
        let encap = match encap.unwrap_or(FOU_ENCAP_DIRECT) {
            FOU_ENCAP_GUE => FouEncap::Gue,
            FOU_ENCAP_DIRECT => FouEncap::Direct { ipproto },
            other => FouEncap::Other(other),
        };
        Some(FouListener {
            port: port?,
            family,
            encap,
        })
    }
}

fn af(family: Family) -> u8 {
    match family {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    }
}

/// A generic-netlink socket in the calling thread's network namespace, with
/// the "fou" family resolved.
pub struct Fou {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl Fou {
    /// Opens the socket and resolves the family; `Ok(None)` when the kernel
    /// has no such family (no FOU support, or a module that failed to load).
    pub fn open() -> io::Result<Option<Fou>> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let mut fou = Fou {
            socket,
            family: 0,
            seq: 0,
        };
        let request = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(FOU_GENL_NAME.to_string())],
        });
        let replies = match fou.request(request, NLM_F_REQUEST | NLM_F_ACK) {
            Ok(replies) => replies,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = replies
            .iter()
            .flat_map(|m: &GenlMessage<GenlCtrl>| &m.payload.nlas)
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| io::Error::other("the kernel named no id for the fou family"))?;
        fou.family = id;
        Ok(Some(fou))
    }

    /// Every FOU listener of this namespace.
    pub fn listeners(&mut self) -> io::Result<Vec<FouListener>> {
        let request = self.message(FouMessage {
            cmd: FouCmd::Get,
            attrs: Vec::new(),
        });
        let replies: Vec<GenlMessage<FouMessage>> =
            self.request(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        Ok(replies
            .iter()
            .filter_map(|m| m.payload.listener())
            .collect())
    }

    /// Adds a GUE receive port.
    pub fn add(&mut self, port: FouPort) -> io::Result<()> {
        let request = self.message(FouMessage::add(port));
        self.request::<GenlMessage<FouMessage>, _>(request, NLM_F_REQUEST | NLM_F_ACK)
            .map(drop)
    }

    /// Removes a port; one already gone counts as removed.
    pub fn remove(&mut self, port: FouPort) -> io::Result<()> {
        let request = self.message(FouMessage::del(port));
        match self.request::<GenlMessage<FouMessage>, _>(request, NLM_F_REQUEST | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other.map(drop),
        }
    }

    fn message(&self, payload: FouMessage) -> GenlMessage<FouMessage> {
        let mut message = GenlMessage::from_payload(payload);
        message.set_resolved_family_id(self.family);
        message
    }

    /// Sends one request and collects the replies of type `R` until the
    /// acknowledgement or the end of the dump; the kernel's error as an
    /// io::Error.
    fn request<R, S>(&mut self, payload: S, flags: u16) -> io::Result<Vec<R>>
    where
        R: NetlinkDeserializable + std::fmt::Debug,
        S: NetlinkSerializable + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut message = NetlinkMessage::new(
            netlink_packet_core::NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(payload),
        );
        message.header.flags = flags;
        message.header.sequence_number = seq;
        message.finalize();
        let mut buf = vec![0; message.buffer_len()];
        message.serialize(&mut buf);
        self.socket.send(&buf, 0)?;

        let mut replies = Vec::new();
        // Bounded: a dump of FOU ports is a few datagrams; the kernel ends
        // every request with an ack, an error or NLMSG_DONE.
        for _ in 0..10_000 {
            let (data, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset + 16 <= data.len() {
                let len = u32::from_ne_bytes(data[offset..offset + 4].try_into().unwrap_or([0; 4]))
                    as usize;
                if len < 16 || offset + len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed netlink message",
                    ));
                }
                let bytes = &data[offset..offset + len];
                offset += (len + 3) & !3;
                let reply = NetlinkMessage::<R>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            None => Ok(replies),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
        Err(io::Error::other("no end to the netlink reply"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: FouMessage) -> FouMessage {
        let mut genl = GenlMessage::from_payload(message);
        genl.set_resolved_family_id(30);
        let mut nl = NetlinkMessage::from(genl);
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        match NetlinkMessage::<GenlMessage<FouMessage>>::deserialize(&buf)
            .unwrap()
            .payload
        {
            NetlinkPayload::InnerMessage(m) => m.payload,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_request_bytes() {
        let port = FouPort {
            port: 6080,
            family: Family::Ipv4,
        };
        let mut genl = GenlMessage::from_payload(FouMessage::add(port));
        genl.set_resolved_family_id(30);
        let mut buf = vec![0; Emitable::buffer_len(&genl)];
        genl.emit(&mut buf);
        // genl header: cmd 1 (ADD), version 1; then PORT (be16 6080 =
        // 0x17c0), AF (2 = AF_INET), TYPE (2 = GUE), each padded to 8 bytes.
        assert_eq!(
            buf,
            [
                1, 1, 0, 0, //
                6, 0, 1, 0, 0x17, 0xc0, 0, 0, //
                5, 0, 2, 0, 2, 0, 0, 0, //
                5, 0, 4, 0, 2, 0, 0, 0,
            ]
        );
        assert_eq!(round_trip(FouMessage::add(port)), FouMessage::add(port));
    }

    #[test]
    fn listeners_decode_gue_direct_and_unknown_attributes() {
        let gue = FouMessage {
            cmd: FouCmd::Get,
            attrs: vec![
                FouAttr::Port(6080),
                FouAttr::Af(AF_INET6),
                FouAttr::Type(FOU_ENCAP_GUE),
                FouAttr::Other(DefaultNla::new(6, vec![198, 51, 100, 2])),
            ],
        };
        let back = round_trip(gue);
        assert_eq!(
            back.listener(),
            Some(FouListener {
                port: 6080,
                family: Family::Ipv6,
                encap: FouEncap::Gue
            })
        );
        let direct = FouMessage {
            cmd: FouCmd::Get,
            attrs: vec![
                FouAttr::Port(5555),
                FouAttr::Af(AF_INET),
                FouAttr::IpProto(4),
                FouAttr::Type(FOU_ENCAP_DIRECT),
            ],
        };
        assert_eq!(
            round_trip(direct).listener().unwrap().encap,
            FouEncap::Direct { ipproto: 4 }
        );
        let del = FouMessage::del(FouPort {
            port: 1,
            family: Family::Ipv4,
        });
        assert_eq!(round_trip(del.clone()), del);
    }
}
