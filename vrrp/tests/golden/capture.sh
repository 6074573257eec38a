#!/bin/sh
# Captures keepalived's VRRP adverts inside a network namespace made for the
# purpose (never on the host's network): one keepalived with three instances
# (v2 + auth PASS, v3 IPv4, v3 IPv6) on veth0, a packet socket on veth1 for
# 5 s, then keepalived stopped by its PID (its priority-0 adverts caught too)
# and the namespace deleted. Writes capture-<kind>.hex: one IP packet a line.
# Run as root: sh capture.sh OUTDIR
set -eu
out=${1:-.}
ns=vrrp-golden-$$
dir=$(mktemp -d)
cleanup() {
    if [ -s "$dir/keepalived.pid" ]; then kill "$(cat "$dir/keepalived.pid")" 2>/dev/null || true; fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add veth0 address 02:00:00:00:00:01 type veth peer name veth1 address 02:00:00:00:00:02
ip -n "$ns" addr add 198.51.100.1/24 dev veth0
ip -n "$ns" addr add 198.51.100.2/24 dev veth1
ip -n "$ns" link set lo up
ip -n "$ns" link set veth0 up
ip -n "$ns" link set veth1 up
sleep 3 # IPv6 duplicate address detection for the link-local addresses
cat > "$dir/keepalived.conf" <<CONF
global_defs {
    router_id golden
}
vrrp_instance V2PASS {
    state MASTER
    interface veth0
    virtual_router_id 51
    priority 150
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    virtual_ipaddress {
        198.51.100.100/24
        198.51.100.101/24
    }
}
vrrp_instance V3IPV4 {
    state MASTER
    interface veth0
    virtual_router_id 52
    priority 200
    advert_int 1
    version 3
    virtual_ipaddress {
        198.51.100.102/24
    }
}
vrrp_instance V3IPV6 {
    state MASTER
    interface veth0
    virtual_router_id 53
    priority 100
    advert_int 1
    version 3
    native_ipv6
    virtual_ipaddress {
        2001:db8::100/64
        2001:db8::101/64
    }
}
CONF
ip netns exec "$ns" python3 - "$out" "$dir" <<'PY' &
import socket, sys, time, os
out, d = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("veth1", 0))
s.settimeout(0.2)
files = {}
end = time.time() + 8
while time.time() < end:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    et = frame[12:14]
    ip = frame[14:]
    if et == b"\x08\x00" and ip[9] == 112:
        v = ip[(ip[0] & 15) * 4] >> 4
        kind = "v%d-ipv4" % v
    elif et == b"\x86\xdd" and ip[6] == 112:
        kind = "v3-ipv6"
    else:
        continue
    files.setdefault(kind, []).append(ip.hex())
for kind, lines in files.items():
    with open(os.path.join(out, "capture-%s.hex" % kind), "w") as f:
        f.write("\n".join(lines) + "\n")
PY
cap=$!
sleep 0.5
ip netns exec "$ns" keepalived --vrrp -n -l -f "$dir/keepalived.conf" -p "$dir/keepalived.pid" -r "$dir/vrrp.pid" >"$dir/log" 2>&1 &
sleep 5
kill "$(cat "$dir/keepalived.pid")"
wait "$cap"
sed 's/^/keepalived: /' "$dir/log" | tail -20
