"""pytest plugin (entry point `pytest11`): options, markers and fixtures that
let any project run the harness's scenarios against a Gateway target.

The suites in this repository are thin glue over harness.scenarios; other
projects use the same fixtures to test their own connection code.
"""

from __future__ import annotations

import os
import platform
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from . import __version__, runstate
from .clients import CLIENT_NAMES, ClientAdapter, make_client
from .clients.custom import ClientSpecError, validate_spec
from .evidence.allure_io import attach_evidence, write_allure_environment
from .evidence.record import Evidence
from .evidence.redact import install_log_redaction
from .evidence.report_redaction import redact_report, redact_warning
from .evidence.session_report import finish_allure_results, gateways_judged
from .targets import Endpoint, GatewayTarget, MockTarget, TargetSpecError, parse_target

MARKERS = {
    "live": "needs a running paper IB Gateway (--gateway HOST:PORT or IBGW_HOST/IBGW_PORT); excluded by default",
    "docker": "starts real containers through docker-py",
    "soak": "long-running connection-health run; excluded by default",
    "matrix": "Gateway-version matrix run",
}
DEFAULT_EXCLUDED = ("live", "soak")


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


@dataclass
class GatewayHandle:
    """The session's Gateway: where it is, and the mock behind it if any."""

    target: GatewayTarget
    endpoint: Endpoint

    @property
    def mock(self) -> Any:
        return getattr(self.target, "gateway", None)

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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ibgw", "IB Gateway harness")
    group.addoption("--gateway", default=os.environ.get("IBGW_GATEWAY", "mock"),
                    help="Gateway target: mock, mock:PROFILE, replay:FILE (a recording, `ibgw record`) or HOST:PORT "
                         "(env IBGW_GATEWAY; default mock)")
    group.addoption("--client", action="append", default=None,
                    help="client to run scenarios through: raw, ib_async, ibapi, all, or a team's own adapter "
                         "as module.path:factory; repeat for several (default: all)")
    group.addoption("--ibgw-timeout", type=float, default=float(os.environ.get("IBGW_TIMEOUT", "10")),
                    help="per-connect timeout in seconds (default 10)")
    group.addoption("--evidence-dir", default=os.environ.get("IBGW_EVIDENCE_DIR", "reports/evidence"),
                    help="where scenario evidence JSON is written (default reports/evidence)")
    group.addoption("--gateway-version", default=os.environ.get("IBGW_GATEWAY_VERSION"),
                    help="the Gateway build you run (e.g. 10.45.1j), recorded in the evidence for `ibgw pin` "
                         "when the target cannot tell (a desktop Gateway); containers read it from the image")
    group.addoption("--ibgw-seed", type=int, default=None,
                    help="seed for random client ids (default: random, recorded in the evidence)")


def pytest_configure(config: pytest.Config) -> None:
    # Processes this run starts register under its run dir; SIGTERM ends
    # the run like Ctrl-C, so teardown runs (harness/runstate.py).
    runstate.claim_run()
    runstate.sigterm_as_interrupt()
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    spec = config.getoption("--gateway")
    try:
        target = parse_target(spec)
    except TargetSpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    if spec.strip().startswith("docker:"):
        from .targets.container_target import ContainerTarget, require_image
        from .targets.docker_engine import EngineUnavailable, engine

        assert isinstance(target, ContainerTarget)
        try:
            require_image(engine(), target.image)
        except EngineUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    chosen = config.getoption("--client") or ["all"]
    clients = CLIENT_NAMES if "all" in chosen else tuple(dict.fromkeys(chosen))
    for name in clients:
        if name not in CLIENT_NAMES:
            try:
                validate_spec(name)
            except ClientSpecError as exc:
                raise pytest.UsageError(f"{exc} (built-in clients: {', '.join(CLIENT_NAMES)}, all)") from None
    if not config.getoption("--ibgw-timeout") > 0:
        raise pytest.UsageError(f"--ibgw-timeout {config.getoption('--ibgw-timeout'):g}: a connect timeout must be "
                                "above 0 seconds; hint: the default is 10 (IBGW_TIMEOUT)")
    from .cli.paths import writable_dir_problem

    evidence_dir = str(config.getoption("--evidence-dir") or "")
    problem = ("--evidence-dir is empty; hint: name a directory, e.g. reports/evidence" if not evidence_dir.strip()
               else writable_dir_problem(Path(evidence_dir), "--evidence-dir"))
    if problem is not None:
        raise pytest.UsageError(problem)
    seed = config.getoption("--ibgw-seed")
    config.stash[_CONFIG_KEY] = HarnessConfig(
        gateway_spec=spec, clients=clients, timeout=config.getoption("--ibgw-timeout"),
        evidence_dir=Path(config.getoption("--evidence-dir")),
        seed=seed if seed is not None else random.SystemRandom().randrange(1, 2**31),
    )
    config.stash[_CONFIG_KEY].declared_build = config.getoption("--gateway-version")


_CONFIG_KEY = pytest.StashKey[HarnessConfig]()
# Live runs (real Gateway: interlock, proxy, pacing) and the fixtures for
# other projects live in their own modules; pytest loads them with this one.
pytest_plugins = ("harness.pytest_live", "harness.pytest_fixtures")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without an explicit -m, live and soak tests are deselected, so a plain
    `pytest` in any project using the plugin never touches a real Gateway."""
    if config.getoption("markexpr", ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if any(item.get_closest_marker(m) for m in DEFAULT_EXCLUDED) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client_name" in metafunc.fixturenames:
        cfg = metafunc.config.stash[_CONFIG_KEY]
        metafunc.parametrize("client_name", cfg.clients, ids=list(cfg.clients))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start each run with an empty evidence set, so the summary and the
    report describe this run only. Only the harness's own JSON files go."""
    cfg = session.config.stash.get(_CONFIG_KEY, None)
    # What a killed earlier run left: its mock processes, half-written files.
    runstate.sweep(temp_dirs=[cfg.evidence_dir] if cfg is not None else [])
    if cfg is not None and cfg.evidence_dir.is_dir():
        for path in cfg.evidence_dir.glob("*.json"):
            path.unlink()


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session: pytest.Session) -> None:
    cfg = session.config.stash.get(_CONFIG_KEY, None)
    if cfg is None:
        return
    # Every Gateway the run judged (the session's mock or Gateway, each matrix
    # build), from the evidence it wrote: the JUnit suite property and the
    # allure environment describe what ran, not only the session's target.
    judged = gateways_judged(cfg.evidence_dir)
    if judged and cfg.record_suite_property is not None:
        cfg.record_suite_property("gateway_versions", ", ".join(judged))
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    if not alluredir:
        return
    props = {
        "harness.version": __version__,
        "gateway.target": cfg.gateway_spec,
        "clients": ",".join(cfg.clients),
        "client.id.seed": str(cfg.seed),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    props.update({f"client.{name}.version": v for name, v in sorted(cfg.client_versions.items())})
    if cfg.gateway_build and not cfg.gateway_spec.strip().startswith("mock"):  # a mock stands for no real build
        props["gateway.build"] = cfg.gateway_build
    if judged:
        props["gateway.versions"] = ", ".join(judged)
    write_allure_environment(Path(alluredir), props)
    finish_allure_results(Path(alluredir), cfg.evidence_dir)


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    """Before the terminal's warnings summary formats it: a warning's text
    may name an account too (evidence.report_redaction)."""
    redact_warning(warning_message)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Innermost wrapper: redact captured logs/output and failure text
    before allure and JUnit read the report (evidence.report_redaction)."""
    outcome = yield
    redact_report(outcome.get_result(), call)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def harness_config(pytestconfig: pytest.Config) -> HarnessConfig:
    # From the first harness fixture on, log records redact themselves
    # (account ids seen, credentials), so no capture, live log or attachment
    # holds them (evidence/redact.py). Not at configure time: a project that
    # has the plugin installed but runs none of its fixtures keeps its own
    # log records as they are.
    install_log_redaction()
    return pytestconfig.stash[_CONFIG_KEY]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway(harness_config: HarnessConfig, record_testsuite_property: Callable[[str, object], None],
                  pytestconfig: pytest.Config) -> AsyncIterator[GatewayHandle]:
    """The Gateway every scenario in the session runs against (one per session)."""
    target = parse_target(harness_config.gateway_spec)
    endpoint = await target.start()
    if harness_config.declared_build:
        endpoint.build = harness_config.declared_build
    harness_config.gateway_build = endpoint.build
    harness_config.record_suite_property = record_testsuite_property
    # JUnit XML: which Gateway this run judged, as suite properties: a mock
    # by its profile's name (it stands for no real build), else the build.
    record_testsuite_property("gateway_version", endpoint.label if endpoint.kind == "mock" else endpoint.build)
    if endpoint.kind != "mock":
        record_testsuite_property("gateway_build", endpoint.build)
    record_testsuite_property("gateway_target", endpoint.kind)
    from .pytest_live import open_gateway_handle

    try:
        async with open_gateway_handle(pytestconfig, target, endpoint) as handle:
            yield handle
    finally:
        await target.stop()


@pytest.fixture(scope="session")
def client_id_source(harness_config: HarnessConfig) -> random.Random:
    """Random client ids come from one seeded source, so a failing run can be replayed."""
    return random.Random(harness_config.seed)


@pytest_asyncio.fixture(loop_scope="session")
async def client_factory(harness_config: HarnessConfig, gateway: GatewayHandle, connection_budget: Any
                         ) -> AsyncIterator[Callable[..., ClientAdapter]]:
    """Make client adapters by name; every one is disconnected at teardown,
    and against the mock the teardown waits until their ids are free again."""
    made: list[ClientAdapter] = []

    def factory(name: str, **options: Any) -> ClientAdapter:
        client = make_client(name, **options)
        harness_config.client_versions[client.info.name] = f"{client.info.package} {client.info.version}"
        client = connection_budget.wrap(client)  # live runs: never more connections than allowed
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.disconnect()
    if gateway.mock is not None:
        for client_id in list(gateway.mock.client_ids_in_use):
            await gateway.mock.wait_client_id_free(client_id, timeout=5.0)


@pytest_asyncio.fixture(loop_scope="session")
async def mock_gateway(gateway: GatewayHandle) -> AsyncIterator[Any]:
    """The session's mock Gateway, for tests that steer its faults.

    Skips when the target is not the mock (a real Gateway's faults come only
    from the proxy). At teardown every fault is cleared and the mock
    restarted, so fault state (red API, stuck ids, leaked sockets) never
    leaks into the next test.
    """
    mock = gateway.mock
    if mock is None:
        pytest.skip(f"needs the mock's fault control; the target is {gateway.endpoint.label}")
    yield mock
    mock.clear_fault()
    await mock.restart(0)


@pytest.fixture
def record_evidence(request: pytest.FixtureRequest, harness_config: HarnessConfig) -> Iterator[Callable[[Evidence], Path]]:
    """Write a scenario's evidence JSON and attach it (and its labels) to allure."""

    def record(evidence: Evidence) -> Path:
        # The mock faults active during the run belong to its evidence: a
        # reader (and the latency plot) must not take an injected delay for
        # the Gateway's own speed.
        mock = request.getfixturevalue("gateway").mock if "gateway" in request.fixturenames else None
        if mock is not None and mock.faults.describe():
            evidence.parameters.setdefault("mock_faults", mock.faults.describe())
        path = evidence.write(harness_config.evidence_dir, request.node.nodeid)
        attach_evidence(evidence, path)
        return path

    yield record


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """The docker-py client, for tests that start containers. Without an
    engine they skip with the one-line reason, and FAIL instead when
    HARNESS_REQUIRE_DOCKER=1 (CI provisions an engine: a skip there would
    hide that the container tests never ran)."""
    from .targets.docker_engine import engine, engine_available

    ok, why = engine_available()
    if not ok:
        if os.environ.get("HARNESS_REQUIRE_DOCKER") == "1":
            pytest.fail(f"HARNESS_REQUIRE_DOCKER=1 but {why}", pytrace=False)
        pytest.skip(why)
    return engine()


__all__ = ["GatewayHandle", "HarnessConfig", "MockTarget"]
