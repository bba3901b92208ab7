"""Requests answered straight from the transport's data callback, once a
session's API has started and nothing needs the session's coroutine.

Why: through asyncio streams every request costs a StreamReader copy, a
future, a task wake-up and a drain coroutine around a few microseconds of
actual answering: the mock's server CPU per ping (reqCurrentTime) went from
about 1.5x to 1.2-1.3x benchmarks/bare_server.py's with this path
(benchmarks/run_all.py, interleaved runs). While no fault is set, no idle timeout
or replay applies and the client reads what it is sent, the session's
transport is handed to LeanReader, which splits frames and answers each one
with the session's own code (Session._answer: the same handlers, transcript
and single write per answer). Anything that needs waiting hands the
transport back to the stream and the coroutine carries on exactly where the
callback stopped: a fault set at run time (latency, read-only, ...), the
client not reading (backpressure: drain() must stop us), the client's EOF
or a lost connection (the stream reports them as it always did), a
malformed frame or a refused request (raised in the coroutine, which closes
the connection with its cause as before).

A connection accepted while nothing needs the coroutine never meets this
module: accept.py serves it from callbacks from accept on. LeanReader is
for the sessions that went through the coroutine (a fault, since cleared).
"""

from __future__ import annotations

import asyncio
from typing import Any

# The session is session.Session; typed Any here because session.py imports
# this module (harness/mock allows no import cycles, import-linter).
Session = Any


def ready(session: Session) -> bool:
    """Whether the session may be served from the callback now: no fault
    set, no idle timeout, no replay, not wedged, no frame waiting in the
    coroutine's queue, nothing unsent, and nothing left unread in the StreamReader (its
    private buffer: if a future asyncio renames it, sessions simply stay on
    the coroutine path)."""
    gw = session.gw
    if session.pending or session.responder is not None or gw.idle_timeout or gw.faults.objects:
        return False
    if gw.wedged is not None:
        return False
    buffered = getattr(session.reader, "_buffer", None)
    if buffered is None or len(buffered) or session.reader.at_eof():
        return False
    transport = session.writer.transport
    return not transport.is_closing() and transport.get_write_buffer_size() == 0


async def serve(session: Session) -> None:
    """Answer from the callback until it hands back; raises what the
    callback raised (a ProtocolError, a refusal, an internal error)."""
    transport = session.writer.transport
    stream = transport.get_protocol()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    reader = LeanReader(session, stream, done)
    transport.set_protocol(reader)
    try:
        await done
    finally:
        reader.hand_back()


class LeanReader(asyncio.Protocol):
    """The transport's protocol while a session is served from the callback;
    everything but the data goes on to the stream's own protocol (so drain(),
    wait_closed() and the reader's EOF and errors behave as without us)."""

    def __init__(self, session: Session, stream: Any, done: asyncio.Future[None]) -> None:
        self.session = session
        self.stream = stream
        self.done = done
        self.active = True

    def hand_back(self, exc: BaseException | None = None) -> None:
        """Give the transport back to the stream; the coroutine resumes."""
        if self.active:
            self.active = False
            transport = self.session.writer.transport
            if transport.get_protocol() is self:
                transport.set_protocol(self.stream)
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # a late callback after hand-back: the stream's
            self.stream.data_received(data)
            return
        s = self.session
        try:
            frames = s.frames.feed(data)
        except Exception as exc:  # noqa: BLE001 - the coroutine raises it, as _read_some would have
            self.hand_back(exc)
            return
        gw = s.gw
        for i, payload in enumerate(frames):
            if gw.faults.objects or gw.wedged is not None or not self.active:
                s.pending.extend(frames[i:])  # the coroutine answers these, faults and all
                self.hand_back()
                return
            try:
                request, _form, fields = s._decode(payload)
                s.record.add_request(payload)
                s._answer(request, fields, payload)
                s._flush()
            except Exception as exc:  # noqa: BLE001 - re-raised in the coroutine, which closes with its cause
                self.hand_back(exc)
                return

    def eof_received(self) -> bool | None:
        result = self.stream.eof_received()  # the StreamReader sees the end; the coroutine reads it
        self.hand_back()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self.stream.connection_lost(exc)
        self.hand_back()

    def pause_writing(self) -> None:
        # The client stopped reading: the coroutine's drain() must hold us
        # (and our reading) until it catches up, as it always did.
        self.stream.pause_writing()
        self.hand_back()

    def resume_writing(self) -> None:
        self.stream.resume_writing()
