#!/usr/bin/env python3
"""Writes the hand-built fixtures (hand-*.hex): each field packed in the order
of the RFC 3768 section 5.1 / RFC 5798 section 5.1-5.2 layout, the checksum
the Internet checksum over the VRRP message (v2) or the IP pseudo-header plus
the message (v3), inside a minimal IPv4 (TTL 255, protocol 112, DSCP CS6 like
keepalived) or IPv6 header (hop limit 255, next header 112)."""
import ipaddress
import struct


def cs(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def a(x):
    return ipaddress.ip_address(x).packed


def v4hdr(src, dst, plen):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + plen, 0, 0, 255, 112, 0, a(src), a(dst))
    return h[:10] + struct.pack("!H", cs(h)) + h[12:]


def v2(vrid, prio, addrs, authtype, interval, pw, src):
    p = struct.pack("!BBBBBBH", 0x21, vrid, prio, len(addrs), authtype, interval, 0)
    p += b"".join(a(x) for x in addrs) + pw.ljust(8, b"\0")
    p = p[:6] + struct.pack("!H", cs(p)) + p[8:]
    return v4hdr(src, "224.0.0.18", len(p)) + p


def v3(vrid, prio, addrs, interval, src, dst):
    p = struct.pack("!BBBBHH", 0x31, vrid, prio, len(addrs), interval, 0)
    p += b"".join(a(x) for x in addrs)
    if ":" in src:
        pseudo = a(src) + a(dst) + struct.pack("!I", len(p)) + b"\0\0\0" + bytes([112])
        p = p[:6] + struct.pack("!H", cs(pseudo + p)) + p[8:]
        return struct.pack("!IHBB16s16s", 0x60000000, len(p), 112, 255, a(src), a(dst)) + p
    pseudo = a(src) + a(dst) + bytes([0, 112]) + struct.pack("!H", len(p))
    p = p[:6] + struct.pack("!H", cs(pseudo + p)) + p[8:]
    return v4hdr(src, dst, len(p)) + p


FIXTURES = {
    "hand-v2-none-ipv4": v2(1, 100, ["198.51.100.10"], 0, 1, b"", "198.51.100.2"),
    "hand-v2-pass-leaving-ipv4": v2(
        42, 0, ["198.51.100.11", "198.51.100.12", "198.51.100.13"], 1, 3, b"abc", "198.51.100.4"
    ),
    "hand-v3-owner-ipv4": v3(7, 255, ["198.51.100.20", "198.51.100.21"], 100, "198.51.100.3", "224.0.0.18"),
    "hand-v3-ipv6": v3(9, 1, ["2001:db8::9"], 4095, "fe80::1", "ff02::12"),
}

if __name__ == "__main__":
    for name, packet in FIXTURES.items():
        with open(name + ".hex", "w") as f:
            f.write(packet.hex() + "\n")
