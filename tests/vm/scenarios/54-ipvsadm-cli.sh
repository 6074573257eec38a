#!/usr/bin/env bash
# ipvsctl as ipvsadm, differentially: every line of tests/vm/ipvsadm-corpus.txt
# runs through Debian's ipvsadm (and its ipvsadm-save / ipvsadm-restore
# scripts) in namespace "adm" and through ipvsctl (symlinked as ipvsadm,
# ipvsadm-save, ipvsadm-restore; or as itself with ipvsadm options) in
# namespace "ctl". Each namespace runs the corpus in one pass (one shell
# inside it, the two passes side by side: an exec costs a lot in the
# emulated VM); per line, the exit code, stdout, stderr and, after lines
# that can change it, the table (`ipvsadm -Sn` by Debian's ipvsadm in both
# namespaces) go to a transcript; the transcripts must be equal. Connection
# listings (-Lc) have their expire column and client ports masked and
# their entries sorted; across namespaces a real server's counters are
# masked (which one the schedulers picked differs), while each listing is
# also compared byte for byte with Debian's ipvsadm in the same namespace.
# Transcripts: $VM_LOG_DIR/54-transcript-{adm,ctl}.txt when writable.
# The two passes take turns line by line (see pass.sh): about 170 s on an
# idle machine, 480 s with the machine busy with builds and other VMs.
# vm-timeout: 900
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_mh ip_vs_pe_sip
CORPUS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/ipvsadm-corpus.txt
[[ -r $CORPUS ]] || fail "no corpus $CORPUS"

dummy_ns adm
dummy_ns ctl

# ipvsctl under ipvsadm's names.
BIN=$TEST_TMP/bin
mkdir -p "$BIN"
for n in ipvsadm ipvsadm-save ipvsadm-restore; do ln -s "$IPVSCTL" "$BIN/$n"; done

cat >"$TEST_TMP/pass.sh" <<'PASS'
# pass.sh TOOL TRANSCRIPT CORPUS BIN IPVSCTL WORKDIR LOCK
set -u
tool=$1 tr=$2 corpus=$3 bin=$4 ipvsctl=$5 tmp=$6 lock=$7
# One corpus line at a time across both passes: the kernel's service dump
# resumes by an index into a table shared by all namespaces, so a service
# added or deleted in "adm" while "ctl" dumps in several parts shifts that
# index (a service listed twice or missed; ipvsadm has the same race).
exec 9>"$lock"
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
[[ $tool == ctl ]] && path=$bin:$path
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p "$tmp"
: >"$tr"
n=0
# Connection entries: expire ticks; client ports are ephemeral (5 digits
# here) and the kernel's order follows their hash: mask both, sort.
norm_conn() {
    if [[ $cmdpart == *c* && $cmdpart == *-[lL]* ]]; then
        sed -E 's/^(TCP|UDP|SCTP|IP) +[0-9]{2}:[0-9]{2}( +[A-Z_]+ +[^ ]+):[0-9]{5} /\1 XX:XX\2:PPPPP /; s/^(TCP|UDP|SCTP|IP) +[0-9]{2}:[0-9]{2} /\1 XX:XX /' |
            { IFS= read -r h1 && printf '%s\n' "$h1"; IFS= read -r h2 && printf '%s\n' "$h2"; sort; }
    else
        cat
    fi
}
while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == '#'* ]] && continue
    n=$((n + 1))
    flock -w 120 9 || { echo "pass $tool: corpus lock not taken in 120 s" >&2; exit 1; }
    if [[ $line == '@traffic '* ]]; then
        read -r _ proto addr port <<<"$line"
        if [[ $proto == tcp ]]; then
            timeout 0.5 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null
        else
            { echo x >"/dev/udp/$addr/$port"; } 2>/dev/null
        fi
        printf '=== %d: %s\n' "$n" "$line" >>"$tr"
        flock -u 9
        continue
    fi
    cmdpart=$line input=
    if [[ $line == *' <<< '* ]]; then
        cmdpart=${line%% <<< *}
        input=${line#* <<< }
    fi
    printf '%b\n' "$input" >"$tmp/in"
    read -ra words <<<"$cmdpart"
    prog=${words[0]}
    if [[ $prog == ipvsctl ]]; then
        if [[ $tool == ctl ]]; then prog=$ipvsctl; else prog=ipvsadm; fi
    fi
    PATH=$path "$prog" "${words[@]:1}" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    out=$(norm_conn <"$tmp/out") err=$(<"$tmp/err")
    if [[ ${words[0]} == ipvsctl && $tool == ctl ]]; then
        out=${out//ipvsctl/ipvsadm} err=${err//ipvsctl/ipvsadm}
    fi
    listing=0
    case " $cmdpart " in
        *' -L'* | *' -l'* | *' -S'* | *' --list '* | *' --save '* | *' -h '* | *' -v '* | *' --help '* | *' --version '* | ' ipvsadm-save '*) listing=1 ;;
    esac
    here=
    if ((listing)); then
        # The same listing by Debian's tools in this namespace, right
        # after: byte for byte (kernel order, which ipvsadm's sort does
        # not fully hide, and scheduler choices differ between namespaces).
        if [[ $tool == ctl ]]; then
            ref=${words[0]}
            [[ $ref == ipvsctl ]] && ref=ipvsadm
            "$ref" "${words[@]:1}" <"$tmp/in" 2>"$tmp/ref.err" | norm_conn >"$tmp/ref.out"
            ref_out=$(<"$tmp/ref.out") ref_err=$(<"$tmp/ref.err")
            if [[ $ref_out == "$out" && $ref_err == "$err" ]]; then
                here='same'
            else
                here="different from ipvsadm here: $(diff <(printf '%s\n%s\n' "$ref_out" "$ref_err") <(printf '%s\n%s\n' "$out" "$err") | head -20)"
            fi
        else
            here='same'
        fi
        # Across namespaces: the same lines in any order; for connection
        # entries only the header (the entries follow the schedulers). The
        # counters of one real server follow the schedulers too (which one
        # took the corpus's test connection differs between namespaces):
        # masked on "->" lines, after the forwarding method and weight
        # where the listing has them. The byte-for-byte check is "here".
        if [[ $cmdpart == *c* && $cmdpart == *-[lL]* ]]; then
            out=$(head -n 2 <<<"$out")
        else
            out=$(sed -E '/^  -> [^ ]+ +(Route|Tunnel|Masq|Local|Bypass) +[0-9]+ /{s/^(  -> [^ ]+ +[A-Za-z]+ +[0-9]+) .*/\1 N/;b}; s/^(  -> [^ ]+) +[0-9].*/\1 N/' <<<"$out" | sort)
        fi
    fi
    printf '=== %d: %s\n--- rc %s\n--- stdout\n%s\n--- stderr\n%s\n' "$n" "$line" "$rc" "$out" "$err" >>"$tr"
    if ((listing)); then
        printf -- '--- here %s\n' "$here" >>"$tr"
    else
        printf -- '--- table\n%s\n' "$(ipvsadm -Sn 2>&1)" >>"$tr"
    fi
    flock -u 9
done <"$corpus"
PASS

TR_ADM=$TEST_TMP/transcript-adm.txt
TR_CTL=$TEST_TMP/transcript-ctl.txt
ip netns exec adm bash "$TEST_TMP/pass.sh" adm "$TR_ADM" "$CORPUS" "$BIN" "$IPVSCTL" "$TEST_TMP/w-adm" "$TEST_TMP/corpus.lock" &
pa=$!
ip netns exec ctl bash "$TEST_TMP/pass.sh" ctl "$TR_CTL" "$CORPUS" "$BIN" "$IPVSCTL" "$TEST_TMP/w-ctl" "$TEST_TMP/corpus.lock" &
pc=$!
BG_PIDS+=("$pa" "$pc")
wait "$pa" || fail "adm pass"
wait "$pc" || fail "ctl pass"

if [[ -n ${VM_LOG_DIR:-} && -w ${VM_LOG_DIR:-/nonexistent} ]]; then
    cp "$TR_ADM" "$VM_LOG_DIR/54-transcript-adm.txt"
    cp "$TR_CTL" "$VM_LOG_DIR/54-transcript-ctl.txt"
fi

# Compare line by line: split the transcripts at "=== N:" headers.
n=$(grep -c '^=== ' "$TR_ADM")
awk -v dir="$TEST_TMP/a" 'BEGIN{system("mkdir -p " dir)} /^=== [0-9]+:/{f=dir "/" substr($2,1,length($2)-1)} {print > f}' "$TR_ADM"
awk -v dir="$TEST_TMP/c" 'BEGIN{system("mkdir -p " dir)} /^=== [0-9]+:/{f=dir "/" substr($2,1,length($2)-1)} {print > f}' "$TR_CTL"
bad=0
for f in "$TEST_TMP"/a/*; do
    k=${f##*/}
    if ! cmp -s "$f" "$TEST_TMP/c/$k"; then
        bad=$((bad + 1))
        log "different: $(head -1 "$f")"
        { diff -u "$f" "$TEST_TMP/c/$k" | sed -n '4,14p'; } || true
    fi
done
log "corpus: $n lines, $((n - bad)) equal, $bad different"
((n >= 300)) || fail "corpus too small ($n lines)"
((bad == 0)) || fail "$bad of $n lines differ from ipvsadm"
pass "$n command lines: same stdout, stderr, exit code and table as ipvsadm"
