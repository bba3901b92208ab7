"""The plugin's fixtures, for this repository's suites and other projects'.

    async def test_my_code_sees_accounts(ibgw_client):
        assert ibgw_client.connect_result.accounts  # a connected, ready client

Every fixture is named `ibgw_*`; the names used before (harness_config,
gateway, client_factory, mock_gateway, record_evidence, docker_engine,
client_ids, live_run, zombie_plan, connection_budget, client_id_source,
ib_gateway, ib_client) stay as aliases for one release.

Using any of them is what activates the plugin in a project that named no
ibgw option (activation.py): `ibgw_config` is at the root of them all.

* ``ibgw_endpoint``: the session's started Gateway (an Endpoint: host, port,
  kind, build); the mock by default, --gateway HOST:PORT for a real one.
* ``ibgw_client``: a connected client, ready (nextValidId and a non-empty
  managedAccounts arrived), through the first --client (default raw; a team's
  own adapter with --client module:factory); its ConnectResult is
  ``ibgw_client.connect_result``; disconnected at teardown.
* ``ibgw_mock_gateway``: the mock's fault control (``set_fault("delayed-accounts=2000")``,
  ``clear_fault()``, ``restart()``); reset after each test; tests that use it are
  deselected against a real Gateway.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ..clients import make_client
from ..clients.base import ClientAdapter
from ..clients.readiness import connect_until_ready
from ..core.config import env as config_env
from ..core.config import source as config_source
from ..core.record import Evidence
from ..evidence.allure_io import attach_evidence
from ..live.policy import ClientIdAllocator, ConnectionBudget
from ..targets import Endpoint, parse_target
from .activation import activate
from .state import LIVE_KEY, GatewayHandle, HarnessConfig, LiveRun
from .terminal import say
from .workers import suite_property_recorder

# The id ibgw_client asks for against the mock; a live run maps it into --ibgw-client-ids.
IB_CLIENT_ID = 42

# ibgw name -> the name it had before (kept as an alias for one release).
ALIASES = {
    "ibgw_config": "harness_config", "ibgw_gateway": "gateway", "ibgw_client_factory": "client_factory",
    "ibgw_mock_gateway": "mock_gateway", "ibgw_record_evidence": "record_evidence",
    "ibgw_docker_engine": "docker_engine", "ibgw_client_ids": "client_ids", "ibgw_live_run": "live_run",
    "ibgw_zombie_plan": "zombie_plan", "ibgw_connection_budget": "connection_budget",
    "ibgw_client_id_source": "client_id_source", "ibgw_endpoint": "ib_gateway", "ibgw_client": "ib_client",
}
FIXTURE_NAMES = frozenset(ALIASES) | frozenset(ALIASES.values()) | {"ibgw_client_name"}
MOCK_FIXTURES = ("ibgw_mock_gateway", "mock_gateway")


def uses_ibgw_fixture(item: Any) -> bool:
    """Whether a collected test (or a Metafunc) asks for one of the plugin's fixtures."""
    return not FIXTURE_NAMES.isdisjoint(getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def ibgw_config(pytestconfig: pytest.Config) -> HarnessConfig:
    """The run's configuration; asking for it activates the plugin (once)."""
    return activate(pytestconfig, from_fixture=True)


@pytest.fixture(scope="session")
def ibgw_live_run(ibgw_config: HarnessConfig, pytestconfig: pytest.Config) -> LiveRun:
    return pytestconfig.stash[LIVE_KEY]


@pytest.fixture(scope="session")
def ibgw_client_ids(ibgw_live_run: LiveRun) -> ClientIdAllocator:
    """ibgw_client_ids.take(preferred[, count]): the id a scenario should use
    (its preferred one against the mock, one from the live range otherwise)."""
    return ibgw_live_run.client_ids


@pytest.fixture
def ibgw_zombie_plan(ibgw_live_run: LiveRun, pytestconfig: pytest.Config) -> Callable[[int], dict[str, Any]]:
    """ibgw_zombie_plan(runs) -> run_zombie's runs/pause/stop_at_first_failure for this target,
    announcing the live limits on the terminal before the cycles start."""

    def plan(runs: int) -> dict[str, Any]:
        if ibgw_live_run.policy.live:
            say(pytestconfig, ibgw_live_run.policy.zombie_notice())
        return ibgw_live_run.policy.zombie_plan(runs)

    return plan


@pytest.fixture
def ibgw_connection_budget(ibgw_live_run: LiveRun) -> ConnectionBudget:
    return ibgw_live_run.budget


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ibgw_gateway(ibgw_config: HarnessConfig, record_testsuite_property: Callable[[str, object], None],
                       pytestconfig: pytest.Config) -> AsyncIterator[GatewayHandle]:
    """The Gateway every scenario in the session runs against (one per session)."""
    target = parse_target(ibgw_config.gateway_spec, ibgw_config.docker_host)
    endpoint = await target.start()
    if ibgw_config.declared_build:
        endpoint.build = ibgw_config.declared_build
    ibgw_config.gateway_build = endpoint.build
    record = ibgw_config.record_suite_property = suite_property_recorder(pytestconfig, record_testsuite_property)
    # JUnit XML: which Gateway this run judged, as suite properties: a mock
    # by its profile's name (it stands for no real build), else the build.
    record("gateway_version", endpoint.label if endpoint.kind == "mock" else endpoint.build)
    if endpoint.kind != "mock":
        record("gateway_build", endpoint.build)
    record("gateway_target", endpoint.kind)
    try:
        opened = pytestconfig.hook.pytest_ibgw_open_gateway(config=pytestconfig, target=target, endpoint=endpoint)
        if opened is None:
            yield GatewayHandle(target, endpoint)
        else:
            async with opened as handle:
                yield handle
    finally:
        await target.stop()


@pytest.fixture(scope="session")
def ibgw_client_id_source(ibgw_config: HarnessConfig) -> random.Random:
    """Random client ids come from one seeded source, so a failing run can be replayed."""
    return random.Random(ibgw_config.seed)


@pytest_asyncio.fixture(loop_scope="session")
async def ibgw_client_factory(ibgw_config: HarnessConfig, ibgw_gateway: GatewayHandle,
                              ibgw_connection_budget: ConnectionBudget
                              ) -> AsyncIterator[Callable[..., ClientAdapter]]:
    """Make client adapters by name; every one is disconnected at teardown,
    and against the mock the teardown waits until their ids are free again."""
    made: list[ClientAdapter] = []

    def factory(name: str, **options: Any) -> ClientAdapter:
        client = make_client(name, **options)
        ibgw_config.client_versions[client.info.name] = f"{client.info.package} {client.info.version}"
        client = ibgw_connection_budget.wrap(client)  # live runs: never more connections than allowed
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.disconnect()
    if ibgw_gateway.mock is not None:
        for client_id in list(ibgw_gateway.mock.client_ids_in_use):
            await ibgw_gateway.mock.wait_client_id_free(client_id, timeout=5.0)


@pytest_asyncio.fixture(loop_scope="session")
async def ibgw_mock_gateway(ibgw_gateway: GatewayHandle) -> AsyncIterator[Any]:
    """The session's mock Gateway, for tests that steer its faults.

    Skips when the target is not the mock (a real Gateway's faults come only
    from the proxy). At teardown every fault is cleared and the mock
    restarted, so fault state (red API, stuck ids, leaked sockets) never
    leaks into the next test.
    """
    mock = ibgw_gateway.mock
    if mock is None:
        pytest.skip(f"needs the mock's fault control; the target is {ibgw_gateway.endpoint.label}")
    yield mock
    mock.clear_fault()
    await mock.restart(0)


@pytest.fixture
def ibgw_record_evidence(request: pytest.FixtureRequest, ibgw_config: HarnessConfig
                         ) -> Iterator[Callable[[Evidence], Path]]:
    """Write a scenario's evidence JSON and attach it (and its labels) to allure."""

    def record(evidence: Evidence) -> Path:
        # The mock faults active during the run belong to its evidence: a
        # reader (and the latency plot) must not take an injected delay for
        # the Gateway's own speed.
        uses_gateway = not {"ibgw_gateway", "gateway"}.isdisjoint(request.fixturenames)
        mock = request.getfixturevalue("ibgw_gateway").mock if uses_gateway else None
        if mock is not None and mock.faults.describe():
            evidence.parameters.setdefault("mock_faults", mock.faults.describe())
        path = evidence.write(ibgw_config.evidence_dir, request.node.nodeid)
        attach_evidence(evidence, path)
        return path

    yield record


@pytest.fixture(scope="session")
def ibgw_docker_engine(ibgw_config: HarnessConfig) -> Any:
    """The docker-py client, for tests that start containers (the first
    --docker-host engine, else the local one). Without an
    engine they skip with the one-line reason, and FAIL instead when
    IBGW_REQUIRE_DOCKER=1 (CI provisions an engine: a skip there would
    hide that the container tests never ran)."""
    from ..targets.docker_engine import engine, engine_available

    ok, why = engine_available(ibgw_config.docker_host)
    if not ok:
        if config_env("IBGW_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{config_source('IBGW_REQUIRE_DOCKER')}=1 but {why}", pytrace=False)
        pytest.skip(why)
    return engine(ibgw_config.docker_host)


@pytest_asyncio.fixture(loop_scope="session")
async def ibgw_endpoint(ibgw_gateway: GatewayHandle) -> Endpoint:
    """The started Gateway's endpoint (through the recording proxy in a live run)."""
    return ibgw_gateway.endpoint


@pytest_asyncio.fixture(loop_scope="session")
async def ibgw_client(ibgw_gateway: GatewayHandle, ibgw_client_factory: Callable[..., ClientAdapter],
                      ibgw_config: HarnessConfig, ibgw_client_ids: ClientIdAllocator) -> AsyncIterator[Any]:
    """A connected client, ready; the connect result is its `connect_result` attribute."""
    name = "raw" if ibgw_config.clients == ("raw", "ib_async", "ibapi") else ibgw_config.clients[0]
    client = ibgw_client_factory(name)
    result = await connect_until_ready(client, ibgw_gateway.endpoint, ibgw_client_ids.take(IB_CLIENT_ID),
                                       timeout=ibgw_config.timeout)
    client.connect_result = result  # type: ignore[attr-defined]
    yield client
    await client.disconnect()


# ------------------------------------------------------------------ the names used before (one release)


def _alias(new: str, old: str, scope: str) -> Any:
    """A fixture named `old` that asks for `new` by parameter (a static
    dependency: pytest orders, scopes and tears it down like the original)."""

    def fixture(**kwargs: Any) -> Any:
        return kwargs[new]

    fixture.__name__ = old
    fixture.__doc__ = f"Alias of `{new}` (its name before the ibgw_ prefix; kept for one release)."
    fixture.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(new, inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    return pytest.fixture(scope=scope, name=old)(fixture)  # type: ignore[call-overload]


_SESSION = {"ibgw_config", "ibgw_gateway", "ibgw_docker_engine", "ibgw_client_ids", "ibgw_live_run",
            "ibgw_client_id_source"}
for _new, _old in ALIASES.items():
    globals()[f"_alias_{_old}"] = _alias(_new, _old, "session" if _new in _SESSION else "function")
del _new, _old

__all__ = ["ALIASES", "FIXTURE_NAMES", "IB_CLIENT_ID", "MOCK_FIXTURES", "uses_ibgw_fixture"]
