#!/usr/bin/env python3
"""Side-by-side benchmarks of rs-agent against what operators run today.

Every measurement runs in a network namespace this script creates and removes
(never the machine's own), with VIPs from 198.18.0.0/15 and 2001:db8::/32.
Variants of one comparison are interleaved round by round, so a slow moment
of the machine hits all of them alike; the table shows medians and ratios.

    scripts/bench.py [--rounds 5] [--sizes 1,100,1000,10000] [--markdown FILE]

Needs root, iproute2, and a release build (cargo build --release).
"""

import argparse
import ipaddress
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENT = os.path.join(ROOT, "target", "release", "rs-agent")
NS_PREFIX = f"rsa-bench-{os.getpid()}"
STATE_TMPFS = os.environ.get("RSA_BENCH_TMPFS", "")


def vips(n):
    """n IPv4 addresses from the benchmark range 198.18.0.0/15."""
    base = int(ipaddress.IPv4Address("198.18.0.1"))
    return [str(ipaddress.IPv4Address(base + i)) for i in range(n)]


def run(args, **kw):
    return subprocess.run(args, check=True, stdin=subprocess.DEVNULL, **kw)


def timed(args, stdout=subprocess.DEVNULL):
    """Wall time in seconds of one command."""
    start = time.perf_counter()
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:4]}... failed: {proc.stderr.decode()}")
    return elapsed


def peak_rss_kib(args):
    """Peak RSS of a command, measured by GNU time (a fork from Python would
    count the interpreter's own pages as the child's)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1])


class Namespace:
    """A fresh namespace with lo up and the ARP sysctls at 0."""

    count = 0

    def __init__(self):
        Namespace.count += 1
        self.name = f"{NS_PREFIX}-{Namespace.count}"
        run(["ip", "netns", "add", self.name])
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        self.sysctl("all", "arp_ignore", 0)
        self.sysctl("all", "arp_announce", 0)
        # The record lives on tmpfs as in production (/run); see main().
        self.state = tempfile.mkdtemp(prefix="state-", dir=STATE_TMPFS)

    def sysctl(self, iface, key, value):
        run(["ip", "netns", "exec", self.name, "sh", "-c",
             f"echo {value} > /proc/sys/net/ipv4/conf/{iface}/{key}"])

    def agent(self, *args):
        return [AGENT, "--netns", self.name, "--state-dir", self.state, *args]

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self.state, ignore_errors=True)


class Files:
    """Config and batch files for n VIPs."""

    def __init__(self, n, workdir):
        self.n = n
        addresses = vips(n)
        self.config = os.path.join(workdir, f"config-{n}.toml")
        with open(self.config, "w") as f:
            for a in addresses:
                f.write(f'[[vip]]\naddress = "{a}"\n')
        self.add_batch = os.path.join(workdir, f"add-{n}.batch")
        with open(self.add_batch, "w") as f:
            for a in addresses:
                f.write(f"addr add {a}/32 dev lo\n")
        self.del_batch = os.path.join(workdir, f"del-{n}.batch")
        with open(self.del_batch, "w") as f:
            for a in addresses:
                f.write(f"addr del {a}/32 dev lo\n")
        # The seed's start script: four sysctl writes, then one command per VIP.
        self.seed_script = os.path.join(workdir, f"seed-{n}.sh")
        with open(self.seed_script, "w") as f:
            f.write("#!/bin/sh\nset -e\n")
            for iface in ("all", "lo"):
                f.write(f"echo 1 > /proc/sys/net/ipv4/conf/{iface}/arp_ignore\n")
                f.write(f"echo 2 > /proc/sys/net/ipv4/conf/{iface}/arp_announce\n")
            for a in addresses:
                f.write(f"ip addr add {a}/32 dev lo\n")
        os.chmod(self.seed_script, 0o755)


def measure(rounds, variants):
    """variants: name -> (setup(ns) or None, command(ns)). Interleaved rounds;
    returns name -> median seconds."""
    times = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            setup, command = variants[name]
            ns = Namespace()
            try:
                if setup:
                    setup(ns)
                times[name].append(timed(command(ns)))
            finally:
                ns.close()
    return {name: statistics.median(times[name]) for name in names}


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="1,100,1000,10000")
    parser.add_argument("--seed-max", type=int, default=10000,
                        help="largest N for the one-command-per-VIP seed script")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (it creates network namespaces)")
    if not STATE_TMPFS:
        # Re-run inside a throwaway network and mount namespace: nothing can
        # reach the machine's network, and the tmpfs for the records vanishes.
        mountpoint = tempfile.mkdtemp(prefix="rsa-bench-state-")
        env = dict(os.environ, RSA_BENCH_TMPFS=mountpoint)
        try:
            code = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private",
                                   sys.executable, *sys.argv], env=env).returncode
        finally:
            os.rmdir(mountpoint)
        sys.exit(code)
    run(["mount", "-t", "tmpfs", "-o", "size=64m", "rs-agent-bench", STATE_TMPFS])
    if not os.access(AGENT, os.X_OK):
        sys.exit(f"bench: {AGENT} missing: cargo build --release")
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = []  # (comparison, N, ours, theirs, ratio, target)
    peak_rss = {}
    with tempfile.TemporaryDirectory(prefix="rsa-bench-") as workdir:
        for n in sizes:
            files = Files(n, workdir)
            print(f"bench: N = {n} ...", file=sys.stderr, flush=True)

            start_variants = {
                "rs-agent start": (None, lambda ns: ns.agent("start", "--config", files.config)),
                "ip -batch add": (None, lambda ns: ["ip", "-n", ns.name, "-batch", files.add_batch]),
            }
            if n <= args.seed_max:
                start_variants["seed script"] = (
                    None, lambda ns: ["ip", "netns", "exec", ns.name, files.seed_script])
            res = measure(args.rounds, start_variants)
            ours = res["rs-agent start"]
            target = "<= 1.0" if n == 10000 else ""
            rows.append(("start N VIPs vs ip -batch", n, ours, res["ip -batch add"], target))
            if "seed script" in res:
                rows.append(("start N VIPs vs seed script", n, ours, res["seed script"],
                             "<= 1.0" if n == 1 else ""))
            ns = Namespace()
            try:
                peak_rss[n] = peak_rss_kib(ns.agent("start", "--config", files.config))
            finally:
                ns.close()

            def started(ns):
                run(ns.agent("start", "--config", files.config), stdout=subprocess.DEVNULL)

            noop = measure(args.rounds, {
                "rs-agent start (no-op)": (started, lambda ns: ns.agent("start", "--config", files.config)),
                "ip addr show": (started, lambda ns: ["ip", "-n", ns.name, "-o", "addr", "show", "dev", "lo"]),
            })
            rows.append(("no-op start vs one address dump", n, noop["rs-agent start (no-op)"],
                         noop["ip addr show"], "<= 4" if n == 10000 else ""))

            stop = measure(args.rounds, {
                "rs-agent stop": (started, lambda ns: ns.agent("stop")),
                "ip -batch del": (started, lambda ns: ["ip", "-n", ns.name, "-batch", files.del_batch]),
            })
            rows.append(("stop N VIPs vs ip -batch del", n, stop["rs-agent stop"],
                         stop["ip -batch del"], "<= 1.0" if n == 10000 else ""))

    lines = [
        "| comparison | N | rs-agent | today | ratio | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for comparison, n, ours, theirs, target in rows:
        lines.append(f"| {comparison} | {n} | {fmt_time(ours)} | {fmt_time(theirs)} | "
                     f"{ours / theirs:.2f} | {target} |")
    lines.append("")
    for n, kib in peak_rss.items():
        lines.append(f"Peak RSS of rs-agent start at N = {n}: {kib / 1024:.1f} MiB")
    lines.append("")
    lines.append(f"Machine: {platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
                 f"{args.rounds} interleaved rounds, medians.")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    try:
        main()
    finally:
        # Namespaces are removed as they are used; this catches an interrupt.
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(NS_PREFIX):
                subprocess.run(["ip", "netns", "del", name], check=False)
