"""The mock IB Gateway server: accepts connections, owns the client-id
registry, the connection cap and every connection's record.

Usable in-process (`async with MockGateway() as gw`) by tests and
benchmarks, and in the foreground by `ibgw mock serve` (harness/cli/mock_serve.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from ..protocol.framing import MAX_FRAME
from . import accept
from .connlog import ConnectionLog
from .faults import UNTIL_RESTART, FaultSet
from .faults.connection import RED_CAUSE
from .instruments import InstrumentBook
from .model import AccountModel
from .profiles import GatewayProfile, get_profile
from .session import (
    CONNECTIVITY_LOST,
    CONNECTIVITY_RESTORED_FARMS,
    CONNECTIVITY_RESTORED_LOST,
    FARMS_BROKEN,
    FARMS_INACTIVE,
    PREFIX,
    Session,
)
from .transcript import ConnectionRecord, TranscriptBudget

log = logging.getLogger("harness.mock")

# A real IB Gateway accepts 32 API clients ("up to 32 client applications",
# IBKR's TWS API docs). The cap counts API clients as the Gateway does: only
# connections that completed startApi hold a slot, so sockets that never
# finish the hello (silent scanners, slowloris) cannot lock real clients out.
DEFAULT_MAX_CLIENTS = 32
# Seconds a connection may take from accept to startApi before it is closed
# (one logged line). An assumption, not a measured Gateway value: what a real
# Gateway does with a socket that never finishes the hello is not public.
# Real clients finish in milliseconds; 30 s leaves room for a loaded machine
# and outlasts the connect timeouts of ib_async (4 s) and the harness (10 s).
# `ibgw mock serve --handshake-timeout`, IBGW_HANDSHAKE_TIMEOUT (container
# entry point), MockGateway(handshake_timeout=...); 0 turns it off.
DEFAULT_HANDSHAKE_TIMEOUT = 30.0
# At most this many connections may be mid-handshake at once; one more
# closes the oldest of them (one logged line). Bounds the sockets a flood
# can hold open inside the deadline; a real client is only evicted when this
# many newer connections arrive during its few-millisecond handshake.
MAX_PENDING_HANDSHAKES = 512
# Client requests are small; a limit far below the 16 MiB reply limit keeps
# a hostile length prefix from making the mock buffer megabytes per socket.
DEFAULT_REQUEST_FRAME_LIMIT = 1 << 20
# How many closed connections' records are kept for evidence.
RECORD_HISTORY = 1000
# A client that stops reading may hold at most this much unsent data
# before the mock stops writing to it (drain() then waits).
WRITE_HIGH_WATER = 256 * 1024


class MockGateway:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        profile: GatewayProfile | str = "default",
        model: AccountModel | None = None,
        accounts: list[str] | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        frame_limit: int = DEFAULT_REQUEST_FRAME_LIMIT,
        faults: list[str] | None = None,
        idle_timeout: float | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        max_pending: int = MAX_PENDING_HANDSHAKES,
        responder: Callable[[Session], Any] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.model = model or AccountModel.default(accounts)
        self.max_clients = max_clients
        self.frame_limit = min(frame_limit, MAX_FRAME)
        # Seconds a connection may send nothing, or read nothing while we
        # have replies queued, before it is closed; None (the default) keeps
        # idle clients forever, as a real Gateway does.
        self.idle_timeout = idle_timeout if idle_timeout and idle_timeout > 0 else None
        # Seconds from accept to startApi (DEFAULT_HANDSHAKE_TIMEOUT); None: no deadline.
        self.handshake_timeout = handshake_timeout if handshake_timeout and handshake_timeout > 0 else None
        self.max_pending = max(1, max_pending)
        self.records: deque[ConnectionRecord] = deque(maxlen=RECORD_HISTORY)
        self.transcripts = TranscriptBudget()  # the bytes all records' frames may hold together
        # Routine per-connection lines: each at INFO at a human pace, a summary beyond (connlog.py).
        self.connlog = ConnectionLog(log, lambda: len(self._sessions))
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the sessions' coroutines (the stream path)
        self._client_ids: dict[int, Session] = {}
        self._conn_ids = itertools.count(1)
        self._released = asyncio.Event()
        self._sessions: set[Session] = set()
        # Connections that completed startApi: the API slots the cap counts.
        self._api_clients: set[Session] = set()
        # Connections still in the handshake, oldest first (dicts keep order),
        # each with what closes it: its task's cancel(), or its callback's drop().
        self._pending: dict[Session, Callable[[], object]] = {}
        # False: every connection goes through the stream coroutine from
        # accept on (accept.py: the callback path serves a handshake while
        # nothing needs waiting); the tests compare the two.
        self.callback_path = True
        self.faults = FaultSet()
        # Answers requests instead of the account model (a recording's replay).
        self.responder_factory = responder
        self.strict = False  # `ibgw mock serve --strict`: an unmodelled request is a visible failure
        self.instrument_book: InstrumentBook | None = None  # the request desk's, built on first use
        # Fault-driven state, all cleared by restart():
        self.red = False  # red-after-disconnect tripped
        # close-wait-leak: sockets we never closed (a session that leaks runs its coroutine: it has a writer)
        self.leaked: list[asyncio.StreamWriter | None] = []
        self.stuck_ids: dict[int, float] = {}  # client-id-stuck: id -> monotonic release time
        self.in_outage = False  # connectivity-loss between 1100 and 1102
        # api-wedge: the mode once the API thread has wedged, the API sessions
        # ended so far (the wedge's trigger), and sockets accepted but never read.
        self.wedged: str | None = None
        self.api_sessions_ended = 0
        self.unread: list[asyncio.StreamWriter | asyncio.BaseTransport] = []
        self.last_api_leave: float | None = None  # closed-after-start-api counts from here
        self.restarts = 0
        self.jitter = random.Random(0)  # latency jitter: deterministic from run to run
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._deadlines: asyncio.TimerHandle | None = None  # the callback handshakes' deadline (accept.py)
        self._wedged_listeners: list[int] = []  # dup'ed listening fds while wedged no-accept (see wedge())
        # A profile's regression fixture (its default faults) first, so an
        # explicit fault of the same name replaces it.
        for text in (*self.profile.default_faults, *(faults or [])):
            self.faults.set(text)  # raises FaultError before anything starts

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> MockGateway:
        await self._listen()
        for name in list(self.faults.active):
            self._arm_timer(name)
        log.info("mock Gateway %s (build %s, server version <= %d) listening on %s:%d",
                 self.profile.name, self.profile.build, self.profile.max_server_version, self.host, self.port)
        return self

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: accept.new_protocol(self), self.host, self.requested_port)
        # Remember the port so a restart comes back where clients expect it.
        self.requested_port = self.port

    async def stop(self) -> None:
        """Stop accepting, drop every connection, wait for their clean-up."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self._close_listener()
        self.connlog.flush()

    async def _close_listener(self, cause: str = "mock shutting down") -> None:
        """Stop accepting and drop every connection. Connections go before
        wait_closed(): from Python 3.12 on it waits for every client
        connection, so awaiting it first would hang with a client attached."""
        server, self._server = self._server, None
        if self._deadlines is not None:
            self._deadlines.cancel()
            self._deadlines = None
        if server is not None:
            server.close()
        self._release_wedged_listeners()
        await self.drop_all(cause)
        if server is not None:
            await server.wait_closed()

    async def drop_all(self, cause: str = "mock shutting down") -> int:
        """Drop every connection (the leaked CLOSE_WAIT ones too); returns how many."""
        for session in list(self._sessions):
            session.drop_cause = cause
        served = [s.conn for s in self._sessions if s.conn is not None and not s.conn.done]
        for conn in served:  # connections served from callbacks close at once
            conn.drop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        leaked, self.leaked = self.leaked, []
        unread, self.unread = self.unread, []
        for writer in (*leaked, *unread):
            if writer is not None:
                writer.close()
        return len(served) + len(tasks) + len(leaked) + len(unread)

    async def restart(self, down: float = 0.0) -> None:
        """The Gateway's restart: every connection dropped, the port refused
        for `down` seconds, then back with fault state (red API, stuck ids,
        leaked sockets) cleared. Faults themselves stay set."""
        self.restarts += 1
        log.warning("mock Gateway restarting (down for %.1f s)", down)
        await self._close_listener("Gateway restart")
        self.red = False
        self.wedged = None
        self.api_sessions_ended = 0
        self.last_api_leave = None
        self.stuck_ids.clear()
        self.in_outage = False
        self._client_ids.clear()
        try:
            if down > 0:
                await asyncio.sleep(down)  # the simulated outage itself, not a wait for an event
        finally:
            # Even when the restart is cancelled mid-outage (fault cleared,
            # teardown), the Gateway comes back rather than staying down.
            if self._server is None:
                await self._listen()
        log.warning("mock Gateway back on %s:%d after restart", self.host, self.port)

    # ------------------------------------------------------------ faults

    def set_fault(self, text: str) -> str:
        """Set (or replace) a fault at run time; timed faults start counting now."""
        name = self.faults.set(text)
        if self._server is not None:
            self._arm_timer(name)
        log.warning("fault set: %s", text)
        return name

    def clear_fault(self, name: str | None = None) -> None:
        self.faults.clear(name)
        for key in [name] if name else list(self._timers):
            timer = self._timers.pop(key, None) if key else None
            if timer is not None:
                timer.cancel()
        log.warning("fault cleared: %s", name or "all")

    def _arm_timer(self, name: str) -> None:
        """Ask the fault what to do once set: a timed fault gives its timer."""
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        timer = self.faults.arm(name, self)
        if timer is not None:
            self._timers[name] = asyncio.create_task(timer)

    def note_api_session_end(self) -> None:
        """A session that started the API ended on its own (not dropped by
        us): what api-wedge=MODE,AFTER counts before the API wedges."""
        self.api_sessions_ended += 1
        self.last_api_leave = time.monotonic()
        self.faults.on_api_session_end(self)

    def closes_after_start_api(self) -> str | None:
        """Why this startApi gets a bare close (fault closed-after-start-api), or None."""
        return self.faults.closes_after_start_api(self)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def wedge(self, mode: str) -> None:
        """The API thread wedges (gnzsnz/ib-gateway-docker#336,
        nautechsystems/nautilus_trader#4796): every open session stops being
        read and answered, and new connections are either left in the
        kernel's accept queue (no-accept: the socket keeps listening, the
        listener's Recv-Q grows) or accepted and never read (no-read).
        Clients that give up leave CLOSE_WAIT sockets behind; only a
        restart clears it."""
        self.wedged = mode
        log.warning("fault api-wedge: the API thread is wedged (%s) after %d API session(s)", mode,
                    self.api_sessions_ended)
        if mode == "no-accept" and self._server is not None:
            # A duplicate of each listening descriptor keeps the kernel's socket listening (its accept
            # queue fills, Recv-Q grows) once the server closes its own, so accept() is never called on
            # any event loop: removing the loop's reader did that on asyncio's own loop only, uvloop
            # kept accepting. The server object stays (self.listening); restart() releases the dups.
            self._wedged_listeners += [os.dup(sock.fileno()) for sock in self._server.sockets]
            self._server.close()
        for session in list(self._sessions):
            session.wedge()

    def _release_wedged_listeners(self) -> None:
        held, self._wedged_listeners = self._wedged_listeners, []
        for fd in held:
            os.close(fd)

    async def connectivity_loss(self, at: float, duration: float) -> None:
        """IB's connectivity lost AT s from now for FOR s (fault connectivity-loss)."""
        await asyncio.sleep(at)  # scheduled fault offset
        self.in_outage = True
        log.warning("fault connectivity-loss: connectivity lost for %.1f s", duration)
        for session in list(self._sessions):
            session.notify_outage_start()
        await asyncio.sleep(duration)  # the outage's length
        self.in_outage = False
        for session in list(self._sessions):
            session.notify_outage_end()
        log.warning("fault connectivity-loss: connectivity restored")

    def _broadcast(self, code: int, text: str) -> None:
        for session in list(self._sessions):
            session.notify(code, text)

    async def nightly_reset(self, duration: float, *, repeats: int = 3, data_lost: bool = False,
                            phase: Callable[[str], None] | None = None) -> None:
        """IB's nightly reset as Gateway logs show it (IbcAlpha/IBC#143, #251):
        error 1100 repeated while IB is unreachable, then the farms broken
        (2103/2105), then 1102 carrying the farm list (or 1101: data lost,
        resubscribe), then the farms inactive (2107/2108, paper accounts).
        The socket stays up throughout. `phase` hears each step by name (the
        soak's evidence). The sleeps ARE the reset's timing."""
        def step(name: str) -> None:
            log.warning("nightly reset: %s", name)
            if phase is not None:
                phase(name)

        interval = duration / (repeats + 1)
        self.in_outage = True
        try:
            for i in range(repeats):
                self._broadcast(*CONNECTIVITY_LOST)
                step(f"1100 connectivity lost ({i + 1} of {repeats})")
                await asyncio.sleep(interval)  # the reset's pace between repeated 1100s
            for code, text in FARMS_BROKEN:
                self._broadcast(code, text)
            step("2103/2105 data farms broken")
            await asyncio.sleep(interval)  # farms down until IB is back
        finally:
            self.in_outage = False
            self._broadcast(*(CONNECTIVITY_RESTORED_LOST if data_lost else CONNECTIVITY_RESTORED_FARMS))
            step("1101 restored, data lost" if data_lost else "1102 restored, data maintained, with the farm list")
            for code, text in FARMS_INACTIVE:
                self._broadcast(code, text)
            step("2107/2108 data farms inactive")

    @property
    def effective_max_clients(self) -> int:
        return self.faults.max_clients(self.max_clients)

    @property
    def effective_max_server_version(self) -> int:
        return self.faults.max_server_version(self.profile.max_server_version)

    def handshake_blocked(self) -> str | None:
        """Why a new handshake must go unanswered right now, or None."""
        # A red API stays red once its fault is cleared: only a restart heals it.
        return self.faults.blocks_handshake(self) or (RED_CAUSE if self.red else None)

    def state(self) -> dict[str, object]:
        """What the control endpoint reports."""
        now = time.monotonic()
        return {
            "profile": self.profile.name, "build": self.profile.build,
            "max_server_version": self.effective_max_server_version,
            "host": self.host, "port": self.requested_port or None, "listening": self._server is not None,
            "faults": self.faults.describe(), "active_connections": self.active_connections,
            "api_clients": self.api_clients,
            "client_ids_in_use": self.client_ids_in_use, "red": self.red, "close_wait_leaked": len(self.leaked),
            "stuck_client_ids": {str(k): (None if v == UNTIL_RESTART else round(v - now, 3))
                                 for k, v in self.stuck_ids.items() if v > now},
            "wedged": self.wedged, "unread_sockets": len(self.unread), "api_sessions_ended": self.api_sessions_ended,
            "in_outage": self.in_outage, "restarts": self.restarts, "connections_seen": len(self.records),
        }

    async def __aenter__(self) -> MockGateway:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Serve until cancelled. Not the server's own serve_forever(): a restart
        or a no-accept wedge closes that server, which would end it."""
        if self._server is None:
            await self.start()
        await asyncio.get_running_loop().create_future()  # resolved by nothing: ends when cancelled

    @property
    def port(self) -> int:
        """The bound port; stays known while a restart has the port down."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        if self.requested_port:
            return self.requested_port
        raise RuntimeError("mock Gateway is not started")

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def active_connections(self) -> int:
        return len(self._sessions)

    @property
    def api_clients(self) -> int:
        """Connections that completed startApi: what the client cap counts."""
        return len(self._api_clients)

    @property
    def client_ids_in_use(self) -> list[int]:
        return sorted(self._client_ids)

    # ------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection through the streams from accept on (a fault, a
        replay or an idle timeout applies; accept.py says when)."""
        session = self._admit(cast(asyncio.Transport, writer.transport), writer)
        if session is None:
            return
        session.reader = reader
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._pending[session] = task.cancel
        await self._run(session)

    async def _run(self, session: Session, stage: int = PREFIX, exc: Exception | None = None) -> None:
        """The session's coroutine (from accept, or from where the callback
        path handed over) and the bookkeeping when it ends."""
        task = asyncio.current_task()
        try:
            await session.run(stage, exc)
        except asyncio.CancelledError:
            # Our own stop() cancelled it. Ending the callback task normally
            # keeps asyncio's stream machinery from logging a spurious error.
            pass
        finally:
            self._tasks.discard(task)
            self._forget(session)

    def _admit(self, transport: asyncio.Transport, writer: asyncio.StreamWriter | None = None) -> Session | None:
        """A new connection's record, and its session unless it is closed
        at once (a wedged API, a fault, the client cap); both paths."""
        peer = transport.get_extra_info("peername")
        record = ConnectionRecord(next(self._conn_ids), f"{peer[0]}:{peer[1]}" if peer else "?",
                                  budget=self.transcripts)
        self.records.append(record)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.wedged == "no-read":
            # Accepted by the kernel's and Java's accept(), then never read:
            # the client's bytes stay in Recv-Q and its close leaves CLOSE_WAIT.
            transport.pause_reading()
            self.unread.append(writer if writer is not None else transport)
            record.close("fault api-wedge: accepted, never read (the API thread is wedged)")
            log.warning("conn %d from %s: %s", record.conn_id, record.peer, record.close_cause)
            return None
        refused = self.faults.refuses_accept(self) if self.faults.objects else None
        if refused:
            record.close(refused)
            log.warning("conn %d from %s: %s", record.conn_id, record.peer, record.close_cause)
            transport.close()
            return None
        if len(self._api_clients) >= self.effective_max_clients:
            # Assumption (documented): over the cap the Gateway accepts and
            # closes without a reply; clients see it as a handshake timeout.
            record.close(f"connection cap of {self.effective_max_clients} clients reached")
            log.warning("conn %d from %s refused: %s", record.conn_id, record.peer, record.close_cause)
            transport.close()
            return None
        if len(self._pending) >= self.max_pending:
            self._evict_oldest_pending()
        session = Session(self, transport, record, writer=writer)
        self._sessions.add(session)
        return session

    def _forget(self, session: Session) -> None:
        """A session has ended: out of every set that counts it."""
        self._sessions.discard(session)
        self._pending.pop(session, None)
        self._api_clients.discard(session)

    def _evict_oldest_pending(self) -> None:
        """Close the connection that has waited longest in the handshake."""
        session, close = next(iter(self._pending.items()))
        del self._pending[session]
        session.drop_cause = f"{self.max_pending} connections mid-handshake: the oldest is closed"
        log.warning("conn %d from %s closed: %s", session.record.conn_id, session.record.peer, session.drop_cause)
        close()

    def _admit_api_client(self, session: Session) -> bool:
        """Give a connection that sent startApi an API slot; False over the cap."""
        self._pending.pop(session, None)
        if len(self._api_clients) >= self.effective_max_clients:
            return False
        self._api_clients.add(session)
        return True

    def _claim_client_id(self, client_id: int, session: Session) -> bool:
        if client_id in self._client_ids:
            return False
        if self.stuck_ids.get(client_id, 0.0) > time.monotonic():
            return False
        self._client_ids[client_id] = session
        return True

    def _release_client_id(self, client_id: int, session: Session) -> None:
        if self._client_ids.get(client_id) is session:
            del self._client_ids[client_id]
            self.faults.on_client_id_released(self, client_id)
            self._released.set()

    async def wait_client_id_free(self, client_id: int, timeout: float = 5.0) -> bool:
        """Wait until the mock has seen a client's close and freed its id.

        A client's disconnect() returns before the Gateway side has read the
        EOF; a test that reuses the id at once would race into error 326,
        exactly as against a real Gateway. Returns False on timeout.
        """
        try:
            async with asyncio.timeout(timeout):
                while client_id in self._client_ids:
                    self._released.clear()
                    await self._released.wait()
        except TimeoutError:
            return False
        return True

    def record_for_client(self, client_id: int) -> ConnectionRecord | None:
        """The newest connection record of a client id (evidence for a test)."""
        for record in reversed(self.records):
            if record.client_id == client_id:
                return record
        return None
