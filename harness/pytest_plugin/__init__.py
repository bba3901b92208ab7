"""pytest plugin (entry point `pytest11` `ibgw_harness`): options, markers
and fixtures that let any project run the harness's scenarios against a
Gateway target.

It does nothing until asked. Installed into a team's project it is loaded
by every `pytest` there, so until the run names an ibgw option (or sets
`ibgw_enable = true` in its ini, as this repository does) or a test uses an
`ibgw_*` fixture, it touches no file, installs no signal handler, sets no
environment variable and sweeps nothing (activation.py).

Modules: `options` (the command line, and the configuration built from
it), `fixtures`, `live` (registered only for live runs), `hooks` (the
`pytest_ibgw_*` hooks), `state` (the records in pytest's stash),
`activation` (the side effects, once).
"""

from __future__ import annotations

import platform
import signal
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .. import __version__
from ..evidence.allure_io import write_allure_environment
from ..evidence.report_redaction import redact_report
from ..evidence.session_report import finish_allure_results, gateways_judged
from ..targets import MockTarget
from . import hooks, options, workers
from .activation import activate, check_target_and_dir
from .fixtures import uses_ibgw_fixture
from .options import SET_A_TARGET
from .state import (
    ACTIVATION_KEY,
    CONFIG_KEY,
    LIVE_KEY,
    LIVE_PLUGIN_NAME,
    Activation,
    GatewayHandle,
    HarnessConfig,
    is_active,
)

if TYPE_CHECKING:
    from pluggy import Result

MARKERS = {
    "live": "needs a running paper IB Gateway (--gateway HOST:PORT or IBGW_HOST/IBGW_PORT); excluded by default",
    "docker": "starts real containers through docker-py",
    "soak": "long-running connection-health run; excluded by default",
    "matrix": "Gateway-version matrix run",
    "needs_mock": "needs the mock Gateway's fault control; deselected automatically against a real Gateway",
}
DEFAULT_EXCLUDED = ("live", "soak")

# The fixtures are always there (using one is what activates the plugin); the live glue is registered per run.
pytest_plugins = ("harness.pytest_plugin.fixtures",)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Build the run's configuration (reading only). Asked for explicitly, a
    bad option is a usage error now; while inert it is kept, and raised
    only if a test then uses an ibgw fixture."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    activation = Activation(explicit=options.explicitly_asked(config))
    config.stash[ACTIVATION_KEY] = activation
    try:
        env_problem = options.resolve(config)
        if env_problem is not None:
            raise pytest.UsageError(env_problem)
        cfg, live = options.build(config)
    except pytest.UsageError as exc:
        if activation.explicit:
            raise
        activation.problem = str(exc)
        return
    config.stash[CONFIG_KEY] = cfg
    config.stash[LIVE_KEY] = live
    if workers.is_controller(config):  # pytest -n N: hand each worker the seed, hear which activated
        config.pluginmanager.register(workers.ControllerHooks(cfg.seed), workers.CONTROLLER_PLUGIN_NAME)
    if activation.explicit:
        problem = check_target_and_dir(cfg)
        if problem is not None:
            raise pytest.UsageError(problem)
        if live.policy.live or live.unconfigured:
            from . import live as live_plugin

            config.pluginmanager.register(live_plugin, LIVE_PLUGIN_NAME)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run that asked for the harness claims it now (a lazily activated
    one does so when its first ibgw fixture is set up)."""
    activation = session.config.stash.get(ACTIVATION_KEY, None)
    if activation is not None and activation.explicit:
        activate(session.config)


def _ours(config: pytest.Config, item: object) -> bool:
    """A test the plugin may act on: any, in a run that asked; else one using an ibgw fixture."""
    activation = config.stash.get(ACTIVATION_KEY, None)
    return (activation is not None and activation.explicit) or uses_ibgw_fixture(item)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without an explicit -m, live and soak tests are deselected, so a plain
    `pytest` in any project using the plugin never touches a real Gateway;
    outside a live run, a `live` test that does run is skipped with what to set.
    Only the plugin's own tests: a project's `live` marker is its own business."""
    live = config.stash.get(LIVE_KEY, None)
    if live is not None and not live.policy.live and not live.unconfigured:
        skip = pytest.mark.skip(reason=f"live test: {SET_A_TARGET}")
        for item in items:
            if item.get_closest_marker("live") and _ours(config, item):
                item.add_marker(skip)
    if config.getoption("markexpr", ""):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        excluded = any(item.get_closest_marker(m) for m in DEFAULT_EXCLUDED) and _ours(config, item)
        (drop if excluded else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`ibgw_client_name` (or its old name `client_name`): one test per chosen client."""
    cfg = metafunc.config.stash.get(CONFIG_KEY, None)
    if cfg is None or not _ours(metafunc.config, metafunc):
        return
    for name in ("ibgw_client_name", "client_name"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, cfg.clients, ids=list(cfg.clients))
            return


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session: pytest.Session) -> None:
    cfg = session.config.stash.get(CONFIG_KEY, None)
    if cfg is None or workers.is_worker(session.config):
        return  # under xdist the controller finishes the run, once, after every worker has finished
    controller = workers.controller_hooks(session.config)
    if not is_active(session.config) and not (controller is not None and controller.workers_active):
        return
    if controller is not None:  # under xdist: the controller writes the JUnit file, with the workers' properties
        cfg.record_suite_property = _junit_global_property(session.config)
        if cfg.record_suite_property is not None:
            for name, value in controller.suite_properties.items():
                cfg.record_suite_property(name, value)
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


def _junit_global_property(config: pytest.Config) -> Any:
    """The controller's JUnit writer (workers write none): where a suite property goes under xdist."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest moved it
        return None
    xml = config.stash.get(xml_key, None)
    return xml.add_global_property if xml is not None else None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """End the session (exit 2, as Ctrl-C does) after a test during which
    a signal removed this run's containers: the test's own clean-up may
    have swallowed the KeyboardInterrupt (a finally block that raised), and
    the run must not carry on with its containers gone."""
    engine_module = sys.modules.get("harness.targets.docker_engine")  # never imported: no container started
    signum = engine_module.interrupted() if engine_module is not None else None
    if signum is not None:
        pytest.exit(f"{signal.Signals(signum).name} received: this run's containers were removed",
                    returncode=pytest.ExitCode.INTERRUPTED)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Result[pytest.TestReport], None]:
    """Innermost wrapper: redact captured logs/output and failure text
    before allure and JUnit read the report (evidence.report_redaction),
    in every run the plugin acts in."""
    outcome = yield
    if is_active(item.config):
        redact_report(outcome.get_result(), call)


__all__ = ["CONFIG_KEY", "LIVE_KEY", "GatewayHandle", "HarnessConfig", "MockTarget"]
