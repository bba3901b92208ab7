"""The startup sync: positions, account download and executions, each waited for its end.

Why its own module: a Gateway that answers the handshake but never ends its sync is a cause of
its own, and the waits must say which end message was missing."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from ...clients.raw import RawClient
from ...core.redact import redact_accounts
from ...protocol import messages as m
from ...protocol.messages import In, Message


def _for_account(msg_id: int, account: str, msg: Message) -> bool:
    """A reply of this kind for this account (account downloads run one account at a time)."""
    return msg.msg_id == msg_id and msg.fields.get("account") == account


async def check_sync(client: RawClient, timeout: float) -> dict[str, Any]:
    """Positions, account download and executions requested together, each
    waited for its end message (bounded by `timeout`). Done step by step
    with RawClient.collect rather than account_snapshot because a timeout in
    account_snapshot does not say which end message was missing."""
    accounts = list(client.accounts)

    async def positions() -> int:
        got = await client.collect(m.req_positions(), lambda msg: msg.msg_id == In.POSITION_DATA,
                                   lambda msg: msg.msg_id == In.POSITION_END, timeout)
        return len(got)

    ended_accounts: list[str] = []
    account_values = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def download() -> None:
        # One account subscription at a time (the API allows one), all of
        # them within the one timeout.
        nonlocal account_values
        for account in accounts:
            got = await client.collect(
                m.req_account_updates(True, account),
                functools.partial(_for_account, In.ACCT_VALUE, account),
                functools.partial(_for_account, In.ACCT_DOWNLOAD_END, account),
                max(0.001, deadline - loop.time()))
            account_values += len(got)
            ended_accounts.append(account)
            client.send(m.req_account_updates(False, account))

    async def executions() -> None:
        req_id = client.new_req_id()
        await client.collect(m.req_executions(client.server_version, req_id), lambda msg: False,
                             lambda msg: msg.msg_id == In.EXECUTION_DATA_END and msg.int("req_id") == req_id,
                             timeout)

    async with asyncio.timeout(timeout + 1.0):  # a backstop; each collect is bounded by `timeout`
        outcomes = await asyncio.gather(positions(), download(), executions(), return_exceptions=True)
    pos, acc, exe = outcomes
    errors = {name: _why(o, timeout) for name, o in zip(("positions", "account", "executions"), outcomes, strict=True)
              if isinstance(o, BaseException)}
    return {
        "positions_end": not isinstance(pos, BaseException),
        "positions": pos if isinstance(pos, int) else None,
        "account_download_end": redact_accounts(ended_accounts),
        "account_download_missing": redact_accounts([a for a in accounts if a not in ended_accounts]),
        "account_values": account_values,
        "executions_end": not isinstance(exe, BaseException),
        "errors": errors,
        "_download_ok": not isinstance(acc, BaseException) and len(ended_accounts) == len(accounts),
    }


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no end message within {timeout:g} s"
    return str(exc) or type(exc).__name__


async def safe_sync(client: RawClient, timeout: float) -> dict[str, Any]:
    try:
        return await check_sync(client, timeout)
    except (TimeoutError, ConnectionError, OSError) as exc:
        return {"errors": {"sync": _why(exc, timeout)}, "positions_end": False, "account_download_missing": [],
                "executions_end": False, "_download_ok": False, "account_download_end": []}
