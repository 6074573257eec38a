//! The bytes of a half-open check: the SYN we send, the replies we accept,
//! and the classic BPF programs that let only those replies reach us. Pure
//! functions, tested against packets built by hand.

use std::net::Ipv4Addr;

/// Our SYN: a bare 20-byte TCP header, no options (the server then assumes
/// the 536-byte default MSS, which does not matter: nothing is ever sent).
pub const HEADER_LEN: usize = 20;
/// The window we advertise; any plausible value will do, as no data flows.
const WINDOW: u16 = 64240;
/// TCP flags (byte 13 of the header).
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// Bytes of a reply the filter passes to us: the longest IPv4 header (60)
/// and the fixed TCP header fit; options and data never matter.
pub const SNAP_LEN: u32 = 96;

/// What a server's answer to our SYN says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// SYN-ACK: something listens on the port.
    Open,
    /// RST-ACK: nothing listens (the connect check's "connection refused").
    Refused,
}

/// A reply to one of our SYNs, as parsed from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The server's port (the source port of the reply).
    pub port: u16,
    /// The acknowledgment number: our ISN + 1 when it answers our SYN.
    pub ack: u32,
    pub answer: Answer,
}

/// The SYN from `src_port` to `dst_port` with sequence number `isn`. For
/// IPv4 `addrs` (source, destination) gives the pseudo-header of the
/// checksum; for IPv6 it is `None` and the kernel fills the checksum in
/// (IPV6_CHECKSUM), as it knows the source address it picks.
pub fn syn(
    src_port: u16,
    dst_port: u16,
    isn: u32,
    addrs: Option<(Ipv4Addr, Ipv4Addr)>,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..8].copy_from_slice(&isn.to_be_bytes());
    // Data offset: 5 words, no options.
    h[12] = 5 << 4;
    h[13] = SYN;
    h[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    if let Some((src, dst)) = addrs {
        let sum = checksum_v4(src, dst, &h);
        h[16..18].copy_from_slice(&sum.to_be_bytes());
    }
    h
}

/// The TCP checksum of `segment` (its checksum field zero) between `src`
/// and `dst`: the ones' complement of the ones' complement sum of the
/// IPv4 pseudo-header and the segment (RFC 793, RFC 1071).
pub fn checksum_v4(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&[0, libc::IPPROTO_TCP as u8]);
    // Segments are a few dozen bytes: the length fits 16 bits.
    add(&(segment.len() as u16).to_be_bytes());
    add(segment);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The TCP segment inside an IPv4 packet as a raw socket hands it over
/// (the IP header first), or `None` for anything malformed, not TCP or a
/// non-first fragment.
pub fn ipv4_payload(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.len() < ihl {
        return None;
    }
    let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    if packet[9] != libc::IPPROTO_TCP as u8 || fragment_offset != 0 {
        return None;
    }
    Some(&packet[ihl..])
}

/// The reply in `segment` if it is one to a SYN of ours sent from
/// `local_port`: a SYN-ACK or a RST-ACK to that port. Anything else
/// (truncated, another port, a bare ACK, a stray FIN) is `None`: a hostile
/// or confused peer can make us ignore a packet, never panic.
pub fn parse_reply(segment: &[u8], local_port: u16) -> Option<Reply> {
    if segment.len() < HEADER_LEN {
        return None;
    }
    let port = u16::from_be_bytes([segment[0], segment[1]]);
    let dst = u16::from_be_bytes([segment[2], segment[3]]);
    if dst != local_port {
        return None;
    }
    let ack = u32::from_be_bytes([segment[8], segment[9], segment[10], segment[11]]);
    let flags = segment[13];
    // Both answers acknowledge our SYN; without ACK a segment answers
    // nothing of ours (RFC 793: a RST to a SYN carries ACK = ISN + 1).
    if flags & ACK == 0 {
        return None;
    }
    let answer = if flags & RST != 0 {
        Answer::Refused
    } else if flags & SYN != 0 && flags & FIN == 0 {
        Answer::Open
    } else {
        return None;
    };
    Some(Reply { port, ack, answer })
}

/// Whether `reply` answers the SYN sent with `isn`: its acknowledgment is
/// exactly that ISN + 1 (RFC 793, for a SYN-ACK and a RST-ACK alike). All
/// probes share a source port, so nothing else tells a reply to this
/// probe from a forged one or one to another probe of the same server.
pub fn acknowledges(reply: &Reply, isn: u32) -> bool {
    reply.ack == isn.wrapping_add(1)
}

/// One classic BPF instruction (`struct sock_filter`), kept as plain
/// fields so that tests can run the programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
}

// Classic BPF opcodes (linux/filter.h).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MSH: u16 = 0xa0;
pub const JEQ: u16 = 0x10;
pub const JSET: u16 = 0x40;

/// The filter of the IPv4 raw socket, which sees every TCP packet the host
/// receives: pass (the first [`SNAP_LEN`] bytes of) first fragments whose
/// TCP destination port is `port`, drop everything else in the kernel, so
/// that a busy host does not wake the checker for other traffic.
pub fn filter_v4(port: u16) -> [Insn; 7] {
    [
        // Flags and fragment offset: skip non-first fragments (no TCP
        // header at the offset below).
        Insn::new(LD | H | ABS, 0, 0, 6),
        Insn::new(JMP | JSET, 4, 0, 0x1fff),
        // X = the IP header's length.
        Insn::new(LDX | B | MSH, 0, 0, 0),
        // The TCP destination port.
        Insn::new(LD | H | IND, 0, 0, 2),
        Insn::new(JMP | JEQ, 0, 1, u32::from(port)),
        Insn::new(RET, 0, 0, SNAP_LEN),
        Insn::new(RET, 0, 0, 0),
    ]
}

/// The filter of the IPv6 raw socket, whose packets start at the TCP
/// header: pass those to `port`.
pub fn filter_v6(port: u16) -> [Insn; 4] {
    [
        Insn::new(LD | H | ABS, 0, 0, 2),
        Insn::new(JMP | JEQ, 0, 1, u32::from(port)),
        Insn::new(RET, 0, 0, SNAP_LEN),
        Insn::new(RET, 0, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN-ACK from port 80 to `local` acknowledging `ack`.
    fn syn_ack(local: u16, ack: u32) -> [u8; HEADER_LEN] {
        let mut s = [0u8; HEADER_LEN];
        s[0..2].copy_from_slice(&80u16.to_be_bytes());
        s[2..4].copy_from_slice(&local.to_be_bytes());
        s[8..12].copy_from_slice(&ack.to_be_bytes());
        s[12] = 5 << 4;
        s[13] = SYN | ACK;
        s
    }

    #[test]
    fn only_a_reply_acknowledging_exactly_isn_plus_one_answers_the_probe() {
        for isn in [0x1234_5678_u32, 0, u32::MAX] {
            let exact = parse_reply(&syn_ack(40000, isn.wrapping_add(1)), 40000).unwrap();
            assert_eq!(exact.answer, Answer::Open);
            assert!(acknowledges(&exact, isn));
            // Off by one either way (a guess next to a seen ISN, the ISN
            // itself), or another probe's: ignored.
            for wrong in [isn, isn.wrapping_add(2), isn.wrapping_add(0x1_0000)] {
                let reply = parse_reply(&syn_ack(40000, wrong), 40000).unwrap();
                assert!(!acknowledges(&reply, isn), "isn {isn:#x}, ack {wrong:#x}");
            }
        }
        let mut rst = syn_ack(40000, 8);
        rst[13] = RST | ACK;
        let rst = parse_reply(&rst, 40000).unwrap();
        assert_eq!(rst.answer, Answer::Refused);
        assert!(acknowledges(&rst, 7) && !acknowledges(&rst, 8));
    }
}
