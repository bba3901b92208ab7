"""Bounded state and API slots: one hostile connection never wedges the mock.

Why: a `reqIds` with a 4,300-digit count once made the shared next order id
too big to encode, so every later connection failed until restart; and
sockets that never finished the hello held the 32 client slots. The mock
now reads every client integer as the Gateway's Java code does (an int:
-2^31..2^31-1), refuses what it cannot serve by closing that one connection
with one logged cause, counts only connections that completed startApi
against the cap, and closes sockets that miss the handshake deadline.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from harness.mock import MockGateway
from harness.mock.session import JAVA_INT_MAX
from harness.protocol import API_PREFIX, encode_hello
from harness.protocol.messages import In, Out
from tests.support.mockclient import MockClient, is_msg, until
from tests.support.processes import MockServe, run_cli

HUGE = "9" * 4300  # int() accepts it; the next id after it has 4,301 digits
READY_WITHIN = 5.0  # the bound for a fresh real client


def _warnings_for(caplog: pytest.LogCaptureFixture, conn_id: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "harness.mock" and r.levelno >= logging.WARNING
            and r.getMessage().startswith(f"conn {conn_id} ")]


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


def _record_of(gw: MockGateway, client: MockClient):  # type: ignore[no-untyped-def]
    host, port = client.writer.get_extra_info("sockname")[:2]
    for record in reversed(gw.records):
        if record.peer == f"{host}:{port}":
            return record
    raise AssertionError(f"no record for {host}:{port}")


async def _refused(gw: MockGateway, client: MockClient, caplog: pytest.LogCaptureFixture, cause: str) -> None:
    """The connection is closed without a reply, its cause in its record and
    in exactly one warning line naming it."""
    assert await client.read_to_eof() == b""
    record = _record_of(gw, client)
    await until(lambda: record.close_cause is not None)
    assert cause in record.close_cause, record.close_cause
    lines = _warnings_for(caplog, record.conn_id)
    assert len(lines) == 1 and cause in lines[0], lines
    assert len(lines[0]) < 300, "the cause line carries the hostile field in full"


@pytest.mark.parametrize("count", [HUGE, "1" + "0" * 5000, str(JAVA_INT_MAX + 1), "-2147483649", "1e9", "1_000",
                                   str(JAVA_INT_MAX)])
async def test_out_of_range_req_ids_closes_one_connection_and_keeps_the_sequence(
        count: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0) as gw:
        healthy = await MockClient.connect(gw.port, 1)
        before = gw.model.next_order_id
        bad = await MockClient.connect(gw.port, 2)
        await bad.send([Out.REQ_IDS, 1, count])
        # JAVA_INT_MAX is a valid int, but reserving that many ids would carry the sequence past it
        await _refused(gw, bad, caplog, "request refused")
        assert gw.model.next_order_id == before
        assert await healthy.ping() > 0
        fresh = await MockClient.connect(gw.port, start=False)
        startup = await fresh.start_api(3)  # startup's nextValidId still encodes
        [next_id] = [f for f in startup if f[0] == str(In.NEXT_VALID_ID)]
        assert int(next_id[-1]) == before
        answer = await fresh.request([Out.REQ_IDS, 1, 5], is_msg(In.NEXT_VALID_ID))
        assert int(answer[-1][-1]) == before
        assert gw.model.next_order_id == before + 5
        _no_tracebacks(caplog)
        for client in (healthy, bad, fresh):
            await client.close()


@pytest.mark.parametrize("request_fields, cause", [
    ([Out.REQ_ACCOUNT_SUMMARY, 1, HUGE, "All", "NetLiquidation"], "req_id="),
    ([Out.REQ_EXECUTIONS, 3, "2147483648", "", "", "", "", "", "", ""], "req_id="),
    ([Out.REQ_ACCOUNT_UPDATES_MULTI, 1, "-" + HUGE, "", "", 1], "req_id="),
    ([Out.CANCEL_ORDER, 1, "9" * 40], "order id of 40 digits"),
])
async def test_every_client_integer_is_a_java_int(request_fields: list[object], cause: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0) as gw:
        bad = await MockClient.connect(gw.port, 2)
        await bad.send(request_fields)  # type: ignore[arg-type]
        await _refused(gw, bad, caplog, cause)
        again = await MockClient.connect(gw.port, 2)
        assert await again.ping() > 0
        _no_tracebacks(caplog)
        await again.close()
        await bad.close()


async def test_start_api_client_id_out_of_range_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0) as gw:
        bad = await MockClient.connect(gw.port, start=False)
        await bad.send([Out.START_API, 2, HUGE, ""])
        await _refused(gw, bad, caplog, "client_id=")
        assert gw.client_ids_in_use == [] and gw.api_clients == 0
        _no_tracebacks(caplog)
        await bad.close()


async def test_silent_sockets_hold_no_api_slot() -> None:
    """The cap counts API clients (completed startApi), as the Gateway does."""
    async with MockGateway(port=0, max_clients=2) as gw:
        silent = [await MockClient.open(gw.port) for _ in range(10)]
        half = [await MockClient.connect(gw.port, start=False) for _ in range(3)]  # hello done, no startApi
        await until(lambda: gw.active_connections == 13)
        a = await MockClient.connect(gw.port, 1)
        b = await MockClient.connect(gw.port, 2)
        assert gw.api_clients == 2
        over = await MockClient.open(gw.port)
        await over.send_raw(encode_hello(157, 178))
        assert await over.read_to_eof() == b""  # the cap, as before: accepted, closed without a reply
        # a half-done handshake that sends startApi once the cap is full is closed too, without 326
        await half[0].send([Out.START_API, 2, 9, ""])
        assert await half[0].read_to_eof() == b""
        assert gw.api_clients == 2 and gw.client_ids_in_use == [1, 2]
        for client in (a, b, over, *silent, *half):
            await client.close()


async def test_handshake_deadline_closes_silent_and_slow_sockets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, handshake_timeout=0.5) as gw:
        silent = await MockClient.open(gw.port)
        prefix_only = await MockClient.open(gw.port)
        await prefix_only.send_raw(API_PREFIX)
        hello_only = await MockClient.connect(gw.port, start=False)
        for client in (silent, prefix_only, hello_only):
            await _refused(gw, client, caplog, "handshake deadline: no startApi within 0.5 s")
        # the deadline ends at startApi: an API client idles as long as it likes
        api = await MockClient.connect(gw.port, 4)
        await api.expect_quiet(1.0)
        assert await api.ping() > 0
        _no_tracebacks(caplog)
        for client in (silent, prefix_only, hello_only, api):
            await client.close()


async def test_a_flood_of_pending_handshakes_evicts_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, max_pending=5) as gw:
        first = await MockClient.open(gw.port)
        await until(lambda: gw.active_connections == 1)
        rest = [await MockClient.open(gw.port) for _ in range(5)]
        await _refused(gw, first, caplog, "5 connections mid-handshake: the oldest is closed")
        fresh = await MockClient.connect(gw.port, 1)  # evicts the next oldest silent one, then gets through
        assert await fresh.ping() > 0
        _no_tracebacks(caplog)
        for client in (first, fresh, *rest):
            await client.close()


async def _slowloris(port: int, stop: asyncio.Event) -> None:
    """One byte a second of a valid hello, until told to stop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in API_PREFIX + encode_hello(157, 178):
            writer.write(bytes([byte]))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)  # the 1 byte/s pace; stop ends it early
                return
            except TimeoutError:
                pass
            if writer.is_closing() or reader.at_eof():
                return
    except ConnectionError:
        return
    finally:
        writer.close()


async def test_huge_req_ids_then_silent_sockets_then_a_real_client(caplog: pytest.LogCaptureFixture) -> None:
    """The issue's reproduction: reqIds with a 4,300-digit count after
    startApi, then 200 silent sockets and a few slowloris clients; a fresh
    ib_async client still becomes API-ready within 5 s, and the mock logs
    one line per bad connection and no traceback."""
    from ib_async import IB

    caplog.set_level(logging.INFO, logger="harness.mock")
    caplog.set_level(logging.WARNING, logger="asyncio")
    deadline = 3.0
    async with MockGateway(port=0, handshake_timeout=deadline) as gw:
        before = gw.model.next_order_id
        bad = await MockClient.connect(gw.port, 5)
        await bad.send([Out.REQ_IDS, 1, HUGE])
        await _refused(gw, bad, caplog, "request refused")
        silent = [await MockClient.open(gw.port) for _ in range(200)]
        stop = asyncio.Event()
        slow = [asyncio.create_task(_slowloris(gw.port, stop)) for _ in range(5)]
        await until(lambda: gw.active_connections == 205, timeout=15)
        bad_conn_ids = [r.conn_id for r in gw.records if r.client_id is None]
        assert len(bad_conn_ids) == 205

        ib = IB()
        started = time.monotonic()
        try:
            await ib.connectAsync("127.0.0.1", gw.port, clientId=9, timeout=READY_WITHIN)
            ready_s = time.monotonic() - started
            assert ib.isConnected() and ib.client.isReady()
            assert ready_s < READY_WITHIN
            assert ib.client.getReqId() >= before  # nextValidId was encodable again
            assert ib.managedAccounts() == gw.model.account_ids
        finally:
            ib.disconnect()
        # every silent and slow socket is closed at the deadline, one line each
        await until(lambda: all(r.close_cause is not None for r in gw.records if r.conn_id in bad_conn_ids),
                    timeout=deadline + 20)
        stop.set()
        await asyncio.gather(*slow)
        for conn_id in bad_conn_ids:
            lines = _warnings_for(caplog, conn_id)
            assert len(lines) == 1 and "handshake deadline" in lines[0], (conn_id, lines)
        assert gw.model.next_order_id == before
        _no_tracebacks(caplog)
        assert not [r for r in caplog.records if "Exceeds the limit" in r.getMessage()]
        for client in (bad, *silent):
            await client.close()


def test_mock_serve_handshake_timeout_option(tmp_path: Path) -> None:
    """`ibgw mock serve --handshake-timeout S`: a silent socket is closed
    after S seconds with one log line, no traceback."""
    server = MockServe(tmp_path / "mock.err", "--handshake-timeout", "0.5", "--log-level", "info")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent:
            silent.settimeout(20)
            assert silent.recv(1024) == b""  # closed by the mock, without a byte sent
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        err = server.stderr
        assert len(re.findall(r"conn 1 from \S+ closed: handshake deadline: no startApi within 0\.5 s", err)) == 1, err
        assert "Traceback" not in err
    finally:
        server.close()


def test_mock_serve_rejects_a_negative_handshake_timeout() -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--handshake-timeout", "-1")
    assert proc.returncode == 2 and "--handshake-timeout" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("env, expected", [(None, 30.0), ("2.5", 2.5), ("0", 0.0)])
def test_container_entry_point_reads_the_handshake_timeout(monkeypatch: pytest.MonkeyPatch, env: str | None,
                                                           expected: float) -> None:
    from harness.mock.serve import _parser

    if env is None:
        monkeypatch.delenv("IBGW_HANDSHAKE_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("IBGW_HANDSHAKE_TIMEOUT", env)
    assert _parser().parse_args([]).handshake_timeout == expected


@pytest.mark.parametrize("form", ["text-binary-id", "protobuf"])
async def test_huge_req_ids_in_the_protobuf_era(form: str, caplog: pytest.LogCaptureFixture) -> None:
    """At 10.50 (server version 226) reqIds goes as text behind a binary id,
    or as protobuf (an int32 varint: always a Java int, so only the sequence
    bound can refuse it: the sequence starts near its end there)."""
    from harness.protocol.era import Form
    from harness.protocol.wire import encode_in_form

    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, profile="10.50") as gw:
        if form == "protobuf":
            gw.model.next_order_id = JAVA_INT_MAX - 10
        before = gw.model.next_order_id
        bad = await MockClient.open(gw.port)
        await bad.hello(157, 226)
        assert (await bad.read_server_hello())[0] == 226
        start, _ = encode_in_form(Form.TEXT_BINARY_ID, 226, [Out.START_API, 2, 7, ""], from_client=True)
        await bad.send_raw(start)
        await until(lambda: gw.api_clients == 1)
        count = HUGE if form == "text-binary-id" else "100"
        data, _ = encode_in_form(Form(form), 226, [Out.REQ_IDS, 1, count], from_client=True)
        await bad.send_raw(data)
        record = next(r for r in gw.records if r.client_id == 7)
        await until(lambda: record.close_cause is not None)
        assert "request refused" in record.close_cause
        assert len(_warnings_for(caplog, record.conn_id)) == 1
        assert gw.model.next_order_id == before
        await until(lambda: gw.api_clients == 0)  # the slot frees once the connection's clean-up ran
        fresh = await MockClient.connect(gw.port, start=False)  # text era: the same shared sequence
        startup = await fresh.start_api(3)
        [next_id] = [f for f in startup if f[0] == str(In.NEXT_VALID_ID)]
        assert int(next_id[-1]) == before
        _no_tracebacks(caplog)
        await fresh.close()
        await bad.close()
