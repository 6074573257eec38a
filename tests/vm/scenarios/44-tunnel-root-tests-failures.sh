#!/usr/bin/env bash
# rs-agent's tunnel-mode root tests, part 2 (tests/tunnel.rs): a failure
# midway rolls back rp_filter and devices, a namespace without fallback
# devices (net.core.fb_tunnels_only_for_init_net) gets a device the agent
# creates and deletes, watch repairs the tunnel device, rp_filter and the
# FOU port.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

run_tunnel_root_tests 3 a_failure_midway where_the_namespace watch_repairs
