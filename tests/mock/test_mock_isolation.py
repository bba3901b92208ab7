"""Isolation: malformed frames on one connection never hurt another.

The required test: a connection sends malformed frames of each kind while a
second, healthy client keeps pinging (reqCurrentTime) before, during and
after; every ping is answered, and the bad connection is closed with a cause
that is both logged (logger "harness.mock") and kept in its record.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from harness.mock import MockGateway
from harness.mock.transcript import HEAD_ENTRIES, MAX_ENTRIES
from harness.protocol import API_PREFIX, encode_frame, encode_hello
from harness.protocol.messages import Out
from tests.support.mockclient import MockClient, until

HEALTHY_ID = 100
BAD_ID = 200

Ping = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Ctx:
    """What a scenario gets: where to connect, how to ping the healthy
    client, how far to take the handshake, which client id to use."""

    port: int
    ping: Ping
    stage: str
    client_id: int = BAD_ID


def header(length: int) -> bytes:
    return struct.pack(">I", length)


async def _bad_client(ctx: Ctx) -> MockClient:
    """A client that did the handshake up to the stage correctly."""
    if ctx.stage == "after-start-api":
        return await MockClient.connect(ctx.port, ctx.client_id)
    return await MockClient.connect(ctx.port, ctx.client_id, start=False)  # version reply read, no startApi


# ---------------------------------------------------------------- the kinds of bad input
# Each scenario sends its bad bytes, pinging the healthy client in between
# ("during"), and returns the bad client. The mock must then close it.


async def garbage_prefix(ctx: Ctx) -> MockClient:
    bad = await MockClient.open(ctx.port)
    await bad.send_raw(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
    await ctx.ping()
    return bad


async def garbage_inside_prefix(ctx: Ctx) -> MockClient:
    bad = await MockClient.open(ctx.port)
    await bad.send_raw(b"AP")  # a correct start...
    await ctx.ping()
    await bad.send_raw(b"X\0")  # ...then not API\0
    await ctx.ping()
    return bad


async def tls_client_hello(ctx: Ctx) -> MockClient:
    bad = await MockClient.open(ctx.port)
    await bad.send_raw(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # a TLS client on the API port
    await ctx.ping()
    return bad


def _hello_text(text: bytes) -> Callable[[Ctx], Awaitable[MockClient]]:
    async def scenario(ctx: Ctx) -> MockClient:
        bad = await MockClient.open(ctx.port)
        await bad.send_raw(API_PREFIX)
        await ctx.ping()
        await bad.send_raw(encode_frame(text))
        await ctx.ping()
        return bad
    return scenario


async def oversize_hello(ctx: Ctx) -> MockClient:
    bad = await MockClient.open(ctx.port)
    await bad.send_raw(API_PREFIX + header(0x7FFFFFFF))  # header only: rejected before any body
    await ctx.ping()
    return bad


async def oversize_length(ctx: Ctx) -> MockClient:
    bad = await _bad_client(ctx)
    await ctx.ping()
    await bad.send_raw(header(LIMIT + 1))  # header only: rejected before any body
    await ctx.ping()
    return bad


async def zero_length(ctx: Ctx) -> MockClient:
    bad = await _bad_client(ctx)
    await ctx.ping()
    await bad.send_raw(header(0))
    await ctx.ping()
    return bad


def _bad_payload(payload: bytes) -> Callable[[Ctx], Awaitable[MockClient]]:
    async def scenario(ctx: Ctx) -> MockClient:
        bad = await _bad_client(ctx)
        await ctx.ping()
        await bad.send_raw(encode_frame(payload))
        await ctx.ping()
        return bad
    return scenario


async def truncated_then_close(ctx: Ctx) -> MockClient:
    bad = await _bad_client(ctx)
    await bad.send_raw(header(100) + b"49\x001\x00abcd")  # 9 of 100 body bytes
    await ctx.ping()
    await bad.close_write()
    return bad


async def slowloris(ctx: Ctx) -> MockClient:
    """Half a frame, one byte at a time; the healthy client is served between every byte."""
    bad = await _bad_client(ctx)
    frame = encode_frame(b"62\x001\x009001\x00All\x00NetLiquidation\x00")
    for i in range(len(frame) // 2):
        await bad.send_raw(frame[i:i + 1])
        await ctx.ping()
    await bad.close_write()  # the peer gives up mid-frame
    return bad


async def slowloris_hello(ctx: Ctx) -> MockClient:
    bad = await MockClient.open(ctx.port)
    data = encode_hello(157, 178)
    for i in range(len(data) - 4):
        await bad.send_raw(data[i:i + 1])
        await ctx.ping()
    await bad.close_write()
    return bad


FLOOD_FRAMES = 20_000
FLOOD_BURSTS = 4


async def flood_tiny_frames(ctx: Ctx) -> MockClient:
    """20 000 smallest well-formed frames (cancelPositions, no reply) in bursts,
    pinging between bursts; then the flooder leaves."""
    bad = await _bad_client(ctx)
    tiny = encode_frame(b"64\x00")
    per_burst = FLOOD_FRAMES // FLOOD_BURSTS
    for _ in range(FLOOD_BURSTS):
        await bad.send_raw(tiny * per_burst)
        await ctx.ping()
    await bad.close_write()
    return bad


LIMIT = 1 << 20  # the mock's default request frame limit (checked in the test)
BOTH_STAGES = ["before-start-api", "after-start-api"]


@dataclass(frozen=True)
class Kind:
    scenario: Callable[[Ctx], Awaitable[MockClient]]
    cause: str  # must appear in the record's close cause and in a log line
    level: int = logging.WARNING
    stages: tuple[str, ...] = ("handshake",)


KINDS: dict[str, Kind] = {
    "garbage-prefix": Kind(garbage_prefix, "protocol error: connection did not start with API\\0 (got b'GET '"),
    "garbage-inside-prefix": Kind(garbage_inside_prefix, "connection did not start with API\\0 (got b'APX"),
    "tls-client-hello": Kind(tls_client_hello, "connection did not start with API\\0"),
    "bad-version-range": Kind(_hello_text(b"v157-178"), "protocol error: bad version range 'v157-178'"),
    "inverted-version-range": Kind(_hello_text(b"v178..157"), "version range 178..157 is inverted"),
    "non-ascii-version-range": Kind(_hello_text(b"v157..178 \xff"), "version range is not ASCII"),
    "oversize-hello": Kind(oversize_hello, f"frame length {0x7FFFFFFF} exceeds the limit of {LIMIT}"),
    "oversize-length": Kind(oversize_length, f"protocol error: frame length {LIMIT + 1} exceeds the limit of {LIMIT}",
                            stages=tuple(BOTH_STAGES)),
    "zero-length": Kind(zero_length, "protocol error: zero-length frame", stages=tuple(BOTH_STAGES)),
    "non-numeric-id": Kind(_bad_payload(b"abc\x001\x00"), "protocol error: non-numeric message id 'abc'",
                           stages=tuple(BOTH_STAGES)),
    "no-trailing-nul": Kind(_bad_payload(b"49\x001"), "protocol error: frame does not end with NUL",
                            stages=tuple(BOTH_STAGES)),
    "non-ascii": Kind(_bad_payload(b"49\x00\xe9\x00"), "protocol error: non-ASCII byte 0xe9 at offset 3",
                      stages=tuple(BOTH_STAGES)),
    "truncated-then-close": Kind(truncated_then_close,
                                 "protocol error: stream ended inside a frame (13 bytes pending)",
                                 stages=tuple(BOTH_STAGES)),
    "flood-tiny-frames": Kind(flood_tiny_frames, "client closed the connection", level=logging.INFO,
                              stages=("after-start-api",)),
    "slowloris": Kind(slowloris, "protocol error: stream ended inside a frame", stages=tuple(BOTH_STAGES)),
    "slowloris-hello": Kind(slowloris_hello, "protocol error: stream ended inside a frame (9 bytes pending)"),
}

CASES = [pytest.param(name, stage, id=f"{name}" if stage == "handshake" else f"{name}-{stage}")
         for name, kind in KINDS.items() for stage in kind.stages]


def _record_of(gw: MockGateway, client: MockClient) -> Any:
    host, port = client.writer.get_extra_info("sockname")[:2]
    for record in reversed(gw.records):  # newest first: a port may be reused later
        if record.peer == f"{host}:{port}":
            return record
    raise AssertionError(f"no record for {host}:{port}")


@pytest.mark.parametrize("name, stage", CASES)
async def test_bad_connection_is_closed_and_healthy_client_keeps_pinging(
        name: str, stage: str, caplog: pytest.LogCaptureFixture) -> None:
    kind = KINDS[name]
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0) as gw:
        assert gw.frame_limit == LIMIT
        healthy = await MockClient.connect(gw.port, HEALTHY_ID)
        answered = 0

        async def ping() -> None:
            nonlocal answered
            assert await healthy.ping() > 0
            answered += 1

        await ping()  # before
        bad = await kind.scenario(Ctx(gw.port, ping, stage))  # pings during
        during = answered - 1
        assert during >= 1

        # the mock closes the bad connection, sending nothing in reply to the bad bytes
        leftover = await bad.read_to_eof()
        assert leftover == b"", f"mock answered bad input with {leftover[:60]!r}"
        record = _record_of(gw, bad)
        await until(lambda: record.close_cause is not None)
        assert kind.cause in record.close_cause
        if stage == "after-start-api":
            assert record.started_api and record.client_id == BAD_ID
        # the cause is logged, naming the connection
        logged = [r for r in caplog.records if r.name == "harness.mock" and r.levelno >= kind.level
                  and f"conn {record.conn_id} " in r.getMessage() and kind.cause in r.getMessage()]
        assert logged, [r.getMessage() for r in caplog.records if r.name == "harness.mock"]

        await ping()  # after
        await ping()
        assert answered == during + 3

        # the healthy connection never noticed; the bad one is fully gone
        healthy_record = _record_of(gw, healthy)
        assert healthy_record.close_cause is None
        await until(lambda: gw.active_connections == 1)
        assert gw.client_ids_in_use == [HEALTHY_ID]
        # and the Gateway still takes new clients, including the bad one's id
        again = await MockClient.connect(gw.port, BAD_ID)
        assert await again.ping() > 0
        await again.close()
        await healthy.close()
        await bad.close()


async def test_flood_transcript_stays_bounded() -> None:
    async with MockGateway(port=0) as gw:
        healthy = await MockClient.connect(gw.port, HEALTHY_ID)

        async def ping() -> None:
            await healthy.ping()

        bad = await flood_tiny_frames(Ctx(gw.port, ping, "after-start-api"))
        await bad.read_to_eof()
        record = _record_of(gw, bad)
        await until(lambda: record.close_cause is not None)
        assert len(record.entries) == MAX_ENTRIES
        total = len(record.entries) + record.dropped_entries
        assert total == FLOOD_FRAMES + 8  # + hello, version, startApi, 9, 15, three farm notices
        assert f"# {record.dropped_entries} further frames not kept" in record.to_text()
        assert await healthy.ping() > 0
        await healthy.close()
        await bad.close()


async def test_a_long_lived_connection_keeps_its_start_and_its_last_frames() -> None:
    """A connection that lives for hours (a soak, a trading process) is
    diagnosed by its start-up and by what came just before it died: past the
    bound the transcript keeps the first frames and the newest, not only the first."""
    async with MockGateway(port=0) as gw:
        client = await MockClient.connect(gw.port, 57)
        for _ in range(MAX_ENTRIES // 2 + 200):  # 2 frames a ping: past the bound
            await client.ping()
        await client.request([Out.REQ_MANAGED_ACCTS, 1], lambda fields: fields[0] == "15")  # the newest exchange
        record = _record_of(gw, client)
        assert len(record.entries) == MAX_ENTRIES and len(record.head) == HEAD_ENTRIES
        assert record.dropped_entries > 0
        assert [e.name for e in record.head[:3]] == ["hello", "serverVersion", "startApi"]
        assert [e.name for e in record.entries[-2:]] == ["reqManagedAccts", "managedAccounts"]
        text = record.to_text()
        assert f"# {record.dropped_entries} further frames not kept (the first {HEAD_ENTRIES}" in text
        assert text.index("startApi") < text.index("further frames not kept") < text.rindex("managedAccounts")
        assert record.to_dict()["dropped_after_frame"] == HEAD_ENTRIES
        await client.close()


async def test_all_bad_kinds_at_once_with_pings_throughout(caplog: pytest.LogCaptureFixture) -> None:
    """Every bad kind on its own connection, all open at the same time, interleaved with pings."""
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0) as gw:
        healthy = await MockClient.connect(gw.port, HEALTHY_ID)
        answered = 0

        async def ping() -> None:
            nonlocal answered
            assert await healthy.ping() > 0
            answered += 1

        bad_clients: list[tuple[str, MockClient]] = []
        # distinct client ids: all post-startApi bad clients are alive together
        for index, (name, stage) in enumerate((c.values[0], c.values[1]) for c in CASES):
            kind = KINDS[str(name)]
            if kind.scenario is flood_tiny_frames:
                continue  # has its own tests; 20k frames here would only slow the run
            bad = await kind.scenario(Ctx(gw.port, ping, str(stage), client_id=1000 + index))
            bad_clients.append((str(name), bad))
        for name, bad in bad_clients:
            assert await bad.read_to_eof() == b"", name
            await ping()
        for name, bad in bad_clients:
            record = _record_of(gw, bad)
            await until(lambda: record.close_cause is not None)
            assert KINDS[name].cause in record.close_cause, (name, record.close_cause)
        await until(lambda: gw.active_connections == 1)
        assert gw.client_ids_in_use == [HEALTHY_ID]
        assert answered >= len(bad_clients) * 2
        assert await healthy.ping() > 0
        await healthy.close()
        for _, bad in bad_clients:
            await bad.close()


async def test_pre_start_api_request_then_garbage() -> None:
    """A frame that is fine before startApi (ignored) followed by garbage: closed, nothing sent."""
    async with MockGateway(port=0) as gw:
        bad = await MockClient.connect(gw.port, BAD_ID, start=False)
        await bad.send([Out.REQ_POSITIONS, 1])
        await bad.send_raw(encode_frame(b"\xff\x00"))
        assert await bad.read_to_eof() == b""
        record = _record_of(gw, bad)
        await until(lambda: record.close_cause is not None)
        assert record.close_cause == "protocol error: non-ASCII byte 0xff at offset 0 (text fields are 7-bit ASCII)"
        assert [e.name for e in record.entries] == ["hello", "serverVersion", "reqPositions"]
        await bad.close()
