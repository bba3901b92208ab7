"""harness/scenarios/fault_checks.py on its own: the steps suites/test_faults.py
drives its faults through, checked against a real MockGateway without the
suite's fixtures (so a broken helper fails here, not as a fault symptom)."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients import make_client
from harness.clients.base import GatewayMessage
from harness.core.record import PASSED, Evidence
from harness.core.wait import WaitTimeout
from harness.mock import MockGateway
from harness.scenarios.fault_checks import (
    HOST,
    MessageWatch,
    NotTheMock,
    describe,
    error_codes,
    in_order,
    order_refusal_through,
    timed,
    wait_close_wait,
    wait_port_state,
    wire_order_reply,
)


def test_describe_and_error_codes_read_the_evidence() -> None:
    ok = Evidence(scenario="handshake", target={}, client={}, outcome=PASSED)
    assert describe(ok, 0.5) == "ok in 0.50s"
    failed = Evidence(scenario="handshake", target={}, client={}, failed_phase="server_version", cause="closed")
    failed.connect = {"messages": [{"code": 326}, {"code": 2104}]}
    assert describe(failed) == "failed at server_version: closed"
    assert error_codes(failed) == [326, 2104]


def test_in_order_is_a_subsequence_check() -> None:
    check = in_order([1100, 1102])
    assert check([2104, 1100, 2103, 1102])
    assert not check([1102, 1100])


async def test_timed_returns_the_value_and_a_duration() -> None:
    value, elapsed = await timed(asyncio.sleep(0, result=7))
    assert value == 7 and elapsed >= 0


async def test_port_state_follows_the_listener() -> None:
    async with MockGateway(port=0) as gw:
        port = gw.port
        assert await wait_port_state(port, accepting=True, within=5.0) >= 0
    assert await wait_port_state(port, accepting=False, within=5.0) >= 0
    with pytest.raises(WaitTimeout):
        await wait_port_state(port, accepting=True, within=0.2)


async def test_close_wait_on_an_idle_port_is_none_after_the_bound() -> None:
    async with MockGateway(port=0) as gw:
        rows, elapsed = await timed(wait_close_wait(gw.port, 1, within=0.3))
    assert rows == [] and elapsed < 5.0


async def test_order_helpers_refuse_anything_but_the_mock() -> None:
    async with MockGateway(port=0) as gw:
        client = make_client("raw")
        result = await client.connect(HOST, gw.port, 5, timeout=5.0)
        try:
            result.port = gw.port + 1  # as if connected elsewhere: no order may go there
            with pytest.raises(NotTheMock):
                await order_refusal_through(gw, "ib_async", client, result, 1.0)
            with pytest.raises(NotTheMock):
                await wire_order_reply(object(), 6, 1.0)  # type: ignore[arg-type]
        finally:
            await client.disconnect()


async def test_wire_order_reply_without_the_fault_is_201() -> None:
    async with MockGateway(port=0) as gw:
        code, _ = await wire_order_reply(gw, 7, 5.0)
    assert code == 201


async def test_message_watch_hears_later_messages_through_events() -> None:
    async with MockGateway(port=0) as gw:
        client = make_client("raw")
        result = await client.connect(HOST, gw.port, 8, timeout=5.0)
        try:
            watch = MessageWatch(client, result)
            start = len(watch)
            client.events.emit_message(GatewayMessage(-1, 1100, "connectivity lost"))
            codes = await watch.wait_for(lambda c: 1100 in c[start:], within=5.0)
            assert codes[start:] == [1100]
        finally:
            await client.disconnect()
