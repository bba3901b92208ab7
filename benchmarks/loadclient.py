"""A light in-process client for `make bench`'s closed-loop CPU blocks
(handshakes, back-to-back pings): asyncio protocols and hand-built frames,
standard library only (not the harness's raw client).

Why its own: the benchmark measures the server; a client that decodes every
frame into messages (the raw client) spends more than the server. This one
parses only the length prefix and the message id. The session rows (N
sessions pinging once a second) use benchmarks/loadworker.py instead: worker
processes on plain sockets and epoll, lighter still.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import struct
import time
from typing import Any

LENGTH = struct.Struct(">I")
HOST = "127.0.0.1"
CLIENT_RANGE = b"v100..178"
PING = b"\x00\x00\x00\x0549\x001\x00"  # reqCurrentTime, framed


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
