"""The harness's reference reconnecting client.

Why it exists: every long-running TWS API process must survive the
Gateway's daily restart (the port refused for a minute or more), a
connectivity loss between the Gateway and IB (error 1100 ... 1102, the
socket stays up) and a dropped connection. Field reports show most
home-grown reconnect loops get one of these wrong: they hammer a refused
port, reconnect with a new client id (orphaning the old one's state), treat
a returned connect call as ready, or tear the socket down on 1100 when it
should wait for 1102. This is the behaviour the harness recommends, and the
one the soak keeps alive and measures:

- the same client id on every attempt;
- exponential backoff with a cap (and a little deterministic jitter);
- "recovered" only once the API is ready (harness.scenarios.readiness);
- 1100 ... 1101/1102 recorded as an outage of *data*, never of the link;
- a link that stops answering pings (a blackholed path, a half-open socket)
  is declared dead after N consecutive unanswered pings and reconnected.

Every disconnect, failed attempt, recovery and data outage is an event with
a monotonic and a wall-clock timestamp, delivered to subscribers as it
happens and kept in `events` / `outages` for evidence.

It wraps an adapter *factory*, so the same loop drives raw, ib_async and
ibapi; each attempt gets a fresh adapter (library state from a dead
connection is never reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..targets.base import Endpoint
from .base import ClientAdapter, ConnectResult, GatewayMessage, HandshakeError, events_of
from .readiness import connect_until_ready

log = logging.getLogger("harness.clients.reconnecting")

# TWS API system messages (error ids) about the Gateway <-> IB link.
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_LOST = 1101  # restored, data lost: subscriptions must be re-made
CONNECTIVITY_RESTORED = 1102  # restored, data maintained

# Event kinds (the `kind` of a LinkEvent).
CONNECTED = "connected"
DISCONNECTED = "disconnected"
ATTEMPT_FAILED = "reconnect_attempt_failed"
RECOVERED = "recovered"
DATA_LOST = "data_lost"
DATA_RESTORED = "data_restored"
GAVE_UP = "not_reconnecting"


class NotConnected(ConnectionError):
    """The link is down (reconnecting, or reconnecting is switched off)."""


@dataclass
class Backoff:
    """Delays between reconnect attempts: initial * factor**n, capped.

    The cap matters more than the curve: during a daily restart the port is
    refused for a minute or more, and a client that keeps doubling its delay
    would come back minutes after the Gateway did.
    """

    initial: float = 0.25
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.1  # +- fraction, so many clients do not retry in lock-step
    seed: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.cap < self.initial or not 0 <= self.jitter < 1:
            raise ValueError(f"bad backoff {self}: need initial > 0, factor >= 1, cap >= initial, 0 <= jitter < 1")
        self._random = random.Random(self.seed)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (1-based) of a recovery."""
        base = min(self.cap, self.initial * self.factor ** max(0, attempt - 1))
        return base * (1 + self._random.uniform(-self.jitter, self.jitter))


@dataclass
class LinkEvent:
    kind: str
    client: str
    client_id: int
    t: float  # monotonic seconds (time.monotonic)
    wall: str  # ISO-8601 UTC
    detail: str = ""
    duration_s: float | None = None  # recovered: the outage; data_restored: the data outage
    attempts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outage:
    """One outage as the client saw it. kind: "connection" (the socket was
    gone) or "data" (1100: socket up, IB unreachable)."""

    kind: str
    start: float  # monotonic
    cause: str
    end: float | None = None
    attempts: int = 0  # connect attempts it took (connection outages)
    failures: list[str] = field(default_factory=list)  # distinct failed-attempt causes, in order
    repeats: int = 0  # further 1100s inside a data outage (the nightly reset repeats it)
    ended_by: int | None = None  # 1102 (data maintained) or 1101 (data lost: subscriptions must be made again)

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else round(self.end - self.start, 6)

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        return {"kind": self.kind, "start_s": round(self.start - origin, 3),
                "end_s": None if self.end is None else round(self.end - origin, 3),
                "duration_s": self.duration_s, "cause": self.cause, "attempts": self.attempts,
                "failures": self.failures, "repeats": self.repeats, "ended_by": self.ended_by}


Listener = Callable[[LinkEvent], None]


class ReconnectingClient:
    """Keeps one API connection (one client id) alive through outages.

    Usage::

        rc = ReconnectingClient(lambda: make_client("raw"), endpoint, client_id=11)
        await rc.start()            # first connect, retried with the same backoff
        await rc.ping()             # NotConnected while the link is down
        await rc.close()

    `reconnect=False` keeps the bookkeeping but never reconnects: a soak run
    that way shows what a client without a reconnect loop suffers.
    """

    def __init__(self, factory: Callable[[], ClientAdapter], endpoint: Endpoint, client_id: int, *,
                 name: str | None = None, connect_timeout: float = 10.0, backoff: Backoff | None = None,
                 reconnect: bool = True, dead_after_missed_pings: int = 3) -> None:
        self.factory = factory
        self.endpoint = endpoint
        self.client_id = client_id
        self.name = name or "client"
        self.connect_timeout = connect_timeout
        self.backoff = backoff or Backoff()
        self.reconnect = reconnect
        self.dead_after_missed_pings = dead_after_missed_pings
        self.adapter: ClientAdapter | None = None
        self.result: ConnectResult | None = None
        self.events: list[LinkEvent] = []
        self.outages: list[Outage] = []
        self.account_updates = 0  # account-value messages seen on the stream (where the library shows them)
        self.connects = 0
        self._listeners: list[Listener] = []
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._watch_tasks: list[asyncio.Task[Any]] = []
        self._generation = 0  # bumps per connection: late callbacks from a dead one are ignored
        self._missed_in_row = 0
        self._seen_messages = 0
        self._unsubscribe: list[Callable[[], None]] = []  # stops this client's listeners on the adapter

    # ------------------------------------------------------------ public

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def data_outage(self) -> Outage | None:
        """The open data outage (1100 seen, no 1101/1102 yet), if any."""
        for outage in reversed(self.outages):
            if outage.kind == "data" and outage.end is None:
                return outage
        return None

    async def start(self, timeout: float | None = None) -> ConnectResult:
        """Connect the first time, retrying with backoff until `timeout`
        (default: three connect timeouts). Raises the last HandshakeError."""
        deadline = time.monotonic() + (timeout if timeout is not None else 3 * self.connect_timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._connect_once()
            except HandshakeError as exc:
                if time.monotonic() + self.backoff.delay(attempt) >= deadline:
                    raise
                log.info("%s: first connect attempt %d failed (%s); retrying", self.name, attempt, exc)
                await asyncio.sleep(self.backoff.delay(attempt))  # backoff between attempts
                continue
            self._emit(CONNECTED, f"server version {result.server_version}", attempts=attempt)
            self._supervisor = asyncio.create_task(self._supervise(), name=f"reconnect-{self.name}")
            return result

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def ping(self, timeout: float = 5.0) -> float:
        """One reqCurrentTime round trip on the current connection.

        NotConnected while down; TimeoutError when unanswered (after
        `dead_after_missed_pings` of those in a row, outside a data outage,
        the link is declared dead and reconnected); a ConnectionError from the
        library marks the link down at once.
        """
        adapter = self.adapter
        if adapter is None or not self._up.is_set():
            raise NotConnected(f"{self.name}: not connected")
        generation = self._generation
        try:
            seconds = await adapter.ping(timeout)
        except TimeoutError:
            self._missed_in_row += 1
            if (self._missed_in_row >= self.dead_after_missed_pings and self.data_outage is None
                    and generation == self._generation):
                self._link_lost(generation, f"{self._missed_in_row} pings in a row unanswered: link presumed dead")
            raise
        except ConnectionError as exc:
            self._link_lost(generation, f"ping failed: {exc}")
            raise NotConnected(f"{self.name}: {exc}") from exc
        finally:
            self._poll_messages(generation)
        self._missed_in_row = 0
        return seconds

    async def close(self) -> None:
        """Stop reconnecting and disconnect; safe to call twice."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        self._generation += 1  # whatever the closing connection reports now is ours, not an outage
        self._up.clear()
        await self._drop_adapter()

    # ------------------------------------------------------------ the loop

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            await self._down.wait()
            outage = self.outages[-1]
            if not self.reconnect:
                self._emit(GAVE_UP, "reconnecting is switched off; the link stays down")
                return
            attempt = 0
            while not self._stopping.is_set():
                attempt += 1
                delay = self.backoff.delay(attempt)
                # The backoff itself: waiting is the point, but close() must cut it short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                outage.attempts = attempt
                try:
                    result = await self._connect_once()
                except HandshakeError as exc:
                    cause = f"{exc.phase}: {exc.cause}"
                    if not outage.failures or outage.failures[-1] != cause:
                        outage.failures.append(cause)
                    self._emit(ATTEMPT_FAILED, cause, attempts=attempt)
                    continue
                outage.end = time.monotonic()
                self._emit(RECOVERED, f"ready again (server version {result.server_version})",
                           duration_s=outage.duration_s, attempts=attempt)
                break

    async def _connect_once(self) -> ConnectResult:
        await self._drop_adapter()
        adapter = self.factory()
        self.adapter = adapter
        try:
            result = await connect_until_ready(adapter, self.endpoint, self.client_id,
                                               timeout=self.connect_timeout)
        except HandshakeError:
            await self._drop_adapter()
            raise
        except (OSError, ConnectionError) as exc:  # a library that raises past the adapter
            await self._drop_adapter()
            raise HandshakeError("tcp_connect", str(exc) or type(exc).__name__) from exc
        self.result = result
        self.connects += 1
        self._generation += 1
        self._missed_in_row = 0
        self._seen_messages = 0
        self._down.clear()
        self._up.set()
        self._watch(adapter, self._generation)
        self._poll_messages(self._generation)
        return result

    async def _drop_adapter(self) -> None:
        for task in self._watch_tasks:
            task.cancel()
        self._watch_tasks.clear()
        for stop in self._unsubscribe:
            stop()
        self._unsubscribe = []
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            with contextlib.suppress(Exception):
                await adapter.disconnect()

    # ------------------------------------------------------------ watching

    def _watch(self, adapter: ClientAdapter, generation: int) -> None:
        """Hear about a closed link and about system messages as they happen,
        from the adapter's events (base.AdapterEvents). An adapter that
        announces nothing leaves a dead link to the next ping, and messages
        are read from ConnectResult.messages then.
        """
        events = events_of(adapter)

        def on_account_value() -> None:
            if generation == self._generation:
                self.account_updates += 1

        def on_message(_msg: GatewayMessage) -> None:
            self._poll_messages(generation)

        self._unsubscribe = [events.on_message(on_message),
                             events.on_account_value(on_account_value)]

        async def wait_closed() -> None:
            await events.closed.wait()
            self._link_lost(generation, events.close_cause or "connection closed")

        self._watch_tasks.append(asyncio.create_task(wait_closed()))

    def _poll_messages(self, generation: int) -> list[int]:
        """Act on system messages not yet seen in the connection's message list; returns their codes."""
        if generation != self._generation or self.result is None:
            return []
        messages = self.result.messages
        new, self._seen_messages = messages[self._seen_messages:], len(messages)
        for message in new:
            self._on_system_message(generation, message)
        return [message.code for message in new]

    def _on_system_message(self, generation: int, message: GatewayMessage) -> None:
        if generation != self._generation:
            return
        if message.code == CONNECTIVITY_LOST and self.data_outage is not None:
            self.data_outage.repeats += 1  # one outage, however often IB repeats 1100
        elif message.code == CONNECTIVITY_LOST:
            self.outages.append(Outage("data", time.monotonic(), f"error {message.code}: {message.message}"))
            self._emit(DATA_LOST, f"error {message.code}: {message.message}")
        elif message.code in (CONNECTIVITY_RESTORED, CONNECTIVITY_RESTORED_LOST):
            outage = self.data_outage
            if outage is not None:
                outage.end = time.monotonic()
                outage.ended_by = message.code
                lost = "; data lost: subscriptions must be made again" if message.code == CONNECTIVITY_RESTORED_LOST \
                    else ""
                self._emit(DATA_RESTORED, f"error {message.code}: {message.message}{lost}",
                           duration_s=outage.duration_s)

    def _link_lost(self, generation: int, cause: str) -> None:
        """The connection of `generation` is gone: start an outage once."""
        if generation != self._generation or not self._up.is_set() or self._stopping.is_set():
            return
        self._up.clear()
        data = self.data_outage
        if data is not None:  # the socket went while IB was unreachable: that outage ends here
            data.end = time.monotonic()
            self._emit(DATA_RESTORED, "connection lost during a data outage", duration_s=data.duration_s)
        self.outages.append(Outage("connection", time.monotonic(), cause))
        self._emit(DISCONNECTED, cause)
        self._down.set()
        for task in self._watch_tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def _emit(self, kind: str, detail: str = "", *, duration_s: float | None = None,
              attempts: int | None = None) -> None:
        event = LinkEvent(kind, self.name, self.client_id, time.monotonic(),
                          datetime.now(timezone.utc).isoformat(timespec="milliseconds"), detail,
                          None if duration_s is None else round(duration_s, 3), attempts)
        self.events.append(event)
        log.info("%s (client id %d): %s %s", self.name, self.client_id, kind, detail)
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):  # a broken listener must never break the link
                listener(event)


__all__ = ["Backoff", "LinkEvent", "NotConnected", "Outage", "ReconnectingClient"]
