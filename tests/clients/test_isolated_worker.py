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

from tests.support.processes import run_pytest

SUITES = ("suites/test_handshake.py", "suites/test_account_sync.py", "suites/test_zombie.py",
          "suites/test_gateway_or_code.py")
GOOD = "examples.isolated_worker.adapter:factory"


def counts(out: str) -> dict[str, int]:
    """The outcome counts of pytest's final line: {"passed": 14, ...}."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", out.splitlines()[-1])}


def verdict(evidence_dir: Path) -> dict:
    path = next(evidence_dir.glob("*gateway_or_code*.json"))
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


@pytest.mark.parametrize("factory, phase, says", [
    ("reads_accounts_once", "managed_accounts", "No managed accounts found"),
    ("params_wrong_level", "request", "no connection with client id"),
], ids=["reads-accounts-once", "params-wrong-level"])
async def test_broken_copies_fail_the_ci_suites_and_the_verdict_names_them(tmp_path, factory, phase, says):
    spec = f"examples.isolated_worker.broken:{factory}"
    # Every suite, the zombie suite by its same-id process-exit cycles only (the disconnect cycles
    # fail the same way, just ten times over; rotating ids fail the same way at the same phase).
    code, out = await run_pytest(*SUITES, "--client", spec, "-k", "isolated_worker and not disconnect-x10 and not "
                                 "rotating-ids", "--tb=line", evidence_dir=tmp_path)
    assert code == 1, out[-3000:]
    # handshake 8, account sync 1, zombie 1, gateway-or-code 1: every one fails through the broken worker
    assert counts(out).get("failed", 0) >= 11 and "passed" not in counts(out), out[-2000:]
    details = verdict(tmp_path)
    assert details["verdict"] == "user-code" and details["parting_phase"] == phase
    assert details["user"]["client"].startswith("isolated_worker[broken:")
    assert details["reference"]["ok"] is True
    assert f"THE USER'S CODE ({details['user']['client']})" in out and f"failed at {phase}" in out
    assert says in details["explanation"]
