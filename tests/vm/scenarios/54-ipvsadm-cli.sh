#!/usr/bin/env bash
# ipvsctl as ipvsadm, differentially: every line of tests/vm/ipvsadm-corpus.txt
# runs through Debian's ipvsadm (and its ipvsadm-save / ipvsadm-restore
# scripts) in namespace "adm" and through ipvsctl (symlinked as ipvsadm,
# ipvsadm-save, ipvsadm-restore; or as itself with ipvsadm options) in
# namespace "ctl", in sequence. Per line: stdout, stderr, exit code and the
# resulting table (`ipvsadm -Sn`, by Debian's ipvsadm in both namespaces)
# must be equal. Connection listings (-Lc) are compared with the expire
# column masked (the two runs are a few milliseconds apart).
# Transcripts go to $VM_LOG_DIR/54-transcript-{adm,ctl}.txt when writable.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_mh ip_vs_pe_sip
CORPUS=$(dirname "${BASH_SOURCE[0]}")/../ipvsadm-corpus.txt
[[ -r $CORPUS ]] || fail "no corpus $CORPUS"

mkns() {
    local ns=$1
    ns_destroy "$ns"
    ip netns add "$ns"
    on_exit "ns_destroy $ns"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip link add d0 type dummy
    in_ns "$ns" ip link set d0 up
    in_ns "$ns" ip addr add 198.51.100.1/24 dev d0
    in_ns "$ns" ip addr add 2001:db8::1/64 dev d0 nodad
    in_ns "$ns" ip route add default dev d0
    in_ns "$ns" ip -6 route add default dev d0
}
mkns adm
mkns ctl

# ipvsctl under ipvsadm's names.
BIN=$TEST_TMP/bin
mkdir -p "$BIN"
for n in ipvsadm ipvsadm-save ipvsadm-restore; do ln -s "$IPVSCTL" "$BIN/$n"; done
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# run TOOL NS PROG ARGS... (stdin from $STDIN_FILE): output into $TEST_TMP/TOOL.{out,err,rc}
run() {
    local tool=$1 ns=$2 prog=$3; shift 3
    local path=$SYS_PATH
    if [[ $tool == ctl ]]; then
        path=$BIN:$SYS_PATH
        [[ $prog == ipvsctl ]] && prog=$IPVSCTL
    else
        [[ $prog == ipvsctl ]] && prog=ipvsadm
    fi
    set +e
    PATH=$path ip netns exec "$ns" "$prog" "$@" <"$STDIN_FILE" >"$TEST_TMP/$tool.out" 2>"$TEST_TMP/$tool.err"
    echo $? >"$TEST_TMP/$tool.rc"
    set -e
}
mask_conn() { sed -E 's/^(TCP|UDP|SCTP|IP) +[0-9]{2}:[0-9]{2} /\1 XX:XX /'; }

TR_ADM=$TEST_TMP/transcript-adm.txt
TR_CTL=$TEST_TMP/transcript-ctl.txt
: >"$TR_ADM"; : >"$TR_CTL"
STDIN_FILE=$TEST_TMP/stdin
n=0 ok=0 bad=0
declare -a BAD=()
while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == '#'* ]] && continue
    n=$((n + 1))
    if [[ $line == '@traffic '* ]]; then
        read -r _ proto addr port <<<"$line"
        for ns in adm ctl; do
            if [[ $proto == tcp ]]; then
                in_ns $ns timeout 0.5 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null || true
            else
                in_ns $ns bash -c "echo x >/dev/udp/$addr/$port" 2>/dev/null || true
            fi
        done
        ok=$((ok + 1))
        continue
    fi
    input=
    cmdpart=$line
    if [[ $line == *' <<< '* || $line == *' <<< ' ]]; then
        cmdpart=${line%% <<< *}
        input=${line#* <<< }
        printf '%b\n' "$input" >"$STDIN_FILE"
    else
        : >"$STDIN_FILE"
    fi
    read -ra words <<<"$cmdpart"
    run adm adm "${words[@]}"
    run ctl ctl "${words[@]}"
    in_ns adm ipvsadm -Sn >"$TEST_TMP/adm.state" 2>&1 || true
    in_ns ctl ipvsadm -Sn >"$TEST_TMP/ctl.state" 2>&1 || true
    if [[ ${words[0]} == ipvsctl ]]; then
        sed -i 's/ipvsctl/ipvsadm/g' "$TEST_TMP/ctl.out" "$TEST_TMP/ctl.err"
    fi
    if [[ $cmdpart == *c* && $cmdpart == *-[lL]* ]]; then
        for t in adm ctl; do mask_conn <"$TEST_TMP/$t.out" >"$TEST_TMP/$t.m"; mv "$TEST_TMP/$t.m" "$TEST_TMP/$t.out"; done
    fi
    for t in adm ctl; do
        {
            printf '=== %d: %s\n--- rc %s\n' "$n" "$line" "$(cat "$TEST_TMP/$t.rc")"
            printf -- '--- stdout\n'; cat "$TEST_TMP/$t.out"
            printf -- '--- stderr\n'; cat "$TEST_TMP/$t.err"
        } >>"$TEST_TMP/transcript-$t.txt"
    done
    what=
    cmp -s "$TEST_TMP/adm.rc" "$TEST_TMP/ctl.rc" || what+=" rc($(cat "$TEST_TMP/adm.rc")/$(cat "$TEST_TMP/ctl.rc"))"
    cmp -s "$TEST_TMP/adm.out" "$TEST_TMP/ctl.out" || what+=" stdout"
    cmp -s "$TEST_TMP/adm.err" "$TEST_TMP/ctl.err" || what+=" stderr"
    cmp -s "$TEST_TMP/adm.state" "$TEST_TMP/ctl.state" || what+=" table"
    if [[ -z $what ]]; then
        ok=$((ok + 1))
    else
        bad=$((bad + 1))
        BAD+=("$n: $line:$what")
        if ((bad <= 40)); then
            log "DIFF line $n: $line:$what"
            for f in out err state; do
                cmp -s "$TEST_TMP/adm.$f" "$TEST_TMP/ctl.$f" || { diff -u "$TEST_TMP/adm.$f" "$TEST_TMP/ctl.$f" | sed -n "3,12p"; } || true
            done
        fi
        # Resynchronise the tables so one difference does not cascade.
        if [[ $what == *table* ]]; then
            in_ns adm ipvsadm -Sn >"$TEST_TMP/resync"
            in_ns ctl ipvsadm -C
            in_ns ctl ipvsadm -R <"$TEST_TMP/resync" || true
        fi
    fi
done <"$CORPUS"

if [[ -n ${VM_LOG_DIR:-} && -w ${VM_LOG_DIR:-/nonexistent} ]]; then
    cp "$TR_ADM" "$VM_LOG_DIR/54-transcript-adm.txt"
    cp "$TR_CTL" "$VM_LOG_DIR/54-transcript-ctl.txt"
fi
log "corpus: $n lines, $ok equal, $bad different"
for b in "${BAD[@]}"; do log "different: $b"; done
((n >= 300)) || fail "corpus too small ($n lines)"
((bad == 0)) || fail "$bad of $n lines differ from ipvsadm"
pass "$n command lines: same stdout, stderr, exit code and table as ipvsadm"
