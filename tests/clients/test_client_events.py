"""ClientAdapter events (harness/clients/base.py AdapterEvents): a link's
close and its system messages announced as they happen, so the reconnect
loop reads no library object or private field."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.base import AdapterEvents, GatewayMessage, events_of
from harness.clients.raw import RawClient
from harness.mock.gateway import MockGateway
from tests.support import ROOT

HOST = "127.0.0.1"
READY = 5.0


def test_events_announce_and_a_broken_listener_breaks_nothing() -> None:
    events = AdapterEvents()
    heard: list[int] = []

    def broken(_msg: GatewayMessage) -> None:
        raise RuntimeError("listener bug")

    events.on_message(broken)
    stop = events.on_message(lambda msg: heard.append(msg.code))
    events.emit_message(GatewayMessage(-1, 1100, "lost"))
    stop()
    events.emit_message(GatewayMessage(-1, 1102, "restored"))
    assert heard == [1100]
    events.mark_closed("first cause")
    events.mark_closed("second cause")
    assert events.closed.is_set() and events.close_cause == "first cause"
    events.reset()
    assert not events.closed.is_set() and events.close_cause == ""


def test_an_adapter_without_events_gets_a_silent_set() -> None:
    silent = events_of(object())
    assert isinstance(silent, AdapterEvents) and not silent.closed.is_set()


async def test_the_raw_client_announces_messages_and_its_close() -> None:
    async with MockGateway(HOST, 0) as gw:
        client = RawClient(await_account_value=False)
        codes: list[int] = []
        client.events.on_message(lambda msg: codes.append(msg.code))
        await client.connect(HOST, gw.port, 5, timeout=READY)
        assert {code for code, _ in gw.profile.farm_notices} <= set(codes)
        await gw.drop_all("test drops the link")
        await asyncio.wait_for(client.events.closed.wait(), READY)
        assert client.events.close_cause
        await client.disconnect()


def test_the_reconnect_loop_reads_no_private_adapter_state() -> None:
    source = (ROOT / "harness/clients/reconnecting.py").read_text()
    for private in ("adapter.ib", "getattr(adapter", "adapter._", "_close_cause"):
        assert private not in source, private


def test_clients_come_from_one_table() -> None:
    from harness.clients import CLIENT_NAMES, CLIENTS, LIBRARY_OF, UnknownClientError, make_client
    from harness.clients.naive import NaiveClient

    assert CLIENT_NAMES == ("raw", "ib_async", "ibapi")  # what `all` runs, in order; naive is an example
    assert LIBRARY_OF == {"ib_async": "ib_async", "ibapi": "ibapi"}
    assert isinstance(make_client("raw"), RawClient) and isinstance(make_client("naive"), NaiveClient)
    assert all(entry.adapter.count(":") == 1 for entry in CLIENTS.values())
    try:
        make_client("nope")
    except UnknownClientError as exc:
        assert "raw, ib_async, ibapi" in str(exc)
    else:
        raise AssertionError("an unknown client name must be refused")


async def test_the_official_client_announces_its_close() -> None:
    """ibapi's connectionClosed reaches the events on the event loop (not from its reader thread)."""
    pytest.importorskip("ibapi")
    from harness.clients.ibapi_client import IbapiClient

    async with MockGateway(HOST, 0) as gw:
        client = IbapiClient()
        codes: list[int] = []
        client.events.on_message(lambda msg: codes.append(msg.code))
        await client.connect(HOST, gw.port, 6, timeout=READY)
        try:
            assert {code for code, _ in gw.profile.farm_notices} <= set(codes)
            await gw.drop_all("test drops the link")
            await asyncio.wait_for(client.events.closed.wait(), READY)
            assert "connectionClosed" in client.events.close_cause
        finally:
            await client.disconnect()
