"""Streams the mock keeps up: keepUpToDate bars and streaming quotes, until cancelled.

Why: an app that asks for bars with keepUpToDate, or a streaming quote,
waits for updates; a mock that answers once and goes quiet looks like a
stalled Gateway. Each update is awaited as an event; the cancel is proven
processed by a ping answered after it (the mock handles a connection's
requests in order), never by sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.clients.raw import RawClient
from harness.mock import MockGateway
from harness.protocol import messages as m
from harness.protocol.messages import In

WAIT = 15.0
AAPL = [265598, "AAPL", "STK", "", "", "", "", "SMART", "NASDAQ", "USD", "", ""]


def _desk(gw: MockGateway) -> Any:
    (session,) = list(gw._sessions)
    return session.desk


async def _await(client: RawClient, msg_id: int, req_id: int) -> Any:
    return await asyncio.wait_for(client._expect(
        lambda msg: msg.msg_id == msg_id and msg.raw[:1] == [str(req_id)]), WAIT)


async def test_keep_up_to_date_bars_stream_until_cancelled() -> None:
    async with MockGateway(port=0, profile="text-max") as gw:
        client = RawClient(100, 200)
        await client.connect("127.0.0.1", gw.port, 51, timeout=WAIT)
        try:
            end = client._expect(lambda msg: msg.msg_id == 108)
            update = client._expect(lambda msg: msg.msg_id == 90)
            client.send([20, 61, *AAPL, 0, "", "1 min", "1800 S", 1, "TRADES", 1, 1, ""])
            await asyncio.wait_for(end, WAIT)
            bar = await asyncio.wait_for(update, WAIT)
            assert bar.raw[0] == "61" and float(bar.raw[3]) > 0  # req id, open
            assert 61 in _desk(gw).streams
            client.send([25, 1, 61])  # cancelHistoricalData
            await client.ping(WAIT)
            assert 61 not in _desk(gw).streams
        finally:
            await client.disconnect()


async def test_keep_up_to_date_with_an_end_time_is_refused() -> None:
    async with MockGateway(port=0) as gw:
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", gw.port, 52, timeout=WAIT)
        try:
            error = client._expect(lambda msg: msg.msg_id == In.ERR_MSG and msg.int("req_id") == 62)
            client.send([20, 62, *AAPL, 0, "20261204 16:00:00", "1 min", "1800 S", 1, "TRADES", 1, 1, ""])
            msg = await asyncio.wait_for(error, WAIT)
            assert msg.int("code") == 321 and "live updates" in msg.fields["message"]
        finally:
            await client.disconnect()


async def test_streaming_quote_ticks_until_cancelled() -> None:
    async with MockGateway(port=0) as gw:
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", gw.port, 53, timeout=WAIT)
        try:
            first = client._expect(lambda msg: msg.msg_id == 81)
            ticks: list[Any] = []
            second_round = asyncio.get_running_loop().create_future()

            def listener(msg: Any) -> None:
                if msg.msg_id == 1 and msg.raw[1] == "63":
                    ticks.append(msg)
                    if len(ticks) > 8 and not second_round.done():  # past the initial quote
                        second_round.set_result(None)

            client._listeners.append(listener)
            client.send([1, 11, 63, *AAPL, 0, "", 0, 0, ""])  # snapshot=0: streaming
            await asyncio.wait_for(first, WAIT)
            await asyncio.wait_for(second_round, WAIT)
            assert 63 in _desk(gw).streams
            client.send([2, 2, 63])  # cancelMktData
            await client.ping(WAIT)
            assert 63 not in _desk(gw).streams
            assert not any(msg.msg_id == 57 for msg in ticks)  # no snapshot end on a stream
        finally:
            await client.disconnect()


def test_message_names() -> None:
    assert m.message_name(90, from_client=False) == "historicalDataUpdate"
