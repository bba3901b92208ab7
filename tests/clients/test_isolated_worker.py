"""The example isolated worker passes the CI suites through --client; its
deliberately broken copies fail them, and the Gateway-or-code verdict names
the client and the phase for each. Each run is a real pytest child process
over the repository's suites, as a team would run them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.processes import run_pytest

SUITES = ("suites/test_handshake.py", "suites/test_account_sync.py", "suites/test_zombie.py",
          "suites/test_gateway_or_code.py")
GOOD = "examples.isolated_worker.adapter:factory"


def counts(out: str) -> dict[str, int]:
    """The outcome counts of pytest's final line: {"passed": 14, ...}."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", out.splitlines()[-1])}


def verdict(evidence_dir: Path, name: str = "") -> dict:
    """The gateway-or-code verdict's details (of the client whose spec ends in `name`, in a run of several)."""
    [path] = evidence_dir.glob(f"*gateway_or_code*{name}.json")
    return json.loads(path.read_text())["details"]


@pytest.mark.timeout(400)  # a nested pytest over four suites: minutes on a loaded 2-core machine
async def test_example_worker_passes_the_ci_suites(tmp_path):
    # Every suite; the zombie suite without its rotating-ids cycles (disconnect-x10 and process-exit-x5):
    # the same-id cycles drive the same worker through the same disconnects and process exits and are
    # the stricter (the id must come free each time); each rotating variant was a fifth of this nested run.
    code, out = await run_pytest(*SUITES, "--client", GOOD, "-k", "isolated_worker and not rotating-ids",
                                 evidence_dir=tmp_path, timeout=360)
    assert code == 0, out[-3000:]
    # at least handshake 8, account sync 1, zombie 2, gateway-or-code 1: every one through the worker
    assert counts(out).get("passed", 0) >= 12 and "failed" not in counts(out), out[-2000:]
    assert verdict(tmp_path)["verdict"] == "both-ok"


BROKEN = ("reads_accounts_once", "params_wrong_level")


@pytest_asyncio.fixture(scope="module")
async def broken_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """Both broken copies through the CI suites in ONE nested pytest (`--client` twice), as a team
    comparing two builds of its worker would run them: one session's start-up and mock instead of
    two. Each copy's cells are its own (their node ids and evidence files carry the copy's name;
    the suites give each client its own client ids), so each copy is still judged on its own."""
    evidence = tmp_path_factory.mktemp("broken-copies")
    clients = [arg for factory in BROKEN for arg in ("--client", f"examples.isolated_worker.broken:{factory}")]
    # Every suite, the zombie suite by its same-id process-exit cycles only (the disconnect cycles
    # fail the same way, just ten times over; rotating ids fail the same way at the same phase).
    code, out = await run_pytest(*SUITES, *clients, "-k", "isolated_worker and not disconnect-x10 and not rotating-ids",
                                 "--tb=line", "-rfEp", evidence_dir=evidence, timeout=360)
    return code, out, evidence


@pytest.mark.timeout(400)  # the module's nested run of both copies is in the first case's setup
@pytest.mark.parametrize("factory, phase, says", [
    ("reads_accounts_once", "managed_accounts", "No managed accounts found"),
    ("params_wrong_level", "request", "no connection with client id"),
], ids=["reads-accounts-once", "params-wrong-level"])
def test_broken_copies_fail_the_ci_suites_and_the_verdict_names_them(broken_run, factory, phase, says):
    code, out, evidence = broken_run
    spec = f"examples.isolated_worker.broken:{factory}"
    assert code == 1, out[-3000:]
    # handshake 8, account sync 1, zombie 1, gateway-or-code 1: every one fails through this broken worker
    mine = [line.split(" ", 1)[0] for line in out.splitlines() if re.match(rf"(FAILED|PASSED|ERROR) \S*\[{re.escape(spec)}", line)]
    assert mine.count("FAILED") >= 11 and "PASSED" not in mine, out[-2000:]
    details = verdict(evidence, factory)
    assert details["verdict"] == "user-code" and details["parting_phase"] == phase
    assert details["user"]["client"].startswith("isolated_worker[broken:")
    assert details["reference"]["ok"] is True
    assert f"THE USER'S CODE ({details['user']['client']})" in out and f"failed at {phase}" in out
    assert says in details["explanation"]
