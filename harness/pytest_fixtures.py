"""Fixtures for other projects' test suites (loaded by harness.pytest_plugin,
which `pip install ibgw-harness` registers through the pytest11 entry point).

    async def test_my_code_sees_accounts(ib_gateway, ib_client):
        assert ib_client.connect_result.accounts  # a connected, ready client

* ``ib_gateway``: the session's started Gateway (an Endpoint: host, port,
  kind, build); the mock by default, --gateway HOST:PORT for a real one.
* ``ib_client``: a connected client, ready (nextValidId and a non-empty
  managedAccounts arrived), through the first --client (default raw; a team's
  own adapter with --client module:factory); its ConnectResult is
  ``ib_client.connect_result``; disconnected at teardown.
* ``mock_gateway``: the mock's fault control (``set_fault("delayed-accounts=2000")``,
  ``clear_fault()``, ``restart()``); reset after each test; tests that use it are
  deselected against a real Gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from .clients.base import ClientAdapter
from .live.policy import ClientIdAllocator
from .pytest_plugin import GatewayHandle, HarnessConfig
from .scenarios.readiness import connect_until_ready
from .targets.base import Endpoint

# The id ib_client asks for against the mock; a live run maps it into --ibgw-client-ids.
IB_CLIENT_ID = 42


@pytest_asyncio.fixture(loop_scope="session")
async def ib_gateway(gateway: GatewayHandle) -> Endpoint:
    """The started Gateway's endpoint (through the recording proxy in a live run)."""
    return gateway.endpoint


@pytest_asyncio.fixture(loop_scope="session")
async def ib_client(gateway: GatewayHandle, client_factory: Callable[..., ClientAdapter],
                    harness_config: HarnessConfig, client_ids: ClientIdAllocator) -> AsyncIterator[Any]:
    """A connected client, ready; the connect result is its `connect_result` attribute."""
    name = "raw" if harness_config.clients == ("raw", "ib_async", "ibapi") else harness_config.clients[0]
    client = client_factory(name)
    result = await connect_until_ready(client, gateway.endpoint, client_ids.take(IB_CLIENT_ID),
                                       timeout=harness_config.timeout)
    client.connect_result = result  # type: ignore[attr-defined]
    yield client
    await client.disconnect()


__all__ = ["ib_client", "ib_gateway"]
