"""A Gateway the user already runs (a paper Gateway on their desk or a
server). The harness neither starts nor stops it; start() only says where
it is, so that a dead Gateway shows up as a scenario's failed phase with
its evidence, not as a set-up error.
"""

from __future__ import annotations

from .base import TARGET_EXTERNAL, BaseTarget, Endpoint
from .sockets import local_close_wait


class ExternalTarget(BaseTarget):
    kind = TARGET_EXTERNAL

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def start(self) -> Endpoint:
        return Endpoint(kind=self.kind, host=self.host, port=self.port, label=f"{self.host}:{self.port}")

    async def stop(self) -> None:
        return None

    def close_wait_count(self, port: int | None = None) -> int | None:
        """Visible only for a Gateway on this machine (loopback)."""
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            return None
        return local_close_wait(port or self.port)
