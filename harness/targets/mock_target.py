"""The mock Gateway as a target, run in-process on the caller's event loop.

In-process keeps every connection's transcript at hand for evidence; the
real client libraries still talk to it over a real loopback socket.
"""

from __future__ import annotations

import os

from ..core.redact import remember_accounts
from ..mock import MockGateway
from ..mock.profiles import get_profile
from .base import TARGET_MOCK, Endpoint


class MockTarget:
    kind = TARGET_MOCK

    def __init__(self, profile: str = "default", *, host: str = "127.0.0.1", port: int = 0,
                 accounts: list[str] | None = None) -> None:
        self.profile = get_profile(profile)  # fails early with the valid names
        self.host = host
        self.port = port
        # IBGW_MOCK_ACCOUNTS=DU1111111,DU2222222 makes `--gateway mock` present
        # those accounts (the redaction test plants one and searches for it).
        self.accounts = accounts if accounts is not None else _accounts_from_env()
        self.gateway: MockGateway | None = None

    async def start(self) -> Endpoint:
        self.gateway = MockGateway(self.host, self.port, profile=self.profile, accounts=self.accounts)
        remember_accounts(self.gateway.model.account_ids)  # the run's writers hide them (core/redact.py)
        await self.gateway.start()
        return Endpoint(
            kind=self.kind, host=self.host, port=self.gateway.port, label=f"mock:{self.profile.name}",
            build=self.profile.build, profile=self.profile.name,
            details={"max_server_version": self.profile.max_server_version},
        )

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None


def _accounts_from_env() -> list[str] | None:
    accounts = [a.strip() for a in os.environ.get("IBGW_MOCK_ACCOUNTS", "").split(",") if a.strip()]
    return accounts or None
