"""The callback handshake (harness/mock/accept.py) changes cost, not behaviour.

The same client input gives byte-identical server output whether the
handshake is answered from the transport's callbacks or by the stream
coroutine (MockGateway.callback_path=False), at a text-era version (the
10.19 profile, 176) and a protobuf-era one (10.50, 226); and a fault set
before connect, or while the handshake runs, still takes the coroutine
path. Once through a raw client (the exact bytes), once through each real
client, unmodified (the transcript of what the mock sent).

The server's clock is frozen for these tests (the session module's `time`
only): the version reply's connection time and the notices' error times
would otherwise differ between two runs a millisecond apart.
"""

from __future__ import annotations

import asyncio
import struct
import time
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.clients.ib_async_client import IbAsyncClient
from harness.clients.ibapi_client import IbapiClient
from harness.mock import MockGateway, accept
from harness.mock import session as session_module
from harness.protocol.handshake import encode_hello, start_api_frame
from harness.protocol.messages import Out
from harness.protocol.wire import encode_request
from tests.support.mockclient import TIMEOUT, until
from tests.support.processes import MockServe

HOST = "127.0.0.1"
FROZEN = 1_780_000_000.25  # the server's time.time() in these tests
# (profile, the client's version range): a text-era and a protobuf-era handshake.
ERAS = {"text-10.19": ("10.19", 100, 176), "protobuf-10.50": ("10.50", 100, 226)}
# Requests that follow startApi in the same segment: answered from the callback
# on one path, by the coroutine on the other.
REQUESTS: list[list[Any]] = [[Out.REQ_CURRENT_TIME, 1], [Out.REQ_MANAGED_ACCTS, 1], [Out.REQ_IDS, 1, 1],
                             [Out.REQ_POSITIONS, 1]]
STREAM_PROTOCOLS = (asyncio.StreamReaderProtocol,)
NO_OP_FAULT = "latency=0"  # a fault that changes no byte: every reply "delayed" by 0 ms


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The session module sees a clock that stands still; nothing else does."""
    stub = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    stub.time = lambda: FROZEN
    stub.strftime = lambda fmt, *when: time.strftime(fmt, time.gmtime(FROZEN))
    monkeypatch.setattr(session_module, "time", stub)
    yield


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
    return head + await asyncio.wait_for(reader.readexactly(struct.unpack(">I", head)[0]), TIMEOUT)


async def _conversation(gw: MockGateway, low: int, high: int) -> tuple[bytes, object]:
    """Hello, then startApi and REQUESTS in one segment, then EOF: every
    byte the mock sent until it closed, and the protocol serving the
    connection while its handshake was half done."""
    reader, writer = await asyncio.open_connection(HOST, gw.port)
    try:
        writer.write(encode_hello(low, high))
        hello = await _read_frame(reader)
        version = int(hello[4:].split(b"\0")[0])
        (session,) = gw._sessions  # test-only look at the live session
        serving = session.transport.get_protocol()
        writer.write(start_api_frame(7, version) + b"".join(encode_request(version, f)[0] for f in REQUESTS))
        writer.write_eof()
        rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        while chunk := await asyncio.wait_for(reader.read(), TIMEOUT):
            rest += chunk
    finally:
        writer.close()
    return hello + rest, serving


def _frames(gw: MockGateway) -> list[tuple[str, str, list[str]]]:
    """The transcript without its times: (direction, name, fields) per frame."""
    (record,) = gw.records
    return [(e.direction, e.name, e.fields) for e in record.entries]


async def _run(profile: str, low: int, high: int, *, callbacks: bool, faults: list[str] | None = None) -> tuple[
        bytes, object, list[tuple[str, str, list[str]]], str | None]:
    gw = MockGateway(HOST, 0, profile=profile, faults=faults)
    gw.callback_path = callbacks
    async with gw:
        sent, serving = await _conversation(gw, low, high)
        await until(lambda: gw.records[0].close_cause is not None)
        return sent, serving, _frames(gw), gw.records[0].close_cause


@pytest.mark.parametrize("era", sorted(ERAS))
async def test_callback_and_coroutine_handshakes_send_the_same_bytes(era: str) -> None:
    profile, low, high = ERAS[era]
    fast, fast_protocol, fast_frames, fast_cause = await _run(profile, low, high, callbacks=True)
    slow, slow_protocol, slow_frames, slow_cause = await _run(profile, low, high, callbacks=False)
    assert isinstance(fast_protocol, accept.Connection)
    assert isinstance(slow_protocol, STREAM_PROTOCOLS)
    assert fast == slow
    assert fast_frames == slow_frames
    assert fast_cause == slow_cause == "client closed the connection"
    names = [name for direction, name, _ in fast_frames if direction == "send"]
    assert names[0] == "serverVersion" and "currentTime" in names and "nextValidId" in names, names


@pytest.mark.parametrize("era", sorted(ERAS))
async def test_a_fault_set_before_connect_takes_the_coroutine_path(era: str) -> None:
    """latency=0 delays nothing but is a fault: the handshake goes through
    the streams and its output is what the callback path sends without it."""
    profile, low, high = ERAS[era]
    fast, _, fast_frames, _ = await _run(profile, low, high, callbacks=True)
    faulted, protocol, faulted_frames, cause = await _run(profile, low, high, callbacks=True,
                                                          faults=[NO_OP_FAULT])
    assert isinstance(protocol, STREAM_PROTOCOLS)
    assert faulted == fast and faulted_frames == fast_frames
    assert cause == "client closed the connection"


async def test_a_fault_set_mid_handshake_hands_over_to_the_coroutine() -> None:
    """Between the version reply and startApi a fault is set: the callback
    hands the connection to the coroutine, which applies it (missing
    nextValidId: the burst leaves it out)."""
    async with MockGateway(HOST, 0) as gw:
        reader, writer = await asyncio.open_connection(HOST, gw.port)
        try:
            writer.write(encode_hello(100, 178))
            await _read_frame(reader)
            (session,) = gw._sessions
            assert isinstance(session.transport.get_protocol(), accept.Connection)
            gw.set_fault("no-next-valid-id")
            writer.write(start_api_frame(3, 178))
            burst = [await _read_frame(reader) for _ in range(1 + len(gw.profile.farm_notices))]
            assert not isinstance(session.transport.get_protocol(), accept.Connection)
            assert [f[4:].split(b"\0")[0] for f in burst] == [b"15"] + [b"4"] * len(gw.profile.farm_notices)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        finally:
            writer.close()
        await until(lambda: gw.records[0].close_cause is not None)
        assert gw.records[0].close_cause == "client closed the connection"
        assert gw.active_connections == 0


# ---------------------------------------------------------------- the real clients


@pytest.fixture(params=["ib_async", "ibapi"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[IbAsyncClient | IbapiClient]:
    adapter = IbAsyncClient() if request.param == "ib_async" else IbapiClient()
    try:
        yield adapter
    finally:
        await adapter.disconnect()


def _sent(gw: MockGateway) -> list[tuple[str, list[str]]]:
    (record,) = gw.records
    return [(e.name, e.fields) for e in record.entries if e.direction == "send"]


async def _real(adapter: IbAsyncClient | IbapiClient, profile: str, *, callbacks: bool,
                faults: list[str] | None = None) -> tuple[object, list[tuple[str, list[str]]], Any]:
    gw = MockGateway(HOST, 0, profile=profile, faults=faults)
    gw.callback_path = callbacks
    async with gw:
        result = await adapter.connect(HOST, gw.port, 21, timeout=10.0)
        (session,) = gw._sessions
        serving = session.transport.get_protocol()
        await adapter.disconnect()
        await until(lambda: gw.records[0].close_cause is not None)
        return serving, _sent(gw), result


@pytest.mark.parametrize("profile", ["10.19", "10.50"])
async def test_real_clients_get_the_same_answers_on_both_paths(client: IbAsyncClient | IbapiClient,
                                                                profile: str) -> None:
    fast_protocol, fast, fast_result = await _real(client, profile, callbacks=True)
    slow_protocol, slow, slow_result = await _real(client, profile, callbacks=False)
    faulted_protocol, faulted, faulted_result = await _real(client, profile, callbacks=True,
                                                            faults=[NO_OP_FAULT])
    assert isinstance(fast_protocol, accept.Connection)
    assert not isinstance(slow_protocol, accept.Connection)
    assert isinstance(faulted_protocol, STREAM_PROTOCOLS)
    assert fast_result.ok and slow_result.ok and faulted_result.ok
    assert fast_result.server_version == slow_result.server_version == faulted_result.server_version
    assert fast == slow == faulted
    assert fast[0][0] == "serverVersion" and any(name == "managedAccounts" for name, _ in fast)


# ---------------------------------------------------------------- `ibgw mock serve` on uvloop


def _shape(sent: bytes) -> list[bytes]:
    """The frames, with what the clock writes masked: the version reply's
    connection time and currentTime's seconds."""
    frames, pos = [], 0
    while pos < len(sent):
        size = struct.unpack_from(">I", sent, pos)[0]
        fields = sent[pos + 4:pos + 4 + size].split(b"\0")
        if pos == 0 or fields[0] == b"49":
            fields = fields[:1] + [b"<time>" if f else f for f in fields[1:]]
        frames.append(b"\0".join(fields))
        pos += 4 + size
    return frames


async def _served_conversation(port: int) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(encode_hello(100, 176))
        hello = await _read_frame(reader)
        writer.write(start_api_frame(7, 176) + b"".join(encode_request(176, f)[0] for f in REQUESTS))
        writer.write_eof()
        rest = b""
        while chunk := await asyncio.wait_for(reader.read(), TIMEOUT):
            rest += chunk
    finally:
        writer.close()
    return hello + rest


async def _bad_prefix_closes(port: int) -> None:
    """A wrong prefix: the callback hands over, the coroutine closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(b"XPI\0")
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        writer.close()


@pytest.mark.parametrize("fault", [None, NO_OP_FAULT])
async def test_served_mock_on_uvloop_answers_as_on_asyncio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            fault: str | None) -> None:
    """IBGW_MOCK_LOOP=uvloop: the callback path (no fault) and the stream
    path with lean.py after startApi (a fault) send what the standard
    loop's mock sends, and a wrong prefix handed to the coroutine closes."""
    pytest.importorskip("uvloop")
    args = ["--profile", "10.19", *(["--fault", fault] if fault else [])]
    shapes = {}
    for loop in ("asyncio", "uvloop"):
        monkeypatch.setenv("IBGW_MOCK_LOOP", loop)
        served = MockServe(tmp_path / f"{loop}.log", *args)
        try:
            shapes[loop] = _shape(await _served_conversation(served.port))
            await _bad_prefix_closes(served.port)
        finally:
            served.close()
        log = served.stderr
        assert ("event loop: uvloop" in log) == (loop == "uvloop"), log
        assert "connection did not start with API" in log and "internal error" not in log, log
    assert shapes["uvloop"] == shapes["asyncio"]
    assert len(shapes["asyncio"]) > 2 + len(REQUESTS)
