"""pytest glue for live runs, registered by harness.pytest_plugin only for
them (--ibgw-live, or a target that is not the mock): a run against a real
Gateway is safe and gentle by default.

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
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from ..core.redact import redact_accounts, redact_tree
from ..live.session import (
    LIVE_REFUSED_EXIT,
    UNREACHABLE_EXIT,
    GatewayUnreachable,
    LiveRunRefused,
    LiveSession,
    live_session,
)
from ..safety.accounts import live_port_warning
from ..scenarios.gateway_or_code import WireSource, wire_from_mock
from .fixtures import MOCK_FIXTURES
from .options import SET_A_TARGET, is_mock_spec
from .state import CONFIG_KEY, LIVE_KEY, GatewayHandle, LiveRun
from .terminal import say

NEEDS_MOCK = "needs_mock: needs the mock Gateway's fault control; deselected automatically against a real Gateway"


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(LIVE_KEY, None)
    if run is None:
        return []
    if run.unconfigured:
        return [f"ibgw: {run.unconfigured}"]
    if not run.policy.live:
        return []
    p = run.policy
    via = "through the recording proxy" if p.proxy else "direct (no proxy)"
    lines = [(f"ibgw: LIVE RUN against {config.stash[CONFIG_KEY].gateway_spec}: read-only, sequential, client ids "
              f"{p.id_range[0]}-{p.id_range[1]}, at most {p.max_connections} connection(s), "
              f"{p.pause_s:g} s between cycles, {via}"),
             f"ibgw: {p.zombie_notice()}"]
    spec = config.stash[CONFIG_KEY].gateway_spec
    port = spec.rpartition(":")[2]
    if port.isdigit() and (warning := live_port_warning(int(port))):
        lines.append(f"ibgw: WARNING: {warning}")
    return lines


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash.get(LIVE_KEY, None)
    if run is None:
        return
    if run.unconfigured:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=run.unconfigured))
        return
    if not run.policy.live:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        needs_mock = (item.get_closest_marker("needs_mock")
                      or not set(MOCK_FIXTURES).isdisjoint(getattr(item, "fixturenames", ())))
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
    run = item.config.stash.get(LIVE_KEY, None)
    refusal = run.session.refusal() if run is not None and run.session is not None else None
    if refusal:
        pytest.exit(refusal, returncode=LIVE_REFUSED_EXIT)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = terminalreporter.config.stash.get(LIVE_KEY, None)
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


def pytest_ibgw_open_gateway(config: pytest.Config, target: Any, endpoint: Any
                             ) -> contextlib.AbstractAsyncContextManager[GatewayHandle] | None:
    """The hook the `ibgw_gateway` fixture calls: a real Gateway opens through live_session."""
    run = config.stash.get(LIVE_KEY, None)
    return open_gateway_handle(config, target, endpoint) if run is not None and run.policy.live else None


@contextlib.asynccontextmanager
async def open_gateway_handle(config: pytest.Config, target: Any, endpoint: Any) -> AsyncIterator[GatewayHandle]:
    """What the `gateway` fixture yields: the mock as is; a real Gateway
    through live_session (proxy, order guard, paper-account interlock)."""
    run = config.stash.get(LIVE_KEY, None)
    if run is None or not run.policy.live:
        yield GatewayHandle(target, endpoint)
        return

    def report(text: str) -> None:
        say(config, text)

    cfg = config.stash[CONFIG_KEY]
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


def wire_source(handle: GatewayHandle) -> WireSource | None:
    """Gateway-side connection records for the gateway-or-code verdict."""
    if handle.mock is not None:
        return wire_from_mock(handle.mock)
    session = getattr(handle, "session", None)
    if session is not None and session.proxy is not None:
        from ..live.proxy_glue import wire_for_client

        return lambda client_id, since: wire_for_client(session.proxy, client_id, since)
    return None


__all__ = ["SET_A_TARGET", "LiveGatewayHandle", "LiveRun", "is_mock_spec", "open_gateway_handle", "say", "wire_source"]
