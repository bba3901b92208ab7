"""Using ibgw-harness's pytest plugin from another project.

`pip install ibgw-harness` registers the plugin (entry point `pytest11`), so
this file needs no conftest: the fixtures below are simply there.

    pytest                                   # against the in-process mock Gateway
    pytest --gateway 127.0.0.1:4002          # against your paper Gateway (read-only, paper accounts only)
    pytest --client mypkg.adapter:factory    # ib_client is your own connection code

The Gateway fixtures are session-scoped on one event loop, so async tests
run on the session loop.
"""

import pytest

from harness.scenarios import run_account_sync

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_client_is_ready(ib_client):
    """ib_client: connected, and the API is ready (nextValidId and managedAccounts arrived)."""
    result = ib_client.connect_result
    assert result.ok and result.next_valid_id is not None
    assert result.accounts, "managedAccounts was empty"
    assert await ib_client.ping() < 5.0


async def test_account_arrives_through_a_fresh_client(ib_gateway, client_factory):
    """ib_gateway: the started Gateway's endpoint; any scenario runs against it."""
    evidence = await run_account_sync(ib_gateway, client_factory("raw"), client_id=43)
    assert evidence.ok, evidence.summary_line()


@pytest.mark.needs_mock
async def test_my_code_survives_late_accounts(mock_gateway, ib_gateway, client_factory):
    """mock_gateway: the mock's fault control (deselected against a real Gateway)."""
    mock_gateway.set_fault("delayed-accounts=300")
    client = client_factory("raw")
    result = await client.connect(ib_gateway.host, ib_gateway.port, 44, timeout=5)
    assert result.accounts and result.phases["managed_accounts"] >= 0.3
