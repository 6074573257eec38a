#!/usr/bin/env bash
# rs-agent's tunnel-mode root tests (tests/tunnel.rs, built on the host by
# `cargo test -p rs-agent --no-run`; ignored on the host, whose kernel has no
# ipip, fou or ip_gre): run here with --ignored, one at a time (some change
# machine-wide settings of this throwaway VM). They create their own namespaces.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DEPS=${RS_AGENT_DEPS_DIR:-$ROOT/target/debug/deps}
SRC=$(ls -t "$DEPS"/tunnel-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
[[ -n $SRC && -x $SRC ]] || fail "no tunnel test binary in $DEPS (cargo test -p rs-agent --no-run)"
TTEST=$TEST_TMP/tunnel-tests
cp "$SRC" "$TTEST"
log "running $TTEST"
# The fixtures run the tmpfs copy of rs-agent guest.sh made.
RS_AGENT_TEST_BIN=$RS_AGENT RUST_BACKTRACE=1 "$TTEST" --ignored --test-threads=1 |
    tee "$TEST_TMP/tunnel-tests.log" || fail "tunnel root tests failed"
ran=$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' "$TEST_TMP/tunnel-tests.log")
((${ran:-0} >= 7)) || fail "only ${ran:-0} tunnel root tests ran (expected 7)"
pass "tunnel root tests ($ran)"
