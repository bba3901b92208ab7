"""Fault weekly-restart (gnzsnz/ib-gateway-docker#119): the restart that
needs a fresh login. Before it the Gateway serves; after it the port
accepts and closes every connection (what a client sees behind the image's
socat forwarder) until the login, which is clearing the fault. The fault
is one module (harness/mock/faults/weekly_restart.py): this test is the
proof that adding a fault needs nothing else."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.base import HandshakeError
from harness.clients.raw import RawClient
from harness.mock.faults import SPECS, FaultError, parse_fault
from harness.mock.gateway import MockGateway
from harness.mock.sources import is_sourced, public_citations
from tests.support.mockclient import until

HOST = "127.0.0.1"
READY = 5.0


async def _serves(gw: MockGateway, client_id: int) -> None:
    client = RawClient(await_account_value=False)
    await client.connect(HOST, gw.port, client_id, timeout=READY)
    await client.disconnect()
    assert await gw.wait_client_id_free(client_id, timeout=READY)


def test_weekly_restart_is_registered_parsed_and_sourced() -> None:
    spec = SPECS["weekly-restart"]
    assert is_sourced(spec.source) and "gnzsnz/ib-gateway-docker#119" in public_citations(spec.source)
    assert parse_fault("weekly-restart=10") == ("weekly-restart", (10.0, 5.0))
    assert parse_fault("weekly-restart=0,1.5") == ("weekly-restart", (0.0, 1.5))
    for bad in ("weekly-restart", "weekly-restart=x", "weekly-restart=1,2,3", "weekly-restart=-1"):
        with pytest.raises(FaultError):
            parse_fault(bad)


async def test_after_the_weekly_restart_connections_close_until_a_login() -> None:
    async with MockGateway(HOST, 0) as gw:
        await _serves(gw, 1)
        gw.set_fault("weekly-restart=0,0.2")
        await until(lambda: gw.restarts == 1 and gw.state()["listening"], timeout=10.0)

        # Accepted, then closed at once: EOF before any version reply.
        reader, writer = await asyncio.open_connection(HOST, gw.port)
        try:
            assert await asyncio.wait_for(reader.read(1), timeout=READY) == b""
        finally:
            writer.close()
        assert "fresh login" in (gw.records[-1].close_cause or "")

        client = RawClient(await_account_value=False)
        with pytest.raises(HandshakeError):
            await client.connect(HOST, gw.port, 2, timeout=READY)

        gw.clear_fault("weekly-restart")  # the fresh login
        await _serves(gw, 3)
        assert gw.restarts == 1
