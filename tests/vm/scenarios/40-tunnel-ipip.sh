#!/usr/bin/env bash
# Tunnel mode, IPIP: the director (ipvsadm -i) and the real servers in
# different subnets with a router between them; the real servers prepared
# only by rs-agent `[tunnel] type = "ipip"` (VIP on lo, tunl0 up, rp_filter
# loose). Requests fail before, both real servers answer after; stop
# restores both exactly.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

tunnel_scenario ipip 'type = "ipip"'
