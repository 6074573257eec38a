//! Each drop reason, and encode's refusals. The golden packets and the
//! never-panic property are in `tests/codec.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const DST4: IpAddr = IpAddr::V4(IPV4_GROUP);
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
const DST6: IpAddr = IpAddr::V6(IPV6_GROUP);

fn ip4() -> IpHeader {
    IpHeader {
        source: SRC4,
        destination: DST4,
        ttl: 255,
    }
}

fn v2(auth: Auth) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 150,
        interval: 1,
        auth,
        addresses: Addresses::V4(vec![Ipv4Addr::new(198, 51, 100, 100)]),
    }
}

fn v3(addresses: Addresses) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 52,
        priority: 100,
        interval: 100,
        auth: Auth::None,
        addresses,
    }
}

fn expect(version: Version, auth: Auth) -> Expect {
    Expect { version, auth }
}

/// Rewrites the checksum after a field was changed by hand.
fn fix_checksum(version: Version, source: IpAddr, destination: IpAddr, message: &mut [u8]) {
    message[6..8].fill(0);
    let sum = checksum::compute(version, source, destination, message);
    message[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn round_trips_each_version_family_and_auth() {
    let pass = Auth::simple(b"secret").unwrap();
    for (advert, ip, auth) in [
        (v2(Auth::None), ip4(), Auth::None),
        (v2(pass.clone()), ip4(), pass),
        (
            v3(Addresses::V4(vec![Ipv4Addr::new(198, 51, 100, 7)])),
            ip4(),
            Auth::None,
        ),
        (
            v3(Addresses::V6(vec![
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ])),
            IpHeader {
                source: SRC6,
                destination: DST6,
                ttl: 255,
            },
            Auth::None,
        ),
    ] {
        let bytes = advert.encode(ip.source, ip.destination).unwrap();
        assert_eq!(
            decode(&bytes, &ip, &expect(advert.version, auth)).unwrap(),
            advert
        );
    }
}

#[test]
fn drops_a_ttl_other_than_255() {
    let bytes = v2(Auth::None).encode(SRC4, DST4).unwrap();
    let ip = IpHeader { ttl: 254, ..ip4() };
    assert_eq!(
        decode(&bytes, &ip, &expect(Version::V2, Auth::None)),
        Err(DecodeError::Ttl(254))
    );
}

#[test]
fn drops_the_other_version_and_unknown_ones() {
    let bytes = v2(Auth::None).encode(SRC4, DST4).unwrap();
    assert_eq!(
        decode(&bytes, &ip4(), &expect(Version::V3, Auth::None)),
        Err(DecodeError::VersionMismatch { got: 2, want: 3 })
    );
    let mut bad = bytes.clone();
    bad[0] = 0x41;
    assert_eq!(
        decode(&bad, &ip4(), &expect(Version::V2, Auth::None)),
        Err(DecodeError::UnknownVersion(4))
    );
}

#[test]
fn drops_a_type_other_than_advertisement() {
    let mut bytes = v2(Auth::None).encode(SRC4, DST4).unwrap();
    bytes[0] = 0x22;
    fix_checksum(Version::V2, SRC4, DST4, &mut bytes);
    assert_eq!(
        decode(&bytes, &ip4(), &expect(Version::V2, Auth::None)),
        Err(DecodeError::Type(2))
    );
}

#[test]
fn drops_short_and_miscounted_messages() {
    let bytes = v2(Auth::None).encode(SRC4, DST4).unwrap();
    let e = expect(Version::V2, Auth::None);
    assert_eq!(
        decode(&bytes[..7], &ip4(), &e),
        Err(DecodeError::Truncated { len: 7 })
    );
    assert_eq!(
        decode(&bytes[..19], &ip4(), &e),
        Err(DecodeError::Length {
            len: 19,
            count: 1,
            expected: 20
        })
    );
    let mut two = bytes.clone();
    two[3] = 2;
    assert_eq!(
        decode(&two, &ip4(), &e),
        Err(DecodeError::Length {
            len: 20,
            count: 2,
            expected: 24
        })
    );
    let mut none = bytes;
    none[3] = 0;
    assert_eq!(decode(&none, &ip4(), &e), Err(DecodeError::NoAddresses));
}

#[test]
fn drops_a_bad_checksum_and_says_what_was_expected() {
    let good = v3(Addresses::V4(vec![Ipv4Addr::new(198, 51, 100, 7)]))
        .encode(SRC4, DST4)
        .unwrap();
    let mut bad = good.clone();
    bad[7] ^= 1;
    let e = expect(Version::V3, Auth::None);
    assert_eq!(
        decode(&bad, &ip4(), &e),
        Err(DecodeError::Checksum {
            got: u16::from_be_bytes([bad[6], bad[7]]),
            expected: u16::from_be_bytes([good[6], good[7]])
        })
    );
    // v3 covers the pseudo-header: another source fails the checksum.
    let other = IpHeader {
        source: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        ..ip4()
    };
    assert!(matches!(
        decode(&good, &other, &e),
        Err(DecodeError::Checksum { .. })
    ));
}

#[test]
fn drops_a_zero_interval() {
    let e = expect(Version::V3, Auth::None);
    let mut bytes = v3(Addresses::V4(vec![Ipv4Addr::new(198, 51, 100, 7)]))
        .encode(SRC4, DST4)
        .unwrap();
    // The reserved bits are not part of the interval.
    bytes[4] = 0xf0;
    bytes[5] = 0;
    fix_checksum(Version::V3, SRC4, DST4, &mut bytes);
    assert_eq!(decode(&bytes, &ip4(), &e), Err(DecodeError::ZeroInterval));
}

#[test]
fn drops_v2_authentication_mismatches() {
    let pass = Auth::simple(b"secret12").unwrap();
    let bytes = v2(pass.clone()).encode(SRC4, DST4).unwrap();
    assert_eq!(
        decode(&bytes, &ip4(), &expect(Version::V2, Auth::None)),
        Err(DecodeError::AuthType { got: 1, want: 0 })
    );
    assert_eq!(
        decode(
            &bytes,
            &ip4(),
            &expect(Version::V2, Auth::simple(b"secret13").unwrap())
        ),
        Err(DecodeError::AuthPassword)
    );
    // Type 2 (IP AH, removed by RFC 3768) is an unknown type.
    let mut ah = bytes;
    ah[4] = 2;
    fix_checksum(Version::V2, SRC4, DST4, &mut ah);
    assert_eq!(
        decode(&ah, &ip4(), &expect(Version::V2, pass)),
        Err(DecodeError::AuthType { got: 2, want: 1 })
    );
    // Type 0: whatever the data holds is ignored.
    let mut junk = v2(Auth::None).encode(SRC4, DST4).unwrap();
    junk[12..].fill(0x55);
    fix_checksum(Version::V2, SRC4, DST4, &mut junk);
    assert_eq!(
        decode(&junk, &ip4(), &expect(Version::V2, Auth::None)).unwrap(),
        v2(Auth::None)
    );
}

#[test]
fn drops_mixed_families_and_v2_over_ipv6() {
    let bytes = v2(Auth::None).encode(SRC4, DST4).unwrap();
    let mixed = IpHeader {
        destination: DST6,
        ..ip4()
    };
    assert_eq!(
        decode(&bytes, &mixed, &expect(Version::V2, Auth::None)),
        Err(DecodeError::MixedFamilies {
            from: SRC4,
            to: DST6
        })
    );
    let ip6 = IpHeader {
        source: SRC6,
        destination: DST6,
        ttl: 255,
    };
    assert_eq!(
        decode(&bytes, &ip6, &expect(Version::V2, Auth::None)),
        Err(DecodeError::V2OverIpv6)
    );
}

#[test]
fn encode_refuses_what_the_wire_cannot_carry() {
    let six = v3(Addresses::V6(vec!["2001:db8::1".parse().unwrap()]));
    assert!(matches!(
        six.encode(SRC4, DST4),
        Err(EncodeError::Family { .. })
    ));
    assert!(matches!(
        v2(Auth::None).encode(SRC4, DST6),
        Err(EncodeError::Family { .. })
    ));
    let v2_six = Advert {
        version: Version::V2,
        ..six.clone()
    };
    assert_eq!(v2_six.encode(SRC6, DST6), Err(EncodeError::V2OverIpv6));
    let authed = Advert {
        auth: Auth::simple(b"x").unwrap(),
        ..six.clone()
    };
    assert_eq!(authed.encode(SRC6, DST6), Err(EncodeError::AuthInV3));
    let empty = Advert {
        addresses: Addresses::V6(vec![]),
        ..six.clone()
    };
    assert_eq!(empty.encode(SRC6, DST6), Err(EncodeError::AddressCount(0)));
    let many = Advert {
        addresses: Addresses::V4(vec![Ipv4Addr::LOCALHOST; 256]),
        ..v2(Auth::None)
    };
    assert_eq!(many.encode(SRC4, DST4), Err(EncodeError::AddressCount(256)));
    for (advert, interval) in [(v2(Auth::None), 0), (v2(Auth::None), 256), (six, 4096)] {
        let version = advert.version;
        let advert = Advert { interval, ..advert };
        let ip = if advert.addresses.is_ipv6() {
            (SRC6, DST6)
        } else {
            (SRC4, DST4)
        };
        assert_eq!(
            advert.encode(ip.0, ip.1),
            Err(EncodeError::Interval { version, interval })
        );
    }
}

#[test]
fn passwords_are_zero_padded_kept_out_of_debug_and_at_most_8_bytes() {
    assert_eq!(Auth::simple(b"abc"), Some(Auth::Simple(*b"abc\0\0\0\0\0")));
    assert_eq!(Auth::simple(b"123456789"), None);
    assert_eq!(
        format!("{:?}", Auth::simple(b"secret").unwrap()),
        "Simple(..)"
    );
}

#[test]
fn intervals_in_the_version_unit() {
    assert_eq!(
        v2(Auth::None).interval_duration(),
        std::time::Duration::from_secs(1)
    );
    let a = v3(Addresses::V4(vec![Ipv4Addr::LOCALHOST]));
    assert_eq!(a.interval_duration(), std::time::Duration::from_secs(1));
}
