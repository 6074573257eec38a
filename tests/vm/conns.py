#!/usr/bin/python3
"""Long-lived TCP connections for the multi-director VM scenarios (9x).

  conns.py serve --port P
      A line echo server on 0.0.0.0:P (one per real server).

  conns.py hold --addr VIP --port P --ctl DIR [--count 50] [--interval 0.1]
                [--break-after 15] [--max-time 150] [--watch NAME=FILE=REGEX ...]
      Opens COUNT connections to VIP:P. Each sends a numbered line, waits for
      its echo, sleeps INTERVAL, and again, until told to stop. A connection is
      broken when a read or write fails (reset, EOF), the echo differs, or no
      echo comes within BREAK_AFTER seconds. The control directory DIR:
        ready        written by hold once every connection has had an echo
        probe        created by the caller: start opening a new connection
                     every 0.25 s (connect, one echo, close; 0.9 s bound)
        event        created by the caller, holding the time of the failure
                     (seconds since the epoch, e.g. bash's $EPOCHREALTIME)
        settled      written by hold once, after the event, every connection
                     has had an echo of a line sent after it, or broke
        stop         created by the caller: every connection finishes its
                     round trip in flight, then hold writes result.json and exits
      --watch NAME=FILE=REGEX: after the stop, FILE (the output of
      `ip -ts monitor ...`) is searched for the first line at or after the
      event matching REGEX; result NAME = its time minus the event's.

The result (result.json) counts broken connections and why, the longest stall
after the event, and when new connections succeeded again.
"""

import argparse
import asyncio
import datetime
import json
import os
import re
import socket
import sys
import time


def now():
    return time.time()


# --- echo server ---------------------------------------------------------------

async def serve(port):
    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port, reuse_address=True, backlog=256)
    async with server:
        await server.serve_forever()


# --- holder ----------------------------------------------------------------------

class Hold:
    def __init__(self, a):
        self.a = a
        self.ctl = a.ctl
        self.stopping = False
        self.event = None
        self.conns = {}  # i -> dict(state, reason, max_stall_after, echoes_after, rtts)
        self.probes = []  # (start, ok, reason)

    def path(self, name):
        return os.path.join(self.ctl, name)

    async def one(self, i, reader, writer):
        c = self.conns[i]
        seq = 0
        try:
            while True:
                msg = f"{i} {seq}\n".encode()
                sent = now()
                writer.write(msg)
                await writer.drain()
                try:
                    line = await asyncio.wait_for(reader.readline(), self.a.break_after)
                except asyncio.TimeoutError:
                    c.update(state="broken", reason="timeout")
                    return
                got = now()
                if not line:
                    c.update(state="broken", reason="eof")
                    return
                if line != msg:
                    c.update(state="broken", reason="garbled")
                    return
                c["echoes"] += 1
                if self.event is not None and sent >= self.event:
                    c["echoes_after"] += 1
                if self.event is not None and got >= self.event:
                    c["max_stall_after"] = max(c["max_stall_after"], got - sent)
                seq += 1
                if self.stopping:
                    c["state"] = "ok"
                    return
                await asyncio.sleep(self.a.interval)
        except ConnectionResetError:
            c.update(state="broken", reason="reset")
        except OSError as e:
            c.update(state="broken", reason=f"oserror-{e.errno}")
        finally:
            writer.close()

    async def open(self, i):
        self.conns[i] = dict(state="opening", reason=None, echoes=0, echoes_after=0, max_stall_after=0.0)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.a.addr, self.a.port), 5)
        except (OSError, asyncio.TimeoutError) as e:
            self.conns[i].update(state="failed", reason=f"connect: {e!r}")
            return None
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns[i]["state"] = "open"
        return asyncio.create_task(self.one(i, reader, writer))

    async def probe(self):
        start = now()
        try:
            async def attempt():
                reader, writer = await asyncio.open_connection(self.a.addr, self.a.port)
                try:
                    writer.write(b"probe\n")
                    await writer.drain()
                    line = await reader.readline()
                    if line != b"probe\n":
                        raise ConnectionError("bad echo")
                finally:
                    writer.close()
            # under 1 s: a SYN lost to a dead path fails the probe instead of
            # succeeding through its retransmission 1 s later
            await asyncio.wait_for(attempt(), 0.9)
            self.probes.append((start, True, None))
        except asyncio.TimeoutError:
            self.probes.append((start, False, "timeout"))
        except OSError as e:
            self.probes.append((start, False, type(e).__name__))

    async def run(self):
        deadline = now() + self.a.max_time
        tasks = [t for t in await asyncio.gather(*(self.open(i) for i in range(self.a.count))) if t]
        if len(tasks) != self.a.count:
            return self.finish(tasks, "not every connection could be opened")
        # ready: every connection echoed once
        while any(c["echoes"] == 0 and c["state"] == "open" for c in self.conns.values()):
            if now() > deadline:
                return self.finish(tasks, "no first echo before max-time")
            await asyncio.sleep(0.05)
        with open(self.path("ready.tmp"), "w") as f:
            f.write(f"{now()}\n")
        os.rename(self.path("ready.tmp"), self.path("ready"))
        probing, probe_tasks, next_probe, settled = False, [], 0.0, False
        while not os.path.exists(self.path("stop")):
            if now() > deadline:
                return self.finish(tasks + probe_tasks, "max-time reached before stop")
            if self.event is None and os.path.exists(self.path("event")):
                try:
                    self.event = float(open(self.path("event")).read().strip())
                except ValueError:
                    self.event = now()
            if (self.event is not None and not settled and
                    all(c["echoes_after"] > 0 or c["state"] != "open" for c in self.conns.values())):
                settled = True
                with open(self.path("settled"), "w") as f:
                    f.write(f"{now()}\n")
            if not probing and os.path.exists(self.path("probe")):
                probing = True
            if probing and now() >= next_probe:
                next_probe = now() + 0.25
                probe_tasks.append(asyncio.create_task(self.probe()))
            await asyncio.sleep(0.05)
        self.stopping = True
        await asyncio.wait(tasks + probe_tasks, timeout=self.a.break_after + 5)
        return self.finish(tasks + probe_tasks, None)

    def watch(self, spec):
        name, file, regex = spec.split("=", 2)
        if self.event is None or not os.path.exists(file):
            return name, None
        rx = re.compile(regex)
        ts_rx = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] ?(.*)$")
        with open(file, errors="replace") as f:
            for line in f:
                m = ts_rx.match(line.rstrip("\n"))
                if not m:
                    continue
                t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
                if t >= self.event and rx.search(m.group(2)):
                    return name, round(t - self.event, 3)
        return name, None

    def finish(self, tasks, error):
        for t in tasks:
            t.cancel()
        reasons = {}
        for c in self.conns.values():
            if c["state"] == "ok" and self.event is not None and c["echoes_after"] == 0:
                c.update(state="broken", reason="no echo after the event")
            if c["state"] != "ok":
                r = c["reason"] or c["state"]
                reasons[r] = reasons.get(r, 0) + 1
        broken = sum(1 for c in self.conns.values() if c["state"] != "ok")
        res = dict(
            error=error,
            count=self.a.count,
            broken=broken,
            reasons=reasons,
            event=self.event,
            max_stall_after=round(max((c["max_stall_after"] for c in self.conns.values()), default=0), 3),
            stalled_over_1s=sum(1 for c in self.conns.values() if c["max_stall_after"] > 1),
            probes=len(self.probes),
        )
        if self.event is not None:
            after = sorted(p for p in self.probes if p[0] >= self.event - 0.25)
            res["probes_failed_after_event"] = sum(1 for p in after if not p[1])
            # new connections succeed again: 0 if no probe failed, else the
            # start of the first successful probe after the last failed one
            # (None: they still failed at the end)
            failed = [p[0] for p in after if not p[1]]
            if not failed:
                res["new_ok_after"] = 0.0
            else:
                later = [p[0] for p in after if p[1] and p[0] > failed[-1]]
                res["new_ok_after"] = round(max(0.0, later[0] - self.event), 3) if later else None
        for spec in self.a.watch:
            name, val = self.watch(spec)
            res[name] = val
        with open(self.path("result.json.tmp"), "w") as f:
            json.dump(res, f, indent=1)
        os.rename(self.path("result.json.tmp"), self.path("result.json"))
        return 0 if error is None else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    h = sub.add_parser("hold")
    h.add_argument("--addr", required=True)
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--ctl", required=True)
    h.add_argument("--count", type=int, default=50)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--break-after", type=float, default=15)
    h.add_argument("--max-time", type=float, default=150)
    h.add_argument("--watch", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "serve":
        asyncio.run(serve(a.port))
        return 0
    return asyncio.run(Hold(a).run())


if __name__ == "__main__":
    sys.exit(main())
