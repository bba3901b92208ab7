"""The mock Gateway as a target, run in-process on the caller's event loop.

In-process keeps every connection's transcript at hand for evidence; the
real client libraries still talk to it over a real loopback socket.
"""

from __future__ import annotations

from ..core.config import env as config_env
from ..core.redact import remember_accounts
from ..mock import MockGateway
from ..mock.profiles import get_profile
from .base import TARGET_MOCK, BaseTarget, Endpoint
from .sockets import local_close_wait


class MockTarget(BaseTarget):
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

    @property
    def mock(self) -> MockGateway | None:
        return self.gateway

    @property
    def can_restart(self) -> bool:
        return self.gateway is not None

    async def restart(self, *, cold: bool = True) -> None:
        """The mock's restart: every connection dropped, fault state cleared."""
        if self.gateway is None:
            await super().restart(cold=cold)
            return
        await self.gateway.restart()

    def close_wait_count(self, port: int | None = None) -> int | None:
        """CLOSE_WAIT on the mock's port, from this host's socket table (sockets.py)."""
        return local_close_wait(port or (self.gateway.port if self.gateway is not None else self.port))


def _accounts_from_env() -> list[str] | None:
    accounts = [a.strip() for a in config_env("IBGW_ACCOUNTS").split(",") if a.strip()]
    return accounts or None
