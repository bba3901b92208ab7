"""pytest glue for live runs (loaded by harness.pytest_plugin): a run against
a real Gateway is safe and gentle by default.

* `--ibgw-live` (what `make test-live` passes): the target comes from
  --gateway HOST:PORT / docker:IMAGE or from IBGW_HOST + IBGW_PORT; with
  neither, every test is skipped with a message saying exactly what to set.
* Any run whose target is not the mock is a live run: tests that need the
  mock's fault control (the `mock_gateway` fixture or the `needs_mock`
  marker) are deselected; the session goes through the recording proxy with
  the order guard; it stops before the first scenario when a managed
  account is not a paper account (unless --allow-live-account); live
  trading ports get a warning; client ids come from --ibgw-client-ids;
  at most --ibgw-max-connections at once, each connect at least
  --ibgw-pause after the previous close; zombie cycles are few, paced and
  stop at the first failure (the `zombie_plan` fixture), announced first.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from .evidence.redact import redact_accounts, redact_text, redact_tree
from .live.policy import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PAUSE_S,
    DEFAULT_ZOMBIE_RUNS,
    ClientIdAllocator,
    ConnectionBudget,
    LivePolicy,
    parse_id_range,
)
from .live.session import (
    LIVE_REFUSED_EXIT,
    UNREACHABLE_EXIT,
    GatewayUnreachable,
    LiveRunRefused,
    LiveSession,
    live_session,
)
from .pytest_plugin import _CONFIG_KEY, GatewayHandle
from .safety.accounts import ALLOW_FLAG, live_port_warning
from .scenarios.gateway_or_code import WireSource, wire_from_mock

SET_A_TARGET = ("live run without a Gateway: set IBGW_HOST and IBGW_PORT (e.g. IBGW_HOST=127.0.0.1 "
                "IBGW_PORT=4002 for a paper IB Gateway), or pass --gateway HOST:PORT, or --gateway docker:IMAGE "
                "to start a Gateway container")
NEEDS_MOCK = "needs_mock: needs the mock Gateway's fault control; deselected automatically against a real Gateway"


@dataclass
class LiveRun:
    policy: LivePolicy
    unconfigured: str | None  # why a requested live run has no target
    client_ids: ClientIdAllocator
    budget: ConnectionBudget
    deselected: int = 0
    session: LiveSession | None = None  # while the session's Gateway is open


_LIVE_KEY = pytest.StashKey[LiveRun]()


def is_mock_spec(spec: str) -> bool:
    spec = spec.strip()
    return spec == "mock" or spec.startswith(("mock:", "replay:"))  # a replay is the mock answering from a file


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ibgw")
    group.addoption("--ibgw-live", action="store_true",
                    help="a live run: the Gateway comes from --gateway HOST:PORT|docker:IMAGE or IBGW_HOST/"
                         "IBGW_PORT; without either every test skips and says what to set (make test-live)")
    group.addoption(ALLOW_FLAG, action="store_true",
                    help="let a live run go on when a managed account is not a paper (DU/DF) account")
    group.addoption("--ibgw-client-ids", default=os.environ.get("IBGW_CLIENT_IDS", "900-999"),
                    help="LOW-HIGH: client ids a live run may use (env IBGW_CLIENT_IDS; default 900-999)")
    group.addoption("--ibgw-pause", type=float, default=float(os.environ.get("IBGW_PAUSE", DEFAULT_PAUSE_S)),
                    help=f"seconds between connect/disconnect cycles in a live run (default {DEFAULT_PAUSE_S:g})")
    group.addoption("--ibgw-zombie-runs", type=int, default=DEFAULT_ZOMBIE_RUNS,
                    help=f"zombie cycles per test against a real Gateway (default {DEFAULT_ZOMBIE_RUNS})")
    group.addoption("--ibgw-max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                    help=f"connections a live run may hold at once (default {DEFAULT_MAX_CONNECTIONS})")
    group.addoption("--ibgw-no-proxy", action="store_true",
                    help="live runs go direct instead of through the recording proxy (no Gateway-side transcript)")
    group.addoption("--ibgw-compare", action="store_true",
                    help="'Gateway or our code?': run each chosen client and the reference raw client back to "
                         "back and give a verdict (suites/test_gateway_or_code.py)")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", NEEDS_MOCK)
    cfg = config.stash.get(_CONFIG_KEY, None)
    if cfg is None:
        return
    unconfigured = None
    if config.getoption("--ibgw-live") and is_mock_spec(cfg.gateway_spec):
        host, port = os.environ.get("IBGW_HOST", "").strip(), os.environ.get("IBGW_PORT", "").strip()
        if host and port:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise pytest.UsageError(f"IBGW_PORT={port!r} is not a port in 1..65535")
            cfg.gateway_spec = f"{host}:{port}"
        else:
            unconfigured = SET_A_TARGET
    try:
        id_range = parse_id_range(config.getoption("--ibgw-client-ids"))
    except ValueError as exc:
        raise pytest.UsageError(f"--ibgw-client-ids: {exc}") from None
    for name, minimum in (("--ibgw-pause", 0), ("--ibgw-zombie-runs", 1), ("--ibgw-max-connections", 1)):
        if config.getoption(name) < minimum:
            raise pytest.UsageError(f"{name} must be at least {minimum}")
    live = unconfigured is None and not is_mock_spec(cfg.gateway_spec)
    policy = LivePolicy(live=live, id_range=id_range, pause_s=config.getoption("--ibgw-pause"),
                        zombie_runs=config.getoption("--ibgw-zombie-runs"),
                        max_connections=config.getoption("--ibgw-max-connections"),
                        proxy=not config.getoption("--ibgw-no-proxy"),
                        allow_live_account=config.getoption(ALLOW_FLAG))
    config.stash[_LIVE_KEY] = LiveRun(policy, unconfigured, ClientIdAllocator(id_range if live else None),
                                      ConnectionBudget(policy.max_connections if live else None,
                                                       policy.pause_s if live else 0.0))


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(_LIVE_KEY, None)
    if run is None:
        return []
    if run.unconfigured:
        return [f"ibgw: {run.unconfigured}"]
    if not run.policy.live:
        return []
    p = run.policy
    via = "through the recording proxy" if p.proxy else "direct (no proxy)"
    lines = [(f"ibgw: LIVE RUN against {config.stash[_CONFIG_KEY].gateway_spec}: read-only, sequential, client ids "
              f"{p.id_range[0]}-{p.id_range[1]}, at most {p.max_connections} connection(s), "
              f"{p.pause_s:g} s between cycles, {via}"),
             f"ibgw: {p.zombie_notice()}"]
    spec = config.stash[_CONFIG_KEY].gateway_spec
    port = spec.rpartition(":")[2]
    if port.isdigit() and (warning := live_port_warning(int(port))):
        lines.append(f"ibgw: WARNING: {warning}")
    return lines


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash.get(_LIVE_KEY, None)
    if run is None:
        return
    if run.unconfigured:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=run.unconfigured))
        return
    if not run.policy.live:
        skip = pytest.mark.skip(reason=f"live test: {SET_A_TARGET}")
        for item in items:
            if item.get_closest_marker("live"):
                item.add_marker(skip)
        return
    keep, drop = [], []
    for item in items:
        needs_mock = item.get_closest_marker("needs_mock") or "mock_gateway" in getattr(item, "fixturenames", ())
        (drop if needs_mock else keep).append(item)
    if drop:
        run.deselected = len(drop)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Stop the run (exit 3) after the test during which the proxy withheld
    a non-paper managedAccounts: the account check at the start could not
    run, and the first connection to see the account ends the run."""
    run = item.config.stash.get(_LIVE_KEY, None)
    refusal = run.session.refusal() if run is not None and run.session is not None else None
    if refusal:
        pytest.exit(refusal, returncode=LIVE_REFUSED_EXIT)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = terminalreporter.config.stash.get(_LIVE_KEY, None)
    if run is not None and run.deselected:
        terminalreporter.write_line(f"ibgw: {run.deselected} test(s) that need the mock's fault control were "
                                    "deselected (the target is a real Gateway; its faults come only from the proxy)")


# ------------------------------------------------------------------ the session's Gateway


@dataclass
class LiveGatewayHandle(GatewayHandle):
    """A real Gateway behind the recording proxy: transcripts come from the proxy."""

    session: LiveSession | None = None

    def transcript(self, client_id: int) -> str | None:
        return self.session.transcript(client_id) if self.session is not None else None


@contextlib.asynccontextmanager
async def open_gateway_handle(config: pytest.Config, target: Any, endpoint: Any) -> AsyncIterator[GatewayHandle]:
    """What the `gateway` fixture yields: the mock as is; a real Gateway
    through live_session (proxy, order guard, paper-account interlock)."""
    run = config.stash.get(_LIVE_KEY, None)
    if run is None or not run.policy.live:
        yield GatewayHandle(target, endpoint)
        return
    def report(text: str) -> None:
        say(config, text)

    cfg = config.stash[_CONFIG_KEY]
    try:
        async with live_session(endpoint, run.policy, run.client_ids, timeout=cfg.timeout, report=report,
                                stop_if_unreachable=True) as session:
            run.session = session
            try:
                yield LiveGatewayHandle(target, session.endpoint, session)
            finally:
                run.session = None
                path = write_session_record(cfg.evidence_dir, session, run)
                say(config, f"live session record: {path}")
    except GatewayUnreachable as exc:
        pytest.exit(str(exc), returncode=UNREACHABLE_EXIT)
    except LiveRunRefused as exc:
        pytest.exit(str(exc), returncode=LIVE_REFUSED_EXIT)


def write_session_record(evidence_dir: Path, session: LiveSession, run: LiveRun) -> Path:
    """<evidence dir>/live/session.json: what guarded this live run and what
    the guard refused (a subfolder: the evidence summary reads only scenario
    records at the top level). Account ids redacted."""
    record = {
        "upstream": session.upstream.label,
        "via_proxy": None if session.proxy is None else f"{session.endpoint.host}:{session.endpoint.port}",
        "accounts": redact_accounts(session.accounts),
        "notes": session.notes,
        "orders_blocked": [{"message": b.name, "form": b.form, "wire_id": b.wire_id} for b in session.guard.blocked],
        "proxy_denied": list(getattr(session.proxy, "denied", [])),
        "policy": asdict(run.policy),
        "peak_connections": run.budget.peak,
    }
    path = evidence_dir / "live" / "session.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(redact_tree(record, session.accounts), indent=2, default=str) + "\n", encoding="utf-8")
    return path


def say(config: pytest.Config, text: str) -> None:
    """One line on the terminal now, even from inside a test's captured set-up."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        reporter.write_line(f"\nibgw: {redact_text(text)}")


def wire_source(handle: GatewayHandle) -> WireSource | None:
    """Gateway-side connection records for the gateway-or-code verdict."""
    if handle.mock is not None:
        return wire_from_mock(handle.mock)
    session = getattr(handle, "session", None)
    if session is not None and session.proxy is not None:
        from .live.proxy_glue import wire_for_client

        return lambda client_id, since: wire_for_client(session.proxy, client_id, since)
    return None


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def live_run(pytestconfig: pytest.Config) -> LiveRun:
    return pytestconfig.stash[_LIVE_KEY]


@pytest.fixture(scope="session")
def client_ids(live_run: LiveRun) -> ClientIdAllocator:
    """client_ids.take(preferred[, count]): the id a scenario should use
    (its preferred one against the mock, one from the live range otherwise)."""
    return live_run.client_ids


@pytest.fixture
def zombie_plan(live_run: LiveRun, pytestconfig: pytest.Config) -> Callable[[int], dict[str, Any]]:
    """zombie_plan(runs) -> run_zombie's runs/pause/stop_at_first_failure for this target,
    announcing the live limits on the terminal before the cycles start."""

    def plan(runs: int) -> dict[str, Any]:
        if live_run.policy.live:
            say(pytestconfig, live_run.policy.zombie_notice())
        return live_run.policy.zombie_plan(runs)

    return plan


@pytest.fixture
def connection_budget(live_run: LiveRun) -> ConnectionBudget:
    return live_run.budget


__all__ = ["SET_A_TARGET", "LiveGatewayHandle", "LiveRun", "is_mock_spec", "open_gateway_handle", "wire_source"]
