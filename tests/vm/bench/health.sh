#!/usr/bin/env bash
# Health-checking director benchmark, run inside the VM by scripts/bench.sh
# (VM_GUEST=tests/vm/bench/health.sh): lvs-director against Debian's
# keepalived (checker only, -C) on the same kernel, the same services in both
# configurations, one daemon at a time in a fresh network namespace.
#
# Set-up: SERVICES virtual services (198.18.x.y:80, wrr), each with DESTS
# real servers of its own (distinct addresses in 198.19.0.0/16, so neither
# daemon can share a check between services), TCP checks every INTERVAL s.
# The real servers are addresses of one "farm" namespace behind a veth, where
# one listener accepts and closes every connection. The farm holds them as
# one local route (AnyIP), not as 20,000 addresses on lo: with those, its
# kernel walked a 256-bucket hash of 20,000 addresses for every SYN-ACK it
# sent (a fifth of a checker's CPU, which the veth bills to the checker),
# where a real server has a handful.
#
# Measured per daemon:
#   startup   time from start until every destination is in the table with
#             its configured weight (both daemons check before they serve:
#             keepalived with `alpha`, lvs-director by default)
#   cpu       CPU seconds (user+system, every process of the daemon) over a
#             steady window of WINDOW seconds after start-up
#   rss       peak resident memory (VmHWM, summed over the daemon's processes)
#   reload    SIGHUP with one real server's weight changed: time until the
#             kernel shows the new weight
#   detect    one real server starts refusing connections: time until its
#             weight is 0 (both daemons drain: keepalived inhibit_on_failure)
#   recover   it accepts again: time until its weight is back
#
# Environment: LVS_DIRECTOR (binary), BENCH_SERVICES (2000), BENCH_DESTS (10),
# BENCH_INTERVAL (5), BENCH_WINDOW (60), BENCH_CLOCKSOURCE (see below), BENCH_DAEMONS ("lvs-director
# lvs-director-half-open keepalived"; the second is the same daemon with
# `half_open = true` TCP checks), BENCH_PERF_SECS (20: a perf profile of that many seconds
# after the CPU window, if perf exists; 0: none; not passed by run-suite.sh,
# so only its default applies in the VM).
# BENCH_HEAPTRACK=1 runs lvs-director under heaptrack's preload library
# (installed by hand: apt install heaptrack; without it the run says so and
# records nothing) and writes its raw record to ht-NAME.raw: a diagnosis
# run, whose memory and CPU figures are heaptrack's too.
#
# Into VM_LOG_DIR: health-bench.md (the table), daemon-NAME.log,
# events-NAME.txt (when the server was made to refuse and accept, and when
# the weights were seen), memory-NAME.txt (at three points, with the largest
# mappings), threads-NAME.txt (CPU per thread over the window),
# perf-NAME.txt (the profile), perf-clock-NAME.txt (who reads the clock),
# net-NAME.txt (where checks were lost).
set -euo pipefail

SERVICES=${BENCH_SERVICES:-2000}
DESTS=${BENCH_DESTS:-10}
INTERVAL=${BENCH_INTERVAL:-5}
WINDOW=${BENCH_WINDOW:-60}
DAEMONS=${BENCH_DAEMONS:-lvs-director lvs-director-half-open keepalived}
PERF_SECS=${BENCH_PERF_SECS:-20}
WORK=$(mktemp -d /tmp/health-bench.XXXXXX)
# Results, daemon logs and profiles: kept after the VM stops.
OUT=${VM_LOG_DIR:-$WORK}
HEAPTRACK_LIB=/usr/lib/heaptrack/libheaptrack_preload.so
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NS=hb-dir-$$
FARM=hb-farm-$$
DAEMON_PID=
LISTENER_PIDS=()

cleanup() {
    [[ -n $DAEMON_PID ]] && kill -KILL "$DAEMON_PID" 2>/dev/null
    for p in "${LISTENER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$FARM" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf 'health-bench: %s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

modprobe -a ip_vs ip_vs_wrr
# The guest's clock source. Under emulation the kernel settles on the HPET,
# whose every read is an emulated device access (11-23 % of either daemon's
# profile, the kernel's TCP timestamps included): BENCH_CLOCKSOURCE=tsc
# reads the TSC as hardware does (boot the VM with VM_APPEND="tsc=reliable"
# so that the kernel keeps it). Both daemons run on the same one.
CLOCKS=/sys/devices/system/clocksource/clocksource0
if [[ -n ${BENCH_CLOCKSOURCE:-} ]]; then
    if grep -qw -- "$BENCH_CLOCKSOURCE" "$CLOCKS/available_clocksource"; then
        echo "$BENCH_CLOCKSOURCE" >"$CLOCKS/current_clocksource"
    else
        say "clock source $BENCH_CLOCKSOURCE not available (have: $(cat "$CLOCKS/available_clocksource"))"
    fi
fi
CLOCKSOURCE=$(cat "$CLOCKS/current_clocksource" 2>/dev/null || echo unknown)
cp "${LVS_DIRECTOR:?LVS_DIRECTOR must name the lvs-director binary}" "$WORK/lvs-director"
cp "$(command -v keepalived)" "$WORK/keepalived"
cp "$(command -v ipvsadm)" "$WORK/ipvsadm"
IPVSADM=$WORK/ipvsadm

# --- addresses ----------------------------------------------------------------
vip() { python3 -c "import ipaddress,sys; print(ipaddress.IPv4Address(int(ipaddress.IPv4Address('198.18.0.1')) + int(sys.argv[1])))" "$1"; }
python3 - "$SERVICES" "$DESTS" "$WORK" <<'PY'
import ipaddress, sys
services, dests, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
vip0 = int(ipaddress.IPv4Address("198.18.0.1"))
rs0 = int(ipaddress.IPv4Address("198.19.0.1"))
with open(f"{work}/director.toml", "w") as d, open(f"{work}/keepalived.conf", "w") as k:
    k.write("global_defs {\n    router_id health-bench\n}\n")
    for s in range(services):
        v = ipaddress.IPv4Address(vip0 + s)
        d.write(f'[[service]]\nvip = "{v}"\nport = 80\nscheduler = "wrr"\n'
                '[service.check]\ntype = "tcp"\ninterval = @INTERVAL@\n')
        k.write(f"virtual_server {v} 80 {{\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n"
                f"    alpha\n    inhibit_on_failure\n")
        for i in range(dests):
            r = ipaddress.IPv4Address(rs0 + s * dests + i)
            w = i + 1
            d.write(f'[[service.server]]\naddress = "{r}"\nweight = {w}\n')
            k.write(f"    real_server {r} 80 {{\n        weight {w}\n        inhibit_on_failure\n"
                    f"        TCP_CHECK {{\n            connect_timeout 2\n            retry 0\n        }}\n    }}\n")
        k.write("}\n")
PY
# The interval goes in with sed: one place for both daemons.
sed -i "s/^interval = @INTERVAL@$/interval = $INTERVAL.0\ntimeout = 2.0\nrise = 1\nfall = 1/" "$WORK/director.toml"
sed -i "s/^    lb_algo wrr$/    delay_loop $INTERVAL\n    lb_algo wrr/" "$WORK/keepalived.conf"
# The same file with half-open TCP checks (a SYN, the SYN-ACK or RST back).
sed 's/^type = "tcp"$/type = "tcp"\nhalf_open = true/' "$WORK/director.toml" >"$WORK/director-half-open.toml"
EXPECTED=$((SERVICES * DESTS))
FIRST_VIP=$(vip 0)
FIRST_RS=198.19.0.1

# --- namespaces ----------------------------------------------------------------
farm_up() {
    ip netns add "$FARM"
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip -n "$FARM" link set lo up
    ip link add hb0 netns "$NS" type veth peer name hb1 netns "$FARM"
    ip -n "$NS" addr add 203.0.113.1/30 dev hb0
    ip -n "$FARM" addr add 203.0.113.2/30 dev hb1
    ip -n "$NS" link set hb0 up
    ip -n "$FARM" link set hb1 up
    ip -n "$NS" route add 198.19.0.0/16 via 203.0.113.2
    ip -n "$FARM" route add default via 203.0.113.1
    ip -n "$FARM" route add local 198.19.0.0/16 dev lo
    ip netns exec "$FARM" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
    # Two accept-and-close loops on one port (SO_REUSEPORT): every farm
    # address answers a TCP check.
    for _ in 1 2; do
        ip netns exec "$FARM" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 80))
s.listen(65535)
while True:
    try:
        c, _ = s.accept()
    except OSError:
        continue  # a connection reset before its accept
    c.close()
' &
        LISTENER_PIDS+=($!)
    done
}
farm_down() {
    for p in "${LISTENER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    LISTENER_PIDS=()
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$FARM" 2>/dev/null || true
}

# Destinations of the whole table with a weight > 0.
weighted() { ip netns exec "$NS" "$IPVSADM" -Sn | awk '$1 == "-a" && $NF != 0 {n++} END {print n + 0}'; }
# The weight of real server RS in the first service (empty if absent).
weight_of() {
    ip netns exec "$NS" "$IPVSADM" -Ln -t "$FIRST_VIP:80" |
        awk -v rs="$1:80" '$2 == rs {print $4}'
}
# wait_until LIMIT_S CMD...: poll every 0.1 s; prints the ms waited; fails at LIMIT_S.
wait_until() {
    local limit=$1 start
    shift
    start=$(now_ms)
    while ! "$@"; do
        (($(now_ms) - start < limit * 1000)) || return 1
        sleep 0.1
    done
    echo $(($(now_ms) - start))
}
all_weighted() { [[ $(weighted) -eq $EXPECTED ]]; }
weight_is() { [[ $(weight_of "$1") == "$2" ]]; }

# Every process of the daemon: the PID and its children (keepalived forks a
# checker process).
daemon_pids() { echo "$DAEMON_PID" "$(pgrep -P "$DAEMON_PID" 2>/dev/null | xargs)"; }
cpu_ticks() {
    local t=0 p
    for p in $(daemon_pids); do
        [[ -r /proc/$p/stat ]] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
# Each thread's CPU ticks ("comm ticks" per line), to tell the check loop
# from the thread that reads the table for the syncs.
thread_ticks() {
    local p t
    for p in $(daemon_pids); do
        for t in /proc/"$p"/task/*; do
            [[ -r $t/stat ]] || continue
            awk '{sub(/^[0-9]+ \(/, ""); sub(/\) /, " "); split($0, f, " "); print f[1], f[13] + f[14]}' "$t/stat"
        done
    done
}
peak_rss_kib() {
    local t=0 p
    for p in $(daemon_pids); do
        [[ -r /proc/$p/status ]] || continue
        t=$((t + $(awk '/^VmHWM:/ {print $2}' "/proc/$p/status")))
    done
    echo "$t"
}

# What each process of the daemon holds (anonymous against file-backed
# pages, the heap's share): into memory-NAME.txt.
memory_of() {
    local p
    for p in $(daemon_pids); do
        [[ -r /proc/$p/status ]] || continue
        {
            echo "== $2: pid $p ($(cat "/proc/$p/comm"))"
            grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|VmData|Threads):' "/proc/$p/status"
            awk '/\[heap\]/ {heap = 1} heap && /^Rss:/ {print "heap Rss: " $2 " kB"; heap = 0}' "/proc/$p/smaps"
            # The eight largest mappings by resident size.
            awk '/^[0-9a-f]+-[0-9a-f]+ / {map = $1 " " $6} /^Rss:/ {print $2 " kB " map}' "/proc/$p/smaps" |
                sort -rn | head -8 | sed 's/^/  rss /'
        } >>"$OUT/memory-$1.txt" 2>/dev/null || true
    done
}

start_daemon() {
    case $1 in
    lvs-director | lvs-director-half-open)
        # BENCH_HEAPTRACK=1: heaptrack's preload library records every
        # allocation into ht-NAME.raw (figures then are heaptrack's, not
        # the daemon's; see BENCHMARKS.md for reading the file).
        local preload=()
        if [[ ${BENCH_HEAPTRACK:-0} == 1 ]]; then
            if [[ -e $HEAPTRACK_LIB ]]; then
                preload=(env "LD_PRELOAD=$HEAPTRACK_LIB" "DUMP_HEAPTRACK_OUTPUT=$OUT/ht-$1.raw")
            else
                say "BENCH_HEAPTRACK=1 but $HEAPTRACK_LIB is missing (apt install heaptrack): not recorded"
            fi
        fi
        ip netns exec "$NS" "${preload[@]}" "$WORK/lvs-director" run --config "$(config_of "$1")" \
            --control "$WORK/control.sock" >"$WORK/daemon.log" 2>&1 &
        ;;
    keepalived)
        ip netns exec "$NS" "$WORK/keepalived" -n -C -f "$WORK/keepalived.conf" \
            -p "$WORK/ka.pid" -c "$WORK/ka-check.pid" >"$WORK/daemon.log" 2>&1 &
        ;;
    esac
    DAEMON_PID=$!
}
config_of() {
    case $1 in
    keepalived) echo "$WORK/keepalived.conf" ;;
    lvs-director-half-open) echo "$WORK/director-half-open.toml" ;;
    *) echo "$WORK/director.toml" ;;
    esac
}

HZ=$(getconf CLK_TCK)
declare -A R
for daemon in $DAEMONS; do
    say "$daemon: $SERVICES services x $DESTS servers, TCP checks every ${INTERVAL}s"
    farm_up
    start_daemon "$daemon"
    if ms=$(wait_until 900 all_weighted); then
        R[$daemon.startup]=$ms
    else
        R[$daemon.startup]="> 900000"
        say "$daemon: table incomplete after 900 s ($(weighted) of $EXPECTED)"
    fi
    echo "$(date -u +%T.%N) table complete; peak RSS so far $(peak_rss_kib) KiB" >>"$OUT/events-$daemon.txt"
    memory_of "$daemon" "table complete"
    c0=$(cpu_ticks)
    t0=$(thread_ticks)
    sleep "$WINDOW"
    c1=$(cpu_ticks)
    # Per thread over the window: threads-NAME.txt.
    awk -v hz="$HZ" -v w="$WINDOW" 'NR == FNR {before[$1] += $2; next} {after[$1] += $2}
        END {for (c in after) printf "%s %.1f%%\n", c, 100 * (after[c] - before[c]) / hz / w}' \
        <(echo "$t0") <(thread_ticks) >"$OUT/threads-$daemon.txt" || true
    R[$daemon.cpu]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v w="$WINDOW" 'BEGIN {printf "%.1f", 100 * t / hz / w}')
    # What dominates the CPU: a flat profile after the measured window (the
    # sampling costs the daemon a little, so never during it).
    if ((PERF_SECS > 0)) && command -v perf >/dev/null; then
        pids=$(daemon_pids | xargs | tr ' ' ',')
        if perf record -q -g -F 499 -p "$pids" -o "$WORK/perf.data" -- sleep "$PERF_SECS" >/dev/null 2>&1; then
            perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort comm,dso,sym 2>/dev/null |
                grep -v '^#' | grep -v '^$' | head -60 >"$OUT/perf-$daemon.txt" || true
            # Who reads the clock (the kernel's call chains; user-space
            # frames are unreliable without frame pointers).
            perf report -i "$WORK/perf.data" --stdio --no-children -S read_hpet,read_tsc \
                -g caller,2,callee,function,percent 2>/dev/null |
                grep -v '^#' | grep -v '^$' | head -80 >"$OUT/perf-clock-$daemon.txt" || true
            say "$daemon: profile in perf-$daemon.txt"
        fi
        rm -f "$WORK/perf.data"
    fi

    # Reload: the first server of the first service gets weight 7.
    cfg=$(config_of "$daemon")
    cp "$cfg" "$cfg.orig"
    if [[ $daemon == keepalived ]]; then
        python3 - "$cfg" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("weight 1\n", "weight 7\n", 1)
open(p, "w").write(s)
PY
    else
        python3 - "$cfg" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("weight = 1\n", "weight = 7\n", 1)
open(p, "w").write(s)
PY
    fi
    echo "$(date -u +%T.%N) SIGHUP; peak RSS so far $(peak_rss_kib) KiB" >>"$OUT/events-$daemon.txt"
    memory_of "$daemon" "before the reload"
    kill -HUP "$DAEMON_PID"
    R[$daemon.reload]=$(wait_until 600 weight_is "$FIRST_RS" 7) || R[$daemon.reload]="> 600000"
    memory_of "$daemon" "after the reload"

    # Detection and recovery: the first server refuses connections.
    echo "$(date -u +%T.%N) server refuses" >>"$OUT/events-$daemon.txt"
    ip netns exec "$FARM" iptables -I INPUT -d "$FIRST_RS" -p tcp --dport 80 -j REJECT --reject-with tcp-reset
    R[$daemon.detect]=$(wait_until 120 weight_is "$FIRST_RS" 0) || R[$daemon.detect]="> 120000"
    echo "$(date -u +%T.%N) weight 0 seen" >>"$OUT/events-$daemon.txt"
    ip netns exec "$FARM" iptables -D INPUT -d "$FIRST_RS" -p tcp --dport 80 -j REJECT --reject-with tcp-reset
    echo "$(date -u +%T.%N) server accepts" >>"$OUT/events-$daemon.txt"
    R[$daemon.recover]=$(wait_until 120 weight_is "$FIRST_RS" 7) || R[$daemon.recover]="> 120000"
    echo "$(date -u +%T.%N) weight 7 seen" >>"$OUT/events-$daemon.txt"
    R[$daemon.rss]=$(peak_rss_kib)
    # Where checks were lost, if they were: the farm's listen queue
    # overflows, SYNs dropped, and the kernel's per-CPU backlog drops
    # (second column of softnet_stat, hex; the whole VM since boot).
    {
        ip netns exec "$FARM" nstat -asz TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop 2>&1 | grep -v '^#'
        ip netns exec "$NS" nstat -asz TcpActiveOpens TcpAttemptFails TcpRetransSegs 2>&1 | grep -v '^#'
        awk '{print "softnet cpu" NR - 1 " dropped 0x" $2}' /proc/net/softnet_stat
    } >"$OUT/net-$daemon.txt" 2>&1 || true

    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
    say "$daemon: $(tail -3 "$WORK/daemon.log" | tr '\n' ' ')"
    cp "$WORK/daemon.log" "$OUT/daemon-$daemon.log"
    farm_down
done

# The table goes to a file the host reads after the VM stops.
exec > >(tee "$OUT/health-bench.md")
secs() { awk -v ms="$1" 'BEGIN {if (ms ~ />/) print ms " ms"; else printf (ms >= 1000) ? "%.2f s" : "%d ms", (ms >= 1000) ? ms / 1000 : ms}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a ~ />/ || b ~ />/ || b == 0) print "n/a"; else printf "%.3f", a / b}'; }
ours=()
for d in $DAEMONS; do [[ $d == keepalived ]] || ours+=("$d"); done
# row LABEL TARGET KEY FORMAT: one value per daemon, then each of ours / keepalived.
row() {
    local label=$1 target=$2 key=$3 fmt=$4 line d v
    line="| $label |"
    for d in $DAEMONS; do
        v=${R[$d.$key]:-0}
        case $fmt in
        secs) line+=" $(secs "$v") |" ;;
        mib) line+=" $(awk -v k="$v" 'BEGIN {printf "%.1f", k / 1024}') |" ;;
        *) line+=" $v |" ;;
        esac
    done
    for d in "${ours[@]}"; do
        if [[ -n $target ]]; then line+=" $(ratio "${R[$d.$key]:-0}" "${R[keepalived.$key]:-0}") |"; else line+=" |"; fi
    done
    echo "$line ${target:-} |"
}
head="| $SERVICES services x $DESTS servers, TCP every ${INTERVAL}s |"
rule="|---|"
for d in $DAEMONS; do
    head+=" $d |"
    rule+="---:|"
done
for d in "${ours[@]}"; do
    head+=" $d / keepalived |"
    rule+="---:|"
done
echo "$head target |"
echo "$rule---|"
row "start-up to a complete, checked table" "" startup secs
row "CPU over ${WINDOW}s steady state (% of one core)" "<= 0.5" cpu plain
row "peak RSS (MiB)" "<= 0.5" rss mib
row "reload, one weight changed: SIGHUP to the edit in the kernel" "<= 0.05, < 1 s" reload secs
row "dead server detected (weight 0)" "" detect secs
row "recovered server back" "" recover secs
echo
echo "Guest: kernel $(uname -r), $(nproc) CPUs under QEMU, clock source $CLOCKSOURCE; one run per daemon, each in fresh namespaces; lvs-director rise 1 fall 1 timeout 2 s, keepalived alpha + inhibit_on_failure, connect_timeout 2, retry 0: both fail a server on its first failed check and admit it on its first success."
