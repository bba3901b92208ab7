"""`ibgw watch`: it restarts through IBC's command server only for a
confirmed wedge, records the episode, takes no action (and names the cause)
for what a restart cannot fix, and exposes Prometheus metrics.

Targets are real processes: the in-process mock Gateway, the gnzsnz-shaped
stand-in (harness/mock/standin.py: socat-style forwarder, IBC command
server) as a subprocess; the container form is tests/watch/test_watch_container.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli.main import main as cli
from harness.mock.gateway import MockGateway
from harness.mock.healthcheck import Readiness
from harness.scenarios.causes import CAUSES
from harness.targets.container_target import free_port
from harness.watch.classify import classify
from harness.watch.ibc import send_command
from harness.watch.policy import PolicyError, RestartPolicy, TradingWindow
from harness.watch.sockets import SocketEvidence, parse_tables
from harness.watch.watchdog import WatchConfig, Watchdog
from tests.support import ROOT

# A wedge the stand-in can take at start: after N sessions its API stops answering until a restart.
# When the api-wedge fault lands this becomes "api-wedge=no-read,2" (one line).
WEDGE_FAULT = "api-wedge=no-read,2"


class RecordingCommandServer:
    """An IBC command server that records what it is sent (and answers as IBC does)."""

    def __init__(self, on_restart: Callable[[], Any] | None = None) -> None:
        self.commands: list[str] = []
        self.server: asyncio.Server | None = None
        self.on_restart = on_restart

    async def __aenter__(self) -> RecordingCommandServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = (await reader.readline()).decode().strip()
            self.commands.append(line)
            if self.on_restart is not None:
                asyncio.get_running_loop().call_soon(self.on_restart)
            writer.write(b"OK Restart in progress\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return "127.0.0.1", self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def spawn_standin(env: dict[str, str]) -> tuple[subprocess.Popen[str], int, int, int]:
    published, api, command = free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-S", "-m", "harness.mock.standin"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
                                 "IBGW_STANDIN_PORT": str(published), "IBGW_STANDIN_API_PORT": str(api),
                                 "IBGW_STANDIN_COMMAND_PORT": str(command), **env})
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded by the process: it prints this or exits
        if "Command server listening" in line:
            break
    return proc, published, api, command


async def until(dog: Watchdog, done: Callable[[], bool], timeout: float) -> None:
    """Await probes (the watchdog's event) until `done()`; fail after `timeout` s."""
    async with asyncio.timeout(timeout):
        while not done():
            dog.changed.clear()
            await dog.changed.wait()


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def fast_policy(**kw: Any) -> RestartPolicy:
    return RestartPolicy(**{"confirm": 2, "backoff_s": 0.0, "restart_grace_s": 30.0, **kw})


# ---------------------------------------------------------------- the restart episode


async def test_watch_detects_the_wedge_restarts_through_ibc_and_records_the_episode():
    proc, published, api, command = spawn_standin({"TWS_USERID": "u", "TWS_PASSWORD": "p", "IBGW_LOGIN_DELAY": "0",
                                                   "IBGW_RESTART_DOWN": "0.5", "IBGW_FAULTS": WEDGE_FAULT})
    evidence = io.StringIO()
    dog = Watchdog(WatchConfig("127.0.0.1", published, ("127.0.0.1", command), interval_s=0.2, timeout_s=2,
                               socket_ports={api}), fast_policy(), evidence=evidence)
    task = asyncio.create_task(dog.run())
    try:
        await until(dog, lambda: bool(dog.episodes), timeout=90)
    finally:
        dog.stop()
        await task
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    rows = records(evidence)
    probes = [r for r in rows if r["kind"] == "probe"]
    actions = [r for r in rows if r["kind"] == "action"]
    episode = dog.episodes[0]
    states = [r["state"] for r in probes]
    assert "healthy" in states and states.index("healthy") < states.index("wedged"), states  # healthy, then wedged
    assert [a["ok"] for a in actions] == [True] and actions[0]["reply"] == "OK Restart in progress"
    assert episode["first_state"] == "wedged" and episode["cause"] in ("not_logged_in", "wedge")
    assert episode["healed_by_restart"] and episode["states"][0] == "wedged"
    assert "Restart requested via command server" in output
    restart_at = rows.index(actions[0])
    assert all(r["state"] == "wedged" for r in rows[restart_at - 2:restart_at])  # confirmed twice first
    assert any(r["kind"] == "probe" and r["state"] == "healthy" for r in rows[restart_at:])
    assert rows[-1]["kind"] in ("episode", "probe") and any(r["kind"] == "episode" for r in rows)


# ---------------------------------------------------------------- no action, cause named


async def _watch_without_acting(host: str, port: int, probes: int, **config: Any) -> list[dict[str, Any]]:
    evidence = io.StringIO()
    async with RecordingCommandServer() as ibc:
        dog = Watchdog(WatchConfig(host, port, ibc.address, interval_s=0.05, timeout_s=1,
                                   login_grace_s=config.pop("login_grace_s", 0.0), **config),
                       fast_policy(confirm=1), evidence=evidence)
        await dog.run(count=probes)
    assert ibc.commands == [], "the watch sent a command for a cause a restart does not fix"
    rows = records(evidence)
    assert [r["kind"] for r in rows] == ["probe"] * probes
    return rows


async def test_no_restart_for_a_wrong_port_that_refuses():
    rows = await _watch_without_acting("127.0.0.1", free_port(), 4)
    assert {r["cause"] for r in rows} == {"down"}
    assert rows[-1]["state"] == "logged_out" and rows[-1]["decision"].startswith("no action")
    assert any("wrong port" in c for c in rows[-1]["candidates"])


async def test_no_restart_for_a_port_that_speaks_another_protocol():
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    try:
        rows = await _watch_without_acting("127.0.0.1", server.sockets[0].getsockname()[1], 3)
    finally:
        server.close()
        await server.wait_closed()
    assert {(r["state"], r["cause"]) for r in rows} == {("unusable", "non_tws")}
    assert "a restart does not fix this" in rows[-1]["decision"]


async def test_no_restart_for_a_version_mismatch():
    async with MockGateway(profile="10.19") as gw:  # server version 176
        rows = await _watch_without_acting("127.0.0.1", gw.port, 3, min_version=187)
    assert {(r["state"], r["cause"]) for r in rows} == {("unusable", "version_range")}
    assert rows[-1]["server_version"] == 176 and "below 187" in rows[-1]["detail"]


async def test_no_restart_for_an_untrusted_address():
    """The Gateway closes a client whose address is not in Trusted IPs at once."""
    async with MockGateway(faults=["close-after-accept"]) as gw:
        rows = await _watch_without_acting("127.0.0.1", gw.port, 4)
    assert {r["cause"] for r in rows} == {"forwarder"}
    assert rows[-1]["state"] == "logged_out" and any("untrusted" in c for c in rows[-1]["candidates"])


async def test_no_restart_while_login_or_2fa_is_pending():
    """The stand-in's login never completes in time (2FA pending): socat accepts and drops."""
    proc, published, _, _ = spawn_standin({"TWS_USERID": "u", "TWS_PASSWORD": "p", "IBGW_LOGIN_DELAY": "600"})
    try:
        rows = await _watch_without_acting("127.0.0.1", published, 4)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert rows[0]["state"] in ("starting", "logged_out") and rows[-1]["state"] == "logged_out"
    assert any("2FA" in c for c in rows[-1]["candidates"])


async def test_no_restart_for_an_incomplete_login():
    async with MockGateway(faults=["delayed-accounts=60000"]) as gw:
        rows = await _watch_without_acting("127.0.0.1", gw.port, 2)
    assert {(r["state"], r["cause"]) for r in rows} == {("logged_out", "login_incomplete")}


async def test_no_restart_for_a_silent_api_it_never_saw_answer_without_socket_evidence():
    """Silent from the first probe, nothing stuck in the kernel: a pending
    dialog or an untrusted address look like this; a restart is not proven to help."""
    async with MockGateway(faults=["silent-handshake"]) as gw:
        rows = await _watch_without_acting("127.0.0.1", gw.port, 3)
    assert {(r["state"], r["confirmed"]) for r in rows} == {("wedged", False)}
    assert "wedge not confirmed" in rows[-1]["decision"]


# ---------------------------------------------------------------- policy, classification, parsing


def _wedged() -> Any:
    result = Readiness(False, "server_version", "no answer within 1 s at server_version", failure="silent")
    return classify(result, SocketEvidence(True, close_wait=3), was_healthy=True, not_serving_s=5, login_grace_s=60)


def test_policy_confirms_backs_off_caps_per_hour_and_respects_the_trading_window():
    verdict = _wedged()
    assert verdict.state == "wedged" and verdict.cause == "wedge" and verdict.confirmed
    wall = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
    policy = RestartPolicy(confirm=2, backoff_s=60, restart_grace_s=10, max_per_hour=2)
    assert not policy.decide(verdict, 1, 0.0, wall).restart  # one probe is not confirmation
    assert policy.decide(verdict, 2, 0.0, wall).restart
    policy.record_restart(0.0)
    assert "waiting" in policy.decide(verdict, 5, 5.0, wall).reason  # inside the restart grace
    assert "back-off" in policy.decide(verdict, 5, 30.0, wall).reason
    assert policy.decide(verdict, 5, 61.0, wall).restart
    policy.record_restart(61.0)
    assert policy.current_backoff == 120  # doubled: the first restart did not heal
    assert "restarts in the last hour" in policy.decide(verdict, 5, 500.0, wall).reason
    assert policy.decide(verdict, 5, 3700.0, wall).restart  # the first restart left the hour
    window = TradingWindow.parse("09:30-16:00", "America/New_York")
    guarded = RestartPolicy(confirm=1, window=window)
    assert "trading window" in guarded.decide(verdict, 1, 0.0, wall).reason
    assert guarded.decide(verdict, 1, 0.0, datetime(2026, 12, 6, 15, 0, tzinfo=UTC)).restart  # Sunday
    assert RestartPolicy(confirm=1, window=window, restart_in_window=True).decide(verdict, 1, 0.0, wall).restart
    assert "no --ibc-command" in RestartPolicy(confirm=1, can_restart=False).decide(verdict, 1, 0.0, wall).reason
    with pytest.raises(PolicyError, match="HH:MM-HH:MM"):
        TradingWindow.parse("9-16")
    with pytest.raises(PolicyError, match="time zone"):
        TradingWindow.parse("09:30-16:00", "Mars/Olympus")


def test_every_local_cause_names_a_source_and_only_wedges_are_acted_on():
    assert all(row.source for row in CAUSES.values())
    down = classify(Readiness(False, "tcp", "refused", failure="refused"), SocketEvidence(True),
                    was_healthy=True, not_serving_s=0, login_grace_s=60)
    assert down.restart_fixes and down.state == "starting"  # the table says restart-fixable...
    assert not RestartPolicy(confirm=1).decide(down, 9, 0.0, datetime.now(UTC)).restart  # ...the watch does not act


def test_socket_evidence_reads_close_wait_recv_q_and_unread_bytes():
    table = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0FA2 00000000:0000 0A 00000000:00000025 00:00000000 00000000     0        0 1
   1: 0100007F:0FA2 0100007F:D431 08 00000000:00000000 00:00000000 00000000     0        0 2
   2: 0100007F:0FA2 0100007F:D432 01 00000000:0000001A 00:00000000 00000000     0        0 3
   3: 0100007F:D433 0100007F:0FA2 08 00000000:00000000 00:00000000 00000000     0        0 4
"""
    evidence = parse_tables(table, {4002})
    assert (evidence.close_wait, evidence.accept_backlog, evidence.unread_sockets) == (1, 37, 1)
    assert evidence.stuck and not parse_tables(table, {4001}).stuck


async def test_ibc_client_strips_a_prompt_and_skips_info_lines():
    async def ibc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"INFO IBC Command Server\nIBC> ")  # SuppressInfoMessages=no, CommandPrompt=IBC>
        await reader.readline()
        writer.write(b"OK Restart in progress\n")
        writer.close()

    server = await asyncio.start_server(ibc, "127.0.0.1", 0)
    try:
        reply = await send_command("127.0.0.1", server.sockets[0].getsockname()[1], "RESTART")
    finally:
        server.close()
        await server.wait_closed()
    assert reply.ok and reply.text == "OK Restart in progress"


# ---------------------------------------------------------------- Prometheus, CLI


async def test_prometheus_endpoint_is_scraped_and_parsed():
    pytest.importorskip("prometheus_client", reason="the 'watch' extra: pip install -e '.[watch]'")
    from prometheus_client.parser import text_string_to_metric_families

    from harness.watch.metrics import WatchMetrics

    metrics = WatchMetrics()
    port = metrics.serve(0)
    try:
        async with MockGateway() as gw:
            dog = Watchdog(WatchConfig("127.0.0.1", gw.port, interval_s=0.05, timeout_s=2), fast_policy(),
                           on_probe=metrics.observe)
            await dog.run(count=2)
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    finally:
        metrics.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("ibgw_gateway_state", (("state", "healthy"),))] == 1
    assert samples[("ibgw_gateway_state", (("state", "wedged"),))] == 0
    assert samples[("ibgw_gateway_api_ready", ())] == 1
    assert samples[("ibgw_watch_probes_total", (("state", "healthy"),))] == 2
    assert samples[("ibgw_watch_restarts_total", ())] == 0
    assert samples[("ibgw_gateway_close_wait_sockets", ())] == 0
    assert ("ibgw_gateway_listener_recv_q", ()) in samples
    phases = {dict(k[1])["phase"]: v for k, v in samples.items() if k[0] == "ibgw_handshake_phase_seconds"}
    assert set(phases) == {"connect", "server_version", "next_valid_id", "managed_accounts"}
    assert 0 < phases["connect"] <= phases["server_version"] <= phases["managed_accounts"]


def test_cli_watch_runs_counted_probes_as_json_lines_and_refuses_bad_options(tmp_path):
    async def serve_and_run() -> Any:
        async with MockGateway() as gw:
            out = tmp_path / "watch.jsonl"
            return await asyncio.to_thread(CliRunner().invoke, cli, [
                "watch", "--gateway", f"127.0.0.1:{gw.port}", "--count", "2", "--interval", "0.1", "--json",
                "--evidence", str(out)]), out

    result, out = asyncio.run(serve_and_run())
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["state"] for line in out.read_text().splitlines()] == ["healthy", "healthy"]
    assert [json.loads(line)["state"] for line in result.output.splitlines()] == ["healthy", "healthy"]
    bad = CliRunner().invoke(cli, ["watch", "--gateway", "127.0.0.1:4002", "--trading-window", "nine-to-five"])
    assert bad.exit_code == 2 and "HH:MM-HH:MM" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(cli, ["watch", "--gateway", "nohostport"])
    assert bad.exit_code == 2 and "is not HOST:PORT" in bad.output


def test_cli_healthcheck_exit_code_names_the_state():
    result = CliRunner().invoke(cli, ["healthcheck", "--gateway", f"127.0.0.1:{free_port()}", "--timeout", "2"])
    assert result.exit_code == 3 and result.output.startswith("starting:")


def test_cli_watch_bad_evidence_path_busy_metrics_port_and_missing_extra_are_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = CliRunner().invoke(cli, ["watch", "--gateway", "127.0.0.1:4002", "--evidence", str(blocker / "w.jsonl")])
    assert bad.exit_code == 2 and "--evidence" in bad.output and "Traceback" not in bad.output
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        bad = CliRunner().invoke(cli, ["watch", "--gateway", "127.0.0.1:4002", "--metrics-port", str(taken)])
    assert bad.exit_code == 1 and "--metrics-port" in bad.output and "Traceback" not in bad.output
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # the extra not installed: import fails
    bad = CliRunner().invoke(cli, ["watch", "--gateway", "127.0.0.1:4002", "--metrics-port", "0"])
    assert bad.exit_code == 1 and "pip install 'ibgw-harness[watch]'" in bad.output


def test_live_view_renders_state_cause_sockets_and_decision():
    from rich.console import Console

    from harness.watch.live import render

    console = Console(record=True, width=160)
    console.print(render({"state": "wedged", "title": "zombie saturation", "detail": "no answer",
                          "phase_ms": {"connect": 0.4}, "decision": "restart: zombie", "restarts": 1,
                          "sockets": {"close_wait": 3, "accept_backlog": 37, "unread_sockets": 0},
                          "ts": "2026-12-06T06:00:00Z"}, "127.0.0.1:4004"))
    text = console.export_text()
    assert "wedged" in text and "CLOSE_WAIT 3" in text and "Recv-Q 37" in text and "restart: zombie" in text


@pytest.mark.parametrize("mode", ["no-accept", "no-read"])
async def test_a_wedge_is_confirmed_by_the_kernel_alone_when_the_api_never_answered(mode):
    """Wedged from the first probe (api-wedge=MODE,0): no earlier answer to
    lean on, so the listener's Recv-Q (no-accept) or the unread bytes of an
    accepted socket (no-read) are what confirms it."""
    from harness.mock.faults import SPECS

    if "api-wedge" not in SPECS:
        pytest.skip("the api-wedge fault is not in this mock yet (it comes with the faults branch)")
    evidence = io.StringIO()
    async with MockGateway(faults=[f"api-wedge={mode},0"]) as gw, RecordingCommandServer() as ibc:
        dog = Watchdog(WatchConfig("127.0.0.1", gw.port, ibc.address, interval_s=0.05, timeout_s=1),
                       fast_policy(confirm=2), evidence=evidence)
        await dog.run(count=2)
    rows = records(evidence)
    probes = [r for r in rows if r["kind"] == "probe"]
    assert all(r["state"] == "wedged" and r["confirmed"] for r in probes), probes
    stuck = probes[0]["sockets"]
    assert (stuck["accept_backlog"] if mode == "no-accept" else stuck["unread_sockets"]) >= 1, stuck
    assert ibc.commands == ["RESTART"] and [r["ok"] for r in rows if r["kind"] == "action"] == [True]


def test_a_close_after_start_api_is_not_acted_on_and_lists_its_candidates():
    result = Readiness(False, "next_valid_id", "closed by the Gateway while waiting for next_valid_id",
                       failure="closed_after_start")
    verdict = classify(result, SocketEvidence(True), was_healthy=True, not_serving_s=0, login_grace_s=60)
    assert (verdict.state, verdict.cause) == ("starting", "id_stuck") and len(verdict.candidates) == 2
    assert not RestartPolicy(confirm=1).decide(verdict, 5, 0.0, datetime.now(UTC)).restart


async def test_cli_watch_stops_on_sigterm_with_exit_0_and_its_evidence_complete(tmp_path):
    import signal

    out = tmp_path / "w.jsonl"
    async with MockGateway() as gw:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.cli", "watch", "--gateway", f"127.0.0.1:{gw.port}", "--interval", "0.2",
            "--json", "--evidence", str(out), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=ROOT)
        try:
            assert proc.stdout is not None
            first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
            assert first["state"] == "healthy"
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert code == 0 and "Traceback" not in stderr, stderr
    assert all(json.loads(line)["kind"] == "probe" for line in out.read_text().splitlines())


async def test_a_stuck_api_after_relogin_is_restarted_and_the_episode_names_it():
    """The API answers the version handshake but nextValidId never comes
    (heshiming/ibga#24): restart-fixable once confirmed."""
    async with MockGateway() as gw:
        def restart() -> None:  # what IBC's RESTART does to the API: the fault's state is gone
            gw.clear_fault("no-next-valid-id")

        async with RecordingCommandServer(on_restart=restart) as ibc:
            evidence = io.StringIO()
            dog = Watchdog(WatchConfig("127.0.0.1", gw.port, ibc.address, interval_s=0.05, timeout_s=1),
                           fast_policy(), evidence=evidence)
            await dog.probe_once()
            gw.set_fault("no-next-valid-id")
            task = asyncio.create_task(dog.run())
            try:
                await until(dog, lambda: bool(dog.episodes), timeout=60)
            finally:
                dog.stop()
                await task
    episode = dog.episodes[0]
    assert ibc.commands == ["RESTART"]
    assert episode["cause"] == "api_not_ready" and episode["healed_by_restart"] and episode["probes"] >= 2


def test_only_a_gateway_on_this_host_has_socket_evidence_here():
    from harness.watch.sockets import is_local

    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("192.0.2.1")  # TEST-NET-1: never an address of this host


async def test_an_unreachable_command_server_is_recorded_with_the_hint_and_not_retried_hot():
    async with MockGateway() as gw:
        evidence = io.StringIO()
        dog = Watchdog(WatchConfig("127.0.0.1", gw.port, ("127.0.0.1", free_port()), interval_s=0.05, timeout_s=0.5),
                       fast_policy(confirm=1, backoff_s=3600, restart_grace_s=0), evidence=evidence)
        await dog.probe_once()
        gw.set_fault("silent-handshake")
        await dog.run(count=3)
    rows = records(evidence)
    actions = [r for r in rows if r["kind"] == "action"]
    assert len(actions) == 1 and not actions[0]["ok"] and "CommandServerPort" in actions[0]["reply"]
    assert "back-off" in rows[-1]["decision"] and dog.restarts == 0
