"""Idle / half-open connections and a client that never reads.

Why: a real Gateway keeps an idle API client for as long as it likes, so the
mock's idle timeout is off unless asked for (`MockGateway(idle_timeout=...)`,
`ibgw mock serve --idle-timeout`). What must hold either way: a client that
sends requests but never reads the replies cannot make the mock buffer
without bound (the transport's write high-water mark stops the session, and
the backlog stays in the kernel's socket buffers), and it never delays
anybody else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from harness.mock import MockGateway
from harness.mock.gateway import WRITE_HIGH_WATER
from harness.mock.session import Session
from harness.protocol import encode_frame, encode_message
from harness.protocol import messages as m
from tests.support.mockclient import MockClient, until

HEALTHY_ID = 100
QUIET_ID = 300
IDLE = 0.3  # short, so the timeout tests stay fast
# One reqAccountUpdates answer from the default model is a few KiB; the
# session may write at most one such burst past the high-water mark before
# its drain() stops it.
ONE_BURST_MAX = 64 * 1024
# A hang guard, not a measurement: the flood stalls in well under a second on a quiet machine, and
# the loop's own exit is an observed state (the mock's frame count unchanged across 5 pings).
STALL_GUARD_S = 90.0
# The never-reads test shares the event loop with a 10,000-request flood: on a loaded machine the
# healthy client's pings can reach the mock more than 0.3 s apart, so there the timeout is longer.
FLOOD_IDLE = 2.0


def _session(gw: MockGateway, client_id: int) -> Session:
    for session in gw._sessions:  # test-only look at the live session
        if session.client_id == client_id:
            return session
    raise AssertionError(f"no live session for client id {client_id}")


def _record_of(gw: MockGateway, client: MockClient) -> object:
    host, port = client.writer.get_extra_info("sockname")[:2]
    for record in reversed(gw.records):
        if record.peer == f"{host}:{port}":
            return record
    raise AssertionError(f"no record for {host}:{port}")


async def test_idle_timeout_is_off_by_default() -> None:
    async with MockGateway(port=0) as gw:
        assert gw.idle_timeout is None
        idle = await MockClient.connect(gw.port, QUIET_ID)
        half = await MockClient.connect(gw.port, QUIET_ID + 1)
        await half.send_raw(encode_frame(b"49\x001\x00")[:5])  # half a frame, then silence
        # Three times the timeout the other tests use: nothing closes them.
        await idle.expect_quiet(3 * IDLE)
        assert gw.active_connections == 2
        await half.send_raw(encode_frame(b"49\x001\x00")[5:])  # the rest of the frame: answered
        assert (await half.read_frame())[0] == "49"
        assert await idle.ping() > 0
        await idle.close()
        await half.close()


@pytest.mark.parametrize("stage", ["no-bytes-at-all", "after-hello", "after-start-api", "half-frame"])
async def test_idle_and_half_open_connections_time_out_when_asked(
        stage: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, idle_timeout=IDLE) as gw:
        if stage == "no-bytes-at-all":
            quiet = await MockClient.open(gw.port)
        elif stage == "after-hello":
            quiet = await MockClient.connect(gw.port, QUIET_ID, start=False)
        else:
            quiet = await MockClient.connect(gw.port, QUIET_ID)
            if stage == "half-frame":
                await quiet.send_raw(encode_frame(b"49\x001\x00")[:6])
        started = time.monotonic()
        await quiet.read_to_eof(timeout=IDLE + 5)
        waited = time.monotonic() - started
        assert waited >= IDLE * 0.9  # not closed before the timeout
        record = _record_of(gw, quiet)
        await until(lambda: record.close_cause is not None)  # type: ignore[attr-defined]
        cause = record.close_cause  # type: ignore[attr-defined]
        assert cause == f"idle timeout: no bytes from the client for {IDLE:g} s"
        assert any(cause in r.getMessage() and f"conn {record.conn_id} " in r.getMessage()  # type: ignore[attr-defined]
                   for r in caplog.records)
        await until(lambda: gw.active_connections == 0 and gw.client_ids_in_use == [])
        await quiet.close()


async def test_a_pinging_client_never_times_out() -> None:
    async with MockGateway(port=0, idle_timeout=IDLE) as gw:
        busy = await MockClient.connect(gw.port, HEALTHY_ID)
        deadline = time.monotonic() + 3 * IDLE
        while time.monotonic() < deadline:  # activity spanning three timeouts
            await busy.ping()
            await busy.expect_quiet(IDLE / 3)
        assert await busy.ping() > 0
        assert gw.active_connections == 1
        await busy.close()


async def _flood_without_reading(gw: MockGateway, healthy: MockClient, count: int) -> tuple[MockClient, int, int]:
    """Send `count` reqAccountUpdates without reading a byte; ping the
    healthy client until the mock has stopped serving the flooder (its
    drain() is holding it). Returns the flooder, the largest write buffer
    the mock held for it, and how many frames (both ways) it had recorded."""
    flooder = await MockClient.connect(gw.port, QUIET_ID)
    flooder.writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # the client may buffer; we test the mock
    flooder.writer.write(encode_message(m.req_account_updates(True, "")) * count)
    session = _session(gw, QUIET_ID)
    record = session.record
    largest = 0
    seen, still = -1, 0
    # Bounded polling of the mock's state (how many requests it has read and
    # what it holds unsent), once per healthy ping, which is itself awaited.
    deadline = time.monotonic() + STALL_GUARD_S
    while still < 5:
        assert time.monotonic() < deadline, "the mock neither finished nor stalled on the flood (hang guard)"
        assert await healthy.ping(timeout=10.0) > 0  # others are served throughout (10 s: a loaded machine)
        largest = max(largest, session.writer.transport.get_write_buffer_size())
        frames = len(record.entries) + record.dropped_entries
        still = still + 1 if frames == seen else 0
        seen = frames
    return flooder, largest, seen


async def test_a_client_that_never_reads_cannot_grow_the_mocks_buffers() -> None:
    async with MockGateway(port=0) as gw:
        healthy = await MockClient.connect(gw.port, HEALTHY_ID)
        flooder, largest, frames = await _flood_without_reading(gw, healthy, 10_000)
        # The session stopped (its replies fill the kernel buffers and then its
        # own, up to the high-water mark) long before the 10,000th request...
        account = gw.model.accounts[0]
        replies = len(account.account_values()) + len(account.holdings) + 2  # + account time, download end
        assert frames < 10_000 * (1 + replies), "the flood was fully served: the kernel absorbed it all"
        assert _session(gw, QUIET_ID).writer.transport.get_write_buffer_size() > 0
        # ...and what it holds in user space is bounded by the high-water mark.
        assert largest <= WRITE_HIGH_WATER + ONE_BURST_MAX, largest
        # Other clients, old and new, are served.
        other = await MockClient.connect(gw.port, HEALTHY_ID + 1)
        assert await other.ping() > 0 and await healthy.ping() > 0
        flooder.writer.transport.abort()  # the reader that never reads goes away
        await until(lambda: gw.active_connections == 2)
        await other.close()
        await healthy.close()


async def test_a_client_that_never_reads_is_closed_when_asked() -> None:
    """The close is awaited as an event (the record's close cause), with the healthy client's pings
    going on meanwhile; the cause itself says the session's write buffer was full, i.e. the flood had
    stalled the mock's session. The stall is not polled for first (the test above proves it): the
    idle timer may close the flooder before the stall poll would end, and under load it did."""
    async with MockGateway(port=0, idle_timeout=FLOOD_IDLE) as gw:
        healthy = await MockClient.connect(gw.port, HEALTHY_ID)
        flooder = await MockClient.connect(gw.port, QUIET_ID)
        flooder.writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)
        record = _session(gw, QUIET_ID).record  # taken before the flood: the session may end any time after
        flooder.writer.write(encode_message(m.req_account_updates(True, "")) * 10_000)

        async def closed() -> None:
            while record.close_cause is None:
                assert await healthy.ping(timeout=10.0) > 0  # others are served throughout (an awaited round trip)
        await asyncio.wait_for(closed(), STALL_GUARD_S)  # a hang guard; the close itself is the event
        assert record.close_cause == f"idle timeout: client read nothing (write buffer full) for {FLOOD_IDLE:g} s"
        flooder.writer.transport.abort()
        await until(lambda: gw.active_connections == 1)
        await healthy.close()


async def test_mock_serve_idle_timeout_option(tmp_path: Path) -> None:
    """`ibgw mock serve --idle-timeout S` closes an idle client with the cause in its log;
    without the option the same client stays (the default test above covers in-process)."""
    from tests.support.processes import MockServe

    served = MockServe(tmp_path / "serve.log", "--idle-timeout", str(IDLE))
    try:
        quiet = await MockClient.connect(served.port, QUIET_ID)
        await quiet.read_to_eof(timeout=IDLE + 5)
        assert await (await MockClient.connect(served.port, HEALTHY_ID)).ping() > 0  # still serving
    finally:
        served.close()
    assert f"idle timeout: no bytes from the client for {IDLE:g} s" in (tmp_path / "serve.log").read_text()
