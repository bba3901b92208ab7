"""Nothing is silent: every request the official client can send gets an answer.

Why: a client that sends a request a Gateway always answers and gets nothing
waits for ever (ib_async's default request timeout is 0). The walk sends
every outgoing message id of ibapi 10.50 (`ibapi.message.OUT`) through the
raw client, in the text form (server version 176 and 200) and in the form
ibapi 10.50 uses at 226 (protobuf wherever it has one), and awaits for each
either its modelled reply or an error carrying its request id. Requests a
real Gateway never answers (cancels, settings) are checked by a ping that
must be answered after them on the same connection. Orders are refused by
the session (tests/proxy/test_order_guard.py) and not walked here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from ibapi.common import getServerVersionForMessage
from ibapi.message import OUT
from ibapi.server_versions import (
    MIN_SERVER_VER_CANCEL_CONTRACT_DATA,
    MIN_SERVER_VER_CONFIG,
    MIN_SERVER_VER_CURRENT_TIME_IN_MILLIS,
    MIN_SERVER_VER_UPDATE_CONFIG,
)

from harness.clients.raw import RawClient
from harness.mock import MockGateway
from harness.mock.profiles import get_profile
from harness.mock.request_catalog import ORDER_IDS, SILENT, UNMODELLED
from harness.protocol import market as mk
from harness.protocol import messages as m
from harness.protocol.era import Form
from harness.protocol.market import PROTO_REQUESTS
from harness.protocol.messages import In, Message
from harness.protocol.proto_messages import REQUESTS

WAIT = 15.0  # generous: answers arrive in milliseconds; this only bounds a broken mock
PROTOBUF_ONLY = {106, 107, 108, 109}  # ibapi sends these as protobuf only, gated by their own constants
# Requests ibapi refuses to send below a server version (it reports UPDATE_TWS locally instead).
NEWER_THAN_157 = {
    105: MIN_SERVER_VER_CURRENT_TIME_IN_MILLIS, 106: MIN_SERVER_VER_CANCEL_CONTRACT_DATA,
    107: MIN_SERVER_VER_CANCEL_CONTRACT_DATA, 108: MIN_SERVER_VER_CONFIG, 109: MIN_SERVER_VER_UPDATE_CONFIG,
}

# The reply that completes each modelled request (its end message, or its one reply).
MODELLED: dict[int, int] = {
    1: 57, 5: 53, 6: 54, 7: 55, 8: In.NEXT_VALID_ID, 9: 52, 16: 53, 17: In.MANAGED_ACCTS, 20: 17, 24: 19,
    49: In.CURRENT_TIME, 61: In.POSITION_END, 62: In.ACCOUNT_SUMMARY_END, 74: 72, 76: In.ACCOUNT_UPDATE_MULTI_END,
    78: 76, 79: 77, 80: 78, 81: 79, 82: 80, 83: 82, 85: 85, 87: 88, 91: 93, 92: 94, 94: 95, 99: 102,
    104: 107, 105: 109,
}

VALUES: dict[str, Any] = {
    "version": 1, "con_id": 265598, "symbol": "AAPL", "sec_type": "STK", "exchange": "SMART",
    "primary_exchange": "NASDAQ", "currency": "USD", "local_symbol": "AAPL", "trading_class": "NMS",
    "snapshot": 1, "bar_size": "5 mins", "duration": "1 D", "what_to_show": "TRADES", "use_rth": 1,
    "format_date": 1, "keep_up_to_date": 0, "pattern": "AA", "underlying_symbol": "AAPL",
    "underlying_sec_type": "STK", "underlying_con_id": 265598, "market_rule_id": 26, "market_data_type": 1,
    "subscribe": 1, "num_ids": 1, "group": "All", "tags": "NetLiquidation", "delta_neutral": 0,
    "include_expired": 0, "api_only": 0, "client_id": 0, "log_level": 2, "fa_data_type": 1,
    "all_messages": 1, "bbo_exchange": "9c0001", "last_n_days": 2**31 - 1, "n_specific_dates": 0,
}


def request_fields(out_id: int, req_id: int, server_version: int) -> list[Any]:
    """The request's text fields (id first), laid out as messages/market name them."""
    if out_id == 7:
        fields: list[Any] = m.req_executions(server_version, req_id)
        return fields
    layout = m._REQUEST_LAYOUTS.get(out_id, ())
    return [out_id, *[req_id if name == "req_id" else VALUES.get(name, "") for name in layout]]


def ibapi_form(out_id: int, server_version: int) -> Form:
    """The form ibapi 10.50 sends this request in at this server version."""
    if server_version < 201:
        return Form.TEXT
    if out_id in PROTOBUF_ONLY or getServerVersionForMessage(out_id) <= server_version:
        return Form.PROTOBUF
    return Form.TEXT_BINARY_ID


def _expects_req_id(out_id: int) -> bool:
    return "req_id" in m._REQUEST_LAYOUTS.get(out_id, ())


async def _answer(client: RawClient, out_id: int, req_id: int, form: Form) -> Message | None:
    """Send one request; return its completing reply (None for a silent one,
    after proving the connection still answers)."""
    fields = request_fields(out_id, req_id, client.server_version)
    if out_id in SILENT:
        client.send_in_form(fields, form)
        await client.ping(WAIT)
        return None
    wanted = MODELLED.get(out_id)
    with_id = _expects_req_id(out_id)

    def done(msg: Message) -> bool:
        if msg.msg_id == In.ERR_MSG:
            return msg.int("req_id", -2) == (req_id if with_id else -1) and not 2100 <= msg.int("code") < 2200
        return msg.msg_id == wanted

    reply = client._expect(done)
    client.send_in_form(fields, form)
    return await asyncio.wait_for(reply, WAIT)


def _all_out_ids(server_version: int = 10**9) -> list[int]:
    return sorted(int(o) for o in OUT if int(o) not in ORDER_IDS and int(o) != OUT.START_API
                  and NEWER_THAN_157.get(int(o), 0) <= server_version)


def test_every_out_id_is_catalogued() -> None:
    """Each id is modelled, silent or has its Gateway error: none falls through."""
    for out_id in _all_out_ids():
        assert out_id in MODELLED or out_id in SILENT or out_id in UNMODELLED, out_id
    assert not set(SILENT) & set(UNMODELLED)


def test_every_protobuf_request_has_a_schema() -> None:
    """At 226 ibapi sends these as protobuf: the mock must find their request id."""
    for out_id in _all_out_ids():
        if ibapi_form(out_id, 226) is Form.PROTOBUF:
            assert out_id in REQUESTS or out_id in PROTO_REQUESTS, out_id


@pytest.mark.parametrize("server_version, reply_model", [
    (176, "request-family"), (200, "request-family"), (207, "request-family"), (213, "request-family"),
    (226, "request-family"), (226, "rest3-switch"), (226, "binary-id-text"),
])
async def test_every_request_gets_an_answer(server_version: int, reply_model: str) -> None:
    """Every reply model of the protobuf era (era.py) too: the answer's form may change, never its arrival."""
    profile = replace(get_profile("10.50"), reply_model=reply_model)
    async with MockGateway(port=0, profile=profile) as gw:
        client = RawClient(100, server_version)
        await client.connect("127.0.0.1", gw.port, 31, timeout=WAIT)
        try:
            answered: dict[int, str] = {}
            walked = _all_out_ids(server_version)
            for index, out_id in enumerate(walked):
                req_id = 5000 + index
                try:
                    reply = await _answer(client, out_id, req_id, ibapi_form(out_id, server_version))
                except TimeoutError:
                    raise AssertionError(f"{m.message_name(out_id, from_client=True)} ({out_id}) got no answer "
                                         f"at server version {server_version}") from None
                answered[out_id] = "silent" if reply is None else reply.name
            assert set(answered) == set(walked)
            for out_id in set(UNMODELLED) & set(walked):
                assert answered[out_id] == "error", (out_id, answered[out_id])
            for out_id, reply_id in MODELLED.items():
                if out_id in walked:
                    assert answered[out_id] == m.message_name(reply_id, from_client=False), (out_id, answered[out_id])
            record = gw.records[-1]
            assert {u["msg_id"] for u in record.unmodelled} == set(UNMODELLED) & set(walked)
            assert record.close_cause is None, record.close_cause
        finally:
            await client.disconnect()


async def test_strict_turns_each_unmodelled_request_into_a_failure() -> None:
    async with MockGateway(port=0) as gw:
        gw.strict = True
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", gw.port, 32, timeout=WAIT)
        try:
            reply = await _answer(client, 10, 77, Form.TEXT)  # reqMktDepth: unmodelled
            assert reply is not None and reply.int("code") == 354
            assert reply.fields["message"] == "reqMktDepth is not modelled by the mock Gateway (strict)"
            record = gw.records[-1]
            assert record.unmodelled and record.unmodelled[0]["strict"] is True
            assert "FAILURE (strict): reqMktDepth req id 77" in record.to_text()
        finally:
            await client.disconnect()


async def test_unknown_symbol_gets_200_within_a_second() -> None:
    async with MockGateway(port=0) as gw:
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", gw.port, 33, timeout=WAIT)
        try:
            reply = client._expect(lambda msg: msg.msg_id == In.ERR_MSG and msg.int("req_id") == 9)
            loop = asyncio.get_running_loop()
            started = loop.time()
            client.send([9, 8, 9, 0, "NOSUCHSYM", "STK", "", "", "", "", "SMART", "", "USD", "", "", 0, "", "", ""])
            msg = await asyncio.wait_for(reply, WAIT)
            assert msg.int("code") == 200
            assert loop.time() - started < 1.0, "a real Gateway answers an unknown symbol at once"
        finally:
            await client.disconnect()


def test_market_layout_names_cover_every_out_id() -> None:
    assert set(mk.OUT_NAMES) == {int(o) for o in OUT}
    for o in OUT:
        assert m.message_name(int(o), from_client=True) != f"msg{int(o)}"


async def test_mock_serve_strict_flag_reports_the_failure(tmp_path) -> None:  # noqa: ANN001
    """`ibgw mock serve --strict`: the client's error and stderr name the failure."""
    import signal

    from tests.support.processes import MockServe

    server = MockServe(tmp_path / "strict.err", "--strict", "--log-level", "info")
    try:
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", server.port, 34, timeout=WAIT)
        try:
            reply = await _answer(client, 50, 88, Form.TEXT)  # reqRealTimeBars: unmodelled
            assert reply is not None and "not modelled" in reply.fields["message"]
        finally:
            await client.disconnect()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert "FAILURE (strict): unmodelled reqRealTimeBars (req id 88)" in server.stderr
    finally:
        server.close()
