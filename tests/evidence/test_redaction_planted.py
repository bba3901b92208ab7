"""No full account id anywhere: a planted id through a real suite run.

A subprocess runs the account-sync and version-matrix suites with ibapi at
profile 10.50 (protobuf era, where ibapi logs frames as b'...\\x12\\tDU...'),
plus one test that fails on purpose while the id goes through logging
(every shape the old pattern missed), stdout, stderr, a traceback, a
warning and the assertion message; with --log-level=DEBUG (ibapi's frame
log captured), --alluredir, --junitxml and evidence in a temporary
directory. The planted ids come in through IBGW_MOCK_ACCOUNTS, as a team's
would come from their Gateway. Then no file produced (allure results and
attachments, JUnit, evidence, and, where node's allure tooling is installed,
the offline HTML report with its base64-embedded data decoded) and not the
run's terminal output may hold an id's digits in full, in any case.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from harness.core.redact import redact_account
from harness.evidence.html_report import generate, tooling_installed
from harness.mock import MockGateway
from tests.support import ROOT
from tests.support.processes import child_env, pytest_cmd, run, run_pytest

FIXTURE = ROOT / "tests" / "report_fixtures" / "leaky_failing.py"
# Planted ids; each is searched for by its digits, so no prefix or case hides a leak.
PLANTED = ("DU9753124", "DF8642097")
RUN_TIMEOUT_S = 420


def _digits(account: str) -> bytes:
    return re.sub(r"\D", "", account).encode()


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("planted-run")
    env = {**os.environ, "IBGW_MOCK_ACCOUNTS": ",".join(PLANTED), "IBGW_MATRIX_TARGET": "mock",
           "IBGW_MATRIX_VERSIONS": "10.50", "IBGW_MATRIX_RUNS": "1"}
    env.pop("IBGW_GATEWAY", None)
    cmd = pytest_cmd("suites/test_account_sync.py", "suites/test_version_matrix.py", str(FIXTURE),
                     "-rA", "--gateway", "mock:10.50", "--client", "ibapi", "--log-level=DEBUG",
                     f"--alluredir={out / 'allure-results'}", "--clean-alluredir", f"--junitxml={out / 'junit.xml'}",
                     evidence_dir=out / "evidence")
    proc = run(cmd, env=env, timeout=RUN_TIMEOUT_S)
    terminal = proc.stdout + proc.stderr
    # Exit 1: the deliberate failure; anything else is the harness breaking.
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    if tooling_installed():
        generate(out / "allure-results", out / "html", out / "history.jsonl")
    return out, terminal


def _decoded_blobs(data: bytes) -> list[bytes]:
    """Every base64 run long enough to hold an id, decoded (the single-file
    HTML report embeds its data files that way)."""
    blobs = []
    for match in re.finditer(rb"[A-Za-z0-9+/]{16,}={0,2}", data):
        chunk = match.group(0)
        try:
            blobs.append(base64.b64decode(chunk + b"=" * (-len(chunk) % 4)))
        except ValueError:
            continue
    return blobs


def test_only_the_deliberate_case_failed(planted_run: tuple[Path, str]) -> None:
    out, terminal = planted_run
    junit = out.joinpath("junit.xml").read_text(encoding="utf-8")
    failed = re.findall(r'<testcase [^>]*name="([^"]+)"[^>]*>\s*<failure', junit)
    assert failed == ["test_fails_with_the_account_in_every_channel"], failed
    assert re.search(r"test_account_sync_complete\[ibapi\]", junit) and "test_matrix_cell" in junit


def test_no_file_and_no_terminal_line_holds_a_planted_account(planted_run: tuple[Path, str]) -> None:
    out, terminal = planted_run
    assert not _leaks(out, terminal), f"planted account digits found: {_leaks(out, terminal)}"


def _leaks(out: Path, terminal: str) -> dict[str, list[str]]:
    """Where (file or terminal) a planted id's digits appear, by masked id."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks: dict[str, list[str]] = {}
    for path in files:
        data = path.read_bytes()
        blobs = [data, *_decoded_blobs(data)]
        for account in PLANTED:
            if any(_digits(account) in blob for blob in blobs):
                leaks.setdefault(str(path.relative_to(out)), []).append(redact_account(account))
    for account in PLANTED:
        if _digits(account).decode() in terminal:
            leaks.setdefault("terminal output", []).append(redact_account(account))
    return leaks


def test_the_search_is_not_vacuous(planted_run: tuple[Path, str]) -> None:
    """The ids did flow through every channel searched, masked."""
    out, terminal = planted_run
    masked = redact_account(PLANTED[0])
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "allure-results").glob("*-result.json")]
    [failing] = [r for r in results if r["name"] == "test_fails_with_the_account_in_every_channel"]
    attached = {a["name"]: (out / "allure-results" / a["source"]).read_text(encoding="utf-8")
                for a in failing.get("attachments", [])}
    assert {"log", "stdout", "stderr"} <= set(attached), sorted(attached)
    log = attached["log"]
    assert "raw:" in log, "ibapi's frame log (DEBUG) should be in the captured log"
    assert "\\x12" in log, "ibapi's protobuf-era frame bytes should be in the captured log"
    assert masked in log and masked.lower() in log and f"{masked}_x" in log and "Traceback" in log
    assert masked in attached["stdout"] and masked in attached["stderr"]
    assert masked in (failing.get("statusDetails") or {}).get("message", "")
    assert masked in terminal and "deliberate failure" in terminal
    evidence = b"".join(p.read_bytes() for p in (out / "evidence").rglob("*.json"))
    assert masked.encode() in evidence or json.dumps(masked)[1:-1].encode() in evidence
    if (out / "html" / "index.html").exists():
        embedded = b"".join(_decoded_blobs((out / "html" / "index.html").read_bytes()))
        assert masked.encode() in embedded or json.dumps(masked)[1:-1].encode() in embedded


async def test_a_live_run_leaks_no_planted_account(tmp_path: Path) -> None:
    """The same through the live path (a Gateway addressed as HOST:PORT: the
    recording proxy, the paper-account check, live pacing), where the issue
    saw the id in the terminal: a 10.50 mock with the planted accounts."""
    async with MockGateway(port=0, profile="10.50", accounts=list(PLANTED)) as gw:
        code, terminal = await run_pytest(
            "suites/test_account_sync.py", str(FIXTURE), "-rA", "--gateway", f"127.0.0.1:{gw.port}",
            "--client", "ibapi", "--log-level=DEBUG", f"--alluredir={tmp_path / 'allure-results'}",
            f"--junitxml={tmp_path / 'junit.xml'}", evidence_dir=tmp_path / "evidence", env=child_env(),
            timeout=RUN_TIMEOUT_S)
        assert code == 1, terminal[-4000:]
        # the paper-account check, the account sync and the deliberate case each reached the Gateway
        assert len([r for r in gw.records if r.started_api]) >= 3
    assert "deliberate failure" in terminal and redact_account(PLANTED[0]) in terminal
    leaks = _leaks(tmp_path, terminal)
    assert not leaks, f"planted account digits found: {leaks}"
