"""A Gateway the user already runs (a paper Gateway on their desk or a
server). The harness neither starts nor stops it; start() only says where
it is, so that a dead Gateway shows up as a scenario's failed phase with
its evidence, not as a set-up error.
"""

from __future__ import annotations

from .base import TARGET_EXTERNAL, Endpoint


class ExternalTarget:
    kind = TARGET_EXTERNAL

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    async def start(self) -> Endpoint:
        return Endpoint(kind=self.kind, host=self.host, port=self.port, label=f"{self.host}:{self.port}")

    async def stop(self) -> None:
        return None
