"""The Gateway-version matrix: every version in gateway-docker/versions.json,
one at a time, through every chosen client: handshake, account sync and the
zombie run, plus a version-only probe for the build's own maximum.

Sequential on purpose: real Gateways on one login knock each other off, so a
version's target is started, used by every client and stopped before the
next. The target is the in-process mock profile (default) or the version's
container (IBGW_MATRIX_TARGET=docker, through docker-py; the gnzsnz-shaped
stand-in runs as one more row). Before each client the Gateway is restarted,
so one client's leftovers (zombie sockets, a stuck id) never decide another
client's cells.

The evidence (one JSON per scenario, `parameters.gateway_version`, in
<evidence dir>/matrix/) is what `ibgw pin` reads. A version whose profile
carries a regression fixture must be caught: its failing evidence is marked
as expected, and the last test builds the pinning decision from this
session's files alone and asserts every such version is rejected for what
its evidence shows, so CI proves the detector and the pin together.

Knobs (environment): IBGW_MATRIX_TARGET=mock|docker, IBGW_MATRIX_VERSIONS=10.41,10.45
(a slice), IBGW_MATRIX_RUNS (zombie runs per cell, default 3; `make report` runs 10),
IBGW_MATRIX_LOGIN_DELAY (stand-in login delay, default 1 s).

Several Docker engines (--docker-host URL, repeatable, or IBGW_DOCKER_HOSTS):
the rows are spread over them round robin, each row (every client's cells and
its probe) on one engine, whose URL each evidence file records
(`parameters.engine`). An engine that stops answering mid-run turns its
rows' cells into "engine lost" records, which `ibgw pin` counts as missing
(inconclusive), never as passed or as a regression of the build.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.config import env as config_env
from harness.core.record import Evidence
from harness.evidence.allure_io import attach_evidence, set_label, set_readable_parameter
from harness.mock.profiles import get_profile
from harness.scenarios import run_account_sync, run_handshake
from harness.scenarios.version_probe import run_version_probe
from harness.scenarios.zombie import CAUSE_CLOSED_AFTER_START, CAUSE_WEDGE, run_zombie
from harness.targets import MockTarget
from harness.targets.engines import spread
from harness.targets.images import load_versions

pytestmark = pytest.mark.matrix

MATRIX_TARGET = config_env("IBGW_MATRIX_TARGET")
RUNS = int(config_env("IBGW_MATRIX_RUNS"))
LOGIN_DELAY = float(config_env("IBGW_MATRIX_LOGIN_DELAY"))
ENGINE_GRACE_S = 15.0  # an engine whose container vanished gets this long to stop answering
# Per connect, against the in-process mock and containers alike. A healthy mock answers in milliseconds
# on a quiet machine, but a healthy 10.50 cell's account sync took 2.3 s at load 12 on 2 cores (a test run
# with two CPU hogs beside it), so the 2 s this once was for the mock turned a healthy build red. A wedged
# build (10.41's fixture) never answers: the wait is the fault's floor, and each wedged cell waits it once
# (its zombie run stops at the first failure). Users' own runs keep their configured timeout (IBGW_TIMEOUT).
CELL_TIMEOUT = 5.0
CLIENT_IDS = {"handshake": 11, "account_sync": 12, "zombie": 13}
# A regression fixture's fault -> the zombie scenario's cause it must produce.
FIXTURE_CAUSES = {"api-wedge": CAUSE_WEDGE, "closed-after-start-api": CAUSE_CLOSED_AFTER_START}


@dataclass(frozen=True)
class Row:
    """One matrix row: a Gateway version and what stands for it."""

    version: str
    profile: str
    image: str  # the container image (docker mode)
    standin: bool = False

    @property
    def id(self) -> str:
        return f"standin-{self.version}" if self.standin else self.version


def _rows() -> list[Row]:
    entries, standin = load_versions()
    wanted = {v.strip() for v in config_env("IBGW_MATRIX_VERSIONS").split(",") if v.strip()}
    rows = [Row(e.version, e.mock_profile, e.mock_image) for e in entries if not wanted or e.version in wanted]
    if MATRIX_TARGET == "docker" and standin and (not wanted or standin["version"] in wanted):
        rows.append(Row(standin["version"], standin["mock_profile"], standin["image"], standin=True))
    return rows


@dataclass
class VersionTarget:
    row: Row
    target: Any
    endpoint: Any
    start_error: Exception | None = None  # the container never became API-ready
    engine: str | None = None  # the Docker engine's URL (docker mode)
    engine_lost: str | None = None  # why the engine is gone: its cells are missing, not judged

    async def check_engine(self) -> bool:
        """After a failure on a container: is its engine still there? If not,
        the failure says nothing about the build (the engine took the container).

        An engine being stopped may still answer a ping while it stops its
        containers; so when the container is no longer running, the engine
        gets a bounded grace period to go (polling: a shutdown sends no event
        we could await). An engine that still answers after it is one whose
        container died on its own: that failure is the build's."""
        if MATRIX_TARGET != "docker" or self.engine_lost:
            return self.engine_lost is None
        from harness.targets.docker_engine import engine_alive, engine_url

        host = self.target.docker_host
        running = await asyncio.to_thread(self._container_running)
        deadline = time.monotonic() + (0 if running else ENGINE_GRACE_S)
        alive = await asyncio.to_thread(engine_alive, host)
        while alive and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            alive = await asyncio.to_thread(engine_alive, host)
        if not alive:
            self.engine_lost = f"Docker engine {engine_url(host)} stopped answering"
        return self.engine_lost is None

    def _container_running(self) -> bool:
        try:
            self.target.container.reload()
            return str(self.target.container.status) == "running"
        except Exception:  # noqa: BLE001 - gone, or its engine is: not running
            return False

    @property
    def gateway_port(self) -> int:
        return int(self.endpoint.details.get("gateway_port", self.endpoint.port))

    async def restart(self) -> None:
        if MATRIX_TARGET == "docker":
            await self.target.restart()
        else:
            await self.target.gateway.restart(0)

    def logs(self) -> str | None:
        return self.target.logs(100) if hasattr(self.target, "logs") else None


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=_rows(), ids=lambda r: r.id)
async def version_target(request: pytest.FixtureRequest) -> Any:
    row: Row = request.param
    docker_host = None
    if MATRIX_TARGET == "docker":
        from harness.targets.container_target import ContainerTarget
        from harness.targets.docker_engine import engine_url

        hosts = request.getfixturevalue("matrix_engines")  # skip, or fail under IBGW_REQUIRE_DOCKER=1
        docker_host = dict((r.id, h) for r, h in spread(_rows(), hosts))[row.id]
        env = {"TWS_USERID": "standin", "TWS_PASSWORD": "standin"} if row.standin else {}
        target: Any = ContainerTarget(row.image, env=env, ready_timeout=30 + LOGIN_DELAY, login_delay=LOGIN_DELAY,
                                      docker_host=docker_host)
        engine = engine_url(docker_host)
    else:
        target = MockTarget(row.profile)
        engine = None
    vt = VersionTarget(row, target, None, engine=engine)
    try:
        try:
            vt.endpoint = await target.start()
        except Exception as exc:  # ContainerNotReady: recorded as this version's evidence, not a crash
            if MATRIX_TARGET != "docker" or (await vt.check_engine() and type(exc).__name__ != "ContainerNotReady"):
                raise
            vt.start_error = exc
        yield vt
    finally:
        try:
            await target.stop()
        except Exception:
            if await vt.check_engine():  # an engine that went away took its containers with it
                raise


@pytest.fixture(scope="module")
def matrix_engines(harness_config: Any, request: pytest.FixtureRequest) -> tuple[str | None, ...]:
    """The engines the rows spread over (--docker-host / IBGW_DOCKER_HOSTS,
    else the local one), each answering and holding the images of its rows:
    a missing engine or image is one line naming it, before any row starts."""
    from harness.targets.container_target import require_image
    from harness.targets.docker_engine import EngineUnavailable, engine

    if not harness_config.docker_hosts:
        request.getfixturevalue("docker_engine")  # skip, or fail under IBGW_REQUIRE_DOCKER=1
        return ()
    for row, host in spread(_rows(), harness_config.docker_hosts):
        try:
            client = engine(host)
        except EngineUnavailable as exc:  # names the URL and why
            pytest.fail(str(exc), pytrace=False)
        try:
            require_image(client, row.image)
        except EngineUnavailable:
            pytest.fail(f"image {row.image} is not on engine {host}; hint: build it there "
                        f"(python -m harness.targets.images --docker-host {host}) or `docker save | docker load` it",
                        pytrace=False)
    return harness_config.docker_hosts


@pytest.fixture(scope="module")
def matrix_dir(harness_config) -> Path:
    """<evidence dir>/matrix, emptied once per run: what `ibgw pin` reads
    (kept apart from the other suites' evidence, whose default mock claims a
    build of its own)."""
    directory = harness_config.evidence_dir / "matrix"
    if directory.is_dir():
        for path in directory.glob("*.json"):
            path.unlink()
    return directory


WRITTEN: dict[str, Path] = {}  # this session's matrix evidence, by file name


def _write(evidence: Evidence, directory: Path, name: str, row: Row, feature: str | None = None,
           engine: str | None = None) -> None:
    evidence.parameters.update(gateway_version=row.version, matrix=True)
    if engine:
        evidence.parameters["engine"] = engine
    path = evidence.write(directory, name)
    WRITTEN[path.name] = path
    attach_evidence(evidence, path, feature=feature)


def _readable_parameters(row: Row, client_name: str | None = None) -> None:
    """The report shows `10.41 / ib_async`, not the Row's repr: the raw
    pytest parameters are hidden (they still make the history id)."""
    set_readable_parameter("cell", row.id if client_name is None else f"{row.id} / {client_name}",
                           hide=("version_target", "client_name"))
    if client_name is not None:
        try:
            import allure
        except ImportError:
            return
        allure.dynamic.title(f"matrix cell {row.id} / {client_name}")


def _fail_regression(row: Row, failed: list[Evidence], config: pytest.Config) -> None:
    """The convention for a Gateway build that regressed: the cell FAILS
    (allure status failed, never green) and its message starts with the
    category of the first failure, so the report's version group turns red
    and the Categories tab names the cause. The allure label
    `gateway_regression` tells `make report` (harness.evidence.run_outcome)
    that this failure is a finding about the build, not a harness fault."""
    set_label("gateway_regression", row.version)
    set_label("failure_category", failed[0].category or "unclassified")  # the cause the message starts with
    fixture = get_profile(row.profile).regression_source
    lines = [e.summary_line() for e in failed]
    message = (f"{lines[0]}\nGateway {row.id} regressed" + (f" (regression fixture: {fixture})" if fixture else "")
               + "".join(f"\n{line}" for line in lines[1:]))
    if config.getoption("--expect-regressions", default=False):
        pytest.xfail(message)  # make test: the detector caught the fixture, as it must
    pytest.fail(message, pytrace=False)


def _engine_lost(vt: VersionTarget, matrix_dir: Path, name: str, scenarios: list[str],
                 client: dict[str, Any]) -> None:
    """The engine went away: one record per scenario that `ibgw pin` counts as
    missing (parameters.engine_lost), and the test fails; never a pass, and
    never a verdict on the build."""
    for scenario in scenarios:
        lost = Evidence(scenario=scenario, target={"kind": "container", "label": vt.row.image, "build": "unknown"},
                        client=client, failed_phase="engine_lost", cause=vt.engine_lost,
                        hint="the cell did not run to the end; run it again on an engine that stays up")
        lost.parameters["engine_lost"] = True
        _write(lost.finish(), matrix_dir, f"{name}-{scenario}", vt.row, engine=vt.engine)
    pytest.fail(f"{vt.row.id}: {vt.engine_lost}: cell missing", pytrace=False)


async def test_version_probe(version_target: VersionTarget, matrix_dir, request):
    """The build's own maximum server version, and no zombie from a probe that never starts the API."""
    _readable_parameters(version_target.row)
    if version_target.engine_lost:  # the fixture found the engine gone when the container did not start
        _engine_lost(version_target, matrix_dir, request.node.nodeid, ["version_probe"], {"name": "version-probe"})
    if version_target.start_error is not None:
        # The version's evidence says it never came up (with the container's
        # log), so `ibgw pin` rejects it instead of calling it missing.
        failed = Evidence(scenario="version_probe", target={"kind": "container", "label": version_target.row.image,
                                                            "build": "unknown"}, client={"name": "version-probe"},
                          failed_phase="container_start", cause=str(version_target.start_error),
                          hint="the container never became API-ready; see its log")
        failed.details["container_logs"] = getattr(version_target.start_error, "logs", "")
        _write(failed.finish(), matrix_dir, request.node.nodeid, version_target.row, engine=version_target.engine)
        pytest.fail(f"{version_target.start_error}\n{failed.details['container_logs'][-2000:]}", pytrace=False)
    evidence = await run_version_probe(version_target.endpoint, timeout=CELL_TIMEOUT,
                                       zombie_port=version_target.gateway_port)
    profile = get_profile(version_target.row.profile)
    if not evidence.ok and not await version_target.check_engine():
        _engine_lost(version_target, matrix_dir, request.node.nodeid, ["version_probe"], evidence.client)
    if not evidence.ok and profile.default_faults:
        evidence.parameters.update(expected_outcome="failed", regression_fixture=profile.regression_source)
    _write(evidence, matrix_dir, request.node.nodeid, version_target.row, engine=version_target.engine)
    assert evidence.server_version is not None, evidence.summary_line()
    # The reply is min(build maximum, 300): the build's own maximum.
    assert evidence.server_version == profile.max_server_version, evidence.summary_line()
    if not evidence.ok and profile.default_faults:
        _fail_regression(version_target.row, [evidence], request.config)
    elif not profile.default_faults:
        assert evidence.ok, evidence.summary_line()


async def test_matrix_cell(version_target: VersionTarget, client_factory, client_name, harness_config, matrix_dir,
                           request):
    row = version_target.row
    _readable_parameters(row, client_name)
    cell_name = request.node.nodeid
    if version_target.engine_lost:
        _engine_lost(version_target, matrix_dir, cell_name, list(CLIENT_IDS), asdict(client_factory(client_name).info))
    if version_target.start_error is not None:
        pytest.fail(f"{row.id} never became API-ready: {version_target.start_error}", pytrace=False)
    try:
        await version_target.restart()
    except Exception:
        if await version_target.check_engine():
            raise
        _engine_lost(version_target, matrix_dir, cell_name, list(CLIENT_IDS), asdict(client_factory(client_name).info))
    endpoint = version_target.endpoint
    timeout = min(harness_config.timeout, CELL_TIMEOUT)
    try:
        results = [
            await run_handshake(endpoint, client_factory(client_name), CLIENT_IDS["handshake"], timeout=timeout),
            await run_account_sync(endpoint, client_factory(client_name), CLIENT_IDS["account_sync"],
                                   timeout=timeout),
            await run_zombie(endpoint, client_name, lambda: client_factory(client_name), runs=RUNS,
                             client_id=CLIENT_IDS["zombie"], timeout=timeout, settle_timeout=0.5,
                             stop_at_first_failure=True),
        ]
    except Exception:
        if await version_target.check_engine():
            raise
        _engine_lost(version_target, matrix_dir, cell_name, list(CLIENT_IDS), asdict(client_factory(client_name).info))
    profile = get_profile(row.profile)
    failed = [e for e in results if not e.ok]
    if failed and not await version_target.check_engine():
        _engine_lost(version_target, matrix_dir, cell_name, list(CLIENT_IDS), results[0].client)
    logs = version_target.logs() if failed else None
    for evidence in results:
        if not evidence.ok:
            if profile.default_faults:  # the regression fixture this row exists to catch
                evidence.parameters.update(expected_outcome="failed", regression_fixture=profile.regression_source)
            if logs:
                evidence.details["container_logs"] = logs
        _write(evidence, matrix_dir, f"{request.node.nodeid}-{evidence.scenario}", row, feature="version matrix",
               engine=version_target.engine)
    if profile.default_faults:
        # A client may legitimately escape a regression (one that resets its
        # socket never leaves CLOSE_WAIT behind: legacy ibapi 9.81's zombie run),
        # so detection is asserted per version, over every client and the probe,
        # by test_pin_never_recommends_a_regression_fixture. Here: every failure
        # must carry its cause, and a caught regression fails the cell.
        assert all(e.cause and e.failed_phase for e in failed), [e.summary_line() for e in failed]
        if MATRIX_TARGET == "mock":
            # ... and for the reason the fixture's public report gives (the wedge: gnzsnz/ib-gateway-docker#336;
            # the bare close after startApi: ib-api-reloaded/ib_async#143), not a guess such as churn or a stuck id.
            zombie = results[-1]
            for fault, named in FIXTURE_CAUSES.items():
                if any(f.startswith(fault) for f in profile.default_faults):
                    assert not zombie.ok and zombie.cause.startswith(named), zombie.summary_line()
        if failed:
            _fail_regression(row, failed, request.config)
    else:
        assert not failed, "; ".join(e.summary_line() for e in failed)


def test_pin_never_recommends_a_regression_fixture(matrix_dir):
    """Runs last in this module (it uses no version target, so pytest keeps it
    after the parametrized tests): the pinning decision, made from the
    evidence files alone, rejects every version whose profile carries a
    regression fixture, and says why."""
    from harness.evidence.pinning import build_report

    try:
        import allure

        allure.dynamic.label("gateway_version", "matrix: every build")
        allure.dynamic.feature("pinning decision")
    except ImportError:
        pass
    if not WRITTEN:
        pytest.skip("no matrix cell ran in this session (deselected)")
    report = build_report(sorted(WRITTEN.values()))  # this session's files only
    ran = {v["version"] for v in report["versions"]}
    fixtures = {r.version for r in _rows() if get_profile(r.profile).default_faults and r.version in ran}
    assert report["recommended"] not in fixtures, report["reason"]
    for version in fixtures:
        # rejected for what the evidence shows (a failing cell or the probe), not for being older
        assert version in report["rejected"], report["rejected"]
        assert not report["rejected"][version].startswith("passed"), report["rejected"][version]
