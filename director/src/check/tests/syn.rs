//! The half-open check's packets: the SYN against one built by hand (and
//! its checksum computed independently), the parsing of replies, and the
//! BPF programs run by a small interpreter of the instructions they use.

use std::net::Ipv4Addr;

use crate::check::syn::{
    ABS, Answer, B, H, HEADER_LEN, IND, Insn, JEQ, JMP, JSET, LD, LDX, MSH, RET, SNAP_LEN,
    checksum_v4, filter_v4, filter_v6, ipv4_payload, parse_reply, syn,
};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

#[test]
fn syn_matches_a_packet_built_by_hand() {
    // 40000 -> 80, ISN 0x01020304, data offset 5, SYN, window 64240; the
    // checksum (0xbff0) computed separately with Python's struct module.
    let want: [u8; HEADER_LEN] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa,
        0xf0, 0xbf, 0xf0, 0x00, 0x00,
    ];
    assert_eq!(syn(40000, 80, 0x0102_0304, Some((SRC, DST))), want);
    // A correct checksum makes the sum over the finished segment zero.
    assert_eq!(checksum_v4(SRC, DST, &want), 0);
    // Another source address would not (a stale cached source fails).
    assert_ne!(checksum_v4(Ipv4Addr::new(198, 51, 100, 3), DST, &want), 0);
}

#[test]
fn ipv6_syn_leaves_the_checksum_to_the_kernel() {
    let h = syn(40000, 443, 7, None);
    assert_eq!(&h[16..18], &[0, 0]);
    assert_eq!(&h[2..4], &443u16.to_be_bytes());
    assert_eq!(h[13], 0x02);
}

/// A reply segment from port 80 to `dst_port` with `flags` and `ack`.
fn segment(dst_port: u16, flags: u8, ack: u32) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0..2].copy_from_slice(&80u16.to_be_bytes());
    s[2..4].copy_from_slice(&dst_port.to_be_bytes());
    s[8..12].copy_from_slice(&ack.to_be_bytes());
    s[12] = 0x50;
    s[13] = flags;
    s
}

/// An IPv4 packet (protocol TCP) around `payload`, with `options` words
/// of IP options.
fn ipv4(payload: &[u8], options: usize) -> Vec<u8> {
    let mut p = vec![0u8; 20 + options * 4];
    p[0] = 0x40 | (5 + options as u8);
    p[9] = 6;
    p.extend_from_slice(payload);
    p
}

#[test]
fn replies_are_parsed() {
    let r = parse_reply(&segment(5000, 0x12, 43), 5000).unwrap();
    assert_eq!((r.port, r.ack, r.answer), (80, 43, Answer::Open));
    let r = parse_reply(&segment(5000, 0x14, 43), 5000).unwrap();
    assert_eq!(r.answer, Answer::Refused);
    // Wrong port, truncated, our own SYN, a bare ACK, a RST without ACK,
    // a SYN-ACK-FIN: ignored.
    assert_eq!(parse_reply(&segment(5001, 0x12, 43), 5000), None);
    assert_eq!(parse_reply(&segment(5000, 0x12, 43)[..19], 5000), None);
    assert_eq!(parse_reply(&segment(5000, 0x02, 0), 5000), None);
    assert_eq!(parse_reply(&segment(5000, 0x10, 43), 5000), None);
    assert_eq!(parse_reply(&segment(5000, 0x04, 0), 5000), None);
    assert_eq!(parse_reply(&segment(5000, 0x13, 43), 5000), None);
}

#[test]
fn ipv4_packets_are_unwrapped_or_ignored() {
    let seg = segment(5000, 0x12, 1);
    assert_eq!(ipv4_payload(&ipv4(&seg, 0)), Some(&seg[..]));
    assert_eq!(ipv4_payload(&ipv4(&seg, 2)), Some(&seg[..]));
    let mut udp = ipv4(&seg, 0);
    udp[9] = 17;
    assert_eq!(ipv4_payload(&udp), None);
    let mut fragment = ipv4(&seg, 0);
    fragment[7] = 1;
    assert_eq!(ipv4_payload(&fragment), None);
    let mut short_ihl = ipv4(&seg, 0);
    short_ihl[0] = 0x44;
    assert_eq!(ipv4_payload(&short_ihl), None);
    let mut v6 = ipv4(&seg, 0);
    v6[0] = 0x65;
    assert_eq!(ipv4_payload(&v6), None);
    // Every truncation and a run of junk: no panic, nothing taken for a
    // reply that is not whole.
    let whole = ipv4(&seg, 1);
    for n in 0..whole.len() {
        let got = ipv4_payload(&whole[..n]).and_then(|s| parse_reply(s, 5000));
        assert_eq!(got, None, "{n} bytes");
    }
    let mut x: u32 = 1;
    for _ in 0..2000 {
        let junk: Vec<u8> = (0..(x % 90) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = ipv4_payload(&junk).and_then(|s| parse_reply(s, 5000));
    }
}

/// Runs a classic BPF program over `packet` as the kernel does for the
/// instructions our filters use (an out-of-bounds load rejects).
fn run(program: &[Insn], packet: &[u8]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let half = |at: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes([
            *packet.get(at)?,
            *packet.get(at + 1)?,
        ])))
    };
    for _ in 0..64 {
        let i = program[pc];
        pc += 1;
        match i.code {
            c if c == LD | H | ABS => match half(i.k as usize) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | H | IND => match half((x + i.k) as usize) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LDX | B | MSH => match packet.get(i.k as usize) {
                Some(b) => x = u32::from(b & 0xf) * 4,
                None => return 0,
            },
            c if c == JMP | JEQ || c == JMP | JSET => {
                let taken = if c == JMP | JEQ {
                    a == i.k
                } else {
                    a & i.k != 0
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c if c == RET => return i.k,
            other => panic!("instruction {other:#x} not expected"),
        }
    }
    panic!("program ran too long");
}

#[test]
fn bpf_programs_pass_only_replies_to_our_port() {
    let v4 = filter_v4(5000);
    for (p, at) in v4.iter().zip(0..) {
        // Jumps land inside the program, which ends in returns.
        if p.code & 0x07 == JMP {
            assert!(at + 1 + usize::from(p.jt.max(p.jf)) < v4.len());
        }
    }
    assert_eq!(
        v4[v4.len() - 1],
        Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k: 0
        }
    );
    let seg = segment(5000, 0x12, 1);
    assert_eq!(run(&v4, &ipv4(&seg, 0)), SNAP_LEN);
    assert_eq!(run(&v4, &ipv4(&seg, 3)), SNAP_LEN);
    assert_eq!(run(&v4, &ipv4(&segment(5001, 0x12, 1), 0)), 0);
    let mut fragment = ipv4(&seg, 0);
    fragment[6] = 0x01;
    assert_eq!(run(&v4, &fragment), 0);
    // "More fragments" alone is a first fragment: it has the header.
    let mut first = ipv4(&seg, 0);
    first[6] = 0x20;
    assert_eq!(run(&v4, &first), SNAP_LEN);
    assert_eq!(run(&v4, &ipv4(&seg, 0)[..22]), 0);

    let v6 = filter_v6(5000);
    assert_eq!(run(&v6, &seg), SNAP_LEN);
    assert_eq!(run(&v6, &segment(4999, 0x12, 1)), 0);
    assert_eq!(run(&v6, &seg[..3]), 0);
    // The whole reply we parse fits in what the filter passes.
    assert!(SNAP_LEN as usize >= 60 + HEADER_LEN);
}
