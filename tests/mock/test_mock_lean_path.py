"""The mock's lean hot path (issue 20, item 2) changes cost, not behaviour.

What is cached must give the bytes a fresh encode gives, a remembered decode
must not let a malformed frame through, the rate-bounded connection lines
must still say everything (errors per connection, routine ones counted in a
summary), and the GC settings stay out of an in-process mock's interpreter.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator

import pytest

from harness.core.redact import SECRET_MASK, redact_text, secret_values
from harness.mock import MockGateway, accept, lean
from harness.mock.connlog import ConnectionLog
from harness.protocol import encode_frame
from harness.protocol import messages as m
from harness.protocol.framing import encode_message
from harness.protocol.handshake import encode_server_hello, format_connection_time
from harness.protocol.messages import In, Out
from tests.support.mockclient import MockClient, is_msg, until


@pytest.fixture
async def gw() -> AsyncIterator[MockGateway]:
    async with MockGateway(port=0) as gateway:
        yield gateway


def _sent(gw: MockGateway, conn_id: int) -> list[tuple[str, list[str]]]:
    record = next(r for r in gw.records if r.conn_id == conn_id)
    return [(e.name, e.fields) for e in record.entries if e.direction == "send"]


async def test_cached_startup_burst_is_what_a_fresh_encode_sends(gw: MockGateway) -> None:
    """Two connections (the second served from the cache) get the same
    start-up burst, equal to encoding the messages afresh, and the same
    transcript entries."""
    bursts = []
    for client_id in (1, 2):
        client = await MockClient.open(gw.port)
        await client.hello(100, 178)
        await client.read_server_hello()
        await client.send_raw(encode_message([Out.START_API, 2, client_id, ""]))
        payloads = [await client.read_payload() for _ in range(2 + len(gw.profile.farm_notices))]
        bursts.append(payloads)
        await client.close()
    await until(lambda: len(gw.records) == 2 and all(r.close_cause for r in gw.records))
    expected = [m.next_valid_id(gw.model.next_order_id), m.managed_accounts(gw.model.account_ids)]
    if gw.profile.accounts_first:
        expected.reverse()
    expected += [m.error(178, -1, code, text) for code, text in gw.profile.farm_notices]
    fresh = [encode_message(fields)[4:] for fields in expected]
    assert bursts[0] == bursts[1] == fresh
    first, second = _sent(gw, 1), _sent(gw, 2)
    assert first[1:] == second[1:]  # all but the version reply (its connection time may tick)
    assert [name for name, _ in first[1:]] == [m.message_name(int(f[0]), from_client=False)  # type: ignore[arg-type]
                                               for f in expected]


async def test_version_reply_matches_the_formatter(gw: MockGateway) -> None:
    client = await MockClient.open(gw.port)
    await client.hello(100, 178)
    version, conn_time = await client.read_server_hello()
    assert version == 178
    zone = gw.profile.time_zone
    assert conn_time.endswith(f" {zone}") or conn_time.endswith(" UTC")
    assert len(conn_time) == len(format_connection_time(zone_name=zone, iana_zone=gw.profile.iana_zone))
    assert encode_server_hello(version, conn_time) == encode_message([version, conn_time])
    await client.close()


async def test_a_remembered_decode_lets_no_malformed_frame_through(gw: MockGateway) -> None:
    """reqCurrentTime's decode is remembered after the first; a malformed one
    (non-ASCII, no trailing NUL) still closes its connection with a cause."""
    good = await MockClient.connect(gw.port, 1)
    assert await good.ping() > 0
    assert await good.ping() > 0  # the second is served from the remembered decode
    for bad_payload in (b"49\x001\x00\xff\x00", b"49\x001"):
        bad = await MockClient.connect(gw.port, 2)
        await bad.send_raw(encode_frame(bad_payload))
        assert await bad.read_to_eof() == b""
        record = gw.records[-1]
        await until(lambda record=record: record.close_cause is not None)  # type: ignore[misc]
        assert "protocol error" in (record.close_cause or ""), record.close_cause
        await until(lambda: 2 not in gw.client_ids_in_use)
        await bad.close()
    assert await good.ping() > 0  # and the healthy connection never noticed
    frames = await good.request([Out.REQ_CURRENT_TIME, 1], is_msg(In.CURRENT_TIME))
    assert frames[-1][:2] == [str(In.CURRENT_TIME), "1"]
    await good.close()


async def test_routine_lines_over_the_rate_are_counted_errors_never(
        gw: MockGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    gw.connlog.per_second = 0  # every routine line is over the rate
    client = await MockClient.connect(gw.port, 1)
    await client.close()
    await until(lambda: gw.active_connections == 0)
    bad = await MockClient.open(gw.port)
    await bad.send_raw(b"GET / HTTP/1.0\r\n\r\n")
    await bad.read_to_eof()
    await until(lambda: gw.active_connections == 0)
    await bad.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.mock"]
    assert not [t for t in messages if "started the API" in t or "closed: client closed" in t], messages
    bad_id = gw.records[-1].conn_id
    assert [t for t in messages if t.startswith(f"conn {bad_id} ") and "API" in t], messages  # its own line
    assert gw.connlog.started == 1 and gw.connlog.closed == 1
    gw.connlog.flush()
    summary = [r for r in caplog.records if r.getMessage().startswith("connections: ")]
    assert len(summary) == 1 and summary[0].levelno == logging.INFO
    assert "1 started the API and 1 closed" in summary[0].getMessage()
    assert gw.connlog.started == gw.connlog.closed == 0


def test_connection_log_levels() -> None:
    log = logging.getLogger("harness.test-connlog")
    log.setLevel(logging.INFO)
    clog = ConnectionLog(log, lambda: 7, per_second=2)
    assert [clog.level(started=True) for _ in range(3)] == [logging.INFO, logging.INFO, 0]
    assert clog.started == 1
    log.setLevel(logging.DEBUG)
    assert clog.level(started=False) == logging.DEBUG and clog.closed == 1  # over the rate: DEBUG, counted
    log.setLevel(logging.WARNING)
    assert clog.level(started=False) == 0 and clog.closed == 1  # nothing emitted, nothing counted
    clog.flush()  # no running loop: no timer was armed, flush still writes (and clears) the summary
    assert clog.started == clog.closed == 0


async def test_an_in_process_mock_leaves_the_gc_alone(gw: MockGateway) -> None:
    """gctune applies only in the serve entry points, never on import or start."""
    before = gc.get_threshold(), gc.get_freeze_count()
    client = await MockClient.connect(gw.port, 1)
    await client.close()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_secret_values_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credential scan is cached per environment snapshot: a change is seen at once."""
    monkeypatch.delenv("PLANTED_TEST_PASSWORD", raising=False)
    assert redact_text("x hunter2222 y") == "x hunter2222 y"
    monkeypatch.setenv("PLANTED_TEST_PASSWORD", "hunter2222")
    assert redact_text("x hunter2222 y") == f"x {SECRET_MASK} y"
    monkeypatch.setenv("PLANTED_TEST_PASSWORD", "other3333")
    assert redact_text("x hunter2222 other3333 y") == f"x hunter2222 {SECRET_MASK} y"
    values = secret_values()
    values.append("mutated")  # a caller's copy: the cache is unaffected
    assert "mutated" not in secret_values()
    monkeypatch.delenv("PLANTED_TEST_PASSWORD")
    assert "other3333" not in secret_values() and os.environ.get("PLANTED_TEST_PASSWORD") is None


# Served from the transport's callbacks: from accept (accept.Connection), or
# after the coroutine handed a session back (lean.LeanReader).
CALLBACK_PROTOCOLS = (accept.Connection, lean.LeanReader)


def _live_session(gw: MockGateway, client_id: int):  # type: ignore[no-untyped-def]
    return next(s for s in gw._sessions if s.client_id == client_id)  # test-only look at the live session


async def test_requests_are_answered_from_the_callback_until_a_fault_needs_the_coroutine(gw: MockGateway) -> None:
    """After startApi the session is served by lean.LeanReader; pipelined
    requests are each answered and recorded; a fault set at run time takes
    the next request back to the coroutine (and applies), and once cleared
    the session goes lean again."""
    client = await MockClient.connect(gw.port, 1)
    assert await client.ping() > 0
    session = _live_session(gw, 1)
    await until(lambda: isinstance(session.transport.get_protocol(), CALLBACK_PROTOCOLS))
    before = len(session.record.entries)
    await client.send_raw(encode_message([Out.REQ_CURRENT_TIME, 1]) * 50)  # one segment, 50 requests
    for _ in range(50):
        frame = await client.read_frame()
        assert frame[0] == str(In.CURRENT_TIME)
    await until(lambda: len(session.record.entries) == before + 100)  # each request and answer recorded
    gw.set_fault("read-only-api")
    frames = await client.request(m.req_open_orders(), lambda f: f[0] == str(In.ERR_MSG))
    assert frames[-1][3] == "321", frames  # the fault answered, through the coroutine
    assert not isinstance(session.transport.get_protocol(), CALLBACK_PROTOCOLS)
    gw.clear_fault("read-only-api")
    frames = await client.request(m.req_open_orders(), is_msg(In.OPEN_ORDER_END))
    assert frames[-1][0] == str(In.OPEN_ORDER_END)
    await until(lambda: isinstance(session.transport.get_protocol(), CALLBACK_PROTOCOLS))
    assert await client.ping() > 0
    await client.close()
    record = session.record
    await until(lambda: record.close_cause is not None)
    assert record.close_cause == "client closed the connection"


async def test_a_malformed_frame_in_the_callback_closes_with_the_coroutines_cause(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    session = _live_session(gw, 1)
    await until(lambda: isinstance(session.transport.get_protocol(), CALLBACK_PROTOCOLS))
    assert await client.ping() > 0
    await client.send_raw(b"\x00\x00\x00\x00")  # a zero-length frame
    assert await client.read_to_eof() == b""
    await until(lambda: session.record.close_cause is not None)
    assert (session.record.close_cause or "").startswith("protocol error: zero-length frame"), session.record.close_cause
    await client.close()
