"""One load worker process for `make bench`'s session rows: N sessions to
API-ready, then each pings (reqCurrentTime) once a second, on plain
non-blocking sockets and one epoll loop; standard library only.

    python -m benchmarks.loadworker --port P --count N [--first-id I]
        [--seconds S] [--src-base K] [--open-timeout T]

Opens N sessions one after another (blocking sockets: no accept-backlog
burst; source addresses spread over 127.0.0.K.. when --src-base is given),
prints `OPEN <open> <failed> <json [first error]>`, waits for a `go` line
on stdin, pings for S seconds, prints `RESULT <json>`, then waits for one
more stdin line (or EOF) before closing its sockets. EOF on stdin ends it at
any point (the benchmark died: no orphan keeps pinging).

Why not asyncio (the first version was asyncio protocols): at 10,000
sessions the client's own cost and timing are in the numbers. That client
spent 0.19-0.22 of a core per 5,000 sessions (~40 us a ping: handles,
transport layers), sent each 10 ms slot's pings as one burst, timed a reply
from its send (a send the client was late with hid its lateness: thousands
of "late" sends per 30 s at 10,000 sessions) and shared one CPU share with
the server (run_all.py now starts each in its own session). This loop does
one send and one recv per ping (0.13-0.18 of a core per 5,000 sessions).

The schedule and what is counted (issue 20: "p99 < 50 ms, 0 missed"):
* phases are uniform: ping j (j = 0, 1, ...) is due at start + j/N seconds,
  so session j % N pings once a second and the N sessions are spread evenly
  over the second (no burst at a common phase);
* latency is measured from the DUE time, not the send time: a send the
  client (or the machine) delayed adds its delay to the number instead of
  hiding it (no coordinated omission). The send-time latency and the send
  lag (sent - due) are reported beside it, so a reader can tell the
  server's share from the client's;
* missed: a ping that came due while the session's previous ping was still
  unanswered (not sent; a server over a second behind misses pings);
* late: a ping sent more than 100 ms after it was due;
* failed: sessions closed by the server, or with a ping unanswered 10 s
  after the last send.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.loadclient import raise_fd_limit

LENGTH = struct.Struct(">I")
HOST = "127.0.0.1"
CLIENT_RANGE = b"v100..178"
HELLO_REQUEST = b"API\0" + LENGTH.pack(len(CLIENT_RANGE)) + CLIENT_RANGE
PING = b"\x00\x00\x00\x0549\x001\x00"  # reqCurrentTime, framed
PONG = b"49\0"
BUCKET = math.log(1.02)  # latency histogram: 2% wide buckets, merged exactly across workers
LATE_S = 0.1
DRAIN_S = 10.0  # after the last send: how long the last answers may take


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode("ascii") + b"\0" for f in fields)
    return LENGTH.pack(len(payload)) + payload


class Histogram:
    """Log-bucketed latencies (2% wide), mergeable across processes."""

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max_s = 0.0

    def add(self, seconds: float) -> None:
        b = int(math.log(max(1.0, seconds * 1e6)) / BUCKET)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        if seconds > self.max_s:
            self.max_s = seconds

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": {str(k): v for k, v in self.buckets.items()}, "count": self.count, "max_s": self.max_s}


def merge_percentiles(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Histograms from several workers -> p50/p99/max in ms (bucket upper bounds: within 2%)."""
    buckets: dict[int, int] = {}
    for p in parts:
        for k, v in p["buckets"].items():
            buckets[int(k)] = buckets.get(int(k), 0) + v
    count = sum(buckets.values())
    out: dict[str, Any] = {"count": count, "max_ms": round(max((p["max_s"] for p in parts), default=0.0) * 1e3, 2)}
    for name, q in (("p50_ms", 0.50), ("p99_ms", 0.99)):
        if not count:
            out[name] = None
            continue
        rank, seen = math.ceil(q * count), 0
        for k in sorted(buckets):
            seen += buckets[k]
            if seen >= rank:
                out[name] = round(min(math.exp((k + 1) * BUCKET) / 1e3, out["max_ms"]), 3)
                break
    return out


def sched_seconds() -> tuple[float, float]:
    """This process's (CPU, run-queue wait) seconds from /proc/self/schedstat
    (the wait says how long it was runnable but had no CPU: a loaded
    machine's share of the latency); process_time and 0.0 where missing."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        cpu = wait = 0
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/schedstat") as f:
                fields = f.read().split()
            cpu += int(fields[0])
            wait += int(fields[1])
        return cpu / 1e9, wait / 1e9
    return time.process_time(), 0.0


# ---------------------------------------------------------------- opening (blocking, one at a time)


def _frames(sock: socket.socket, buf: bytearray, deadline: float) -> Iterator[bytes]:
    """Payloads from a blocking socket; bytes past the last whole frame stay in buf."""
    while True:
        while len(buf) >= 4:
            (size,) = LENGTH.unpack_from(buf, 0)
            if len(buf) - 4 < size:
                break
            payload = bytes(buf[4:4 + size])
            del buf[:4 + size]
            yield payload
        if time.monotonic() > deadline:
            raise TimeoutError("no API-ready in time")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        buf += data


def open_one(port: int, client_id: int, timeout: float, src: str | None) -> tuple[socket.socket, bytearray]:
    """Connect, hello, startApi, wait for nextValidId and managedAccounts (either order)."""
    sock = socket.create_connection((HOST, port), timeout=timeout, source_address=(src, 0) if src else None)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        frames = _frames(sock, buf, time.monotonic() + timeout)
        sock.sendall(HELLO_REQUEST)
        next(frames)  # the server hello
        sock.sendall(frame(71, 2, client_id, ""))
        seen: set[bytes] = set()
        for payload in frames:
            if payload[:3] in (b"9\x001", b"15\x00"):
                seen.add(payload[:3])
                if len(seen) == 2:
                    break
        sock.setblocking(False)
        return sock, buf
    except BaseException:
        sock.close()
        raise


def open_sessions(port: int, count: int, first_id: int, src_base: int | None, deadline: float,
                  timeout: float = 30.0) -> tuple[list[socket.socket], list[bytearray], list[str]]:
    socks: list[socket.socket] = []
    bufs: list[bytearray] = []
    failed: list[str] = []
    for i in range(count):
        left = deadline - time.monotonic()
        if left <= 0:
            failed.append(f"TimeoutError: opening passed its deadline ({count - i} not tried)")
            failed.extend([""] * (count - i - 1))
            break
        src = f"127.0.0.{src_base + i % 32}" if src_base is not None else None
        try:
            sock, buf = open_one(port, first_id + i, min(timeout, left), src)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failed.append(f"{type(exc).__name__}: {exc}")
            continue
        socks.append(sock)
        bufs.append(buf)
    return socks, bufs, failed


# ---------------------------------------------------------------- pacing (one epoll loop)


def paced(socks: list[socket.socket], bufs: list[bytearray], seconds: float,
          stop_fd: int | None = None, drain_s: float = DRAIN_S) -> dict[str, Any]:
    """Every session pings once a second at its uniform phase for `seconds` (see the module doc)."""
    n = len(socks)
    from_due, from_send, lag = Histogram(), Histogram(), Histogram()
    missed = late = send_failed = 0
    if not n:
        return {"hist": from_due.to_dict(), "hist_send": from_send.to_dict(), "hist_lag": lag.to_dict(),
                "missed": 0, "late": 0, "failed": 0, "cpu_s": 0.0, "wait_s": 0.0, "wall_s": 0.0}
    ep = select.epoll(n + 1)
    index: dict[int, int] = {}
    for i, s in enumerate(socks):
        index[s.fileno()] = i
        ep.register(s.fileno(), select.EPOLLIN)
    if stop_fd is not None:
        try:
            ep.register(stop_fd, select.EPOLLIN)
        except OSError:  # not a pipe (a file, /dev/null): nothing to watch
            stop_fd = None
    sent_at = [0.0] * n  # 0.0: no ping outstanding
    due_at = [0.0] * n
    dead = [False] * n
    perf = time.perf_counter
    total = int(round(seconds * n))
    cpu0, wait0 = sched_seconds()
    start = perf() + 0.2
    step = 1.0 / n
    j = 0
    stopped = False
    drain_until = math.inf
    try:
        while not stopped:
            now = perf()
            while j < total and start + j * step <= now:  # every ping now due
                i = j % n
                due = start + j * step
                j += 1
                if dead[i]:
                    continue
                if sent_at[i]:
                    missed += 1
                    continue
                t = perf()
                try:
                    if socks[i].send(PING) != len(PING):
                        raise BlockingIOError("partial send")
                except OSError:
                    send_failed += 1
                    dead[i] = True
                    continue
                if t - due > LATE_S:
                    late += 1
                lag.add(t - due)
                sent_at[i] = t
                due_at[i] = due
            if j >= total and drain_until == math.inf:
                drain_until = perf() + drain_s
            if j >= total and (perf() > drain_until or not any(sent_at)):
                break
            timeout = max(0.0, start + j * step - perf()) if j < total else 0.05
            for fd, _ in ep.poll(timeout):
                if fd == stop_fd:
                    if not os.read(fd, 4096):
                        stopped = True
                    continue
                i = index[fd]
                try:
                    data = socks[i].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    dead[i] = True
                    sent_at[i] = 0.0
                    ep.unregister(fd)
                    continue
                buf = bufs[i]
                buf += data
                while len(buf) >= 4:
                    (size,) = LENGTH.unpack_from(buf, 0)
                    if len(buf) - 4 < size:
                        break
                    if sent_at[i] and buf[4:7] == PONG:
                        t = perf()
                        from_due.add(t - due_at[i])
                        from_send.add(t - sent_at[i])
                        sent_at[i] = 0.0
                    del buf[:4 + size]
    finally:
        ep.close()
    cpu1, wait1 = sched_seconds()
    wall = perf() - start
    unanswered = sum(1 for i in range(n) if sent_at[i] and not dead[i])
    return {"hist": from_due.to_dict(), "hist_send": from_send.to_dict(), "hist_lag": lag.to_dict(),
            "missed": missed, "late": late, "failed": sum(dead) + unanswered, "send_failed": send_failed,
            "stopped": stopped, "cpu_s": cpu1 - cpu0, "wait_s": wait1 - wait0, "wall_s": wall}


def run(args: argparse.Namespace) -> int:
    raise_fd_limit(args.count + 256)
    deadline = time.monotonic() + (args.open_timeout if args.open_timeout else 60.0 + args.count / 20)
    socks, bufs, failed = open_sessions(args.port, args.count, args.first_id, args.src_base, deadline)
    try:
        errors = [e for e in failed if e][:1]
        print(f"OPEN {len(socks)} {len(failed)} {json.dumps(errors)}", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 0
        gc.collect()
        gc.freeze()  # the sessions' objects are never collected: keep them out of every GC pass
        result = paced(socks, bufs, args.seconds, stop_fd=sys.stdin.fileno())
        result.update({"open": len(socks), "open_failed": len(failed), "first_open_error": errors[0] if errors else ""})
        print("RESULT " + json.dumps(result), flush=True)
        sys.stdin.readline()  # the benchmark says when to close (after its last RSS reading)
    finally:
        for s in socks:
            s.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--first-id", type=int, default=1)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--src-base", type=int, default=None)
    p.add_argument("--open-timeout", type=float, default=None, help="seconds for opening all (default 60 + N/20)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
