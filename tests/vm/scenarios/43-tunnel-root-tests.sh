#!/usr/bin/env bash
# rs-agent's tunnel-mode root tests, part 1 (tests/tunnel.rs): IPIP, GUE
# and GRE start/idempotence/stop against the real modules (GRE's loaded by
# the kernel on the agent's request), someone else's FOU port refused.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

run_tunnel_root_tests 4 ipip_start gue_adds gre_loads a_fou_port
