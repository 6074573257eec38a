#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into fuzz/seeds/<name>/ from
the repository's real inputs (config files, the ipvsadm corpus, the codec's
golden packets) and hand-made protocol messages. Run from the repository's
root; then minimise with `cargo fuzz cmin` or libFuzzer's -merge=1 into
fuzz/corpus/<name>/."""
import glob
import hashlib
import os
import shlex
import struct

OUT = "fuzz/seeds"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def netlink(payload, msg_type=0x20, flags=2):
    """A whole netlink message around a generic-netlink payload."""
    return struct.pack("=IHHII", 16 + len(payload), msg_type, flags, 1, 0) + payload


for path in ["config/director.toml", "examples/director.toml", "examples/director-backup.toml"]:
    put("director_file", open(path, "rb").read())
put("agent_file", open("config/config.toml", "rb").read())

lines = [l for l in open("tests/vm/ipvsadm-corpus.txt") if l.strip() and not l.startswith("#")]
rules = [l[len("ipvsadm "):] for l in lines if l.startswith("ipvsadm ")]
put("ipvsadm_rules", "".join(rules))
for i in range(0, len(rules), 40):
    put("ipvsadm_rules", "".join(rules[i:i + 40]))
for r in rules:
    try:
        words = shlex.split(r)
    except ValueError:
        continue
    put("ipvsadm_argv", "\0".join(words))

for path in glob.glob("ipvs/src/codec/testdata/*.hex"):
    payload = bytes.fromhex(open(path).read().strip())
    put("ipvs_netlink", payload)
    put("ipvs_netlink", netlink(payload))

# FOU: ADD of port 6080 (the unit test's golden bytes), and a GET reply.
fou_add = bytes([1, 1, 0, 0, 6, 0, 1, 0, 0x17, 0xC0, 0, 0, 5, 0, 2, 0, 2, 0, 0, 0, 5, 0, 4, 0, 2, 0, 0, 0])
fou_get = bytes([3, 1, 0, 0, 6, 0, 1, 0, 0x15, 0xB3, 0, 0, 5, 0, 2, 0, 10, 0, 0, 0,
                 5, 0, 3, 0, 4, 0, 0, 0, 5, 0, 4, 0, 1, 0, 0, 0, 8, 0, 6, 0, 198, 51, 100, 2])
for p in (fou_add, fou_get):
    put("fou_netlink", p)
    put("fou_netlink", netlink(p, msg_type=30))


def tcp(sport, dport, flags, ack):
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, ack, 5 << 4, flags, 65535, 0, 0)


def ipv4(segment):
    total = 20 + len(segment)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0,
                       bytes([192, 0, 2, 10]), bytes([192, 0, 2, 1])) + segment


for flags in (0x12, 0x14, 0x10, 0x11):
    seg = tcp(80, 5000, flags, 43)
    put("syn_ack", seg)
    put("syn_ack", ipv4(seg))

for r in [
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n",
    "HTTP/1.0 503 Service Unavailable\n\nbusy",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 5, 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
]:
    put("http_response", r)

for a in ["up\n", "ready 75%\r\n", "drain\n", "down#maintenance\n", "up, drain\n", "MAINT # disk\n", "50%\n", "\n"]:
    put("agent_reply", a)

for c in [
    '{"cmd":"status"}\n',
    '{"cmd":"drain","service":"tcp:203.0.113.10:80","server":"198.51.100.12:80"}\n',
    '{"cmd":"undrain","service":"fwmark:inet:7","server":"[2001:db8::1]:443"}\n',
    '{"cmd":"withdraw"}\n',
    '{"cmd":"announce"}\n',
    '{"ok":true,"changed":2}\n',
    '{"ok":false,"error":"no such service"}\n',
    '{"ok":true,"message":"done"}\n',
]:
    put("control_request", c)

for h in [
    "GET /metrics HTTP/1.1\r\nHost: director\r\n\r\n",
    "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n",
    "POST /metrics HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\n\n",
]:
    put("metrics_request_head", h)
