"""A light load client for `make bench`: asyncio protocols and hand-built
frames, standard library only (not the harness's raw client).

Why its own: the benchmark measures the server; a client that decodes every
frame into messages (the raw client) spends more than the server and makes
the 1,000-session row measure itself. This one parses only the length
prefix and the message id.

As a worker process (the session rows spread their sessions over several):

    python -m benchmarks.loadclient sessions --port P --count N --first-id I
        [--seconds S] [--src-base K]

opens N sessions to API-ready, prints `OPEN <open> <failed>`, waits for a
`go` line on stdin, then pings each session once a second at its own phase
for S seconds and prints one JSON line with a latency histogram. EOF on
stdin ends it at any point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import resource
import struct
import sys
import time
from typing import Any

LENGTH = struct.Struct(">I")
HOST = "127.0.0.1"
CLIENT_RANGE = b"v100..178"
PING = b"\x00\x00\x00\x0549\x001\x00"  # reqCurrentTime, framed
BUCKET = math.log(1.02)  # latency histogram: 2% wide buckets, merged exactly across workers


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode("ascii") + b"\0" for f in fields)
    return LENGTH.pack(len(payload)) + payload


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards `wanted` (at most the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn(asyncio.Protocol):
    """One connection: frames are split by length; a waiter gets the first
    frame whose message id it wants."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.first = True  # the server hello has no id worth matching
        self.want: bytes | None = None
        self.ready: set[bytes] | None = None  # during startApi: which of nextValidId, managedAccounts came
        self.sent_at: float | None = None  # paced mode: when the unanswered ping left
        self.on_pong: Any = None  # paced mode: called with each ping's round trip (seconds)
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = LENGTH.unpack_from(buf, pos)
            if len(buf) - pos - 4 < size:
                break
            payload = buf[pos + 4:pos + 4 + size]
            pos += 4 + size
            if self.first:
                self.first = False
                matched = self.want == b""
            elif self.ready is not None:
                if payload[:3] in (b"9\x001", b"15\x00"):
                    self.ready.add(payload[:3])
                matched = len(self.ready) == 2
            elif self.sent_at is not None and payload.startswith(b"49\0"):
                self.on_pong(time.perf_counter() - self.sent_at)
                self.sent_at = None
                matched = False
            else:
                matched = self.want is not None and payload.startswith(self.want)
            if matched and self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed by the server"))

    async def expect(self, prefix: bytes, send: bytes | None, timeout: float) -> None:
        """Send (optionally), then wait for a frame starting with prefix (b"": the hello)."""
        self.want = prefix
        self.waiter = asyncio.get_running_loop().create_future()
        if send is not None:
            assert self.transport is not None
            self.transport.write(send)
        await asyncio.wait_for(self.waiter, timeout)

    async def handshake(self, client_id: int, timeout: float) -> None:
        await self.expect(b"", b"API\0" + LENGTH.pack(len(CLIENT_RANGE)) + CLIENT_RANGE, timeout)
        # API-ready: nextValidId and managedAccounts, in either order.
        self.ready = set()
        self.want = None
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(frame(71, 2, client_id, ""))
        try:
            await asyncio.wait_for(self.waiter, timeout)
        finally:
            self.ready = None

    async def ping(self, timeout: float) -> float:
        started = time.perf_counter()
        await self.expect(b"49\0", PING, timeout)
        return time.perf_counter() - started

    async def close(self, timeout: float = 5.0) -> None:
        """Half-close, then wait for the server to close its side: its
        close work is done (and counted) before the caller reads its CPU."""
        if self.transport is None:
            return
        with contextlib.suppress(Exception):
            if self.transport.can_write_eof():
                self.transport.write_eof()
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        self.transport.close()


async def connect(port: int, client_id: int, timeout: float, src: str | None = None) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(Conn, HOST, port, local_addr=(src, 0) if src else None), timeout)
    try:
        await conn.handshake(client_id, timeout)
    except BaseException:
        if conn.transport is not None:
            conn.transport.close()
        raise
    return conn


# ---------------------------------------------------------------- closed-loop measurements (in process)


async def handshakes(port: int, count: int, concurrency: int, first_id: int, timeout: float = 20.0) -> dict[str, Any]:
    """`count` full handshakes (connect, hello, startApi, API-ready, close), `concurrency` at a time."""
    ids = iter(range(first_id, first_id + count))
    failed: list[str] = []

    async def lane() -> None:
        for client_id in ids:
            try:
                conn = await connect(port, client_id, timeout)
                await conn.close()
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failed.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return {"done": count - len(failed), "failed": len(failed), "wall_s": time.perf_counter() - started,
            "first_error": failed[0] if failed else ""}


async def open_sessions(port: int, count: int, first_id: int, *, concurrency: int = 64, timeout: float = 30.0,
                        src_base: int | None = None) -> tuple[list[Conn], list[str]]:
    """`count` sessions to API-ready; source addresses spread over 127.0.0.x when src_base is given."""
    conns: list[Conn] = []
    failed: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        src = f"127.0.0.{src_base + i % 32}" if src_base is not None else None
        async with gate:
            try:
                conns.append(await connect(port, first_id + i, timeout, src))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failed.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return conns, failed


async def ping_rounds(conns: list[Conn], pings: int, timeout: float = 10.0) -> dict[str, Any]:
    """Every session pings `pings` times back to back (closed loop)."""
    lat: list[float] = []
    failed = 0

    async def lane(conn: Conn) -> None:
        nonlocal failed
        for _ in range(pings):
            try:
                lat.append(await conn.ping(timeout))
            except Exception:  # noqa: BLE001 - counted
                failed += 1
                return

    started = time.perf_counter()
    await asyncio.gather(*(lane(c) for c in conns))
    return {"pings": len(lat), "failed": failed, "wall_s": time.perf_counter() - started}


# ---------------------------------------------------------------- paced pings (worker processes)


class Histogram:
    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max_s = 0.0

    def add(self, seconds: float) -> None:
        us = max(1.0, seconds * 1e6)
        b = int(math.log(us) / BUCKET)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        self.max_s = max(self.max_s, seconds)

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


SLOT_S = 0.01  # the paced driver's tick: each session's phase is one of 100 slots a second


async def paced(conns: list[Conn], seconds: float) -> dict[str, Any]:
    """Each session pings once a second at its own phase (one of 100 slots).
    One driver wakes every slot and writes the due sessions' pings (no timer
    or task per session, so the client stays light at 10,000 sessions); a
    reply is timed in data_received. A due ping whose previous one is still
    unanswered is missed; a slot the driver reaches over 100 ms late counts
    its pings as late."""
    hist = Histogram()
    missed = late = 0
    slots: list[list[Conn]] = [[] for _ in range(round(1 / SLOT_S))]
    rng = random.Random(len(conns))
    for conn in conns:
        slots[rng.randrange(len(slots))].append(conn)
        conn.on_pong = hist.add
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    ticks = int(seconds / SLOT_S)
    for n in range(ticks):
        due = start + n * SLOT_S
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = loop.time() - due
        for conn in slots[n % len(slots)]:
            if conn.sent_at is not None:
                missed += 1
                continue
            if lag > 0.1:
                late += 1
            conn.sent_at = time.perf_counter()
            assert conn.transport is not None
            conn.transport.write(PING)
    deadline = loop.time() + 10.0  # the last pings' answers
    while any(c.sent_at is not None for c in conns) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    failed = sum(1 for c in conns if c.sent_at is not None or c.closed.done())
    return {"hist": hist.to_dict(), "missed": missed, "late": late, "failed": failed}


async def _worker(args: argparse.Namespace) -> None:
    raise_fd_limit(args.count + 256)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    conns, failed = await open_sessions(args.port, args.count, args.first_id, src_base=args.src_base)
    print(f"OPEN {len(conns)} {len(failed)} {json.dumps(failed[:1])}", flush=True)
    if (await reader.readline()).strip() != b"go":
        return
    result = await paced(conns, args.seconds)
    result["open"] = len(conns)
    result["open_failed"] = len(failed)
    result["first_open_error"] = failed[0] if failed else ""
    print("RESULT " + json.dumps(result), flush=True)
    await reader.readline()  # the benchmark says when to close (after its last RSS reading)
    for c in conns:
        if c.transport is not None:
            c.transport.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sessions")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--first-id", type=int, default=1)
    s.add_argument("--seconds", type=float, default=60.0)
    s.add_argument("--src-base", type=int, default=None)
    args = p.parse_args(argv)
    asyncio.run(_worker(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
