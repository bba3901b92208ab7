"""Live runs are safe and gentle: the paper-account interlock stops a run
before its first scenario, a live run without a target skips and says what
to set, tests that need the mock's fault control are deselected against a
real Gateway, and the live policy paces and bounds what it does.

The "real Gateway" here is a mock started by the test and addressed as an
external HOST:PORT, which is exactly how a live run sees a Gateway; the
mock can present a non-paper account (MockGateway(accounts=[...])).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from harness.core.net import free_port
from harness.live.policy import (
    ClientIdAllocator,
    ConnectionBudget,
    LivePolicy,
    parse_id_range,
)
from harness.mock import MockGateway
from harness.safety.accounts import live_port_warning, non_paper_accounts
from tests.support.processes import REPO, arun, child_env, run_pytest

SUITE = "suites/test_account_sync.py"


async def test_non_paper_account_stops_the_run_before_the_first_scenario(tmp_path):
    async with MockGateway(port=0, accounts=["U1234567"]) as gw:
        code, out = await run_pytest(SUITE, "--gateway", f"127.0.0.1:{gw.port}", "--client", "raw",
                                     evidence_dir=tmp_path / "stopped")
        assert code == 3, out
        assert "STOPPED before the first scenario" in out and "non-paper account(s) U\u2026567" in out, out
        assert "U1234567" not in out  # redacted, even in the stop message
        assert "passed" not in out.splitlines()[-1]
        assert not list((tmp_path / "stopped").glob("*.json")), "a scenario ran"
        # Only the interlock's own connection reached the Gateway.
        assert [r.client_id for r in gw.records if r.client_id is not None] == [900]

        code, out = await run_pytest(SUITE, "--gateway", f"127.0.0.1:{gw.port}", "--client", "raw",
                                     "--allow-live-account", evidence_dir=tmp_path / "allowed")
        assert code == 0, out
        assert "1 passed" in out and "LIVE (allowed by --allow-live-account)" in out
        evidence = json.loads(next((tmp_path / "allowed").glob("*.json")).read_text())
        assert evidence["outcome"] == "passed"
        assert evidence["target"]["details"]["via_proxy"], "a live run goes through the recording proxy"
        assert "startApi" in evidence["transcript"] and "U1234567" not in json.dumps(evidence)


async def test_paper_account_runs_and_mock_only_tests_are_deselected(tmp_path):
    async with MockGateway(port=0) as gw:
        code, out = await run_pytest(SUITE, "suites/test_zombie.py", "--gateway", f"127.0.0.1:{gw.port}",
                                     "--client", "raw", "--ibgw-pause", "0.05", "-k", "account or abort or detector",
                                     evidence_dir=tmp_path)
    assert code == 0, out
    assert "2 passed" in out, out
    assert "3 test(s) that need the mock's fault control were deselected" in out
    assert "zombie cycles against a real Gateway: at most 5 per test" in out
    zombie = json.loads(next(tmp_path.glob("*abort*.json")).read_text())
    assert zombie["measurements"]["runs_count"] == 5  # 10 asked, the live cap is 5
    assert all(900 <= r["client_id"] <= 999 for r in zombie["details"]["runs"])


async def test_live_run_without_a_target_skips_and_says_what_to_set(tmp_path):
    code, out = await run_pytest(SUITE, "--ibgw-live", "-rs", evidence_dir=tmp_path, env=child_env())
    assert code == 0, out
    assert "3 skipped" in out and "SKIPPED [3]" in out and "set IBGW_HOST and IBGW_PORT" in out, out


async def test_live_run_takes_the_gateway_from_the_environment(tmp_path):
    async with MockGateway(port=0) as gw:
        code, out = await run_pytest(SUITE, "--ibgw-live", "--client", "raw", evidence_dir=tmp_path,
                                     env=child_env(IBGW_HOST="127.0.0.1", IBGW_PORT=str(gw.port)))
    assert code == 0, out
    assert f"LIVE RUN against 127.0.0.1:{gw.port}" in out and "1 passed" in out


def test_live_ports_warn_and_paper_ids_are_recognised():
    assert "live-trading" in (live_port_warning(4001) or "") and "live-trading" in (live_port_warning(7496) or "")
    assert live_port_warning(4002) is None and live_port_warning(7497) is None
    assert non_paper_accounts(["DU123", "DF9", "U1234567", "F777"]) == ["U1234567", "F777"]


def test_live_policy_bounds_zombie_cycles_and_client_ids():
    live = LivePolicy(live=True, pause_s=1.5, zombie_runs=5)
    assert live.zombie_plan(10) == {"runs": 5, "pause": 1.5, "stop_at_first_failure": True}
    assert LivePolicy().zombie_plan(10) == {"runs": 10, "pause": 0.0, "stop_at_first_failure": False}
    ids = ClientIdAllocator((900, 905))
    assert [ids.take(0), ids.take(60, 3), ids.take(1), ids.take(1, 2)] == [900, 901, 904, 900]
    assert ClientIdAllocator().take(60) == 60
    with pytest.raises(ValueError, match="LOW-HIGH"):
        parse_id_range("999-900")


async def test_connection_budget_never_exceeds_the_limit():
    from harness.clients import make_client
    from harness.clients.base import HandshakeError

    budget = ConnectionBudget(1)
    async with MockGateway(port=0) as gw:
        first, second = budget.wrap(make_client("raw")), budget.wrap(make_client("raw"))
        await first.connect("127.0.0.1", gw.port, 1, timeout=2)
        with pytest.raises(HandshakeError, match="connection budget"):
            await second.connect("127.0.0.1", gw.port, 2, timeout=0.2)
        assert [r.client_id for r in gw.records] == [1]  # the refused one never touched the Gateway
        await first.disconnect()
        await second.connect("127.0.0.1", gw.port, 2, timeout=2)
        await second.disconnect()
    assert budget.peak == 1


async def test_no_proxy_in_front_of_the_gateway_stops_the_run_unless_asked_for():
    """The proxy is loopback only; for any other Gateway address the run
    stops before connecting anywhere instead of silently dropping the order
    guard. (192.0.2.1 is TEST-NET: the proxy refuses it on sight, nothing
    is ever sent to it.)"""
    from harness.live.session import LiveRunRefused, live_session
    from harness.targets.base import TARGET_EXTERNAL, Endpoint

    remote = Endpoint(TARGET_EXTERNAL, "192.0.2.1", 4002, "192.0.2.1:4002")
    with pytest.raises(LiveRunRefused, match="--ibgw-no-proxy"):
        async with live_session(remote, LivePolicy(live=True), ClientIdAllocator((900, 999)), timeout=1.0,
                                report=lambda text: None):
            pytest.fail("the session must not start")


async def test_connections_are_spaced_by_the_pause():
    from harness.clients import make_client

    budget = ConnectionBudget(3, pause=0.3)
    async with MockGateway(port=0) as gw:
        closed: list[float] = []
        for client_id in (1, 2):
            client = budget.wrap(make_client("raw"))
            await client.connect("127.0.0.1", gw.port, client_id, timeout=2)
            await client.disconnect()
            closed.append(time.monotonic())  # the client's close (the budget's clock starts just before)
        first, second = gw.record_for_client(1), gw.record_for_client(2)
        assert first is not None and second is not None
        # The second connect reached the mock at least the pause after the first client closed. From the
        # client's close, not the mock's record of it: on a loaded machine the mock notices a close late,
        # which shortened the gap it saw (0.23 s for a 0.3 s pause); load can only lengthen this one.
        assert second.accepted_at - closed[0] >= 0.25


async def test_live_trading_port_gets_a_warning_in_the_header(tmp_path):
    """--collect-only: the header is printed, no Gateway is ever contacted."""
    code, out = await run_pytest(SUITE, "--gateway", "127.0.0.1:4001", "--collect-only", evidence_dir=tmp_path)
    assert code == 0, out
    assert "ibgw: WARNING: port 4001 is the IB Gateway live-trading port" in out
    assert "LIVE RUN against 127.0.0.1:4001: read-only" in out


async def _soak(port: int, out: Path, *extra: str) -> tuple[int, str]:
    """`ibgw soak` in its own process against 127.0.0.1:port, a few seconds, no faults."""
    done = await arun([sys.executable, "-m", "harness.cli", "soak", "--gateway", f"127.0.0.1:{port}", "--duration", "5",
                       "--client", "raw", "--client", "ib_async", "--schedule", "none", "--interval", "1",
                       "--ping-interval", "0.2", "--probe-interval", "1", "--probe-timeout", "2", "--out", str(out),
                       *extra], env=child_env(), timeout=60, merge_stderr=True)
    return done.returncode, done.stdout


async def test_soak_against_a_non_paper_gateway_stops_before_its_first_connection(tmp_path: Path) -> None:
    """`ibgw soak` at a Gateway that is not the mock is a live run, as in the
    suites: the same interlock, the live client-id range, the complete order guard."""
    async with MockGateway(port=0, accounts=["U1234567"]) as gw:
        code, out = await _soak(gw.port, tmp_path / "stopped")
        assert code == 3, out
        assert "STOPPED before the first scenario" in out and "U\u2026567" in out and "U1234567" not in out
        assert "Traceback" not in out
        assert not list((tmp_path / "stopped").rglob("soak.jsonl")), "the soak started"
        assert [r.client_id for r in gw.records if r.client_id is not None] == [900]  # the interlock's only
        # The soak suite (make soak GATEWAY=HOST:PORT) stops the same way.
        code, out = await run_pytest(str(REPO / "suites" / "test_soak.py"), "-m", "soak", "--gateway",
                                     f"127.0.0.1:{gw.port}", evidence_dir=tmp_path / "suite", cwd=tmp_path,
                                     env=child_env(IBGW_SOAK_DURATION="5"))
        assert code == 3 and "STOPPED before the first scenario" in out and "U1234567" not in out, out
        assert [r.client_id for r in gw.records if r.client_id is not None] == [900, 900]

        code, out = await _soak(gw.port, tmp_path / "allowed", "--allow-live-account")
        assert code == 0, out
        assert "LIVE (allowed by --allow-live-account)" in out and "order guard on" in out
        ids = {r.client_id for r in gw.records if r.client_id is not None}
        assert len(ids) > 3 and all(900 <= i <= 999 for i in ids), ids  # interlock, 2 persistent, probes
    written = [p for p in (tmp_path / "allowed").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"soak.jsonl", "evidence.json", "wire.jsonl"}
    for path in written:
        if path.suffix in (".json", ".jsonl"):
            assert "U1234567" not in path.read_text(), path.name


# ---------------------------------------------------------------- the account check cannot run


async def _holding_client_id(port: int, client_id: int):
    """A client that keeps `client_id` taken on the Gateway, so the start-up
    account check (which uses it) gets error 326 and cannot read the accounts."""
    from harness.clients.raw import RawClient

    holder = RawClient(await_account_value=False)
    result = await holder.connect("127.0.0.1", port, client_id, timeout=5.0)
    assert result.ok, result.error
    return holder


@pytest.mark.parametrize("profile", ["10.30", "10.50"])  # text era (178), protobuf era (226)
async def test_a_failed_account_check_leaves_the_proxy_guarding_every_managed_accounts(profile: str) -> None:
    """When the one-off check cannot run, the run is not left unchecked: the
    proxy withholds any managedAccounts listing a non-paper account (in both
    protocol eras), closes that connection, and the session says stop."""
    from harness.clients.base import HandshakeError
    from harness.clients.raw import RawClient
    from harness.live.session import live_session
    from harness.targets.base import TARGET_EXTERNAL, Endpoint

    notes: list[str] = []
    async with MockGateway(port=0, profile=profile, accounts=["DU1111111", "U1234567"]) as gw:
        holder = await _holding_client_id(gw.port, 900)
        upstream = Endpoint(TARGET_EXTERNAL, "127.0.0.1", gw.port, f"127.0.0.1:{gw.port}")
        try:
            async with live_session(upstream, LivePolicy(live=True), ClientIdAllocator((900, 999)), timeout=2.0,
                                    report=notes.append) as session:
                assert any("account check could not run" in n and "checked by the proxy instead" in n
                           for n in notes), notes
                assert session.refusal() is None
                client = RawClient(await_account_value=False)
                with pytest.raises(HandshakeError):
                    await client.connect(session.endpoint.host, session.endpoint.port, 901, timeout=2.0)
                await client.disconnect()
                refusal = session.refusal()
                assert refusal and "U\u2026567" in refusal and "U1234567" not in refusal, refusal
                denied = session.proxy.denied
                assert denied and "managedAccounts lists non-paper account(s) U\u2026567" in denied[-1]["cause"]
                assert "U1234567" not in json.dumps(denied)
        finally:
            await holder.disconnect()


async def test_with_live_accounts_allowed_the_proxy_lets_managed_accounts_through() -> None:
    from harness.clients.raw import RawClient
    from harness.live.session import live_session
    from harness.targets.base import TARGET_EXTERNAL, Endpoint

    async with MockGateway(port=0, accounts=["U1234567"]) as gw:
        upstream = Endpoint(TARGET_EXTERNAL, "127.0.0.1", gw.port, f"127.0.0.1:{gw.port}")
        async with live_session(upstream, LivePolicy(live=True, allow_live_account=True),
                                ClientIdAllocator((900, 999)), timeout=2.0, report=lambda text: None) as session:
            client = RawClient(await_account_value=False)
            result = await client.connect(session.endpoint.host, session.endpoint.port, 901, timeout=2.0)
            await client.disconnect()
            assert result.ok and result.accounts == ["U1234567"]
            assert session.refusal() is None and not session.proxy.denied


async def test_without_the_proxy_a_failed_account_check_stops_the_run() -> None:
    """--ibgw-no-proxy: nothing could check later connections, so a check
    that cannot run is a stop, not a note."""
    from harness.live.session import LiveRunRefused, live_session
    from harness.targets.base import TARGET_EXTERNAL, Endpoint

    async with MockGateway(port=0) as gw:
        holder = await _holding_client_id(gw.port, 900)
        upstream = Endpoint(TARGET_EXTERNAL, "127.0.0.1", gw.port, f"127.0.0.1:{gw.port}")
        try:
            with pytest.raises(LiveRunRefused, match="paper-account check could not run .* nothing checks"):
                async with live_session(upstream, LivePolicy(live=True, proxy=False), ClientIdAllocator((900, 999)),
                                        timeout=2.0, report=lambda text: None):
                    pytest.fail("the session must not start")
        finally:
            await holder.disconnect()


async def test_a_run_whose_account_check_failed_stops_at_the_first_non_paper_account(tmp_path: Path) -> None:
    """The reviewer's case: the start-up check cannot read the accounts (here
    its client id is taken), the Gateway manages a live account. The first
    scenario's connection is closed by the proxy and the run stops with
    exit 3, the id redacted everywhere."""
    async with MockGateway(port=0, accounts=["DU1111111", "U1234567"]) as gw:
        holder = await _holding_client_id(gw.port, 900)
        try:
            code, out = await run_pytest(SUITE, "suites/test_handshake.py", "--gateway", f"127.0.0.1:{gw.port}",
                                         "--client", "raw", "--ibgw-pause", "0.05", "--ibgw-timeout", "2",
                                         evidence_dir=tmp_path)
        finally:
            await holder.disconnect()
    assert code == 3, out
    assert "account check could not run" in out and "STOPPED (the proxy withheld" in out, out
    assert "U\u2026567" in out and "U1234567" not in out
    assert "passed" not in out.splitlines()[-1], out.splitlines()[-1]
    scenario_records = list(tmp_path.glob("*.json"))
    assert len(scenario_records) <= 1, [p.name for p in scenario_records]  # the run stopped after the first
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "U1234567" not in path.read_text(errors="replace"), path


async def test_a_live_run_at_a_port_nobody_listens_on_stops_once(tmp_path: Path) -> None:
    """Every scenario would fail the same way after its own timeout; the run
    stops before the first one with the cause and the one-step check."""
    port = free_port()  # a port that was free a moment ago, and nothing listens on it
    code, out = await run_pytest(SUITE, "suites/test_handshake.py", "--gateway", f"127.0.0.1:{port}",
                                 "--client", "raw", evidence_dir=tmp_path)
    assert code == 1, out
    assert f"STOPPED before the first scenario: nothing accepts connections at 127.0.0.1:{port}" in out, out
    assert "Connection refused" in out and f"ibgw probe --host 127.0.0.1 --port {port}" in out
    assert "Traceback" not in out
    assert not list(tmp_path.glob("*.json")), "a scenario ran"
