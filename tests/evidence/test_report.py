"""The report, end to end: one small suite run in a subprocess (a few
passing scenarios through every client, plus one failing scenario per mock
fault) with allure results, JUnit XML and evidence in a temporary
directory, a fake password and a planted account in its environment. Then:

* every failure lands in the category that names its cause, by the rules
  in categories.json applied the way Allure applies them (our mirror and
  Allure 3's own matcher);
* the JUnit XML names the Gateway version as a suite property;
* the offline HTML report, rendered in headless Chromium, shows the same
  totals as the JUnit XML, the groups Gateway version -> client ->
  scenario and the labels; a screenshot goes to reports/;
* history survives a second run;
* no file produced anywhere holds the password or the full account id.

The browser part needs node, the pinned npm tooling (tools/allure, `npm
ci`) and Debian's chromium: it skips with the reason when one is missing,
and fails instead under IBGW_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.categories import match_category
from harness.core.config import env as config_env
from harness.core.redact import redact_account
from harness.evidence.html_report import TOOLS_DIR, generate, tooling_installed
from harness.mock.profiles import get_profile
from harness.targets import MockTarget
from tests.support import ROOT
from tests.support.processes import Started, pytest_cmd, run, run_cli

FAILING = ROOT / "tests" / "report_fixtures" / "failing_scenarios.py"
PASSING = [f"suites/test_handshake.py::test_handshake_completes[{c}-id1-readonly]" for c in ("raw", "ib_async", "ibapi")]
PASSING += [f"suites/test_account_sync.py::test_account_sync_complete[{c}]" for c in ("raw", "ib_async", "ibapi")]
SCREENSHOT = ROOT / "reports" / "report-screenshot.png"
# The default mock's group: its profile's own name, never the build it stands for.
DEFAULT_GROUP = f"mock:{MockTarget().profile.name}"
SELF_TESTS_GROUP = DEFAULT_GROUP + " + injected faults"

PLANTED_PASSWORD = "Pl4nted-Secret-pw-7731"
PLANTED_USER = "plantedlogin42"
PLANTED_ACCOUNT = "DU9753124"
RUN_TIMEOUT_S = 240


def _expected_categories() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("failing_scenarios", FAILING)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.EXPECTED_CATEGORY)


def _suites_cmd(out: Path, tests: list[str]) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "TWS_PASSWORD": PLANTED_PASSWORD, "TWS_USERID": PLANTED_USER,
           "IBGW_MOCK_ACCOUNTS": f"{PLANTED_ACCOUNT},DU1111111"}
    env.pop("IBGW_GATEWAY", None)
    cmd = pytest_cmd(*tests, "-q", "--gateway", "mock", f"--alluredir={out / 'allure-results'}", "--clean-alluredir",
                     f"--junitxml={out / 'junit.xml'}", evidence_dir=out / "evidence")
    return cmd, env


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, Started]]]:
    """The module's nested pytest runs: run A and the matrix slice, both
    started the first time a test needs one; the history's second run ("b")
    is started by `run_a` once run A is done.

    Why side by side: both are mostly waiting, not computing (run A's fault
    cases sit out their connect timeouts, the matrix slice 10.41's wedge), so
    together they take about as long as the longer instead of the sum. Nothing
    one run does reaches another: each has its own output directory, evidence
    and in-process mocks on ports of their own. Run B waits for run A so that
    three child sessions never start at once beside the matrix's healthy
    cells, whose in-process connect timeout is 2 s. A run no selected test
    collected is killed at the module's end."""
    started: dict[str, tuple[Path, Started]] = {}
    try:
        for key, name, make in (("a", "report-run-a", lambda out: _suites_cmd(out, [*PASSING, str(FAILING)])),
                                ("m", "report-run-matrix", _matrix_cmd)):
            out = tmp_path_factory.mktemp(name)
            cmd, env = make(out)
            started[key] = (out, Started(cmd, env=env, timeout=RUN_TIMEOUT_S))
        yield started
    finally:
        for _, child in started.values():
            child.kill()


def _collect(nested: dict[str, tuple[Path, Started]], key: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out, child = nested[key]
    proc = child.result()
    (out / "pytest.out").write_text(proc.stdout, encoding="utf-8")
    return out, proc


@pytest.fixture(scope="module")
def run_a(nested: dict[str, tuple[Path, Started]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, proc = _collect(nested, "a")
    run_b = tmp_path_factory.mktemp("report-run-b")
    cmd, env = _suites_cmd(run_b, PASSING[:2])
    nested["b"] = (run_b, Started(cmd, env=env, timeout=RUN_TIMEOUT_S))  # the history's second run, from now on
    # Exit 1: tests failed, as they must; anything else is the harness breaking.
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return out


def _results(alluredir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in alluredir.glob("*-result.json")]


def _junit_totals(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")}


# ------------------------------------------------------------------ categories


def test_every_fault_failure_lands_in_its_cause_category(run_a: Path) -> None:
    expected = _expected_categories()
    rules = json.loads((run_a / "allure-results" / "categories.json").read_text(encoding="utf-8"))
    results = {r["name"]: r for r in _results(run_a / "allure-results")}
    missing = sorted(set(expected) - set(results))
    assert not missing, f"no allure result for {missing}"
    got = {}
    for name in expected:
        details = results[name].get("statusDetails") or {}
        got[name] = match_category(rules, results[name]["status"], details.get("message"), details.get("trace"))
    wrong = {n: (got[n], expected[n]) for n in expected if got[n] != expected[n]}
    assert not wrong, f"(got, expected) per test: {wrong}"
    # Passing scenarios carry no category.
    for name, result in results.items():
        if result["status"] == "passed":
            assert match_category(rules, "passed", None) is None, name


def test_allure_itself_puts_each_failure_in_the_same_category(run_a: Path) -> None:
    """Cross-check of the mirror: Allure 3's core-api matcher on the same results."""
    if not tooling_installed() or shutil.which("node") is None:
        _skip_or_fail("node or the npm tooling in tools/allure is missing (make report-tools)")
    proc = run(["node", str(TOOLS_DIR / "match-categories.mjs"), str(run_a / "allure-results")], timeout=60,
               cwd=TOOLS_DIR)
    assert proc.returncode == 0, proc.stderr
    by_allure = json.loads(proc.stdout)
    expected = _expected_categories()
    assert {n: by_allure.get(n) for n in expected} == expected


def test_failure_steps_and_labels_come_from_evidence(run_a: Path) -> None:
    results = {r["name"]: r for r in _results(run_a / "allure-results")}
    ok = results["test_handshake_completes[raw-id1-readonly]"]
    steps = [s["name"] for s in ok.get("steps", [])]
    assert any(s.startswith("server_version: at ") for s in steps), steps
    labels = {label["name"]: label["value"] for label in ok["labels"]}
    assert labels["gateway_version"] == DEFAULT_GROUP
    assert labels["client"] == "raw" and labels["gateway_target"] == "mock" and labels["server_version"]
    attachments = {a["name"] for a in ok.get("attachments", [])}
    assert {"evidence.json", "transcript.txt"} <= attachments
    zombie = results["test_zombie_fault[close-wait-leak]"]
    assert "close_wait_runs.txt" in {a["name"] for a in zombie.get("attachments", [])}
    assert any(s["name"].startswith("FAILED at ") and s["status"] == "failed" for s in zombie["steps"])
    measured = [p for p in ok["parameters"] if p["name"].endswith("_ms")]
    assert measured and all(p.get("excluded") for p in measured), "measured values must not enter the history id"


def test_results_dir_carries_environment_executor_categories_and_plot(run_a: Path) -> None:
    alluredir = run_a / "allure-results"
    env = (alluredir / "environment.properties").read_text(encoding="utf-8")
    assert "gateway.version=" not in env and "gateway.build=" not in env, "a mock stands for no real build"
    judged = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("gateway.versions="))
    assert {DEFAULT_GROUP, SELF_TESTS_GROUP} <= set(judged.split(", ")), judged
    executor = json.loads((alluredir / "executor.json").read_text(encoding="utf-8"))
    assert executor["name"] and executor["buildName"]
    plot = run_a / "plots" / "handshake_phase_latency.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    globals_ = [json.loads(p.read_text(encoding="utf-8")) for p in alluredir.glob("*-globals.json")]
    assert any(a["name"] == plot.name for g in globals_ for a in g.get("attachments", []))


def test_junit_names_the_gateway_version(run_a: Path) -> None:
    root = ET.parse(run_a / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props.get("gateway_version") == DEFAULT_GROUP
    assert DEFAULT_GROUP in props.get("gateway_versions", "").split(", ")
    assert props.get("gateway_target") == "mock"
    totals = _junit_totals(run_a / "junit.xml")
    assert totals["tests"] == len(PASSING) + len(_expected_categories())
    assert totals["failures"] + totals["errors"] == len(_expected_categories())


# ------------------------------------------------------------------ the HTML report in a browser


def _skip_or_fail(reason: str) -> None:
    if config_env("IBGW_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IBGW_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _skip_or_fail("no chromium (Debian: apt-get install chromium)")
    if shutil.which("node") is None or not tooling_installed():
        _skip_or_fail("node or the npm tooling in tools/allure is missing (make report-tools)")
    return str(found)


def _render(index: Path, screenshot: Path, chromium: str) -> dict[str, Any]:
    proc = run(["node", str(TOOLS_DIR / "render-check.mjs"), str(index), str(screenshot), chromium], timeout=120,
               cwd=TOOLS_DIR)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def html_a(run_a: Path) -> tuple[Path, Path]:
    chromium = _chromium()
    history = run_a / "history.jsonl"
    index = generate(run_a / "allure-results", run_a / "html", history)
    return index, Path(chromium)


def test_rendered_report_matches_junit_and_shows_the_labels(run_a: Path, html_a: tuple[Path, Path]) -> None:
    index, chromium = html_a
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page = _render(index, SCREENSHOT, str(chromium))
    assert page["requests"] == [], f"the offline report tried the network: {page['requests']}"
    junit = _junit_totals(run_a / "junit.xml")
    totals = page["totals"]
    assert totals["total"] == junit["tests"]
    assert totals["passed"] == junit["tests"] - junit["failures"] - junit["errors"] - junit["skipped"]
    assert totals["failed"] + totals["broken"] == junit["failures"] + junit["errors"]
    assert totals["skipped"] == junit["skipped"]
    # Grouped by Gateway version, then client, then scenario.
    assert {DEFAULT_GROUP, SELF_TESTS_GROUP} <= set(page["groups"])
    assert get_profile(MockTarget().profile.name).build not in page["groups"], "no group claims a real build"
    assert {"raw", "ib_async", "ibapi"} <= set(page["groups"])
    assert {"handshake", "account_sync", "zombie"} <= set(page["groups"])
    assert len(page["leaves"]) == junit["tests"]
    labels = page["test"]["labels"]
    for name in ("feature", "gateway_version", "gateway_target", "client", "client_version"):
        assert labels.get(name), f"label {name} not shown: {labels}"
    assert labels["gateway_version"] in (DEFAULT_GROUP, SELF_TESTS_GROUP)
    assert SCREENSHOT.stat().st_size > 10_000
    # The Categories tab: one entry per cause, counting the fault tests that carry it.
    assert page["categories"] == dict(Counter(_expected_categories().values()))


def test_history_survives_a_second_run(run_a: Path, html_a: tuple[Path, Path], nested: dict[str, tuple[Path, Started]],
                                       tmp_path: Path) -> None:
    index_a, chromium = html_a
    history = run_a / "history.jsonl"
    summary_a = json.loads((index_a.parent / "summary.json").read_text(encoding="utf-8"))
    run_b, proc = _collect(nested, "b")  # started when run A was done, while its report was rendered
    assert proc.returncode == 0, proc.stdout[-2000:]
    index_b = generate(run_b / "allure-results", run_b / "html", history)
    lines = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) == 2, "each generation appends one history entry"
    summary_b = json.loads((index_b.parent / "summary.json").read_text(encoding="utf-8"))
    assert len(summary_a["newTests"]) == summary_a["stats"]["total"]  # the first run: all new
    assert summary_b["newTests"] == [], "the second run's tests were known from the first"
    page = _render(index_b, tmp_path / "b.png", str(chromium))
    assert page["totals"]["total"] == 2 and page["totals"]["new"] == 0


# ------------------------------------------------------------------ redaction


def test_no_artifact_holds_a_credential_or_a_full_account_id(run_a: Path, request: pytest.FixtureRequest) -> None:
    """Every file the run produced: allure results, JUnit, evidence, plots,
    and (where the browser tooling exists) the HTML report and history,
    including the base64 data files the single-file report embeds."""
    try:
        request.getfixturevalue("html_a")  # make the HTML report part of what is searched
    except pytest.skip.Exception:
        pass  # no node/chromium here: the report's other files are still searched
    files = [p for p in run_a.rglob("*") if p.is_file() and p.name != "pytest.out"]
    assert len(files) > 20
    # Named, not quoted: the plugin would (rightly) redact them from this message.
    planted = {"the password": PLANTED_PASSWORD, "the user id": PLANTED_USER, "the account id": PLANTED_ACCOUNT}
    leaks: dict[str, list[str]] = {}
    for path in files:
        data = path.read_bytes()
        blobs = [data, *(_embedded_files(data) if path.suffix == ".html" else [])]
        for what, secret in planted.items():
            if any(secret.encode() in blob for blob in blobs):
                leaks.setdefault(str(path.relative_to(run_a)), []).append(what)
    assert not leaks, f"planted values found: {leaks}"
    # Not vacuous: the planted account reached the clients and the evidence, masked.
    masked = redact_account(PLANTED_ACCOUNT)
    forms = (masked.encode(), json.dumps(masked)[1:-1].encode())  # as UTF-8 and as a JSON \u escape
    assert any(form in p.read_bytes() for p in (run_a / "evidence").glob("*.json") for form in forms)
    if (run_a / "html" / "index.html").exists():
        embedded = b"".join(_embedded_files((run_a / "html" / "index.html").read_bytes()))
        assert any(form in embedded for form in forms), "the report's embedded evidence should show the masked account"


def _embedded_files(html: bytes) -> list[bytes]:
    """The data files an Allure 3 single-file report embeds as
    ("data/...", "<base64>") pairs, decoded."""
    import base64
    import re

    out = []
    for match in re.finditer(rb'"(?:data|widgets)/[^"]+"\s*,\s*"([A-Za-z0-9+/=]+)"', html):
        try:
            out.append(base64.b64decode(match.group(1)))
        except ValueError:
            continue
    return out


# ------------------------------------------------------------------ the decision on the first screen

MATRIX_SLICE = "10.30,10.41,10.50"  # two regression fixtures and the build to pin
FAULT_TESTS = ["suites/test_faults.py::test_client_id_stuck_blocks_the_id_not_others"]


def _matrix_cmd(out: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "IBGW_MATRIX_VERSIONS": MATRIX_SLICE, "IBGW_MATRIX_RUNS": "2", "IBGW_MATRIX_TARGET": "mock"}
    env.pop("IBGW_GATEWAY", None)
    cmd = pytest_cmd("suites/test_version_matrix.py", *FAULT_TESTS, "-q", "--gateway", "mock",
                     f"--alluredir={out / 'allure-results'}", "--clean-alluredir", f"--junitxml={out / 'junit.xml'}",
                     evidence_dir=out / "evidence")
    return cmd, env


@pytest.fixture(scope="module")
def run_m(nested: dict[str, tuple[Path, Started]]) -> Path:
    """A slice of the version matrix and one fault test, then `ibgw pin`:
    what `make report` does, small (started beside run A, see `nested`)."""
    out, proc = _collect(nested, "m")
    # Exit 1: the regressed builds' cells fail, as the convention says.
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    pin = run_cli("pin", str(out / "evidence" / "matrix"), "--out", str(out))
    assert pin.returncode == 0, pin.stdout[-2000:] + pin.stderr[-2000:]
    return out


def test_regressed_cells_fail_with_their_category_and_the_run_says_so(run_m: Path) -> None:
    from harness.evidence.run_outcome import outcome

    results = _results(run_m / "allure-results")
    cells = [r for r in results if r["name"].startswith("matrix cell ")]
    assert len(cells) == 9 and len({r["name"] for r in cells}) == 9
    labels = [{lb["name"]: lb["value"] for lb in r["labels"]} for r in cells]
    for result, label in zip(cells, labels):
        version = label["gateway_version"]
        assert [lb["name"] for lb in result["labels"]].count("gateway_version") == 1, "one group per cell"
        assert [lb["name"] for lb in result["labels"]].count("feature") == 1, "one tree entry per cell"
        shown = [p for p in result["parameters"] if p.get("mode") != "hidden"]
        assert shown[0] == {"name": "cell", "value": f"{version} / {label['client']}", "excluded": True}
        if version == "10.50":
            assert result["status"] == "passed"
        elif result["status"] == "failed":  # a client may escape a regression; a caught one is red
            assert label["gateway_regression"] == version and label["failure_category"]
            first_line = result["statusDetails"]["message"].splitlines()[0]
            assert f"[{label['failure_category']}] " in first_line, first_line  # what categories.json matches
    assert {lb["gateway_version"] for lb, r in zip(labels, cells) if r["status"] == "failed"} == {"10.30", "10.41"}
    # Self-tests are their own group, never a build's.
    faults = [r for r in results if "client_id_stuck" in r["fullName"]]
    assert faults and all({lb["name"]: lb["value"] for lb in r["labels"]}["gateway_version"].endswith(
        "+ injected faults") for r in faults)
    props = {p.get("name"): p.get("value") for p in ET.parse(run_m / "junit.xml").getroot().iter("property")}
    assert props["gateway_versions"].startswith("10.50 (10.50.1d), 10.41 (10.41.1d), 10.30 (10.30.1)")
    env = (run_m / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    assert "gateway.versions=10.50 (10.50.1d), 10.41" in env
    code, line = outcome(run_m, 1)
    assert code == 0 and "regressions found in 10.41, 10.30" in line and "pinning recommends 10.50" in line, line


def test_first_screen_shows_the_decision_and_groups_show_the_regressions(run_m: Path) -> None:
    chromium = _chromium()
    index = generate(run_m / "allure-results", run_m / "html", run_m / "history.jsonl",
                     pinning=run_m / "pinning.json", fault_matrix=run_m / "evidence" / "fault_matrix.json")
    proc = run(["node", str(TOOLS_DIR / "first-screen.mjs"), str(index), str(run_m / "first.png"), chromium],
               timeout=180, cwd=TOOLS_DIR)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = json.loads(proc.stdout.strip().splitlines()[-1])
    assert page["requests"] == [], f"the offline report tried the network: {page['requests']}"
    first = page["firstScreen"]
    assert first["scrollY"] == 0
    assert first["recommended"] == "Pin Gateway 10.50" and first["recommendedVisible"]
    rejected = {r["version"]: r for r in first["rejected"]}
    assert set(rejected) == {"10.41", "10.30"}
    for version, row in rejected.items():
        assert row["visible"], f"{version}'s rejection is below the fold"
        assert len(row["text"]) > len(version) + 20, row["text"]  # a reason, not just the version
    assert first["faultTableVisible"] and "client-id-stuck" in first["faultTable"]
    # The version groups: red for the regressed builds, green for the one to pin.
    groups = page["groups"]
    assert "failed" in groups["10.41"] and "failed" in groups["10.30"], groups
    assert groups["10.50"] == ["passed"], groups
    # A 10.41 cell's page names its category.
    assert page["cell"] and "Category: API wedged" in page["cell"]["text"], page["cell"]
    # Transcripts: monospace without ligatures.
    assert "monospace" in page["font"]["family"] and page["font"]["ligatures"] == "none"
    # Evidence links open inside the report (the file travels alone): a
    # clicked one shows the cell's embedded evidence in the viewport.
    block = index.read_text(encoding="utf-8").split('id="ibgw-first-screen"', 1)[1].split("</div><script>", 1)[0]
    hrefs = re.findall(r'href="([^"]*)"', block)
    assert hrefs and all(h.startswith("#") for h in hrefs), [h for h in hrefs if not h.startswith("#")]
    evidence = page["evidence"]
    assert evidence and evidence["href"].endswith("/attachments") and evidence["url"].endswith(evidence["href"])
    assert evidence["name"].endswith(".evidence.json") and evidence["inViewport"], evidence
    text = evidence["text"] or ""
    assert text.lstrip().startswith("{") and '"cause":' in text and '"client":' in text, text[:500]  # the JSON itself
