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


class TargetUnsupported(RuntimeError):
    """An action this kind of target cannot take (restarting a Gateway the
    user runs); the message says which target and what to do instead."""


class BaseTarget:
    """What every target offers, so callers ask instead of probing with
    hasattr/getattr: whether it is a live Gateway, the in-process mock
    behind it (if any), a restart, its logs and its CLOSE_WAIT count.
    Defaults say "not available" plainly; each target overrides what it can.
    """

    kind: str = ""

    async def start(self) -> Endpoint:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    @property
    def is_live(self) -> bool:
        """A real Gateway (a container, one the user runs): orders guarded,
        client ids from the live range. The mock and a replay are not."""
        return self.kind in (TARGET_CONTAINER, TARGET_EXTERNAL)

    @property
    def mock(self) -> Any:
        """The in-process MockGateway behind this target, or None."""
        return None

    @property
    def can_restart(self) -> bool:
        return False

    async def restart(self, *, cold: bool = True) -> Any:
        raise TargetUnsupported(f"a {self.kind or 'custom'} target cannot be restarted by the harness; "
                                "restart the Gateway yourself")

    def logs(self, tail: int = 200) -> str:
        """The Gateway's log tail (redacted); "" when the target has none."""
        return ""

    def close_wait_count(self, port: int | None = None) -> int | None:
        """CLOSE_WAIT sockets on the Gateway's port; None when this target
        cannot see them (a Gateway on another host)."""
        return None


def target_mock(target: object) -> Any:
    """The in-process mock of any target, including one that is not a
    BaseTarget (a team's own GatewayTarget): None there."""
    return target.mock if isinstance(target, BaseTarget) else None
