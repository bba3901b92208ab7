"""Evasions of the request guard (issue 15): orders and configuration
changes sent the ways an adversarial or unlucky client could send them,
through every proxy path (the in-process FaultProxy, the real `ibgw proxy`
and `ibgw record` subprocesses, the live path's proxy), in
the text era (mock profile 10.19, server version 176) and the protobuf era
(10.50, 226). Each case asserts that none of them reached the mock Gateway
(its per-connection record of received requests) and that the client was
told (an error frame in its era, then the close). A positive control with
--allow-orders shows the observation would see an order that passes.

Frames are built with the official client's own encoders (ibapi comm.make_msg
/ make_msg_proto); the real-client cases drive ib_async and ibapi unmodified.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ibapi import comm
from ibapi.common import PROTOBUF_MSG_ID
from ibapi.message import OUT

from harness.live.proxy_glue import start_recording_proxy, stop_recording_proxy
from harness.mock import MockGateway
from harness.mock.profiles import get_profile
from harness.protocol import FrameReader, encode_hello
from harness.protocol.handshake import exchange_versions, parse_server_hello
from harness.protocol.messages import message_name
from harness.protocol.wire import decode_server_frame
from harness.proxy import FaultProxy
from harness.safety.order_guard import OrderGuard
from harness.safety.stream_guard import (
    CONFIG_BLOCKED_CODE,
    ORDER_BLOCKED_CODE,
    ClientStreamGuard,
    RequestPolicy,
    java_parse_int,
)
from harness.targets.base import TARGET_EXTERNAL, Endpoint
from tests.support.processes import CLI, Spawned

HOST = "127.0.0.1"
TIMEOUT = 10.0  # generous: a loaded 2-core machine
ERAS = {"text": ("10.19", 176), "protobuf": ("10.50", 226)}
ORDER_ID = 7
ORDERS = {"placeOrder": OUT.PLACE_ORDER, "cancelOrder": OUT.CANCEL_ORDER, "exerciseOptions": OUT.EXERCISE_OPTIONS,
          "reqGlobalCancel": OUT.REQ_GLOBAL_CANCEL}
CONFIG = {"updateConfig": OUT.UPDATE_CONFIG, "replaceFA": OUT.REPLACE_FA, "setServerLogLevel": OUT.SET_SERVER_LOGLEVEL,
          "updateDisplayGroup": OUT.UPDATE_DISPLAY_GROUP}
GUARDED = {**ORDERS, **CONFIG}
# What the mock's record calls each guarded request: its own names, so a renamed message can never make
# reached() blind (orders: placeOrder 3, cancelOrder 4, exerciseOptions 21, reqGlobalCancel 58; config:
# setServerLogLevel 14, replaceFA 19, updateDisplayGroup 69, updateConfig 109).
GUARDED_IDS = (3, 4, 21, 58, 14, 19, 69, 109)
MOCK_NAMES = {message_name(i, from_client=True) for i in GUARDED_IDS}


# ------------------------------------------------------------------ frames, as ibapi builds them


def request_frame(msg_id: int, era: str, form: str = "") -> bytes:
    """A complete frame: text in the text era; in the protobuf era the
    protobuf form (id + 200, orderId = field 1), or form="binary" for a
    text body behind a 4-byte id."""
    # Where ibapi puts the id (harness/protocol/orders.py): a VERSION field
    # before it for exerciseOptions, and for cancelOrder below server version 192.
    versioned = msg_id == OUT.EXERCISE_OPTIONS or (msg_id == OUT.CANCEL_ORDER and era == "text")
    text_fields = comm.make_field(1) + comm.make_field(ORDER_ID) if versioned \
        else comm.make_field(ORDER_ID) + comm.make_field(1)
    if era == "text":
        return comm.make_msg(msg_id, False, text_fields)
    if form == "binary":
        return comm.make_msg(msg_id, True, text_fields)
    return comm.make_msg_proto(msg_id + PROTOBUF_MSG_ID, bytes([0x08, ORDER_ID]))


def text_id_frame(id_text: bytes) -> bytes:
    """placeOrder in the text era with its id written another way."""
    payload = id_text + b"\0" + comm.make_field(ORDER_ID).encode() + b"1\0"
    return len(payload).to_bytes(4, "big") + payload


def start_api_frame(client_id: int, version: int) -> bytes:
    fields = comm.make_field(2) + comm.make_field(client_id) + comm.make_field("")
    if version < 201:
        return comm.make_msg(OUT.START_API, False, fields)
    if version < 213:
        return comm.make_msg(OUT.START_API, True, fields)
    return comm.make_msg_proto(OUT.START_API + PROTOBUF_MSG_ID, bytes([0x08, client_id]))


def non_ascii_frame(era: str) -> bytes:
    """reqMatchingSymbols (81) for "Café": a harmless request whose payload
    holds a non-ASCII byte (UTF-8), which the transcript decoder cannot read."""
    body = comm.make_field(9001).encode() + "Café\0".encode()
    if era == "text":
        payload = b"81\0" + body
    else:
        payload = (81).to_bytes(4, "big") + body
    return len(payload).to_bytes(4, "big") + payload


# ------------------------------------------------------------------ the mock, the proxies, the raw client


@pytest.fixture(params=list(ERAS))
def era(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def mock(era: str) -> AsyncIterator[MockGateway]:
    async with MockGateway(port=0, profile=get_profile(ERAS[era][0])) as gw:
        yield gw


def reached(gw: MockGateway) -> list[str]:
    """Guarded requests the mock received, on any connection."""
    return [e.name for r in gw.records for e in r.entries if e.direction == "recv" and e.name in MOCK_NAMES]


async def _free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


async def _banner_port(proc: Spawned, pattern: str) -> int:
    """The port in the stderr line the command prints once it listens."""
    return int((await asyncio.to_thread(proc.wait_for, pattern, 30)).group(1))


class Relay:
    """A byte pipe on a port that outlives the tests, to whichever mock the current test started.

    Why: `ibgw proxy` / `ibgw record` children cost a Python start-up each (about 0.5-1.5 s under
    load) and 108 of this module's tests ran one; the children take their upstream once, on the
    command line, while every test has a mock of its own. So the children are started once per
    module (per kind and allow-options), pointed at this relay, and each test points the relay at
    its own mock. The relay sits behind the guard (client -> child -> relay -> mock), so what the
    guard is fed, and how it is split, is unchanged; what reaches the mock is still read from that
    test's own mock. The tests of this module run one after another (one module, one worker)."""

    def __init__(self) -> None:
        self.upstream = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._pipe(reader, writer, self.upstream))
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: int) -> None:
        try:
            if not upstream:
                raise ConnectionRefusedError("no test is using the relay")
            up_reader, up_writer = await asyncio.open_connection(HOST, upstream)
        except OSError:
            writer.close()  # as a Gateway that is not there: the child sees the connection end
            return
        await asyncio.gather(self._copy(reader, up_writer), self._copy(up_reader, writer))

    @staticmethod
    async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()  # one side ended: end the other, as a direct connection would


_RELAY: list[Relay] = []  # this module's relay, while its tests run
_CHILDREN: dict[tuple[str, bool, bool], tuple[Spawned, int]] = {}  # (command, orders, config) -> child, port
_RECORDINGS: list[tempfile.TemporaryDirectory[str]] = []  # the shared `ibgw record` child's output folder


@pytest.fixture(scope="module", autouse=True)
async def shared_children() -> AsyncIterator[None]:
    """The relay, and at the end every shared child stopped with its exit code checked: `ibgw proxy`
    0; `ibgw record` 0, or 3 when it recorded no API session (what it says when the guard closed
    every stream before its handshake: it never records an empty capture as a success)."""
    relay = Relay()
    await relay.start()
    _RELAY.append(relay)
    try:
        yield
    finally:
        codes = {}
        for (command, orders, config), (proc, _) in list(_CHILDREN.items()):
            codes[(command, orders, config)] = await proc.astop(timeout=15)
        _CHILDREN.clear()
        _RELAY.clear()
        await relay.stop()
        while _RECORDINGS:
            _RECORDINGS.pop().cleanup()
    for (command, _, _), code in codes.items():
        assert code in ((0, 3) if command == "record" else (0,)), (command, code)


async def _shared_child(command: str, upstream_port: int, allow_orders: bool, allow_config: bool) -> int:
    """The listening port of this module's `ibgw <command>` child for these options, started on first
    use, with the relay pointed at `upstream_port` (this test's mock)."""
    relay = _RELAY[0]
    relay.upstream = upstream_port
    key = (command, allow_orders, allow_config)
    if key not in _CHILDREN:
        options = (["--allow-orders"] if allow_orders else []) + (["--allow-config-changes"] if allow_config else [])
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if command == "proxy":
            port = await _free_port()
            proc = Spawned([*CLI, "proxy", "--listen", f"{HOST}:{port}", "--upstream", f"{HOST}:{relay.port}",
                            *options], stream="stderr", env=env)
            assert await _banner_port(proc, rf"proxy {HOST}:(\d+)") == port
        else:
            _RECORDINGS.append(tempfile.TemporaryDirectory(prefix="guard-evasions-"))
            out = Path(_RECORDINGS[-1].name) / "rec.jsonl"
            proc = Spawned([*CLI, "record", "--listen", f"{HOST}:0", "--upstream", f"{HOST}:{relay.port}",
                            "--out", str(out)], stream="stderr", env=env)
            port = await _banner_port(proc, rf"recording {HOST}:(\d+)")
        _CHILDREN[key] = (proc, port)
    proc, port = _CHILDREN[key]
    assert proc.proc.poll() is None, f"the shared ibgw {command} child ended (exit {proc.proc.returncode})"
    return port


@contextlib.asynccontextmanager
async def cli_proxy(upstream_port: int, allow_orders: bool = False, allow_config: bool = False
                    ) -> AsyncIterator[int]:
    """`ibgw proxy` as a subprocess (this module's shared one for these options)."""
    try:
        yield await _shared_child("proxy", upstream_port, allow_orders, allow_config)
    finally:
        _RELAY[0].upstream = 0  # a late connection after the test reaches no port, not another's mock


@contextlib.asynccontextmanager
async def cli_record(upstream_port: int, allow_orders: bool = False) -> AsyncIterator[int]:
    """`ibgw record` as a subprocess (it has no option to allow anything; this module's shared one)."""
    assert not allow_orders
    try:
        yield await _shared_child("record", upstream_port, False, False)
    finally:
        _RELAY[0].upstream = 0  # a late connection after the test reaches no port, not another's mock


@contextlib.asynccontextmanager
async def in_process_proxy(upstream_port: int, allow_orders: bool = False, allow_config: bool = False
                           ) -> AsyncIterator[int]:
    async with FaultProxy((HOST, upstream_port), allow_orders=allow_orders, allow_config_changes=allow_config) as proxy:
        yield proxy.port


@contextlib.asynccontextmanager
async def live_proxy(upstream_port: int, allow_orders: bool = False) -> AsyncIterator[int]:
    """The live path's proxy (harness/live/proxy_glue.py); its OrderGuard
    keeps every refusal as the run's evidence."""
    assert not allow_orders
    guard = OrderGuard()
    proxy, endpoint = await start_recording_proxy(Endpoint(TARGET_EXTERNAL, HOST, upstream_port, "mock"), guard)
    try:
        yield endpoint.port
    finally:
        await stop_recording_proxy(proxy)
    assert [b.name for b in guard.blocked] == [b.name for b in proxy.blocked]


PROXIES: dict[str, Callable[..., Any]] = {"FaultProxy": in_process_proxy, "ibgw-proxy": cli_proxy,
                                          "ibgw-record": cli_record, "live": live_proxy}
ALLOWING = ["FaultProxy", "ibgw-proxy"]  # the paths with an option to allow orders


@pytest.fixture(params=list(PROXIES))
def proxy_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while data := await asyncio.wait_for(reader.read(65536), TIMEOUT):
        out += data
    return bytes(out)


async def handshake(port: int, version: int, client_id: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                                      FrameReader]:
    """Hello, server hello, startApi, and one start-up frame back."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
    reply = await asyncio.wait_for(exchange_versions(reader, writer, 100, version), TIMEOUT)
    assert reply.server_version == version
    frames, got = reply.frames, reply.pending
    writer.write(start_api_frame(client_id, version))
    while not got:
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        assert data, "closed before the start-up burst"
        got += frames.feed(data)
    return reader, writer, frames


def errors_in(version: int, frames: list[bytes]) -> list[tuple[int, int, str]]:
    """(id, code, text) of every error frame the client got."""
    found = []
    for payload in frames:
        msg = decode_server_frame(version, payload)[0]
        if msg.name == "error":
            found.append((msg.int("req_id", -1), msg.int("code", 0), str(msg.fields.get("message", ""))))
    return found


def assert_told(version: int, frames: list[bytes], name: str) -> None:
    errors = errors_in(version, frames)
    blocked = [e for e in errors if "BLOCKED by ibgw-harness" in e[2]]
    assert blocked, f"no refusal among the errors the client got: {errors}"
    req_id, code, text = blocked[-1]
    if name in ORDERS:
        assert code == ORDER_BLOCKED_CODE and "ORDER BLOCKED by ibgw-harness: read-only run" in text
        assert req_id == (-1 if name == "reqGlobalCancel" else ORDER_ID)
    else:
        assert code == CONFIG_BLOCKED_CODE and "CONFIG CHANGE BLOCKED by ibgw-harness" in text


async def send_then_collect(port: int, version: int, client_id: int, first: bytes, then: bytes = b"",
                            pieces: int = 0) -> tuple[int, list[bytes]]:
    """Send `first` (bytewise when pieces), then `then` after the first
    reply, and collect every frame the client gets until the proxy closes:
    (the version in the server hello, the frames after it)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
    frames = FrameReader()
    try:
        if pieces:
            for i in range(len(first)):
                writer.write(first[i:i + 1])
                await writer.drain()  # each byte its own write: the proxy may see any split
        else:
            writer.write(first)
        if then:
            got = frames.feed(await asyncio.wait_for(reader.read(65536), TIMEOUT))
            writer.write(then)
        else:
            got = []
        got += frames.feed(await read_until_eof(reader))
    finally:
        writer.close()
    assert got, "the client got nothing, not even the server hello"
    return parse_server_hello(got[0])[0], got[1:]


# ------------------------------------------------------------------ the evasions


@pytest.mark.parametrize("name", list(GUARDED))
async def test_guarded_request_after_the_handshake(mock: MockGateway, era: str, proxy_kind: str, name: str) -> None:
    version = ERAS[era][1]
    async with PROXIES[proxy_kind](mock.port) as port:
        reader, writer, frames = await handshake(port, version, 40)
        writer.write(request_frame(GUARDED[name], era))
        got = frames.feed(await read_until_eof(reader))
        writer.close()
        assert_told(version, got, name)
        if era == "protobuf":  # the text body behind a binary id too
            reader, writer, frames = await handshake(port, version, 41)
            writer.write(request_frame(GUARDED[name], era, "binary"))
            assert_told(version, frames.feed(await read_until_eof(reader)), name)
            writer.close()
    assert reached(mock) == []


@pytest.mark.parametrize("name", ["placeOrder", "updateConfig", "reqGlobalCancel"])
async def test_coalesced_with_hello_and_start_api_in_one_segment(mock: MockGateway, era: str, proxy_kind: str,
                                                                 name: str) -> None:
    version = ERAS[era][1]
    segment = encode_hello(100, version) + start_api_frame(42, version) + request_frame(GUARDED[name], era)
    async with PROXIES[proxy_kind](mock.port) as port:
        hello, got = await send_then_collect(port, version, 42, segment)
    assert hello == version  # the client got its hello, then the refusal
    assert_told(version, got, name)
    assert reached(mock) == []
    assert mock.record_for_client(42) is not None  # hello and startApi did pass


@pytest.mark.parametrize("name", ["placeOrder", "cancelOrder", "setServerLogLevel"])
async def test_split_byte_by_byte(mock: MockGateway, era: str, proxy_kind: str, name: str) -> None:
    version = ERAS[era][1]
    segment = encode_hello(100, version) + start_api_frame(43, version) + request_frame(GUARDED[name], era)
    async with PROXIES[proxy_kind](mock.port) as port:
        hello, got = await send_then_collect(port, version, 43, segment, pieces=1)
    assert hello == version
    assert_told(version, got, name)
    assert reached(mock) == []


@pytest.mark.parametrize("name", ["placeOrder", "exerciseOptions", "replaceFA"])
async def test_after_a_frame_with_a_non_ascii_byte_in_the_same_segment(mock: MockGateway, era: str,
                                                                       proxy_kind: str, name: str) -> None:
    version = ERAS[era][1]
    async with PROXIES[proxy_kind](mock.port) as port:
        reader, writer, frames = await handshake(port, version, 44)
        writer.write(non_ascii_frame(era) + request_frame(GUARDED[name], era))
        got = frames.feed(await read_until_eof(reader))
        writer.close()
    assert_told(version, got, name)
    assert reached(mock) == []


async def test_an_undecodable_frame_disables_neither_forwarding_nor_the_guard(mock: MockGateway, era: str,
                                                                             proxy_kind: str) -> None:
    """A harmless frame the transcript cannot decode is forwarded, not
    refused, and the guard still refuses an order after it. The mock (text
    fields are 7-bit ASCII to it) then closes that connection itself, which
    proves the frame reached it."""
    from harness.protocol.wire import encode_request

    version = ERAS[era][1]
    async with PROXIES[proxy_kind](mock.port) as port:
        reader, writer, frames = await handshake(port, version, 49)
        writer.write(non_ascii_frame(era) + encode_request(version, [int(OUT.REQ_CURRENT_TIME), 1])[0])
        await read_until_eof(reader)
        writer.close()
        record = mock.record_for_client(49)
        assert record is not None and "non-ASCII byte" in str(record.close_cause)
        reader, writer, frames = await handshake(port, version, 50)
        writer.write(non_ascii_frame(era)[:-1])  # the same frame without its last byte: not yet whole
        writer.write(non_ascii_frame(era)[-1:] + request_frame(OUT.PLACE_ORDER, era))
        assert_told(version, frames.feed(await read_until_eof(reader)), "placeOrder")
        writer.close()
    assert reached(mock) == []


def test_the_transcript_decodes_the_frames_around_an_undecodable_one() -> None:
    from harness.protocol.frame import UP
    from harness.proxy.wire import WireDecoder

    decoder = WireDecoder(1, UP)
    stream = (encode_hello(100, 176) + start_api_frame(1, 176) + non_ascii_frame("text")
              + comm.make_msg(OUT.REQ_CURRENT_TIME, False, "1\x00"))
    names = [f.name for f in decoder.feed(stream)]
    assert names[1:] == ["startApi", "undecodable", "reqCurrentTime"] and decoder.broken is None


async def test_hello_and_start_api_coalesced_then_the_order_later(mock: MockGateway, era: str,
                                                                  proxy_kind: str) -> None:
    version = ERAS[era][1]
    async with PROXIES[proxy_kind](mock.port) as port:
        _, got = await send_then_collect(port, version, 45, encode_hello(100, version) + start_api_frame(45, version),
                                      then=request_frame(OUT.PLACE_ORDER, era))
    assert_told(version, got, "placeOrder")
    assert reached(mock) == []


@pytest.mark.parametrize("id_text", [b"003", b"+3", b"0004", "\uff13".encode(), b"3 ", b"-0"],
                         ids=["leading-zeros", "plus-sign", "cancel-zeros", "fullwidth-3", "trailing-space",
                              "minus-zero"])
async def test_text_id_forms(proxy_kind: str, id_text: bytes) -> None:
    """Ids real clients never send: refused whatever Java's parseInt would
    make of them (and named as the order it would read)."""
    async with MockGateway(port=0, profile=get_profile("10.19")) as gw, PROXIES[proxy_kind](gw.port) as port:
        reader, writer, frames = await handshake(port, 176, 46)
        writer.write(text_id_frame(id_text))
        got = frames.feed(await read_until_eof(reader))
        writer.close()
        assert [e for e in errors_in(176, got) if "BLOCKED by ibgw-harness" in e[2]]
        assert reached(gw) == []


@pytest.mark.parametrize("garbage", [b"\0\0\0\0", b"\xff\xff\xff\xff", b"GET / HTTP/1.1\r\n\r\n",
                                     b"API\0\0\0\0\x0a3\0" + b"7\0" * 4],
                         ids=["zero-length", "oversized", "not-the-api", "order-as-hello"])
async def test_a_stream_the_guard_cannot_frame_is_closed(proxy_kind: str, garbage: bytes) -> None:
    async with MockGateway(port=0, profile=get_profile("10.19")) as gw, PROXIES[proxy_kind](gw.port) as port:
        if garbage.startswith((b"GET", b"API")):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
            writer.write(garbage)
        else:
            reader, writer, _ = await handshake(port, 176, 47)
            writer.write(garbage + request_frame(OUT.PLACE_ORDER, "text"))
        await read_until_eof(reader)  # closed, never hangs
        writer.close()
        assert reached(gw) == []


@pytest.mark.parametrize("allowing", ALLOWING)
@pytest.mark.parametrize("what", ["orders", "config"])
async def test_positive_control_each_option_lets_its_kind_through(mock: MockGateway, era: str, allowing: str,
                                                                  what: str) -> None:
    """Proves reached() would see what passes: with --allow-orders the mock
    gets the order (and refuses it itself, as it always does), with
    --allow-config-changes the setting; the other kind stays refused."""
    version = ERAS[era][1]
    allowed, other = ((OUT.PLACE_ORDER, "placeOrder"), "updateConfig") if what == "orders" \
        else ((OUT.SET_SERVER_LOGLEVEL, message_name(OUT.SET_SERVER_LOGLEVEL, from_client=True)), "placeOrder")
    async with PROXIES[allowing](mock.port, allow_orders=what == "orders", allow_config=what == "config") as port:
        reader, writer, frames = await handshake(port, version, 48)
        writer.write(request_frame(allowed[0], era))

        async def _mock_saw_it() -> None:
            while allowed[1] not in reached(mock):
                await asyncio.sleep(0.02)  # polling the mock's record: no event exists for it
        await asyncio.wait_for(_mock_saw_it(), TIMEOUT)
        writer.write(request_frame(GUARDED[other], era))
        assert_told(version, frames.feed(await read_until_eof(reader)), other)
        writer.close()
    assert reached(mock) == [allowed[1]]


# ------------------------------------------------------------------ the guard on its own


def test_java_parse_int_matches_integer_parse_int() -> None:
    assert [java_parse_int(t) for t in ("3", "003", "+3", "-3", "\uff13", "\u0663")] == [3, 3, 3, -3, 3, 3]
    assert [java_parse_int(t) for t in ("", "+", " 3", "3 ", "3a", "2147483648", "0x3", "3_0")] == [None] * 8
    assert java_parse_int("0" * 5000 + "3") == 3 and java_parse_int("9" * 5000) is None


def test_bytes_are_released_only_with_their_whole_frame() -> None:
    guard = ClientStreamGuard(RequestPolicy())
    stream = encode_hello(100, 176) + start_api_frame(1, 176)
    released = b"".join(guard.feed(stream[i:i + 1]).forward for i in range(len(stream)))
    assert released == stream
    order = request_frame(OUT.PLACE_ORDER, "text")
    verdicts = [guard.feed(order[i:i + 1]) for i in range(len(order))]
    assert all(v.forward == b"" for v in verdicts)
    assert verdicts[-1].blocked is not None and verdicts[-1].blocked.name == "placeOrder"
    assert guard.feed(comm.make_msg(OUT.REQ_CURRENT_TIME, False, "1\0")).fatal  # closed after a refusal


def test_a_refusal_carries_only_an_order_id_a_gateway_could_hold() -> None:
    """An id beyond a Java int (or unreadable) goes out as -1, never breaks the refusal."""
    from harness.safety.stream_guard import refusal_frame

    for version in (157, 176, 226):
        for payload in (b"3\x0099999999999\x001\x00", b"\0\0\0\x03" + b"9" * 5000 + b"\0", b"003\x0012\x00"):
            blocked = RequestPolicy().classify(payload)
            assert blocked is not None and blocked.name == "placeOrder"
            msg = decode_server_frame(version, refusal_frame(version, blocked, payload)[4:])[0]
            assert msg.int("req_id") == (12 if payload.startswith(b"003") else -1)
            assert msg.int("code") == ORDER_BLOCKED_CODE


def test_the_refusal_point_never_cuts_a_gateway_frame() -> None:
    """While a refusal waits, the tracker consumes only up to the first frame
    end, so the proxy forwards whole Gateway frames and nothing after them."""
    from harness.protocol.handshake import encode_server_hello
    from harness.safety.stream_guard import ServerStreamTracker

    tracker = ServerStreamTracker()
    hello = encode_server_hello(176, "20260101 00:00:00 UTC")
    frame = comm.make_msg(9, False, "1\x005\x00")
    assert tracker.feed(hello + frame[:3]) == [len(hello)] and not tracker.at_boundary
    assert tracker.server_version == 176
    chunk = frame[3:] + frame + frame[:2]  # the end of one frame, a whole one, the start of a third
    ends = tracker.feed(chunk, first_only=True)
    assert ends == [len(frame) - 3] and tracker.at_boundary  # cut right after the frame in flight
    assert tracker.feed(b"\0\0\0\0") == [] and tracker.broken  # a zero length breaks it


async def test_a_refusal_waits_for_the_gateway_frame_in_flight() -> None:
    """A Gateway mid-frame when the order is refused: the client gets that
    frame whole, then the refusal, then the close; nothing the Gateway sends
    after the frame end is forwarded (here the start of a frame that would
    never end: waiting for it would leave the client without its error)."""
    from harness.protocol.handshake import encode_server_hello

    in_flight = comm.make_msg(9, False, "1\x00" + "5" * 40 + "\x00")  # nextValidId, sent in two halves
    later = comm.make_msg(15, False, "1\x00DU0000001\x00")
    got_order = asyncio.Event()

    async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        await reader.readexactly(4)  # API\0
        while not frames.feed(await reader.read(65536)):
            pass
        writer.write(encode_server_hello(176, "20260101 00:00:00 UTC") + in_flight[:10])
        await got_order.wait()  # the test sets it once the proxy has refused the order
        writer.write(in_flight[10:] + later[:6])  # the frame's end, and the start of one that never ends
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            await reader.read()
        writer.close()

    server = await asyncio.start_server(gateway, HOST, 0)
    try:
        async with FaultProxy((HOST, int(server.sockets[0].getsockname()[1]))) as proxy:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, proxy.port), TIMEOUT)
            writer.write(encode_hello(100, 176))
            frames = FrameReader()
            got: list[bytes] = []
            while not got:
                got += frames.feed(await asyncio.wait_for(reader.read(65536), TIMEOUT))
            writer.write(request_frame(OUT.PLACE_ORDER, "text"))

            async def _refused() -> None:
                while not proxy.blocked:
                    await asyncio.sleep(0.01)  # polling the proxy's record: no event exists for it
            await asyncio.wait_for(_refused(), TIMEOUT)
            got_order.set()
            got += frames.feed(await read_until_eof(reader))
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert frames.pending == 0  # no torn frame reached the client
    assert got[1] == in_flight[4:]
    assert len(got) == 3 and "ORDER BLOCKED" in errors_in(176, got[2:])[0][2]


def test_the_policy_allows_each_kind_only_by_its_own_option() -> None:
    order, config = request_frame(OUT.PLACE_ORDER, "protobuf")[4:], request_frame(OUT.UPDATE_CONFIG, "protobuf")[4:]
    assert RequestPolicy(allow_orders=True).classify(order) is None
    assert RequestPolicy(allow_orders=True).classify(config) is not None
    assert RequestPolicy(allow_config_changes=True).classify(config) is None
    assert RequestPolicy(allow_config_changes=True).classify(order) is not None
    assert RequestPolicy().classify(comm.make_msg(OUT.REQ_POSITIONS, True, "1\0")[4:]) is None


# ------------------------------------------------------------------ real clients are told


async def test_ib_async_trade_ends_cancelled_with_the_refusal(proxy_kind: str) -> None:
    """A real ib_async order whose orderRef holds a non-ASCII byte: the mock
    never sees it; the Trade ends Cancelled with the refusal in its log."""
    from ib_async import IB, MarketOrder, OrderStatus, Stock

    async with MockGateway(port=0, profile=get_profile("10.50")) as gw, PROXIES[proxy_kind](gw.port) as port:
        ib = IB()
        try:
            await ib.connectAsync(HOST, port, clientId=78, timeout=TIMEOUT)
            done = asyncio.Event()
            order = MarketOrder("BUY", 1)
            order.orderRef = "Café-1"
            trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), order)
            trade.cancelledEvent += lambda _trade: done.set()
            await asyncio.wait_for(done.wait(), TIMEOUT)
            assert trade.orderStatus.status == OrderStatus.Cancelled
            entry = trade.log[-1]
            assert entry.errorCode == ORDER_BLOCKED_CODE and "ORDER BLOCKED by ibgw-harness: read-only run" in entry.message
        finally:
            ib.disconnect()
        assert reached(gw) == []


def _ibapi_order_refused(port: int, client_id: int, order_ref: str) -> dict[str, Any]:
    """An EWrapper program placing one order; what its error callback got."""
    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.order import Order
    from ibapi.wrapper import EWrapper

    class App(EWrapper, EClient):
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.ready, self.refused, self.closed = threading.Event(), threading.Event(), threading.Event()
            self.next_id = 0
            self.errors: list[tuple[int, int, str]] = []

        def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803 - ibapi's names
            self.next_id = orderId
            self.ready.set()

        def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,  # noqa: N802, N803
                  advancedOrderRejectJson: str = "") -> None:
            self.errors.append((reqId, errorCode, errorString))
            if "ORDER BLOCKED" in errorString:
                self.refused.set()

        def connectionClosed(self) -> None:  # noqa: N802
            self.closed.set()

    app = App()
    app.connect(HOST, port, client_id)
    runner = threading.Thread(target=app.run, name="ibapi-guard-test", daemon=True)
    runner.start()
    try:
        assert app.ready.wait(TIMEOUT), "nextValidId never arrived"
        version = app.serverVersion()  # before the refusal closes the connection (ibapi then forgets it)
        contract = Contract()
        contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
        order = Order()
        order.action, order.orderType, order.totalQuantity, order.orderRef = "BUY", "MKT", 1, order_ref
        order_id = app.next_id
        app.placeOrder(order_id, contract, order)
        refused = app.refused.wait(TIMEOUT)
        return {"order_id": order_id, "refused": refused, "errors": app.errors, "version": version,
                "closed": app.closed.wait(TIMEOUT)}
    finally:
        app.disconnect()
        runner.join(5.0)


# ibapi itself refuses a non-ASCII orderRef in the text era (its error 579), so only
# the protobuf era (a protobuf string field) carries "Café-1" to the proxy.
@pytest.mark.parametrize("profile,version,order_ref", [("10.19", 176, "guard-1"), ("10.50", 226, "Café-1")],
                         ids=["text-era", "protobuf-era"])
async def test_ibapi_error_callback_fires_with_the_order_id(proxy_kind: str, profile: str, version: int,
                                                            order_ref: str) -> None:
    async with MockGateway(port=0, profile=get_profile(profile)) as gw, PROXIES[proxy_kind](gw.port) as port:
        result = await asyncio.to_thread(_ibapi_order_refused, port, 79, order_ref)
        assert result["version"] == version
        assert result["refused"], f"no refusal reached ibapi's error callback: {result['errors']}"
        blocked = [e for e in result["errors"] if "ORDER BLOCKED by ibgw-harness: read-only run" in e[2]]
        assert blocked[0][:2] == (result["order_id"], ORDER_BLOCKED_CODE)
        assert result["closed"]  # then the connection was closed
        assert reached(gw) == []

