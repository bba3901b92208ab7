"""The mock Gateway in-process, driven over real loopback sockets with the codec.

Every wait is an awaited read (or a wait for the mock's own state) with a
timeout; "nothing arrives" is an awaited read that must time out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ibapi import comm
from ibapi.decoder import Decoder
from ibapi.wrapper import EWrapper

from harness.mock import MockGateway
from harness.mock.model import AccountModel
from harness.protocol import decode_reply, encode_fields, encode_hello
from harness.protocol import messages as m
from harness.protocol.messages import In, Out
from tests.support.mockclient import QUIET, MockClient, is_error, is_msg, until

ACCOUNT = "DU1234567"
FARM_CODES = [2104, 2106, 2158]
CON_IDS = [265598, 756733, 12087792]


@pytest.fixture
async def gw() -> AsyncIterator[MockGateway]:
    async with MockGateway(port=0) as gateway:
        yield gateway


def _record(gw: MockGateway, client: MockClient) -> Any:
    """The mock's record of this client's connection, found by its local port."""
    host, port = client.writer.get_extra_info("sockname")[:2]
    for record in reversed(gw.records):
        if record.peer == f"{host}:{port}":
            return record
    raise AssertionError(f"no record for {host}:{port}")


async def _closed(gw: MockGateway, client: MockClient) -> Any:
    record = _record(gw, client)
    await until(lambda: record.close_cause is not None)
    return record


class _Calls(EWrapper):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name in ("calls", "__dict__", "__class__") or name.startswith("_"):
            return object.__getattribute__(self, name)
        calls = object.__getattribute__(self, "calls")
        return lambda *args, **kwargs: calls.append(name)


def ibapi_callbacks(server_version: int, frames: list[list[str]]) -> list[str]:
    """Run frames through the official client's decoder as EClient.run does (below 201)."""
    wrapper = _Calls()
    decoder = Decoder(wrapper, server_version)
    for fields in frames:
        decoder.interpret(comm.read_fields(encode_fields(fields[1:])), int(fields[0]))
    return wrapper.calls


# ---------------------------------------------------------------- version negotiation


@pytest.mark.parametrize("profile, low, high, expected", [
    ("default", 100, 157, 157),   # ibapi 9.81
    ("default", 157, 178, 178),   # ib_async
    ("default", 100, 226, 178),   # ibapi-stable 10.50
    ("default", 100, 225, 178),   # nautilus-ibapi 10.46
    ("default", 100, 170, 170),
    ("default", 176, 176, 176),
    ("text-max", 100, 226, 200),
    ("text-max", 157, 178, 178),
    ("legacy-157", 157, 178, 157),
    ("10.19", 100, 226, 176),
])
async def test_version_negotiation(profile: str, low: int, high: int, expected: int) -> None:
    async with MockGateway(port=0, profile=profile) as gw:
        client = await MockClient.open(gw.port)
        await client.hello(low, high)
        version, conn_time = await client.read_server_hello()
        assert version == expected
        assert re.fullmatch(rf"\d{{8}} \d\d:\d\d:\d\d {re.escape(gw.profile.time_zone)}", conn_time)
        record = _record(gw, client)
        assert record.client_range == (low, high) and record.server_version == expected
        await client.close()


async def test_versions_are_negotiated_per_connection(gw: MockGateway) -> None:
    ranges = [(100, 157), (157, 178), (100, 226), (100, 165)]
    clients = [await MockClient.open(gw.port) for _ in ranges]
    for client, (low, high) in zip(clients, ranges):
        await client.hello(low, high, "+PACEAPI" if low == 157 else "")
    versions = [(await c.read_server_hello())[0] for c in clients]
    assert versions == [157, 178, 178, 165]
    for i, client in enumerate(clients):
        await client.start_api(10 + i)
        assert await client.ping() > 0
    # each connection encodes at its own version: the 157 one gets 5-field errors
    order = await clients[0].request([Out.PLACE_ORDER, 1], is_msg(In.ERR_MSG))
    assert len(order[-1]) == 5
    order = await clients[1].request([Out.PLACE_ORDER, 1], is_msg(In.ERR_MSG))
    assert len(order[-1]) == 6
    for client in clients:
        await client.close()


@pytest.mark.parametrize("profile, low, high", [("default", 180, 226), ("legacy-157", 158, 178),
                                                ("text-max", 201, 226)])
async def test_client_minimum_above_profile_max_gets_the_gateways_version(profile: str, low: int, high: int,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A real Gateway answers with its own version and the client judges it
    (official clients: 506 "Unsupported version"; ib_async and rust-ibapi
    check their floor after the reply), so the mock replies and the client
    closes. (It used to close without a reply, which clients misread as a
    forwarder or a stalled API.)"""
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, profile=profile) as gw:
        client = await MockClient.open(gw.port)
        await client.hello(low, high)
        top = gw.profile.max_server_version
        version, _conn_time = await client.read_server_hello()
        assert version == top < low  # the Gateway's own maximum, below the client's minimum
        record = _record(gw, client)
        await client.close()  # the client refuses it, as real clients do
        await until(lambda: record.close_cause is not None)
        cause = f"client needs server version >= {low}, this Gateway supports at most {top}"
        assert record.close_cause == f"{cause}: replied with {top}, the client closed"
        assert record.server_version == top and not record.started_api
        assert any(cause in r.getMessage() for r in caplog.records if r.name == "harness.mock")
        # the Gateway itself is unaffected
        ok = await MockClient.connect(gw.port, 1)
        assert await ok.ping() > 0
        await ok.close()


# ---------------------------------------------------------------- startup


async def test_nothing_is_sent_before_start_api(gw: MockGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    client = await MockClient.open(gw.port)
    await client.hello(157, 178)
    await client.read_server_hello()
    # the version reply came alone: nothing else buffered, nothing else coming
    await client.expect_quiet(QUIET)
    # a request before startApi is read, logged and not answered
    await client.send([Out.REQ_CURRENT_TIME, 1])
    await client.expect_quiet(QUIET)
    record = _record(gw, client)
    assert [(e.direction, e.name) for e in record.entries] == [
        ("recv", "hello"), ("send", "serverVersion"), ("recv", "reqCurrentTime")]
    assert any("reqCurrentTime before startApi ignored" in r.getMessage() for r in caplog.records)
    startup = await client.start_api(3)
    assert [f[0] for f in startup] == ["9", "15", "4", "4", "4"]
    await client.close()


@pytest.mark.parametrize("profile, version, error_len", [("default", 178, 6), ("legacy-157", 157, 5),
                                                         ("text-max", 200, 6), ("10.19", 176, 6)])
async def test_startup_messages(profile: str, version: int, error_len: int) -> None:
    async with MockGateway(port=0, profile=profile, accounts=[ACCOUNT, "DU7654321"]) as gw:
        client = await MockClient.connect(gw.port, 0, min_version=100, max_version=226, start=False)
        assert client.server_version == version
        startup = await client.start_api(0)
        first_two = [int(f[0]) for f in startup[:2]]
        assert first_two == ([15, 9] if gw.profile.accounts_first else [9, 15])
        by_id = {int(f[0]): f for f in startup[:2]}
        assert by_id[In.NEXT_VALID_ID] == ["9", "1", "1"]
        assert by_id[In.MANAGED_ACCTS] == ["15", "1", f"{ACCOUNT},DU7654321"]
        notices = [decode_reply(version, f) for f in startup[2:]]
        assert [n.int("code") for n in notices] == FARM_CODES
        assert all(n.int("req_id") == -1 and n.name == "error" for n in notices)
        assert all(len(f) == error_len for f in startup[2:])
        assert notices[0].fields["message"] == "Market data farm connection is OK:usfarm"
        if version >= 194:
            assert abs(notices[0].int("error_time") - time.time() * 1000) < 60_000
        # the official decoder fires one callback per startup frame (none dropped)
        assert sorted(ibapi_callbacks(version, startup)) == sorted(
            ["nextValidId", "managedAccounts", "error", "error", "error"])
        await client.expect_quiet(QUIET)
        record = _record(gw, client)
        assert record.started_api and record.client_id == 0
        assert gw.client_ids_in_use == [0]
        await client.close()


# ---------------------------------------------------------------- requests


async def test_req_ids_allocates_increasing_ids(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    first = int((await client.request(m.req_ids(1), is_msg(In.NEXT_VALID_ID)))[-1][2])
    second = int((await client.request(m.req_ids(5), is_msg(In.NEXT_VALID_ID)))[-1][2])
    third = int((await client.request(m.req_ids(1), is_msg(In.NEXT_VALID_ID)))[-1][2])
    assert first < second < third and third - second == 5
    # a later connection's startup id is past everything handed out
    other = await MockClient.connect(gw.port, 2, start=False)
    startup = await other.start_api(2)
    assert int(next(f for f in startup if f[0] == "9")[2]) > third
    await client.close()
    await other.close()


async def test_req_managed_accts(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    frames = await client.request(m.req_managed_accts(), is_msg(In.MANAGED_ACCTS))
    assert frames == [["15", "1", ACCOUNT]]
    await client.close()


async def test_req_current_time(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    frames = await client.request(m.req_current_time(), is_msg(In.CURRENT_TIME))
    assert len(frames) == 1 and frames[0][:2] == ["49", "1"] and len(frames[0]) == 3
    assert abs(int(frames[0][2]) - time.time()) <= 2
    await client.close()


async def test_req_positions(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    frames = await client.request(m.req_positions(), is_msg(In.POSITION_END))
    assert frames[-1] == ["62", "1"]
    positions = [decode_reply(178, f) for f in frames[:-1]]
    assert all(len(f) == 16 for f in frames[:-1])
    assert [p.int("con_id") for p in positions] == CON_IDS
    assert {p.fields["account"] for p in positions} == {ACCOUNT}
    assert [p.fields["position"] for p in positions] == ["100", "20", "10000"]
    assert ibapi_callbacks(178, frames) == ["position"] * 3 + ["positionEnd"]
    await client.close()


@pytest.mark.parametrize("request_fields", [m.req_open_orders(), [Out.REQ_ALL_OPEN_ORDERS, 1]],
                         ids=["reqOpenOrders", "reqAllOpenOrders"])
async def test_open_orders_end(gw: MockGateway, request_fields: list[Any]) -> None:
    client = await MockClient.connect(gw.port, 1)
    assert await client.request(request_fields, is_msg(In.OPEN_ORDER_END)) == [["53", "1"]]
    await client.close()


async def test_req_completed_orders(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    assert await client.request(m.req_completed_orders(False), is_msg(In.COMPLETED_ORDERS_END)) == [["102"]]
    assert await client.request(m.req_completed_orders(True), is_msg(In.COMPLETED_ORDERS_END)) == [["102"]]
    await client.close()


async def test_req_account_updates(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    frames = await client.request(m.req_account_updates(True, ACCOUNT), is_msg(In.ACCT_DOWNLOAD_END))
    ids = [int(f[0]) for f in frames]
    n_values = len(gw.model.accounts[0].account_values())
    assert ids == [6] * n_values + [7] * 3 + [8, 54]
    values = {(f[2], f[4]): f[3] for f in frames if f[0] == "6"}
    assert all(len(f) == 6 and f[1] == "2" and f[5] == ACCOUNT for f in frames if f[0] == "6")
    assert values[("AccountCode", "")] == ACCOUNT
    assert values[("NetLiquidation", "USD")] == f"{gw.model.accounts[0].net_liquidation:.2f}"
    portfolio = [decode_reply(178, f) for f in frames if f[0] == "7"]
    assert all(len(f) == 20 for f in frames if f[0] == "7")
    assert [p.int("con_id") for p in portfolio] == CON_IDS
    assert portfolio[0].fields["primary_exchange"] == "NASDAQ" and portfolio[0].fields["account"] == ACCOUNT
    assert re.fullmatch(r"\d\d:\d\d", frames[-2][2])
    assert frames[-1] == ["54", "1", ACCOUNT]
    calls = ibapi_callbacks(178, frames)
    assert calls == ["updateAccountValue"] * n_values + ["updatePortfolio"] * 3 + [
        "updateAccountTime", "accountDownloadEnd"]
    # an empty account code means the first account
    frames = await client.request(m.req_account_updates(True, ""), is_msg(In.ACCT_DOWNLOAD_END))
    assert frames[-1] == ["54", "1", ACCOUNT]
    # unsubscribing has no reply: the next thing back is the ping's answer
    await client.send(m.req_account_updates(False, ACCOUNT))
    assert [f[0] for f in await client.request(m.req_current_time(), is_msg(In.CURRENT_TIME))] == ["49"]
    await client.close()


async def test_req_account_updates_unknown_account(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    frames = await client.request(m.req_account_updates(True, "DU0000000"), is_error(321))
    assert len(frames) == 1 and "Invalid account code" in frames[0][4]
    assert await client.ping() > 0
    await client.close()


@pytest.mark.parametrize("wanted", ["All", "", "DU7654321"])
async def test_req_account_updates_multi(wanted: str) -> None:
    async with MockGateway(port=0, accounts=[ACCOUNT, "DU7654321"]) as gw:
        client = await MockClient.connect(gw.port, 1)
        frames = await client.request([Out.REQ_ACCOUNT_UPDATES_MULTI, 1, 9002, wanted, "", True],
                                      is_msg(In.ACCOUNT_UPDATE_MULTI_END))
        assert frames[-1] == ["74", "1", "9002"]
        rows = frames[:-1]
        assert all(len(f) == 8 and f[:3] == ["73", "1", "9002"] for f in rows)
        accounts = {f[3] for f in rows}
        assert accounts == ({"DU7654321"} if wanted == "DU7654321" else {ACCOUNT, "DU7654321"})
        per_account = len(gw.model.accounts[0].account_values())
        assert len(rows) == per_account * len(accounts)
        assert ibapi_callbacks(178, frames) == ["accountUpdateMulti"] * len(rows) + ["accountUpdateMultiEnd"]
        await client.close()


async def test_req_account_summary(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    tags = "NetLiquidation,TotalCashValue,AccountType,NoSuchTag"
    frames = await client.request(m.req_account_summary(9001, "All", tags), is_msg(In.ACCOUNT_SUMMARY_END))
    assert frames[-1] == ["64", "1", "9001"]
    rows = [(f[4], f[6]) for f in frames[:-1]]
    # alphabetical, not request order, as the public rust-ibapi capture (tws_interactions.yaml) shows
    assert rows == [("AccountType", ""), ("NetLiquidation", "USD"), ("TotalCashValue", "USD")]
    assert all(len(f) == 7 and f[:4] == ["63", "1", "9001", ACCOUNT] for f in frames[:-1])
    assert ibapi_callbacks(178, frames) == ["accountSummary"] * 3 + ["accountSummaryEnd"]
    await client.close()


@pytest.mark.parametrize("profile, version, length", [("legacy-157", 157, 31), ("default", 178, 32),
                                                      ("text-max", 200, 33)])
async def test_req_executions(profile: str, version: int, length: int) -> None:
    async with MockGateway(port=0, profile=profile) as gw:
        client = await MockClient.connect(gw.port, 1, min_version=100, max_version=226)
        assert client.server_version == version
        frames = await client.request(m.req_executions(version, 9003), is_msg(In.EXECUTION_DATA_END))
        assert frames[-1] == ["55", "1", "9003"]
        fill_frames = [f for f in frames[:-1] if f[0] == str(In.EXECUTION_DATA)]
        fills = [decode_reply(version, f) for f in fill_frames]
        assert len(fills) == 2 and all(len(f) == length for f in fill_frames)
        assert [f.int("order_id") for f in fills] == [11, 12]
        assert all(f.int("req_id") == 9003 and f.fields["account"] == ACCOUNT for f in fills)
        # each fill is followed by its commission report, as a Gateway sends them
        assert [f[2] for f in frames if f[0] == "59"] == [f.fields["exec_id"] for f in fills]
        assert ibapi_callbacks(version, frames) == ["execDetails", "commissionAndFeesReport"] * 2 + ["execDetailsEnd"]
        # a filter on another account: only the end marker
        other = [Out.REQ_EXECUTIONS, 3, 9004, 0, "DU0000000", "", "", "", "", ""]
        assert await client.request(other, is_msg(In.EXECUTION_DATA_END)) == [["55", "1", "9004"]]
        await client.close()


async def test_req_current_time_in_millis_at_197_plus() -> None:
    async with MockGateway(port=0, profile="text-max") as gw:
        client = await MockClient.connect(gw.port, 1, min_version=100, max_version=226)
        assert client.server_version == 200
        frames = await client.request([Out.REQ_CURRENT_TIME_IN_MILLIS], is_msg(In.CURRENT_TIME_IN_MILLIS))
        assert len(frames) == 1 and len(frames[0]) == 2
        assert abs(int(frames[0][1]) - time.time() * 1000) < 2000
        assert ibapi_callbacks(200, frames) == ["currentTimeInMillis"]
        await client.close()


async def test_req_current_time_in_millis_below_197_has_no_reply(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    assert client.server_version == 178
    await client.send([Out.REQ_CURRENT_TIME_IN_MILLIS])
    frames = await client.request(m.req_current_time(), is_msg(In.CURRENT_TIME))
    assert [f[0] for f in frames] == ["49"]
    await client.close()


async def test_ignored_requests_have_no_reply(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 1)
    for fields in ([Out.CANCEL_POSITIONS, 1], [Out.CANCEL_ACCOUNT_SUMMARY, 1, 9001],
                   [Out.CANCEL_ACCOUNT_UPDATES_MULTI, 1, 9002], [Out.REQ_MARKET_DATA_TYPE, 1, 3],
                   [Out.REQ_AUTO_OPEN_ORDERS, 1, 1]):
        await client.send(fields)
    frames = await client.request(m.req_current_time(), is_msg(In.CURRENT_TIME))
    assert [f[0] for f in frames] == ["49"]
    await client.close()


async def test_unknown_request_is_ignored_and_connection_keeps_working(gw: MockGateway,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    client = await MockClient.connect(gw.port, 1)
    await client.send([999, 1, "whatever"])
    await client.send([998, 11, 7, 0, "AAPL", "STK"])  # no such request in any client
    await client.send(["0"])
    frames = await client.request(m.req_current_time(), is_msg(In.CURRENT_TIME))
    assert [f[0] for f in frames] == ["49"]
    record = _record(gw, client)
    assert record.close_cause is None
    names = [e.name for e in record.entries if e.direction == "recv"]
    assert names[-4:] == ["msg999", "msg998", "msg0", "reqCurrentTime"]
    assert any("unhandled msg999" in r.getMessage() for r in caplog.records)
    await client.close()


# (fields, the id the refusal carries: placeOrder's orderId comes first at 178,
# cancelOrder's after its VERSION below 192, exerciseOptions' after VERSION, none for a global cancel)
ORDER_MESSAGES = [
    ([Out.PLACE_ORDER, 45, 3, 0, "AAPL", "STK"], 45),
    ([Out.CANCEL_ORDER, 1, 3, ""], 3),
    ([Out.REQ_GLOBAL_CANCEL, 1], -1),
    ([Out.EXERCISE_OPTIONS, 2, 5], 5),
]
ORDER_IDS = ["placeOrder", "cancelOrder", "reqGlobalCancel", "exerciseOptions"]


@pytest.mark.parametrize("faults, code, text", [
    ([], 201, "never executes orders"),                 # default: rejected like an order
    (["read-only-api"], 321, "Read-Only mode"),          # the Read-Only API setting
], ids=["default", "read-only-api"])
@pytest.mark.parametrize("order_fields, order_id", ORDER_MESSAGES, ids=ORDER_IDS)
async def test_order_messages_are_refused_and_connection_stays(
        order_fields: list[Any], order_id: int, faults: list[str], code: int, text: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, faults=faults) as gw:
        client = await MockClient.connect(gw.port, 1)
        frames = await client.request(order_fields, is_msg(In.ERR_MSG))
        assert len(frames) == 1
        error = decode_reply(178, frames[0])
        assert error.int("code") == code and text in error.fields["message"]
        assert error.int("req_id") == order_id
        assert ibapi_callbacks(178, frames) == ["error"]
        assert await client.ping() > 0
        assert _record(gw, client).close_cause is None
        name = m.message_name(int(order_fields[0]), from_client=True)
        assert any(r.levelno == logging.WARNING and f"refused {name}" in r.getMessage() for r in caplog.records)
        await client.close()


# ---------------------------------------------------------------- client ids and the connection cap


async def test_duplicate_client_id_gets_326_then_close(gw: MockGateway) -> None:
    first = await MockClient.connect(gw.port, 7)
    second = await MockClient.connect(gw.port, 7, start=False)
    await second.start_api(7, wait=False)
    frames = await second.read_until(is_error(326))
    assert len(frames) == 1  # no nextValidId/managedAccounts for the refused client
    error = decode_reply(178, frames[0])
    assert error.int("req_id") == -1 and "client id is already in use" in error.fields["message"]
    assert await second.read_to_eof() == b""
    record = await _closed(gw, second)
    assert record.close_cause == "client id 7 already in use (326)" and not record.started_api
    # the first holder is untouched and keeps its id
    assert await first.ping() > 0
    assert gw.client_ids_in_use == [7]
    assert gw.record_for_client(7) is record  # newest record of id 7
    # once the holder leaves, the id is free again
    await first.close_write()
    await first.read_to_eof()
    await until(lambda: 7 not in gw.client_ids_in_use)
    third = await MockClient.connect(gw.port, 7)
    assert await third.ping() > 0
    await third.close()


async def test_distinct_client_ids_coexist(gw: MockGateway) -> None:
    clients = [await MockClient.connect(gw.port, cid) for cid in (0, 1, 999)]
    assert gw.client_ids_in_use == [0, 1, 999]
    for client in clients:
        assert await client.ping() > 0
    for client in clients:
        await client.close()


async def test_max_clients_cap(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.mock")
    async with MockGateway(port=0, max_clients=2) as gw:
        a = await MockClient.connect(gw.port, 1)
        b = await MockClient.connect(gw.port, 2)
        assert gw.active_connections == 2
        refused = await MockClient.open(gw.port)
        await refused.send_raw(encode_hello(157, 178))
        assert await refused.read_to_eof() == b""  # accepted, then closed without a reply
        record = await _closed(gw, refused)
        assert record.close_cause == "connection cap of 2 clients reached"
        assert any(r.levelno == logging.WARNING and "connection cap of 2 clients reached" in r.getMessage()
                   for r in caplog.records if r.name == "harness.mock")
        assert await a.ping() > 0 and await b.ping() > 0
        # a slot frees when a client leaves
        await a.close_write()
        await a.read_to_eof()
        await until(lambda: gw.active_connections < 2)
        c = await MockClient.connect(gw.port, 3)
        assert await c.ping() > 0
        await b.close()
        await c.close()


# ---------------------------------------------------------------- transcript and shutdown


async def test_transcript_records_both_directions(gw: MockGateway) -> None:
    client = await MockClient.connect(gw.port, 5)
    await client.ping()
    await client.request(m.req_positions(), is_msg(In.POSITION_END))
    await client.close_write()
    await client.read_to_eof()
    record = await _closed(gw, client)
    assert record.client_id == 5 and record.client_range == (157, 178) and record.server_version == 178
    assert record.started_api and record.close_cause == "client closed the connection"
    assert record.closed_at is not None and record.closed_at >= record.accepted_at
    assert gw.record_for_client(5) is record
    entries = [(e.direction, e.name) for e in record.entries]
    assert entries == [
        ("recv", "hello"), ("send", "serverVersion"), ("recv", "startApi"),
        ("send", "nextValidId"), ("send", "managedAccounts"), ("send", "error"), ("send", "error"),
        ("send", "error"), ("recv", "reqCurrentTime"), ("send", "currentTime"), ("recv", "reqPositions"),
        ("send", "position"), ("send", "position"), ("send", "position"), ("send", "positionEnd"),
    ]
    times = [e.t for e in record.entries]
    assert times == sorted(times) and times[0] >= 0
    assert times[-1] <= record.closed_at - record.accepted_at
    assert record.entries[0].fields == ["v157..178"]
    assert record.entries[2].fields == ["71", "2", "5", ""]
    assert record.entries[3].fields == ["9", "1", "1"]
    text = record.to_text()
    assert "-> startApi" in text and "<- currentTime" in text and "# closed: client closed the connection" in text
    data = record.to_dict()
    assert data["client_id"] == 5 and len(data["frames"]) == len(record.entries)
    assert data["frames"][1]["dir"] == "send" and data["frames"][1]["name"] == "serverVersion"


async def test_stop_leaves_no_open_connection() -> None:
    gw = MockGateway(port=0)
    await gw.start()
    port = gw.port
    started = [await MockClient.connect(port, cid) for cid in (1, 2)]
    mid_handshake = await MockClient.connect(port, 3, start=False)  # version reply read, no startApi
    just_opened = await MockClient.open(port)
    await just_opened.send_raw(b"AP")  # inside the prefix
    for client in started:
        await client.ping()
    await until(lambda: gw.active_connections == 4)
    await gw.stop()
    assert gw.active_connections == 0
    assert gw.client_ids_in_use == []
    for client in [*started, mid_handshake, just_opened]:
        await client.read_to_eof()
        assert client.eof
        assert _record(gw, client).close_cause == "mock shutting down"
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
    await gw.stop()  # idempotent
    for client in [*started, mid_handshake, just_opened]:
        await client.close()


async def test_model_is_deterministic_across_gateways() -> None:
    """Two mocks serve byte-identical positions and account values (evidence is comparable)."""
    results = []
    for _ in range(2):
        async with MockGateway(port=0, model=AccountModel.default()) as gw:
            client = await MockClient.connect(gw.port, 1)
            positions = await client.request(m.req_positions(), is_msg(In.POSITION_END))
            values = await client.request(m.req_account_updates(True, ACCOUNT), is_msg(In.ACCT_DOWNLOAD_END))
            results.append((positions, [f for f in values if f[0] != "8"]))  # 8 = the clock's HH:MM
            await client.close()
    assert results[0] == results[1]
