"""Using ibgw-harness's pytest plugin from another project.

`pip install ibgw-harness` registers the plugin (entry point `pytest11`), so
this file needs no conftest: the fixtures below are simply there.

    pytest                                   # against the in-process mock Gateway
    pytest --gateway 127.0.0.1:4002          # against your paper Gateway (read-only, paper accounts only)
    pytest --client mypkg.adapter:factory    # ibgw_client is your own connection code

The Gateway fixtures are session-scoped on one event loop, so async tests
run on the session loop.
"""

import pytest

from harness.scenarios import run_account_sync

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_client_is_ready(ibgw_client):
    """ibgw_client: connected, and the API is ready (nextValidId and managedAccounts arrived)."""
    result = ibgw_client.connect_result
    assert result.ok and result.next_valid_id is not None
    assert result.accounts, "managedAccounts was empty"
    assert await ibgw_client.ping() < 5.0


async def test_account_arrives_through_a_fresh_client(ibgw_endpoint, ibgw_client_factory):
    """ibgw_endpoint: the started Gateway's endpoint; any scenario runs against it."""
    evidence = await run_account_sync(ibgw_endpoint, ibgw_client_factory("raw"), client_id=43)
    assert evidence.ok, evidence.summary_line()


@pytest.mark.needs_mock
async def test_my_code_survives_late_accounts(ibgw_mock_gateway, ibgw_endpoint, ibgw_client_factory):
    """ibgw_mock_gateway: the mock's fault control (deselected against a real Gateway)."""
    ibgw_mock_gateway.set_fault("delayed-accounts=300")
    client = ibgw_client_factory("raw")
    result = await client.connect(ibgw_endpoint.host, ibgw_endpoint.port, 44, timeout=5)
    assert result.accounts and result.phases["managed_accounts"] >= 0.3
