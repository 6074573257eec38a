#!/usr/bin/env bash
# Tunnel mode, GUE: as scenario 40, with the director sending GUE to UDP
# port 6080 (ipvsadm --tun-type gue --tun-port 6080) and the real servers
# receiving it through the FOU port rs-agent adds (`[tunnel] type = "gue"`,
# `port = 6080`) and tunl0.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

tunnel_scenario gue $'type = "gue"\nport = 6080' --tun-type gue --tun-port 6080
