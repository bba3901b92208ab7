"""What the plugin knows about a run, kept in pytest's stash under public keys.

Why a module of its own: the entry module, the fixtures and the live-run
glue all read the same records; with the keys here none of them imports
another (the old pytest_plugin <-> pytest_live cycle shared a private key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..live.policy import ClientIdAllocator, ConnectionBudget, LivePolicy
from ..targets import Endpoint, GatewayTarget
from ..targets.base import target_mock


@dataclass
class HarnessConfig:
    gateway_spec: str
    clients: tuple[str, ...]
    timeout: float
    evidence_dir: Path
    seed: int
    client_versions: dict[str, str] = field(default_factory=dict)
    gateway_build: str | None = None  # set when the session's Gateway has started
    declared_build: str | None = None  # --gateway-version: the build a desktop Gateway cannot report
    record_suite_property: Callable[[str, object], None] | None = None  # JUnit, kept for the session's end
    docker_hosts: tuple[str, ...] = ()  # --docker-host / IBGW_DOCKER_HOSTS; (): the local engine

    @property
    def docker_host(self) -> str | None:
        """The engine a single container (--gateway docker:IMAGE) starts on: the first one named."""
        return self.docker_hosts[0] if self.docker_hosts else None


@dataclass
class LiveRun:
    policy: LivePolicy
    unconfigured: str | None  # why a requested live run has no target
    client_ids: ClientIdAllocator
    budget: ConnectionBudget
    deselected: int = 0
    session: Any = None  # the LiveSession while the session's Gateway is open


@dataclass
class Activation:
    """Whether the plugin acts in this run, and why (for the report header)."""

    explicit: bool  # an ibgw option on the command line / addopts, or `ibgw_enable = true` in the ini
    problem: str | None = None  # a bad option found while inert: raised when a fixture activates the plugin
    active: bool = False  # side effects done (run claimed, sweep, evidence cleared)


@dataclass
class GatewayHandle:
    """The session's Gateway: where it is, and the mock behind it if any."""

    target: GatewayTarget
    endpoint: Endpoint

    @property
    def mock(self) -> Any:
        return target_mock(self.target)

    def transcript(self, client_id: int) -> str | None:
        """The Gateway-side transcript of a client id's newest connection.

        A connect that stopped before startApi never told the mock its
        client id; then the newest connection without one, if it came
        later, is taken as this client's (scenarios run one at a time)."""
        if self.mock is None:
            return None
        record = self.mock.record_for_client(client_id)
        anonymous = next((r for r in reversed(self.mock.records) if r.client_id is None), None)
        if anonymous is not None and (record is None or anonymous.accepted_at > record.accepted_at):
            return "# matched by time: the client id never reached the Gateway\n" + anonymous.to_text()
        return record.to_text() if record is not None else None


CONFIG_KEY = pytest.StashKey[HarnessConfig]()
LIVE_PLUGIN_NAME = "ibgw_harness.live"  # the live-run glue's name in the plugin manager, when registered
LIVE_KEY = pytest.StashKey[LiveRun]()
ACTIVATION_KEY = pytest.StashKey[Activation]()


def harness_config(config: pytest.Config) -> HarnessConfig | None:
    """The run's HarnessConfig, None when its options were refused while the plugin was inert."""
    return config.stash.get(CONFIG_KEY, None)


def live_run(config: pytest.Config) -> LiveRun | None:
    return config.stash.get(LIVE_KEY, None)


def is_active(config: pytest.Config) -> bool:
    activation = config.stash.get(ACTIVATION_KEY, None)
    return activation is not None and activation.active


__all__ = ["ACTIVATION_KEY", "CONFIG_KEY", "LIVE_KEY", "LIVE_PLUGIN_NAME", "Activation", "GatewayHandle",
           "HarnessConfig", "LiveRun", "harness_config", "is_active", "live_run"]
