"""Where a scenario's Gateway comes from: the mock, a container, or a
Gateway the user already runs.

Why a layer of its own: the same scenario must run unchanged against all
three, and the evidence must say which one it ran against (kind, build,
profile) so a pinning decision never rests on a mock result by mistake.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..core.errors import HarnessError

TARGET_MOCK = "mock"
TARGET_CONTAINER = "container"
TARGET_EXTERNAL = "external"


@dataclass
class Endpoint:
    """A started Gateway: where to connect and what it is."""

    kind: str  # mock | container | external
    host: str
    port: int
    label: str  # e.g. "mock:default", "127.0.0.1:4002"
    build: str = "unknown"  # Gateway build, when the target knows it
    profile: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GatewayTarget(Protocol):
    kind: str

    async def start(self) -> Endpoint:
        """Bring the Gateway up (or check it is there) and say where it is."""
        ...

    async def stop(self) -> None:
        """Release everything start() acquired; safe to call twice."""
        ...


class TargetSpecError(HarnessError, ValueError):
    """A --gateway value that names no target."""
