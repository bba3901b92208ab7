"""`ibgw doctor` names the right cause for each mock fault.

Done when: the ladder, run against an in-process MockGateway with each fault
set at construction, gives the verdicts and the remaining possible causes
the issue lists. The mock's control endpoint is never started: doctor must
judge from the wire and the host's socket table alone, as against a real
Gateway. Every wait is an event wait (the mock's client-id release, a
process wait) or a bounded timeout, never a sleep. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner

from harness.cli.doctor import doctor
from harness.cli.main import main as cli_main
from harness.clients.raw import RawClient
from harness.core.net import free_port
from harness.mock.gateway import MockGateway
from harness.scenarios.doctor import (
    CAUSE_API_NOT_READY,
    CAUSE_DOWN,
    CAUSE_FORWARDER,
    CAUSE_ID_STUCK,
    CAUSE_LIVE,
    CAUSE_NOT_LOGGED_IN,
    CAUSE_RED,
    CAUSE_SYNC,
    CAUSE_VERSION_RANGE,
    CAUSE_ZOMBIE,
    FAIL,
    OK,
    RUNG_ACCOUNT_KIND,
    RUNG_ACCOUNTS,
    RUNG_CLIENT_ID,
    RUNG_CLOSE_WAIT,
    RUNG_NEXT_ID,
    RUNG_PORT,
    RUNG_SYNC,
    RUNG_VERSION,
    RUNGS,
    SKIP,
    WARN,
    DoctorResult,
    run_doctor,
)
from tests.support.processes import CLI, arun, cli_env

HOST = "127.0.0.1"
QUICK = 1.0  # doctor's timeout where a fault makes it wait the timeout out
HEALTHY_TIMEOUT = 5.0  # a healthy mock answers in milliseconds; this only bounds a broken run
CLI_RUN_TIMEOUT = 60.0


@contextlib.asynccontextmanager
async def gateway(*faults: str, accounts: list[str] | None = None) -> AsyncIterator[MockGateway]:
    """A mock Gateway with faults set at construction; no control endpoint."""
    async with MockGateway(HOST, 0, faults=list(faults), accounts=accounts) as gw:
        yield gw


async def churn(gw: MockGateway, client_id: int) -> None:
    """One client connects, then disconnects explicitly; returns once the
    mock has seen the close (its id released, its fault state updated)."""
    client = RawClient(await_account_value=False)
    await client.connect(HOST, gw.port, client_id, timeout=HEALTHY_TIMEOUT)
    await client.disconnect()
    assert await gw.wait_client_id_free(client_id, timeout=5.0)


def verdicts(result: DoctorResult) -> dict[str, str]:
    return {rung.name: rung.verdict for rung in result.rungs}


def assert_ladder_shape(result: DoctorResult) -> None:
    assert [rung.name for rung in result.rungs] == list(RUNGS)
    assert all(rung.verdict in (OK, FAIL, WARN, SKIP) for rung in result.rungs)
    for rung in result.rungs:
        if rung.verdict == SKIP:
            assert rung.summary, f"{rung.name} skipped without a reason"
        if rung.verdict == FAIL:
            assert rung.remediation, f"{rung.name} failed without a remediation"
    assert result.healthy == (result.exit_code == 0)
    # Every cause named is a row of the one table, with its public source (or "field reports only").
    assert [c["text"] for c in result.causes] == result.diagnosis
    assert all(c["key"] and c["source"] for c in result.causes), result.causes


def assert_silent_family(result: DoctorResult) -> None:
    assert verdicts(result)[RUNG_PORT] == OK
    assert verdicts(result)[RUNG_VERSION] == FAIL
    for name in (RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_SYNC, RUNG_ACCOUNT_KIND):
        assert verdicts(result)[name] == SKIP
    assert CAUSE_NOT_LOGGED_IN in result.diagnosis and CAUSE_RED in result.diagnosis
    client_id = result.rung(RUNG_CLIENT_ID)
    assert client_id.evidence["fresh_id_helps"] is False
    assert client_id.evidence["fresh_client_id"] != result.client_id


# ---------------------------------------------------------------- the ladder, per fault


async def test_healthy_mock_is_healthy() -> None:
    async with gateway() as gw:
        result = await run_doctor(HOST, gw.port, timeout=HEALTHY_TIMEOUT)
    assert_ladder_shape(result)
    assert result.healthy and result.exit_code == 0, result.to_dict()
    assert set(verdicts(result).values()) == {OK}
    assert result.diagnosis == []
    assert result.rung(RUNG_ACCOUNTS).evidence["accounts"] == ["DU\u2026567"]
    assert result.rung(RUNG_CLOSE_WAIT).evidence["close_wait"] == 0


async def test_closed_port_is_refused() -> None:
    result = await run_doctor(HOST, free_port(), timeout=QUICK)
    assert_ladder_shape(result)
    assert verdicts(result)[RUNG_PORT] == FAIL
    assert result.rung(RUNG_PORT).evidence["outcome"] == "refused"
    assert result.diagnosis == [CAUSE_DOWN]
    assert all(verdicts(result)[name] == SKIP for name in (RUNG_VERSION, RUNG_NEXT_ID, RUNG_SYNC))
    assert not result.healthy


async def test_silent_handshake_keeps_silent_family_and_excludes_zombies() -> None:
    async with gateway("silent-handshake") as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    assert_silent_family(result)
    close_wait = result.rung(RUNG_CLOSE_WAIT)
    assert close_wait.verdict == OK and close_wait.evidence["close_wait"] == 0
    assert close_wait.evidence["conclusive"] is True
    assert CAUSE_ZOMBIE not in result.diagnosis
    assert result.diagnosis == [CAUSE_NOT_LOGGED_IN, CAUSE_RED]
    # Two bounded handshake attempts (the first id, then a fresh one), each ended by its own timeout:
    # counted from the evidence, not from the wall clock (a loaded machine stretches that).
    version = result.rung(RUNG_VERSION).evidence
    attempts = [version["first_attempt"], version["fresh_attempt"]]
    assert [a["outcome"] for a in attempts] == ["silent", "silent"], version
    assert all(a["cause"] == f"no answer within {QUICK:g} s" for a in attempts), version


async def test_close_after_accept_names_forwarder_or_untrusted_address() -> None:
    async with gateway("close-after-accept") as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    assert verdicts(result)[RUNG_PORT] == OK
    assert verdicts(result)[RUNG_VERSION] == FAIL
    assert result.diagnosis == [CAUSE_FORWARDER]
    # A close is seen at once, no timeout waited out: the rung's outcome is the close, not a timeout.
    assert result.rung(RUNG_VERSION).evidence["outcome"] == "closed before the version reply"


async def test_no_next_valid_id_is_api_not_ready() -> None:
    async with gateway("no-next-valid-id") as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    assert verdicts(result)[RUNG_VERSION] == OK
    assert verdicts(result)[RUNG_NEXT_ID] == FAIL
    assert result.rung(RUNG_NEXT_ID).evidence["managed_accounts_arrived"] is True
    assert verdicts(result)[RUNG_CLIENT_ID] == OK  # no error 326: the id is not the cause
    assert verdicts(result)[RUNG_SYNC] == SKIP
    assert result.diagnosis == [CAUSE_API_NOT_READY]


async def test_stuck_client_id_is_named_and_a_fresh_id_helps() -> None:
    stuck_id = 950
    async with gateway("client-id-stuck") as gw:
        await churn(gw, stuck_id)  # the id stays "in use" after its client left
        result = await run_doctor(HOST, gw.port, client_id=stuck_id, timeout=QUICK)
    assert_ladder_shape(result)
    rung = result.rung(RUNG_CLIENT_ID)
    assert rung.verdict == FAIL
    assert rung.evidence["error_326"] is True
    assert rung.evidence["fresh_id_helps"] is True
    assert rung.evidence["fresh_client_id"] != stuck_id
    assert result.diagnosis == [CAUSE_ID_STUCK]
    # The rest of the ladder ran on the fresh id.
    assert verdicts(result)[RUNG_SYNC] == OK
    assert verdicts(result)[RUNG_ACCOUNT_KIND] == OK
    assert not result.healthy


async def test_close_wait_leak_makes_zombie_saturation_the_leading_verdict() -> None:
    async with gateway("close-wait-leak=3") as gw:
        for client_id in (11, 12, 13):
            await churn(gw, client_id)  # each leaves one CLOSE_WAIT socket behind
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    assert_silent_family(result)
    close_wait = result.rung(RUNG_CLOSE_WAIT)
    assert close_wait.verdict == FAIL
    assert close_wait.evidence["close_wait"] == 3
    assert len(close_wait.evidence["sockets"]) == 3
    assert close_wait.evidence["owners"] == [f"{close_wait.evidence['sockets'][0]['process']} (pid {os.getpid()})"]
    assert result.diagnosis[0] == CAUSE_ZOMBIE
    # CLOSE_WAIT with a silent API is the wedge's public signature: restart, not "stop the churn".
    assert "IBC RESTART" in result.rung(RUNG_VERSION).remediation


async def test_red_after_disconnect_is_silent_family_without_zombies_and_asks_for_restart() -> None:
    async with gateway("red-after-disconnect") as gw:
        await churn(gw, 21)  # one explicit disconnect turns the API red
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    assert_silent_family(result)
    assert result.rung(RUNG_CLOSE_WAIT).evidence["close_wait"] == 0
    assert CAUSE_ZOMBIE not in result.diagnosis
    assert CAUSE_RED in result.diagnosis
    assert "restart the Gateway" in result.rung(RUNG_VERSION).remediation


@pytest.mark.parametrize(("kind", "named"), [("positions", "positions"), ("account", "account download")])
async def test_missing_end_names_the_missing_end_message(kind: str, named: str) -> None:
    async with gateway(f"missing-end={kind}") as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert_ladder_shape(result)
    sync = result.rung(RUNG_SYNC)
    assert sync.verdict == FAIL
    assert len(sync.evidence["missing"]) == 1 and sync.evidence["missing"][0].startswith(named)
    assert result.diagnosis == [f"{CAUSE_SYNC}: {named} never ended"]
    assert verdicts(result)[RUNG_NEXT_ID] == OK and verdicts(result)[RUNG_ACCOUNTS] == OK
    if kind == "account":
        assert sync.evidence["account_download_missing"] == ["DU\u2026567"]
        assert sync.evidence["positions_end"] is True and sync.evidence["executions_end"] is True


async def test_live_account_warns_and_is_not_healthy() -> None:
    async with gateway(accounts=["U1234567"]) as gw:
        result = await run_doctor(HOST, gw.port, timeout=HEALTHY_TIMEOUT)
    assert_ladder_shape(result)
    rung = result.rung(RUNG_ACCOUNT_KIND)
    assert rung.verdict == WARN
    assert rung.evidence["live"] == ["U\u2026567"]
    assert "LIVE" in rung.summary
    assert result.diagnosis == [f"{CAUSE_LIVE}: U\u2026567"]
    assert not result.healthy and result.exit_code == 1
    assert "U1234567" not in json.dumps(result.to_dict())


async def test_old_build_server_version_150_is_reported() -> None:
    """Doctor's own range (100..226) accepts 150, but ib_async (installed
    here, minimum 157) cannot connect: not healthy, both numbers named.
    (It used to say HEALTHY.)"""
    async with gateway("max-server-version=150") as gw:
        result = await run_doctor(HOST, gw.port, timeout=HEALTHY_TIMEOUT)
    assert_ladder_shape(result)
    assert not result.healthy and result.exit_code == 1, result.to_dict()
    version = result.rung(RUNG_VERSION)
    assert version.verdict == WARN
    assert version.evidence["server_version"] == 150
    assert version.evidence["build_max_server_version"] == 150
    assert "v150" in version.evidence["note"]
    assert version.evidence["clients_out_of_range"] == {"ib_async": 157}
    assert result.diagnosis == [f"{CAUSE_VERSION_RANGE}: the Gateway's maximum (150) is below ib_async's minimum "
                                "(157): upgrade the Gateway or use an older client"]
    assert result.causes[0]["key"] == "version_range" and result.causes[0]["source"]


# ---------------------------------------------------------------- the command


def doctor_registered() -> bool:
    return "doctor" in getattr(cli_main, "commands", {})


async def run_cli(*args: str) -> tuple[int, str, str]:
    """`python -m harness.cli doctor ...` as a subprocess once main.py
    registers the command; until then the click command object through
    CliRunner. Either way the test's event loop keeps serving the mock."""
    if doctor_registered():
        done = await arun([*CLI, "doctor", *args], env=cli_env(), timeout=CLI_RUN_TIMEOUT)
        return done.returncode, done.stdout, done.stderr
    runner = CliRunner()
    result = await asyncio.wait_for(asyncio.to_thread(runner.invoke, doctor, list(args)), CLI_RUN_TIMEOUT)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_cli_healthy_exits_0_with_a_line_per_rung() -> None:
    async with gateway() as gw:
        code, out, err = await run_cli("--host", HOST, "--port", str(gw.port), "--timeout", str(HEALTHY_TIMEOUT))
    assert code == 0, out + err
    for name in RUNGS:
        assert any(line.split()[:1] == ["OK"] and name in line for line in out.splitlines()), (name, out)
    assert "Diagnosis: none" in out
    assert "HEALTHY after" in out and "NOT HEALTHY" not in out
    assert "DU1234567" not in out and "DU\u2026567" in out


async def test_cli_silent_gateway_exits_1_and_lists_remaining_causes() -> None:
    async with gateway("silent-handshake") as gw:
        code, out, err = await run_cli("--port", str(gw.port), "--timeout", str(QUICK))
    assert code == 1, out + err
    assert "Traceback" not in out + err
    lines = out.splitlines()
    assert any(line.startswith("  FAIL") and "version reply" in line for line in lines), out
    # Silence is not a login or 2FA (the listener is not up then): the fix names the dialog and the restart.
    assert any("fix:" in line and "incoming-connection dialog" in line for line in lines), out
    diagnosis = lines[lines.index("Diagnosis: (most likely first)") + 1:]
    assert f"  - {CAUSE_NOT_LOGGED_IN}" in diagnosis and f"  - {CAUSE_RED}" in diagnosis
    assert f"  - {CAUSE_ZOMBIE}" not in diagnosis
    assert "NOT HEALTHY after" in out


async def test_cli_json_is_the_structured_result_with_ids_redacted() -> None:
    async with gateway(accounts=["U1234567"]) as gw:
        code, out, err = await run_cli("--port", str(gw.port), "--timeout", str(HEALTHY_TIMEOUT), "--json")
    assert code == 1, out + err
    data = json.loads(out)
    assert data["healthy"] is False and data["exit_code"] == 1
    assert [rung["name"] for rung in data["rungs"]] == list(RUNGS)
    assert data["diagnosis"] == [f"{CAUSE_LIVE}: U\u2026567"]
    assert "U1234567" not in out


async def test_cli_closed_port_exits_1_without_traceback() -> None:
    code, out, err = await run_cli("--port", str(free_port()), "--timeout", str(QUICK))
    assert code == 1
    assert "Traceback" not in out + err
    assert CAUSE_DOWN in out


@pytest.mark.parametrize("args", [["--port", "0"], ["--timeout", "-1"], ["--client-id", "x"], ["--bogus"]])
async def test_cli_bad_flags_are_usage_errors(args: list[str]) -> None:
    code, out, err = await run_cli(*args)
    assert code == 2
    assert "Traceback" not in out + err
    assert "Usage:" in err or "Usage:" in out
