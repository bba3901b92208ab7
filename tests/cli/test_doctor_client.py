"""`ibgw doctor --client module.path:factory`: the Gateway-or-code verdict
from the command line, through a recording proxy, against the mock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.mock import MockGateway
from tests.support.processes import arun, child_env

IBGW = str(Path(sys.executable).with_name("ibgw"))


async def doctor(*args: str) -> tuple[int, str, str]:
    done = await arun([IBGW, "doctor", *args], env=child_env(), timeout=60)
    return done.returncode, done.stdout, done.stderr


async def test_verdicts_name_the_client_and_the_phase():
    async with MockGateway(port=0) as gw:
        port = str(gw.port)
        code, out, _ = await doctor("--port", port, "--client", "examples.isolated_worker.adapter:factory",
                                    "--timeout", "5")
        assert code == 0, out
        assert "recording proxy 127.0.0.1:" in out and "(order guard on)" in out and "(paper)" in out
        assert "Verdict: both isolated_worker and the reference" in out

        code, out, _ = await doctor("--port", port, "--client", "examples.isolated_worker.broken:reads_accounts_once",
                                    "--timeout", "5", "--json")
        assert code == 1, out
        data = json.loads(out)
        assert (data["verdict"], data["parting_phase"]) == ("user-code", "managed_accounts")
        assert data["explanation"].startswith("THE USER'S CODE (isolated_worker[broken: reads accounts once])")
        assert "DU1234567" not in out  # redacted

        code, out, _ = await doctor("--port", port, "--client", "examples.isolated_worker.broken:params_wrong_level",
                                    "--timeout", "5")
        assert code == 1, out
        assert "Verdict: THE USER'S CODE (isolated_worker[broken: params at the wrong level])" in out
        assert "failed at request" in out and "no connection with client id" in out


async def test_a_factory_that_cannot_load_is_one_line_and_exit_2():
    code, out, err = await doctor("--port", "4002", "--client", "no_such_pkg.adapter:factory")
    assert code == 2 and out == ""
    assert err.startswith("ERROR: --client 'no_such_pkg.adapter:factory': cannot import") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_a_live_account_stops_the_comparison_unless_allowed():
    async with MockGateway(port=0, accounts=["U7654321"]) as gw:
        code, out, err = await doctor("--port", str(gw.port), "--client", "examples.isolated_worker.adapter:factory",
                                      "--timeout", "5")
        assert code == 1 and "Verdict" not in out
        assert "STOPPED" in err and "U\u2026321" in err and "U7654321" not in err + out
        assert gw.record_for_client(int(out.split("client ids ")[1].split()[0])) is None  # your client never ran
        code, out, _ = await doctor("--port", str(gw.port), "--client", "examples.isolated_worker.adapter:factory",
                                    "--timeout", "5", "--allow-live-account")
        assert code == 0 and "LIVE (allowed by --allow-live-account)" in out
