"""The fault-injecting, recording TCP proxy between any client and any Gateway.

Why: the mock can only misbehave the ways it was written to; a real
Gateway, a container or a socket forwarder in front of one fails on the
*path* too: latency, a blackholed route, a reset, a half-closed socket, a
slow link, a forwarder that coalesces or splits writes. The proxy puts
those faults between any client and any Gateway, switchable at run time
(this API, or the JSON control endpoint from another process), records both
directions with decoded message names, and runs every client->Gateway frame
past the request guard (harness/safety/stream_guard.py): orders and
configuration changes are refused unless the run allows them, the client is
sent the error a Gateway would send, and the connection is closed. Bytes
from the client are forwarded only once the guard has seen their whole frame
and allowed it; a stream it cannot frame is closed (fail closed).

Per connection and direction: a reader task reads, decodes (transcript,
guards) and queues the bytes with their arrival time; a writer task applies
the faults (latency, coalesce, slice, bandwidth, data limit) and writes, so
a delay never stops reading and the byte order is always kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import logging
import os
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..core.errors import HarnessError
from ..core.redact import redact_text, redact_tree
from ..protocol.frame import FrameRecord
from ..safety.order_guard import BlockedOrder
from ..safety.stream_guard import ClientStreamGuard, RequestPolicy, ServerStreamTracker, refusal_frame
from .faults import BOTH, ProxyFault, ProxyFaultSet
from .wire import DOWN, UP, Frame, RequestGuard, WireDecoder, entry_dict, entry_for, entry_text, note_entry

log = logging.getLogger("harness.proxy")

READ_CHUNK = 65536
ENTRY_HISTORY = 20_000  # transcript entries kept in memory (the file keeps all)
LINK_HISTORY = 1000
# How long a refused connection waits for the Gateway's hello (or the end of
# the Gateway frame in flight) so the refusal can go to the client in its era.
REFUSAL_GRACE = 5.0
_EOF = object()


@dataclass(frozen=True)
class _Close:
    """Queued after the refusal: the writer closes the link once it is sent."""

    cause: str


# An observer of the decoded stream (see FaultProxy.add_observer).
FrameObserver = Callable[[FrameRecord, "Frame | None"], None]


class ProxyAddressError(HarnessError, ValueError):
    """A listen or upstream address that is not loopback."""


def require_loopback(host: str, what: str) -> None:
    """The harness only ever talks to this machine (never a bridge, never a
    private-range or public address): refuse anything else up front."""
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ProxyAddressError(f"{what} {host!r} is not a loopback address; the proxy is loopback only "
                                "(use 127.0.0.1, ::1 or localhost)")


def _os_reason(exc: BaseException) -> str:
    """'Connection refused' rather than asyncio's "Connect call failed ('127.0.0.1', 4002)"."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


class Link:
    """One proxied connection: the client's socket, the Gateway's socket and
    the four tasks that move bytes between them."""

    def __init__(self, proxy: FaultProxy, conn_id: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.conn_id = conn_id
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.opened = time.monotonic()
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        up = WireDecoder(conn_id, UP)
        down = WireDecoder(conn_id, DOWN)
        up.peer, down.peer = down, up
        self.decoders = {UP: up, DOWN: down}
        self.guard = ClientStreamGuard(proxy.policy)  # decides what of the client's bytes may be forwarded
        self.server_frames = ServerStreamTracker()  # where a refusal may enter the Gateway's stream
        self.refusal: tuple[BlockedOrder, bytes, str] | None = None  # (what, its payload, close cause)
        self.refusal_sent = False
        self.received = {UP: 0, DOWN: 0}
        self.forwarded = {UP: 0, DOWN: 0}
        self.queues: dict[str, asyncio.Queue[Any]] = {UP: asyncio.Queue(), DOWN: asyncio.Queue()}
        self.eof: set[str] = set()
        self.stopped: set[str] = set()  # directions no longer forwarded (half-close)
        self.blackholed = False  # accepted under blackhole: no upstream at all
        self.done = asyncio.Event()
        self.close_cause = ""
        self.tasks: list[asyncio.Task[Any]] = []

    @property
    def server_version(self) -> int | None:
        return self.decoders[DOWN].server_version

    def summary(self) -> dict[str, Any]:
        return {"conn_id": self.conn_id, "peer": self.peer, "server_version": self.server_version,
                "received": dict(self.received), "forwarded": dict(self.forwarded),
                "open": not self.done.is_set(), "close_cause": self.close_cause,
                "seconds": round(time.monotonic() - self.opened, 3)}

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        faults = self.proxy.faults
        reset = faults.get("reset")
        if reset is not None and reset.values[0] == 0:
            self.abort("fault reset: reset at accept")
            return
        if "blackhole" in faults:
            self.blackholed = True
            self.proxy.note(self.conn_id, UP, "accepted under blackhole: no upstream, bytes dropped")
            self.tasks = [asyncio.create_task(self._read(UP))]
        else:
            try:
                self.upstream = await asyncio.wait_for(asyncio.open_connection(*self.proxy.upstream),
                                                       self.proxy.connect_timeout)
            except (OSError, TimeoutError) as exc:
                # What a client sees from a forwarder whose backend is down: accepted, then closed.
                cause = f"upstream {self.proxy.upstream[0]}:{self.proxy.upstream[1]} unreachable: {_os_reason(exc)}"
                self.proxy.upstream_unreachable = cause
                self.close(cause)
                await self._cleanup()
                return
            self.proxy.upstream_unreachable = None
            self.tasks = [asyncio.create_task(self._read(d)) for d in (UP, DOWN)]
            self.tasks += [asyncio.create_task(self._write(d)) for d in (UP, DOWN)]
            half = faults.get("half-close")
            if half is not None:
                self.half_close(half.direction)
        if reset is not None:
            self.tasks.append(asyncio.create_task(self._reset_later(reset.values[0] / 1000.0)))
        try:
            await self.done.wait()
        finally:
            await self._cleanup()

    async def _reset_later(self, delay: float) -> None:
        await asyncio.sleep(delay)  # the fault's configured delay
        self.abort(f"fault reset: reset {delay * 1000:g} ms after accept")

    def close(self, cause: str) -> None:
        if not self.done.is_set():
            self.close_cause = cause
            log.info("proxy conn %d closed: %s", self.conn_id, cause)
            self.proxy.note(self.conn_id, BOTH, f"closed: {cause}")
            self.done.set()

    def abort(self, cause: str) -> None:
        """RST both sockets (SO_LINGER 0), no FIN: what a crashed peer or a
        stateful firewall forgetting the flow looks like."""
        for pair in (self.client, self.upstream):
            if pair is None:
                continue
            writer = pair[1]
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self.close(cause)

    def half_close(self, direction: str) -> None:
        """FIN one way, keep the other: DOWN -> the client sees EOF while the
        Gateway's socket stays open; UP -> the other way round."""
        directions = (UP, DOWN) if direction == BOTH else (direction,)
        for d in directions:
            if d in self.stopped:
                continue
            self.stopped.add(d)
            writer = self.client[1] if d == DOWN else (self.upstream[1] if self.upstream else None)
            if writer is not None and writer.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()
            towards = "to the client" if d == DOWN else "to the Gateway"
            self.proxy.note(self.conn_id, d, f"fault half-close: FIN sent {towards}")

    async def _cleanup(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self.tasks if t is not current), return_exceptions=True)
        for pair in (self.client, self.upstream):
            if pair is not None:
                pair[1].close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pair[1].wait_closed(), 1.0)

    # ------------------------------------------------------------ pumps

    async def _read(self, direction: str) -> None:
        reader = self.client[0] if direction == UP else self.upstream[0]  # type: ignore[index]
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    self.queues[direction].put_nowait(_EOF)
                    if self.blackholed:
                        self.close("client closed (blackholed connection)")
                    return
                self.received[direction] += len(data)
                if direction == UP:
                    if not self._from_client(data):
                        return
                    continue
                if self.refusal is not None:
                    data = self._until_refusal_point(data)
                    if not data:
                        return
                else:
                    self.server_frames.feed(data)
                denial = self.proxy.inspect(self, direction, data)
                if denial is not None:
                    self.close(denial)
                    return
                if not (self.blackholed or direction in self.stopped or self.proxy.faults.get("blackhole", direction)):
                    self.queues[direction].put_nowait((time.monotonic(), data))
                if self.refusal is not None:
                    self._send_refusal()
                    if self.refusal_sent:
                        return
        except (ConnectionError, OSError) as exc:
            self.close(f"{'client' if direction == UP else 'Gateway'} socket error: {exc}")

    def _from_client(self, data: bytes) -> bool:
        """Client bytes through the request guard: the whole frames it
        allowed go on; a refusal or an unframeable stream ends reading.
        False once nothing more is read from the client."""
        try:
            verdict = self.guard.feed(data)
        except Exception as exc:  # a guard that fails refuses: failing closed is the safe side
            log.exception("proxy conn %d: request guard failed", self.conn_id)
            self.close(f"request guard raised {type(exc).__name__}: {exc}; connection closed (fail closed)")
            return False
        forward = verdict.forward
        if forward:
            denial = self.proxy.inspect(self, UP, forward)  # transcript, and any extra request guards
            if denial is not None:
                self.close(denial)
                return False
            if not (self.blackholed or UP in self.stopped or self.proxy.faults.get("blackhole", UP)):
                self.queues[UP].put_nowait((time.monotonic(), forward))
        if verdict.fatal is not None:
            self.proxy.deny(self, "unframeable", verdict.fatal)
            self.close(f"request guard: {verdict.fatal}; connection closed")
            return False
        if verdict.blocked is not None:
            cause = self.proxy.block(self, verdict.blocked, verdict.blocked_payload)
            self.refusal = (verdict.blocked, verdict.blocked_payload, cause)
            if self.blackholed or self.upstream is None:
                self.close(cause)
            else:
                self._send_refusal()
                self.tasks.append(asyncio.create_task(self._refusal_deadline()))
            return False
        return True

    def _until_refusal_point(self, data: bytes) -> bytes:
        """Gateway bytes while a refusal waits: up to the end of the hello or
        of the frame in flight, so the refusal never cuts a frame."""
        if self.refusal_sent:
            return b""
        ends = self.server_frames.feed(data, first_only=True)
        return data[:ends[0]] if ends else data

    def _send_refusal(self) -> None:
        """Queue the error frame for the client (once it can be put between
        two whole Gateway frames, in the negotiated era), then the close."""
        assert self.refusal is not None
        blocked, payload, cause = self.refusal
        tracker = self.server_frames
        if self.refusal_sent:
            return
        if tracker.broken:
            self.close(f"{cause} (no error sent: {tracker.broken})")
            return
        if tracker.server_version is None or not tracker.at_boundary:
            return  # the down reader calls again after the next whole frame
        self.refusal_sent = True
        try:
            frame = refusal_frame(tracker.server_version, blocked, payload)
        except Exception as exc:  # the refusal still stands: close without the error
            log.exception("proxy conn %d: could not build the error for the client", self.conn_id)
            self.close(f"{cause} (no error sent: {type(exc).__name__}: {exc})")
            return
        self.proxy.note(self.conn_id, DOWN, f"sent the client error for refused {blocked.name} "
                                            f"({len(frame)} bytes, server version {tracker.server_version})")
        self.queues[DOWN].put_nowait((time.monotonic(), frame))
        self.queues[DOWN].put_nowait(_Close(cause))

    async def _refusal_deadline(self) -> None:
        await asyncio.sleep(REFUSAL_GRACE)  # a bounded wait for the Gateway's hello / frame end
        if self.refusal is not None and not self.refusal_sent:  # once queued, the writer closes after it
            self.close(f"{self.refusal[2]} (no error sent: the Gateway sent no frame boundary within "
                       f"{REFUSAL_GRACE:g} s)")

    async def _write(self, direction: str) -> None:
        writer = self.upstream[1] if direction == UP else self.client[1]  # type: ignore[index]
        queue = self.queues[direction]
        faults = self.proxy.faults
        release = 0.0
        try:
            while True:
                item = await queue.get()
                if item is _EOF:
                    await self._forward_eof(direction, writer)
                    return
                if isinstance(item, _Close):
                    self.close(item.cause)
                    return
                arrival, data = item
                latency = faults.get("latency", direction)
                if latency is not None:
                    delay = (latency.values[0] + self.proxy.random.uniform(-latency.values[1],
                                                                            latency.values[1])) / 1000.0
                    release = max(release, arrival + max(0.0, delay))  # never reorder
                    await asyncio.sleep(max(0.0, release - time.monotonic()))  # the injected latency
                coalesce = faults.get("coalesce", direction)
                eof_after = False
                close_after: _Close | None = None
                if coalesce is not None:
                    await asyncio.sleep(coalesce.values[0] / 1000.0)  # the hold time: what arrives meanwhile joins
                    parts = [data]
                    while not queue.empty():
                        nxt = queue.get_nowait()
                        if nxt is _EOF:
                            eof_after = True
                            break
                        if isinstance(nxt, _Close):
                            close_after = nxt
                            break
                        parts.append(nxt[1])
                    data = b"".join(parts)
                if direction in self.stopped:
                    continue
                if not await self._send(direction, writer, data):
                    return
                if eof_after:
                    await self._forward_eof(direction, writer)
                    return
                if close_after is not None:
                    self.close(close_after.cause)
                    return
        except (ConnectionError, OSError) as exc:
            self.close(f"writing to the {'Gateway' if direction == UP else 'client'} failed: {exc}")

    async def _send(self, direction: str, writer: asyncio.StreamWriter, data: bytes) -> bool:
        """Write with slice, bandwidth and data-limit applied; False once the link closed."""
        faults = self.proxy.faults
        limit = faults.get("limit-data", direction)
        close_after = False
        if limit is not None:
            sent = sum(self.forwarded.values()) if limit.direction == BOTH else self.forwarded[direction]
            room = max(0, int(limit.values[0]) - sent)
            if len(data) >= room:
                data, close_after = data[:room], True
        sl = faults.get("slice", direction)
        bandwidth = faults.get("bandwidth", direction)
        size = len(data) or 1
        if sl is not None:
            size = max(1, int(sl.values[0]))
        if bandwidth is not None:  # pace in pieces of 50 ms worth, so the client sees the rate
            size = min(size, max(1, int(bandwidth.values[0] * 1024 * 0.05)))
        pieces = [data[i:i + size] for i in range(0, len(data), size)]
        for i, piece in enumerate(pieces):
            if bandwidth is not None:
                await asyncio.sleep(len(piece) / (bandwidth.values[0] * 1024))  # the bandwidth cap
            writer.write(piece)
            await writer.drain()
            self.forwarded[direction] += len(piece)
            if sl is not None and i < len(pieces) - 1 and sl.values[1] > 0:
                await asyncio.sleep(sl.values[1] / 1000.0)  # the slicer's gap between writes
        if close_after:
            self.close(f"fault limit-data: {int(limit.values[0])} bytes forwarded")  # type: ignore[union-attr]
            return False
        return True

    async def _forward_eof(self, direction: str, writer: asyncio.StreamWriter) -> None:
        """A FIN from one side goes on to the other (half-close preserved);
        once both sides have sent theirs the link is done."""
        self.eof.add(direction)
        if writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
        if self.eof >= {UP, DOWN} or direction in self.stopped:
            self.close("both sides closed" if self.eof >= {UP, DOWN} else f"{direction} closed")
        elif direction == DOWN:
            self.proxy.note(self.conn_id, DOWN, "Gateway closed its side (FIN passed to the client)")


class FaultProxy:
    """The proxy. In-process::

        async with FaultProxy(upstream=("127.0.0.1", 4002)) as proxy:
            proxy.set_fault("latency=200,50")
            ... connect clients to proxy.port ...
            proxy.clear_fault("latency")

    From another process: `ibgw proxy ... --control-port N` and the control
    endpoint (harness/proxy/control.py).
    """

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0, *,
                 faults: list[str] | None = None, transcript: Path | None = None, order_guard_on: bool = True,
                 allow_orders: bool = False, allow_config_changes: bool = False,
                 connect_timeout: float = 10.0, seed: int = 0) -> None:
        """allow_orders / allow_config_changes: let those requests through for
        this proxy (default: refused). order_guard_on=False is the older
        spelling of allow_orders=True."""
        require_loopback(host, "listen address")
        require_loopback(upstream[0], "upstream")
        self.host = host
        self.requested_port = port
        self.upstream = upstream
        self.connect_timeout = connect_timeout
        self.faults = ProxyFaultSet()
        self.random = random.Random(seed)  # jitter is reproducible from run to run
        self.policy = RequestPolicy(allow_orders=allow_orders or not order_guard_on,
                                    allow_config_changes=allow_config_changes)
        self.blocked: list[BlockedOrder] = []  # every refused request, in order
        self.block_observers: list[Callable[[BlockedOrder], None]] = []
        self.guards: list[RequestGuard] = []  # extra guards on decoded client frames (the policy runs first)
        self.reply_guards: list[RequestGuard] = []  # on Gateway->client frames (the live paper-account guard)
        self.links: dict[int, Link] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=LINK_HISTORY)
        self.entries: deque[FrameRecord] = deque(maxlen=ENTRY_HISTORY)
        self.denied: list[dict[str, Any]] = []
        self.accounts: set[str] = set()
        # Why the newest link could not reach the upstream (None once one does): a client
        # behind the proxy only sees "accepted, then closed", so callers add this to its cause.
        self.upstream_unreachable: str | None = None
        # Frame observers (harness/recording): called with every transcript
        # entry and, for decoded frames, the Frame with its payload.
        self.observers: list[FrameObserver] = []
        self.origin = time.monotonic()
        self._ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transcript_path = transcript
        self._transcript: IO[str] | None = None
        for text in faults or []:
            self.faults.set(text)  # raises ProxyFaultError before anything starts

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FaultProxy:
        if self._transcript_path is not None:
            self._transcript_path.parent.mkdir(parents=True, exist_ok=True)
            self._transcript = self._transcript_path.open("a", encoding="utf-8")
        self._server = await asyncio.start_server(self._accept, self.host, self.requested_port)
        log.info("proxy %s:%d -> %s:%d (faults: %s)", self.host, self.port, *self.upstream,
                 ", ".join(self.faults.describe()) or "none")
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self.links.values()):
            link.close("proxy stopping")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        if self.requested_port:
            return self.requested_port
        raise RuntimeError("proxy is not started")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(self, next(self._ids), reader, writer)
        self.links[link.conn_id] = link
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.note(link.conn_id, BOTH, f"accepted from {link.peer}")
        try:
            await link.run()
        except asyncio.CancelledError:
            pass  # stop() ended it; finishing normally keeps asyncio's stream machinery quiet
        finally:
            self._tasks.discard(task)
            self.links.pop(link.conn_id, None)
            self.history.append(link.summary())

    # ------------------------------------------------------------ faults

    def set_fault(self, text: str) -> ProxyFault:
        """Set (or replace) a fault now. `reset` resets every open connection
        at once; `half-close` half-closes every open one."""
        fault = self.faults.set(text)
        log.warning("proxy fault set: %s", fault.text)
        if fault.name == "reset":
            for link in list(self.links.values()):
                link.abort("fault reset: reset when the fault was set")
        elif fault.name == "half-close":
            for link in list(self.links.values()):
                link.half_close(fault.direction)
        return fault

    def clear_fault(self, name: str | None = None) -> None:
        self.faults.clear(name)
        log.warning("proxy fault cleared: %s", name or "all")

    async def reset_all(self) -> int:
        """Reset (RST) every open connection once; returns how many."""
        links = list(self.links.values())
        for link in links:
            link.abort("reset_all: connection reset")
        await asyncio.sleep(0)  # let the links' tasks see it
        return len(links)

    def add_request_guard(self, guard: RequestGuard) -> None:
        """Run `guard` on every client->Gateway frame; a non-None return is
        the reason the frame is refused and its connection closed."""
        self.guards.append(guard)

    def remove_request_guard(self, guard: RequestGuard) -> None:
        self.guards.remove(guard)

    def add_reply_guard(self, guard: RequestGuard) -> None:
        """Run `guard` on every Gateway->client frame; a non-None return is
        the reason the frame is withheld from the client and its connection
        closed (a live run's managedAccounts listing a non-paper account)."""
        self.reply_guards.append(guard)

    # ------------------------------------------------------------ transcript

    def inspect(self, link: Link, direction: str, data: bytes) -> str | None:
        """Decode, record, and run the guards of the direction; returns a
        denial cause or None."""
        decoder = link.decoders[direction]
        guards = self.guards if direction == UP else self.reply_guards
        for frame in decoder.feed(data):
            denial = self._guard(frame, guards)
            self._record(frame, f"DENIED: {denial}" if denial else (decoder.broken or ""))
            if denial is not None:
                self.denied.append({"conn_id": link.conn_id, "message": frame.name, "cause": denial,
                                    "t": round(time.monotonic() - self.origin, 3)})
                log.warning("proxy conn %d: %s", link.conn_id, denial)
                return f"{'request' if direction == UP else 'reply'} guard: {denial}; connection closed"
        self.accounts |= decoder.accounts
        return None

    def block(self, link: Link, blocked: BlockedOrder, payload: bytes) -> str:
        """Record a request the policy refused (transcript, denied, observers);
        returns the link's close cause."""
        frame = Frame(link.conn_id, UP, "message", blocked.name, payload, None, blocked.wire_id, link.server_version)
        self._record(frame, f"DENIED: {blocked.reason}")
        self.blocked.append(blocked)
        for observer in list(self.block_observers):
            observer(blocked)
        self.deny(link, blocked.name, blocked.reason)
        return f"request guard: {blocked.reason}; connection closed"

    def deny(self, link: Link, message: str, cause: str) -> None:
        self.denied.append({"conn_id": link.conn_id, "message": message, "cause": cause,
                            "t": round(time.monotonic() - self.origin, 3)})
        log.warning("proxy conn %d: %s", link.conn_id, cause)

    def add_block_observer(self, observer: Callable[[BlockedOrder], None]) -> None:
        """Call observer(blocked) for every request the policy refuses."""
        self.block_observers.append(observer)

    @staticmethod
    def _guard(frame: Frame, guards: list[RequestGuard]) -> str | None:
        for guard in guards:
            try:
                denial = guard(frame)
            except Exception as exc:  # a broken guard denies: failing closed is the safe side
                denial = f"guard {getattr(guard, '__name__', guard)!r} raised {type(exc).__name__}: {exc}"
            if denial:
                return denial
        return None

    def _record(self, frame: Frame, note: str = "") -> None:
        entry = entry_for(frame, self.origin, note)
        self._keep(entry)
        self._observe(entry, frame)

    def note(self, conn_id: int, direction: str, text: str) -> None:
        entry = note_entry(self.origin, conn_id, direction, text)
        self._keep(entry)
        self._observe(entry, None)

    def add_observer(self, observer: FrameObserver) -> None:
        """Call observer(entry, frame) for every frame (frame set, payload
        included) and every proxy note (frame None: accept, FIN, close), in
        order. Observers must not raise; one that does is logged and dropped."""
        self.observers.append(observer)

    def _observe(self, entry: FrameRecord, frame: Frame | None) -> None:
        for observer in list(self.observers):
            try:
                observer(entry, frame)
            except Exception:
                log.exception("proxy frame observer %r failed; removed", observer)
                self.observers.remove(observer)

    def _keep(self, entry: FrameRecord) -> None:
        self.entries.append(entry)
        if self._transcript is not None:
            self._transcript.write(json.dumps(redact_tree(entry_dict(entry), self.accounts), ensure_ascii=False) + "\n")
            self._transcript.flush()

    def transcript_text(self, conn_id: int | None = None) -> str:
        """The recorded frames as text, account ids redacted."""
        lines = [entry_text(e) for e in self.entries if conn_id is None or e.conn_id == conn_id]
        return redact_text("\n".join(lines), self.accounts)

    def state(self) -> dict[str, Any]:
        return {"listen": f"{self.host}:{self.port if self._server else self.requested_port}",
                "upstream": f"{self.upstream[0]}:{self.upstream[1]}", "faults": self.faults.describe(),
                "connections": [link.summary() for link in self.links.values()],
                "closed_connections": len(self.history), "policy": self.policy.describe(),
                "guards": ["request policy"] + [getattr(g, "__name__", repr(g)) for g in self.guards],
                "denied": self.denied[-20:], "frames_recorded": len(self.entries)}


__all__ = ["FaultProxy", "Link", "ProxyAddressError", "require_loopback"]
