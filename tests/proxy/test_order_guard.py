"""The order guard: no order message passes the recording proxy, in any of
its three wire forms, whatever client sends it.

Frames are built with the official client's own encoders (ibapi comm.make_msg
for text and binary-id frames, comm.make_msg_proto for protobuf), and the
forms are sent at the server versions where ibapi itself uses them (text
below 201, binary id at 201..202, protobuf at 226), through the proxy to the
mock. The Gateway (the mock) must never see the message, and the proxy must
close that connection with the reason.
"""

from __future__ import annotations

import asyncio

import pytest
from ibapi import comm
from ibapi.common import PROTOBUF_MSG_ID, getServerVersionForMessage
from ibapi.message import OUT

from harness.live.proxy_glue import (
    UNDECODABLE,
    frame_guard,
    start_recording_proxy,
    stop_recording_proxy,
)
from harness.mock import MockGateway
from harness.mock.profiles import get_profile
from harness.protocol import FrameReader, encode_hello
from harness.protocol.handshake import parse_server_hello
from harness.safety.order_guard import (
    FORM_BINARY,
    FORM_PROTOBUF,
    FORM_TEXT,
    ORDER_MESSAGE_IDS,
    OrderGuard,
    classify_order,
)
from harness.targets.base import TARGET_EXTERNAL, Endpoint

TIMEOUT = 5.0
ORDERS = {"placeOrder": OUT.PLACE_ORDER, "cancelOrder": OUT.CANCEL_ORDER, "exerciseOptions": OUT.EXERCISE_OPTIONS,
          "reqGlobalCancel": OUT.REQ_GLOBAL_CANCEL}
# The server version at which ibapi sends each form (ibapi client.sendMsg / useProtoBuf).
FORM_VERSION = {FORM_TEXT: 178, FORM_BINARY: 202, FORM_PROTOBUF: 226}


def order_frame(msg_id: int, form: str) -> bytes:
    """A complete frame (length prefix included) as ibapi's comm module builds it."""
    if form == FORM_TEXT:
        return comm.make_msg(msg_id, False, comm.make_field(1) + comm.make_field(7))
    if form == FORM_BINARY:
        return comm.make_msg(msg_id, True, comm.make_field(1) + comm.make_field(7))
    return comm.make_msg_proto(msg_id + PROTOBUF_MSG_ID, b"\x08\x07")


def start_api_frame(client_id: int, server_version: int) -> bytes:
    """startApi in the form ibapi uses at that version (text, binary id, protobuf from 213)."""
    fields = comm.make_field(2) + comm.make_field(client_id) + comm.make_field("")
    if server_version < 201:
        return comm.make_msg(OUT.START_API, False, fields)
    if server_version < 213:
        return comm.make_msg(OUT.START_API, True, fields)
    return comm.make_msg_proto(OUT.START_API + PROTOBUF_MSG_ID, bytes([0x08, client_id]))


# ------------------------------------------------------------------ the classifier


@pytest.mark.parametrize("form", [FORM_TEXT, FORM_BINARY, FORM_PROTOBUF])
@pytest.mark.parametrize("name", list(ORDERS))
def test_every_form_of_every_order_message_is_recognised(name, form):
    order = classify_order(order_frame(ORDERS[name], form)[4:])
    assert order is not None and (order.name, order.form) == (name, form)
    assert order.wire_id == ORDERS[name] + (200 if form == FORM_PROTOBUF else 0)
    assert "ORDER BLOCKED" in order.reason and name in order.reason


def test_protobuf_ids_match_ibapi():
    """203/204/258/221, and ibapi really switches these messages to protobuf."""
    assert {ORDERS[n] + 200 for n in ORDERS} == {203, 204, 221, 258}
    assert set(ORDER_MESSAGE_IDS) == set(ORDERS.values())
    for msg_id in ORDERS.values():
        assert 201 <= getServerVersionForMessage(msg_id) <= 226


@pytest.mark.parametrize("payload", [
    comm.make_msg(OUT.START_API, False, "2\x0042\x00\x00")[4:],  # startApi, text
    comm.make_msg(OUT.REQ_POSITIONS, True, "1\x00")[4:],  # reqPositions, binary id
    comm.make_msg_proto(OUT.REQ_POSITIONS + 200, b"")[4:],  # reqPositions, protobuf (261)
    comm.make_msg_proto(OUT.REQ_CURRENT_TIME + 200, b"")[4:],
    b"v100..226",  # the version-range hello
    b"3",  # a digit with no NUL is no text message
    b"\x00\x00",  # too short for a binary id
    b"",
], ids=["startApi-text", "reqPositions-binary", "reqPositions-pb", "reqCurrentTime-pb", "hello", "no-nul",
        "short", "empty"])
def test_other_messages_pass(payload):
    assert classify_order(payload) is None


def test_guard_keeps_what_it_refused():
    guard = OrderGuard()
    assert guard(order_frame(OUT.REQ_GLOBAL_CANCEL, FORM_PROTOBUF)[4:]) is not None
    assert guard(comm.make_msg(OUT.REQ_CURRENT_TIME, False, "1\x00")[4:]) is None
    assert [(b.name, b.form) for b in guard.blocked] == [("reqGlobalCancel", FORM_PROTOBUF)]


# ------------------------------------------------------------------ through the proxy, in front of the mock


async def _handshake(port: int, version: int, client_id: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Hello, the server hello and startApi through the proxy, then one
    start-up frame back: the session works before the order is sent."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    writer.write(encode_hello(100, version))
    frames = FrameReader()
    got: list[bytes] = []
    while len(got) < 1:
        got += frames.feed(await asyncio.wait_for(reader.read(65536), TIMEOUT))
    assert parse_server_hello(got.pop(0))[0] == version
    writer.write(start_api_frame(client_id, version))
    while not got:
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        assert data, "the session closed before the start-up burst"
        got += frames.feed(data)
    return reader, writer


async def _read_to_eof(reader: asyncio.StreamReader) -> None:
    while await asyncio.wait_for(reader.read(65536), TIMEOUT):
        pass


@pytest.mark.parametrize("form", [FORM_TEXT, FORM_BINARY, FORM_PROTOBUF])
async def test_proxy_refuses_every_order_form_and_closes_the_connection(form):
    version = FORM_VERSION[form]
    profile = get_profile("10.50").with_max(version) if version > 200 else get_profile("default")
    async with MockGateway(port=0, profile=profile) as mock:
        guard = OrderGuard()
        upstream = Endpoint(TARGET_EXTERNAL, "127.0.0.1", mock.port, f"mock@{version}")
        proxy, endpoint = await start_recording_proxy(upstream, guard)
        try:
            for i, (name, msg_id) in enumerate(ORDERS.items()):
                reader, writer = await _handshake(endpoint.port, version, 30 + i)
                writer.write(order_frame(msg_id, form))
                await _read_to_eof(reader)  # the proxy closes the connection
                writer.close()
                record = mock.record_for_client(30 + i)
                assert record is not None and record.server_version == version
                assert not any(e.direction == "recv" and e.name == name for e in record.entries), \
                    f"{name} reached the Gateway"
            assert [(b.name, b.form) for b in guard.blocked] == [(n, form) for n in ORDERS]
            assert [d["cause"] for d in proxy.denied] == [b.reason for b in guard.blocked]
            assert "ORDER BLOCKED" in proxy.transcript_text()
        finally:
            await stop_recording_proxy(proxy)


async def test_a_real_client_placing_an_order_is_cut_off_unmodified():
    """ib_async, unmodified, calls placeOrder through the proxy: the frame
    never reaches the Gateway and the library sees its connection closed."""
    from ib_async import IB, MarketOrder, Stock

    async with MockGateway(port=0) as mock:
        guard = OrderGuard()
        upstream = Endpoint(TARGET_EXTERNAL, "127.0.0.1", mock.port, "mock")
        proxy, endpoint = await start_recording_proxy(upstream, guard)
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", endpoint.port, clientId=77, timeout=TIMEOUT)
            closed = asyncio.Event()
            ib.disconnectedEvent += closed.set
            ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 1))
            await asyncio.wait_for(closed.wait(), TIMEOUT)
            assert not ib.isConnected()
            record = mock.record_for_client(77)
            assert record is not None and not any(e.name == "placeOrder" for e in record.entries)
            assert [(b.name, b.form) for b in guard.blocked] == [("placeOrder", FORM_TEXT)]
        finally:
            ib.disconnect()
            await stop_recording_proxy(proxy)


def test_undecodable_client_stream_is_refused():
    """Once the proxy cannot decode a client's stream it could not see an
    order in it either: the guard fails closed."""
    from harness.protocol.frame import UP, Frame

    guard = frame_guard(OrderGuard())
    broken = Frame(1, UP, "message", "undecodable", b"\xff\xff", None, None, None)
    hello = Frame(1, UP, "hello", "hello v100..178", b"v100..178", ["v100..178"], None, None)
    assert guard(broken) == UNDECODABLE
    assert guard(hello) is None
