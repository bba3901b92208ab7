"""A refused order carries its order id, as a real Gateway's refusal does.

Why it matters: clients close their order bookkeeping on the id in the
error. ib_async marks the Trade Cancelled (201) or ValidationError (321)
only when the error's reqId is the order's id; with -1 a team's CI test
that awaits its order's fate against the mock would wait forever.

The frames come from the official client itself (ibapi comm.make_msg /
make_msg_proto, the layouts of client.py) and from ib_async and ibapi
driven through their own public calls against the mock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ibapi import comm
from ibapi.message import OUT

from harness.clients import make_client
from harness.mock import MockGateway
from harness.protocol.orders import NO_ID, order_id_of

HOST = "127.0.0.1"
TIMEOUT = 8.0


def text(msg_id: int, *fields: Any) -> bytes:
    return comm.make_msg(msg_id, False, "".join(comm.make_field(f) for f in fields))[4:]


def binary(msg_id: int, *fields: Any) -> bytes:
    return comm.make_msg(msg_id, True, "".join(comm.make_field(f) for f in fields))[4:]


def proto(msg_id: int, body: bytes) -> bytes:
    return comm.make_msg_proto(msg_id + 200, body)[4:]


@pytest.mark.parametrize("server_version, payload, expected", [
    (144, text(OUT.PLACE_ORDER, 27, 17, 0, "AAPL"), 17),  # VERSION first below 145
    (178, text(OUT.PLACE_ORDER, 17, 0, "AAPL"), 17),
    (202, binary(OUT.PLACE_ORDER, 17, 0, "AAPL"), 17),
    (226, proto(OUT.PLACE_ORDER, b"\x08\x11\x12\x00"), 17),  # PlaceOrderRequest.orderId = 17, then a contract
    (191, text(OUT.CANCEL_ORDER, 1, 23, ""), 23),  # VERSION first below 192
    (200, text(OUT.CANCEL_ORDER, 23, ""), 23),
    (226, proto(OUT.CANCEL_ORDER, b"\x08\x17"), 23),
    (178, text(OUT.EXERCISE_OPTIONS, 2, 31, 0), 31),  # VERSION, reqId at every version
    (226, proto(OUT.EXERCISE_OPTIONS, b"\x08\x1f"), 31),
    (178, text(OUT.REQ_GLOBAL_CANCEL, 1), NO_ID),  # no id: -1, as the Gateway reports it
    (226, proto(OUT.REQ_GLOBAL_CANCEL, b""), NO_ID),
    (226, proto(OUT.PLACE_ORDER, b"\x08\xff\xff\xff\xff\x0f"), -1),  # int32 -1 as a varint
    (178, text(OUT.PLACE_ORDER), NO_ID),  # truncated: no id to give back
    (178, text(OUT.PLACE_ORDER, "x"), NO_ID),
    (226, proto(OUT.PLACE_ORDER, b"\x12\x00"), NO_ID),  # orderId unset (proto3 default omitted)
    (226, proto(OUT.PLACE_ORDER, b"\x08\xff"), NO_ID),  # truncated varint
], ids=["place-144", "place-178", "place-binary-202", "place-pb", "cancel-191", "cancel-200", "cancel-pb",
        "exercise-178", "exercise-pb", "global-178", "global-pb", "place-pb-minus-1", "place-truncated",
        "place-not-a-number", "place-pb-no-id", "place-pb-bad-varint"])
def test_the_order_id_is_found_in_every_form(server_version: int, payload: bytes, expected: int) -> None:
    assert order_id_of(server_version, payload) == expected


def _ibapi_order() -> tuple[Any, Any]:
    from ibapi.contract import Contract
    from ibapi.order import Order

    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
    order = Order()
    order.action, order.totalQuantity, order.orderType, order.lmtPrice = "BUY", 1, "LMT", 1.0
    return contract, order


@pytest.mark.parametrize("profile, server_version", [("default", 178), ("10.50", 226)])
async def test_ibapi_gets_its_order_id_back_in_both_eras(profile: str, server_version: int) -> None:
    """ibapi 10.50 sends placeOrder as text at 178 and as protobuf at 226;
    EWrapper.error gets the id it passed, for placeOrder and cancelOrder."""
    async with MockGateway(HOST, 0, profile=profile) as gw:
        client = make_client("ibapi")
        result = await client.connect(HOST, gw.port, 61, timeout=TIMEOUT)
        try:
            assert result.server_version == server_version
            order_id = result.next_valid_id
            assert order_id is not None
            contract, order = _ibapi_order()
            seen = len(result.messages)
            # The adapter offers no order call (read-only by design); its EClient
            # is driven on its own call thread, as every ibapi call is.
            await client._call(client._app.placeOrder, order_id, contract, order)
            await client.ping(TIMEOUT)  # the mock answers in order: the refusal came before the ping's reply
            from ibapi.order_cancel import OrderCancel

            await client._call(client._app.cancelOrder, order_id + 1, OrderCancel())
            await client.ping(TIMEOUT)
        finally:
            await client.disconnect()
    refusals = [(msg.code, msg.req_id) for msg in result.messages[seen:] if msg.code == 201]
    assert refusals == [(201, order_id), (201, order_id + 1)]


@pytest.mark.parametrize("faults, status, code", [([], "Cancelled", 201), (["read-only-api"], "ValidationError", 321)],
                         ids=["refused", "read-only-api"])
async def test_ib_async_closes_its_trade_on_the_refusal(faults: list[str], status: str, code: int) -> None:
    """ib_async, through its public API: the Trade leaves PendingSubmit with
    the mock's reason in its log (statusEvent awaited, no sleep)."""
    from ib_async import LimitOrder, Stock

    async with MockGateway(HOST, 0, faults=faults) as gw:
        client = make_client("ib_async")
        await client.connect(HOST, gw.port, 62, timeout=TIMEOUT)
        try:
            changed = asyncio.Event()
            trade = client.ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
            trade.statusEvent += lambda _trade: changed.set()
            await asyncio.wait_for(changed.wait(), TIMEOUT)
        finally:
            await client.disconnect()
    assert trade.orderStatus.status == status
    assert trade.log[-1].errorCode == code and f"reqId {trade.order.orderId}" in trade.log[-1].message
