"""Live-run safety, checked against the real Gateway itself (marker `live`:
`make test-live`; against the mock these skip and say what to set).

The order guard is proven by sending an order message through the proxy:
a cancelOrder for an order id no account can hold, so even a guard that
failed would only earn an "order not found" from a paper Gateway.
"""

from __future__ import annotations

import asyncio

import pytest

from harness.protocol import encode_message
from harness.protocol.handshake import exchange_versions, start_api_frame
from harness.protocol.messages import Out
from harness.safety.accounts import non_paper_accounts

pytestmark = pytest.mark.live
NO_SUCH_ORDER = 2**31 - 1


def _session(gateway):
    session = getattr(gateway, "session", None)
    if session is None:
        pytest.skip("not a live run")
    return session


async def test_accounts_are_paper_unless_allowed(gateway, pytestconfig):
    session = _session(gateway)
    if not session.accounts:
        pytest.fail("the account check could not read managedAccounts; see the run's start-up notes")
    assert not non_paper_accounts(session.accounts) or pytestconfig.getoption("--allow-live-account")


async def test_order_message_is_refused_and_the_connection_closed(gateway, client_ids, harness_config):
    session = _session(gateway)
    if session.proxy is None:
        pytest.skip("the order guard lives in the recording proxy, which is off or unavailable in this run")
    client_id = client_ids.take(0)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(gateway.endpoint.host, gateway.endpoint.port),
                                            harness_config.timeout)
    try:
        reply = await asyncio.wait_for(exchange_versions(reader, writer, 100, 178), harness_config.timeout)
        writer.write(start_api_frame(client_id, reply.server_version))
        blocked_before = len(session.guard.blocked)
        writer.write(encode_message([int(Out.CANCEL_ORDER), 1, NO_SUCH_ORDER, ""]))
        while await asyncio.wait_for(reader.read(65536), harness_config.timeout):
            pass  # until the proxy closes the connection
    finally:
        writer.close()
    assert [b.name for b in session.guard.blocked[blocked_before:]] == ["cancelOrder"]
