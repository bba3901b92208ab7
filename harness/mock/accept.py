"""A connection's accept and handshake answered from the transport's
callbacks while nothing needs the session's coroutine, then its requests.

Why: through asyncio streams a handshake costs a StreamReader, a
StreamWriter, a Task and a dozen future wake-ups around a few microseconds
of answering: benchmarks/run_all.py measured the mock's server CPU per
handshake at about 1.8x benchmarks/bare_server.py's, and a bare
streams server doing only the bare server's work at about 1.46x. So while
no fault is set and no replay, idle timeout, wedge or red API applies
(applies() below), a connection is an asyncio.Protocol that answers `API\\0`,
the version range, startApi and the start-up burst (one write) from its
data callbacks, then the API's requests as lean.py does, and the client's
close, with the session's own methods: the same bytes, transcript, log
lines and bookkeeping.

Anything that needs waiting or an unusual cause hands the connection over
to the stream coroutine (Session.run), which goes on at the step the
callback had reached, with what it had not consumed: a fault set while the
handshake runs, input the callback does not take (a wrong or split prefix
is read again by the coroutine; a malformed frame's error is raised there),
the client not reading (backpressure), a refusal, the handshake deadline,
the client closing before its API started, or a lost connection. The
coroutine then closes with the cause and line it always gave.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..protocol.handshake import API_PREFIX
from .session import API, HELLO, PREFIX, START, ConnectionClosed, Refused

if TYPE_CHECKING:
    from .gateway import MockGateway
    from .session import Session

# asyncio.start_server's StreamReader limit (its default), for the stream path.
STREAM_LIMIT = 2**16


def applies(gw: MockGateway) -> bool:
    """Whether a connection may be served from callbacks now: nothing set
    that waits (a fault, an idle timeout, a replay's timing) or changes
    who answers (a wedged or red API)."""
    return (gw.callback_path and not gw.faults.objects and gw.wedged is None and not gw.red
            and not gw.idle_timeout and gw.responder_factory is None)


def new_protocol(gw: MockGateway) -> asyncio.BaseProtocol:
    """The listener's protocol factory: a Connection, or (when callbacks do
    not apply) exactly what asyncio.start_server makes for gateway._accept."""
    if applies(gw):
        return Connection(gw)
    return _stream_protocol(gw._accept)


def _stream_protocol(connected: Any) -> asyncio.StreamReaderProtocol:
    loop = asyncio.get_running_loop()
    return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop), connected, loop=loop)


class Connection(asyncio.Protocol):
    """One connection served from callbacks, until it ends or hands over."""

    def __init__(self, gw: MockGateway) -> None:
        self.gw = gw
        # Set by connection_made (the session: once admitted); None before.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.session: Session = None  # type: ignore[assignment]
        self.stage = PREFIX
        self.got = b""  # the API\0 prefix so far
        self.write_paused = False
        self.in_data = False
        self.done = False  # ended here, or handed over to the stream coroutine

    # ------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = transport  # type: ignore[assignment]
        gw = self.gw
        if not applies(gw):  # a fault set since the factory ran: the whole connection as before
            self._hand_over()
            return
        session = gw._admit(t)  # type: ignore[arg-type]
        if session is None:
            self.done = True
            return
        session.conn = self
        self.session = session
        gw._pending[session] = self.drop
        if gw.handshake_timeout is not None and gw._deadlines is None:
            arm_deadlines(gw, gw.handshake_timeout)

    def data_received(self, data: bytes) -> None:
        if self.stage != API or self.done:
            if not self.done:
                self._handshake(data)
            return
        # After startApi: each request answered as lean.py answers it.
        s, gw = self.session, self.gw
        if gw.faults.objects or gw.wedged is not None:
            self._hand_over(data=data)
            return
        self.in_data = True
        try:
            frames = s.frames.feed(data)
            for i, frame in enumerate(frames):
                request, _form, fields = s._decode(frame)
                s.record.add_request(frame)
                s._answer(request, fields, frame)
                s._flush()
                if self.write_paused or gw.faults.objects or gw.wedged is not None or self.transport.is_closing():
                    # Backpressure, a fault, or a write that failed (the client reset: the
                    # coroutine's drain() names it): the coroutine answers the rest.
                    s.pending.extend(frames[i + 1:])
                    self.in_data = False
                    self._hand_over()
                    return
        except Exception as exc:  # noqa: BLE001 - raised in the coroutine, which closes with its cause
            self.in_data = False
            self._hand_over(exc=exc)
            return
        self.in_data = False

    def _answer_all(self, frames: list[bytes]) -> None:
        s, gw, t = self.session, self.gw, self.transport
        assert s is not None and t is not None
        self.in_data = True
        stop = False
        try:
            for i, frame in enumerate(frames):
                request, _form, fields = s._decode(frame)
                s.record.add_request(frame)
                s._answer(request, fields, frame)
                s._flush()
                if self.write_paused or t.is_closing() or gw.faults.objects or gw.wedged is not None:
                    # Backpressure, a write that failed (the client reset: the coroutine's
                    # drain() names it) or a fault: the coroutine answers the rest.
                    s.pending.extend(frames[i + 1:])
                    stop = True
                    break
        except Exception as exc:  # noqa: BLE001 - raised in the coroutine, which closes with its cause
            self.in_data = False
            self._hand_over(exc=exc)
            return
        self.in_data = False
        if stop or self.write_paused:
            self._hand_over()

    def _handshake(self, data: bytes) -> None:
        """Before startApi: the prefix, the version range, startApi (and
        whatever requests share its segment)."""
        s = self.session
        assert s is not None
        if not applies(self.gw):
            self._hand_over(data=data)
            return
        if self.stage == PREFIX:
            got = self.got + data if self.got else data
            if len(got) < 4 or got[:4] != API_PREFIX:
                if len(got) < 4 and API_PREFIX.startswith(got):
                    self.got = got
                    return
                self.got = b""
                self._hand_over(data=got)  # the coroutine reads the prefix and says what is wrong with it
                return
            self.got = b""
            self.stage = HELLO
            data = got[4:]
            if not data:
                return
        self.in_data = True
        try:
            frames = s.frames.feed(data)
            for i, frame in enumerate(frames):
                if self.stage == START:
                    start = s._before_start_api(frame)
                    if start is None:
                        continue
                    in_use = s._start_api(start)
                    s._flush()
                    self.stage = API
                    if in_use:
                        raise ConnectionClosed(in_use)  # the coroutine closes with it, as after its drain
                    self.in_data = False
                    self._answer_all(frames[i + 1:])  # requests in startApi's segment (and a full buffer)
                    return
                # HELLO; applies() means no fault or red API blocks it (handshake_blocked)
                blocked = s._answer_hello(frame)
                if blocked:
                    raise ConnectionClosed(f"handshake left unanswered: {blocked}")
                self.stage = START
        except Exception as exc:  # noqa: BLE001 - raised in the coroutine, which closes with its cause
            self.in_data = False
            self._hand_over(exc=exc)
            return
        self.in_data = False

    def eof_received(self) -> bool | None:
        if self.done:
            return None
        s = self.session
        if self.stage == API and applies(self.gw) and s is not None:
            s.client_eof = True
            try:
                s.frames.finish()  # raises if the stream ended mid-frame
            except Exception as exc:  # noqa: BLE001 - raised in the coroutine, which closes with its cause
                self._hand_over(exc=exc)
                return True
            self._end("client closed the connection")
            return True
        self._hand_over(eof=True)  # before the API started: the coroutine names how far the client got
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self._hand_over(lost=True, lost_exc=exc)

    def pause_writing(self) -> None:
        # The client stopped reading: the coroutine's drain() must hold us
        # (and our reading) until it catches up.
        self.write_paused = True
        if not self.in_data and not self.done:
            self._hand_over()

    def resume_writing(self) -> None:
        self.write_paused = False

    # ------------------------------------------------------------ the gateway's calls

    def drop(self) -> None:
        """The gateway closes this connection (its stop, a restart, the
        oldest of too many handshakes): with the session's drop_cause."""
        if not self.done and self.session is not None:
            self._end(self.session.drop_cause or "mock shutting down")

    # ------------------------------------------------------------ ending, handing over

    def on_deadline(self) -> None:
        """The handshake deadline passed before startApi (check_deadlines)."""
        if not self.done and self.stage < API:
            self._hand_over(exc=Refused(f"handshake deadline: no startApi within {self.gw.handshake_timeout:g} s "
                                        "of accept"))

    def _end(self, cause: str) -> None:
        """The session's close, here: the same record, line and bookkeeping."""
        self.done = True
        s = self.session
        assert s is not None
        try:
            s._end(cause)
        finally:
            self.gw._forget(s)

    def _hand_over(self, *, exc: Exception | None = None, data: bytes = b"", eof: bool = False, lost: bool = False,
                   lost_exc: Exception | None = None) -> None:
        """Give the transport to asyncio's stream protocol and run the
        session's coroutine from this connection's step, with the bytes not
        consumed here (and the EOF, or the loss) fed to its StreamReader."""
        self.done = True
        gw, s, transport = self.gw, self.session, self.transport
        assert transport is not None
        if self.got:  # a prefix begun: the coroutine reads it again
            data, self.got = self.got + data, b""
        streams: list[Any] = []
        protocol = _stream_protocol(gw._accept if s is None else (lambda r, w: streams.extend((r, w))))
        if not lost:
            transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if s is not None:
            s.reader, s.writer = streams
            task = asyncio.get_running_loop().create_task(gw._run(s, self.stage, exc))
            gw._tasks.add(task)
            if s in gw._pending:
                gw._pending[s] = task.cancel
        if self.write_paused:
            protocol.pause_writing()
        if data:
            protocol.data_received(data)
        if eof:
            protocol.eof_received()
        if lost:
            protocol.connection_lost(lost_exc)


# ---------------------------------------------------------------- the handshake deadline

def arm_deadlines(gw: MockGateway, after: float) -> None:
    """One timer per gateway, not one per connection: at the oldest
    callback handshake's deadline (the pending table is in accept order)."""
    gw._deadlines = asyncio.get_running_loop().call_later(after, check_deadlines, gw)


def check_deadlines(gw: MockGateway) -> None:
    """Hand every callback handshake past gateway.handshake_timeout to the
    coroutine with the deadline's refusal, then wait for the next one's.
    A handshake on the stream path keeps its own asyncio.timeout."""
    gw._deadlines = None
    deadline = gw.handshake_timeout
    if deadline is None or not gw.listening:
        return
    now = time.monotonic()
    for session in list(gw._pending):
        conn = session.conn
        if conn is None or conn.done:
            continue
        left = session.record.accepted_at + deadline - now
        if left > 0:
            arm_deadlines(gw, left)
            return
        conn.on_deadline()
