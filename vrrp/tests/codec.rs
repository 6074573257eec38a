//! The golden packets of `tests/golden/` (hand-built from the RFC layouts
//! and captured from keepalived, see its README.md): each decodes to what it
//! says and re-encodes to the same bytes. Then the never-panic property:
//! every truncation and bounded random corruption of each golden packet,
//! and random messages, decode to a value or an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use lvs_vrrp::packet::{Addresses, Advert, Auth, Expect, IpHeader, PROTOCOL, Version, decode};

/// A golden file: one IP packet (header and VRRP message) in hex a line.
fn packets(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/golden/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| hex(l.trim()))
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits an IP packet into the receiver's header facts and the VRRP
/// message (no IPv6 extension headers in the fixtures).
fn split(packet: &[u8]) -> (IpHeader, &[u8]) {
    match packet[0] >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            assert_eq!(packet[9], PROTOCOL);
            assert_eq!(total, packet.len());
            let source = Ipv4Addr::from(<[u8; 4]>::try_from(&packet[12..16]).unwrap());
            let destination = Ipv4Addr::from(<[u8; 4]>::try_from(&packet[16..20]).unwrap());
            let ip = IpHeader {
                source: source.into(),
                destination: destination.into(),
                ttl: packet[8],
            };
            (ip, &packet[ihl..])
        }
        6 => {
            let payload = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            assert_eq!(packet[6], PROTOCOL);
            assert_eq!(40 + payload, packet.len());
            let source = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[8..24]).unwrap());
            let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[24..40]).unwrap());
            let ip = IpHeader {
                source: source.into(),
                destination: destination.into(),
                ttl: packet[7],
            };
            (ip, &packet[40..])
        }
        v => panic!("IP version {v}"),
    }
}

fn v4(list: &[&str]) -> Addresses {
    Addresses::V4(list.iter().map(|a| a.parse().unwrap()).collect())
}

fn v6(list: &[&str]) -> Addresses {
    Addresses::V6(list.iter().map(|a| a.parse().unwrap()).collect())
}

/// Each golden file, what its receiver is configured for, and the
/// advertisement of its first packet.
fn goldens() -> Vec<(&'static str, Expect, Advert)> {
    let none = |version| Expect {
        version,
        auth: Auth::None,
    };
    let pass = |p: &[u8]| Expect {
        version: Version::V2,
        auth: Auth::simple(p).unwrap(),
    };
    vec![
        (
            "hand-v2-none-ipv4",
            none(Version::V2),
            Advert {
                version: Version::V2,
                vrid: 1,
                priority: 100,
                interval: 1,
                auth: Auth::None,
                addresses: v4(&["198.51.100.10"]),
            },
        ),
        (
            "hand-v2-pass-leaving-ipv4",
            pass(b"abc"),
            Advert {
                version: Version::V2,
                vrid: 42,
                priority: 0,
                interval: 3,
                auth: Auth::simple(b"abc").unwrap(),
                addresses: v4(&["198.51.100.11", "198.51.100.12", "198.51.100.13"]),
            },
        ),
        (
            "hand-v3-owner-ipv4",
            none(Version::V3),
            Advert {
                version: Version::V3,
                vrid: 7,
                priority: 255,
                interval: 100,
                auth: Auth::None,
                addresses: v4(&["198.51.100.20", "198.51.100.21"]),
            },
        ),
        (
            "hand-v3-ipv6",
            none(Version::V3),
            Advert {
                version: Version::V3,
                vrid: 9,
                priority: 1,
                interval: 4095,
                auth: Auth::None,
                addresses: v6(&["2001:db8::9"]),
            },
        ),
        (
            "keepalived-v2-pass-ipv4",
            pass(b"secret12"),
            Advert {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                interval: 1,
                auth: Auth::simple(b"secret12").unwrap(),
                addresses: v4(&["198.51.100.100", "198.51.100.101"]),
            },
        ),
        (
            "keepalived-v3-ipv4",
            none(Version::V3),
            Advert {
                version: Version::V3,
                vrid: 52,
                priority: 200,
                interval: 100,
                auth: Auth::None,
                addresses: v4(&["198.51.100.102"]),
            },
        ),
        (
            "keepalived-v3-ipv6",
            none(Version::V3),
            Advert {
                version: Version::V3,
                vrid: 53,
                priority: 100,
                interval: 100,
                auth: Auth::None,
                addresses: v6(&["2001:db8::100", "2001:db8::101"]),
            },
        ),
    ]
}

#[test]
fn golden_packets_decode_to_what_they_say_and_re_encode_to_the_same_bytes() {
    for (name, expect, first) in goldens() {
        let all = packets(name);
        assert!(!all.is_empty(), "{name}");
        for (i, packet) in all.iter().enumerate() {
            let (ip, message) = split(packet);
            let advert =
                decode(message, &ip, &expect).unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            if i == 0 {
                assert_eq!(advert, first, "{name}");
            } else {
                // Later packets differ from the first at most by priority.
                assert_eq!(
                    Advert {
                        priority: first.priority,
                        ..advert.clone()
                    },
                    first,
                    "{name} #{i}"
                );
            }
            let again = advert.encode(ip.source, ip.destination).unwrap();
            assert_eq!(again, message, "{name} #{i}: re-encoded");
        }
    }
}

#[test]
fn keepalived_sends_priority_0_when_it_stops() {
    for (name, expect, _) in goldens()
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("keepalived"))
    {
        let last = packets(name).pop().unwrap();
        let (ip, message) = split(&last);
        assert_eq!(decode(message, &ip, &expect).unwrap().priority, 0, "{name}");
        assert_eq!(ip.ttl, 255);
    }
}

#[test]
fn the_v3_ipv6_golden_comes_from_a_link_local_source_to_ff02_12() {
    let (ip, _) = split(&packets("keepalived-v3-ipv6")[0]);
    assert_eq!(ip.source, "fe80::ff:fe00:1".parse::<IpAddr>().unwrap());
    assert_eq!(ip.destination, IpAddr::V6(lvs_vrrp::packet::IPV6_GROUP));
}

/// xorshift64*: deterministic, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn no_input_panics_the_decoder() {
    let started = Instant::now();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Ok or Err, either is fine: the property is that nothing panics.
    let try_one = |message: &[u8], ip: &IpHeader, expect: &Expect| {
        let _ = decode(message, ip, expect);
    };
    for (name, expect, _) in goldens() {
        let expects = [
            expect.clone(),
            Expect {
                version: Version::V2,
                auth: Auth::None,
            },
        ];
        for packet in packets(name) {
            let (ip, message) = split(&packet);
            // Every truncation: all are errors, none panics.
            for len in 0..message.len() {
                assert!(
                    decode(&message[..len], &ip, &expect).is_err(),
                    "{name}: {len} bytes decoded"
                );
            }
            // Bounded random corruption: flipped bytes, extended messages,
            // other TTLs and addresses.
            for _ in 0..2_000 {
                let mut bytes = message.to_vec();
                for _ in 0..=rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                if rng.below(8) == 0 {
                    bytes.extend((0..rng.below(40)).map(|_| rng.next() as u8));
                }
                let mut header = ip;
                if rng.below(16) == 0 {
                    header.ttl = rng.next() as u8;
                }
                if rng.below(16) == 0 {
                    header.destination = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
                }
                try_one(&bytes, &header, &expects[rng.below(2)]);
            }
        }
    }
    // Random messages of random lengths, both families.
    let headers = [
        IpHeader {
            source: "198.51.100.1".parse().unwrap(),
            destination: "224.0.0.18".parse().unwrap(),
            ttl: 255,
        },
        IpHeader {
            source: "fe80::1".parse().unwrap(),
            destination: "ff02::12".parse().unwrap(),
            ttl: 255,
        },
    ];
    for _ in 0..20_000 {
        let len = rng.below(96);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len > 0 && rng.below(2) == 0 {
            // Plausible first bytes, to get past the early checks.
            bytes[0] = if rng.below(2) == 0 { 0x21 } else { 0x31 };
        }
        let version = if rng.below(2) == 0 {
            Version::V2
        } else {
            Version::V3
        };
        try_one(
            &bytes,
            &headers[rng.below(2)],
            &Expect {
                version,
                auth: Auth::None,
            },
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_corrupted_golden_never_decodes_to_a_different_advert_silently() {
    // A single flipped bit anywhere in a v3 message is caught (by the
    // checksum or an earlier check; the reserved bits, which the decoder
    // ignores, by the checksum): one's-complement sums catch every 1-bit
    // error.
    for name in ["keepalived-v3-ipv4", "keepalived-v3-ipv6"] {
        let packet = &packets(name)[0];
        let (ip, message) = split(packet);
        let expect = Expect {
            version: Version::V3,
            auth: Auth::None,
        };
        for bit in 0..message.len() * 8 {
            let mut bytes = message.to_vec();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let r = decode(&bytes, &ip, &expect);
            assert!(r.is_err(), "{name} bit {bit}: {r:?}");
        }
    }
}
