"""A test that FAILS on purpose while the session's account id flows through
every channel pytest and allure capture: the input of
tests/evidence/test_redaction_planted.py, which runs it in a subprocess beside the
account-sync and matrix suites and searches everything produced for the id.

Not collected by `make test` (the name does not match test_*.py); run it
only by path. The id is the one the client received from the session's
Gateway (a mock planted through IBGW_MOCK_ACCOUNTS, or a "live" one),
never written here.
"""

from __future__ import annotations

import logging
import sys
import warnings

from harness.scenarios import run_account_sync

log = logging.getLogger("leaky_fixture")


def _forms(account: str) -> list[str]:
    """The shapes an id takes in logs that the old pattern let through."""
    lower = account.lower()
    return [
        account,
        lower,  # lower case
        f"{account}_x",  # a word character after it
        f"acct{account}",  # letters before it
        f"0x{lower}",  # a hex digit before the lower-case id
        repr(b"\x08\x01\x12\t" + account.encode() + b"\x1a\x03USD"),  # protobuf bytes as ibapi logs them
        repr(b"15\x001\x00" + account.encode() + b",DU1111111\x00"),  # a text-era frame
    ]


async def test_fails_with_the_account_in_every_channel(gateway, client_factory, harness_config, client_ids):
    # ibapi at the session's profile: with --log-level=DEBUG its frame log
    # lines (protobuf bytes at 10.50) land in the captured log.
    evidence = await run_account_sync(gateway.endpoint, client_factory("ibapi"), client_id=client_ids.take(41),
                                      timeout=harness_config.timeout, expect_positions=True,
                                      transcript=gateway.transcript)
    accounts = evidence.connect.get("accounts") or []
    assert accounts, evidence.summary_line()
    account = accounts[0]
    for form in _forms(account):
        log.warning("form %s", form)
        print(f"stdout form {form}")
        print(f"stderr form {form}", file=sys.stderr)
    try:
        raise ValueError(f"account {account.lower()} refused")
    except ValueError:
        log.exception("a traceback naming %s", account)
    warnings.warn(f"a warning naming {account}", UserWarning, stacklevel=1)
    assert not evidence.ok, f"deliberate failure: {evidence.summary_line()} forms={_forms(account)}"
