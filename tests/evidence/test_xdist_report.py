"""`make report` under pytest-xdist gives the same answer as a serial run.

Why: `make report` runs on xdist workers (Makefile WORKERS, --dist read
from the Makefile here), and every artifact after its pytest step reads
what the workers wrote: the summary (harness.evidence.summary), the
pinning decision (`ibgw pin <evidence>/matrix`) and the allure result set.
A worker clearing a sibling's evidence, a second allure clean, or the
run's end done per worker would change one of them. So one slice of the
report's pytest step (the version matrix on a regression build and a
healthy one with 2 zombie runs per cell, plus three handshake tests) runs
serially and on 2 workers, and the three are compared.

Why this slice and no bigger: the property needs a build the pinning
rejects and one it recommends (10.30, 10.45), and a second file so that
`--dist loadfile` gives both workers work (the allure thread labels must
show two pids); one handshake test per client is that file. 10.30 is the
regression fixture here because its cells fail at once (closed after
startApi); 10.41's wedge made each cell sit out handshake timeouts (about
14 s a cell under load, 80 s for the two runs) and proves nothing more
about xdist. test_report.py's matrix run keeps 10.41 for its category.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from harness.pytest_plugin.workers import split_range
from tests.support import ROOT
from tests.support.processes import Started, pytest_cmd, run, run_cli

SLICE = ["suites/test_version_matrix.py",
         *[f"suites/test_handshake.py::test_handshake_completes[{c}-id1-readonly]" for c in ("raw", "ib_async", "ibapi")]]
REGRESSED, HEALTHY = "10.30", "10.45"
RUN_TIMEOUT_S = 600
# Each nested run is minutes on a loaded 2-core machine; the first test waits for both. They run one
# after the other: side by side they overloaded a loaded machine until healthy cells timed out.
pytestmark = pytest.mark.timeout(2 * RUN_TIMEOUT_S + 120)


def _dist_mode() -> str:
    """The distribution mode `make test` and `make report` use, from the Makefile itself."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^XDIST_ARGS\s*=.*--dist\s+(\w+)", text, re.MULTILINE)
    assert match, "the Makefile names no --dist mode in XDIST_ARGS"
    return match.group(1)


def _report_step(out: Path, workers: int) -> Started:
    """The pytest step of `make report` (its options and matrix knobs), on a slice, started now."""
    env = {**os.environ, "IBGW_MATRIX_TARGET": "mock", "IBGW_MATRIX_RUNS": "2", "IBGW_MATRIX_VERSIONS": f"{REGRESSED},{HEALTHY}"}
    for name in ("IBGW_GATEWAY", "IBGW_RUN_OWNER", "IBGW_RUN_DIR", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    xdist = ["-n", str(workers), "--dist", _dist_mode()] if workers else ["-p", "no:xdist"]
    cmd = pytest_cmd(*SLICE, *xdist, "-q", f"--alluredir={out / 'allure-results'}", "--clean-alluredir",
                     f"--junitxml={out / 'junit.xml'}", evidence_dir=out / "evidence")
    return Started(cmd, env=env, timeout=RUN_TIMEOUT_S)


def _finished(out: Path, step: Started) -> Path:
    proc = step.result()
    (out / "pytest.out").write_text(proc.stdout, encoding="utf-8")
    # 1: the matrix caught the regression fixture, as it must; anything else is the harness breaking.
    assert proc.returncode == 1, f"exit {proc.returncode}:\n{proc.stdout[-5000:]}"
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-serial")
    return _finished(out, _report_step(out, 0))


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-xdist")
    return _finished(out, _report_step(out, 2))


def _summary(out: Path) -> str:
    proc = run([sys.executable, "-m", "harness.evidence.summary", str(out / "evidence")])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _pin(out: Path) -> dict[str, Any]:
    proc = run_cli("pin", str(out / "evidence" / "matrix"), "--out", str(out / "pin"))
    assert proc.returncode in (0, 3, 4), proc.stdout + proc.stderr
    data = json.loads((out / "pin" / "pinning.json").read_text(encoding="utf-8"))
    data["_exit"] = proc.returncode
    return data


def _results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in (out / "allure-results").glob("*-result.json")]


def test_same_summary_counts(serial: Path, parallel: Path) -> None:
    a, b = _summary(serial), _summary(parallel)
    counts = [line for line in a.splitlines() if re.match(r"\d+ passed, \d+ failed", line)]
    assert counts, a
    assert counts == [line for line in b.splitlines() if re.match(r"\d+ passed, \d+ failed", line)], (a, b)
    # The same evidence files (one per test), wherever a worker wrote them.
    names = sorted(p.name for p in (serial / "evidence").rglob("*.json"))
    assert names == sorted(p.name for p in (parallel / "evidence").rglob("*.json"))


def _suite_properties(out: Path) -> dict[str, str]:
    root = ElementTree.parse(out / "junit.xml").getroot()
    return {p.get("name", ""): p.get("value", "") for p in root.iter("property") if p.get("name", "").startswith("gateway_")}


def test_same_junit_suite_properties(serial: Path, parallel: Path) -> None:
    """Which Gateway the run judged, as JUnit suite properties: under xdist the workers record
    them (pytest's own fixture does nothing in a worker) and the controller writes them."""
    a = _suite_properties(serial)
    assert {"gateway_version", "gateway_target", "gateway_versions"} <= a.keys(), a
    assert a == _suite_properties(parallel)


def test_same_pinning_decision(serial: Path, parallel: Path) -> None:
    a, b = _pin(serial), _pin(parallel)
    assert a["recommended"] == HEALTHY, a.get("reason")
    assert (a["_exit"], a["recommended"], sorted(a["rejected"])) == (b["_exit"], b["recommended"], sorted(b["rejected"]))
    assert REGRESSED in b["rejected"]


def test_one_allure_result_set(serial: Path, parallel: Path) -> None:
    a, b = _results(serial), _results(parallel)
    assert a, "the serial run wrote no allure results"
    assert len(a) == len(b)
    outcome = Counter((r["historyId"], r["status"]) for r in a)
    assert outcome == Counter((r["historyId"], r["status"]) for r in b)
    assert max(Counter(r["historyId"] for r in b).values()) == 1, "a test reported twice"
    # It really ran on two workers: allure's thread label carries the worker's pid.
    pids = {lab["value"].split("-")[0] for r in b for lab in r.get("labels", []) if lab["name"] == "thread"}
    assert len(pids) == 2, pids
    # The run's end was done once, by the controller, after every worker: the environment,
    # the executor and the categories are there, in the one directory.
    for name in ("environment.properties", "executor.json", "categories.json"):
        assert (parallel / "allure-results" / name).is_file(), name
    env = (parallel / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    assert "gateway.versions" in env, env


@pytest.mark.parametrize(("rng", "count", "expected"), [
    ((900, 999), 2, [(900, 949), (950, 999)]),
    ((900, 904), 2, [(900, 901), (902, 904)]),
    ((5, 5), 2, [(5, 5), (5, 5)]),  # too small to share: each worker the whole (one-id) range
    ((900, 999), 1, [(900, 999)]),
])
def test_client_id_ranges_are_disjoint_per_worker(rng: tuple[int, int], count: int,
                                                  expected: list[tuple[int, int]]) -> None:
    assert [split_range(rng, i, count) for i in range(count)] == expected


def test_each_worker_seeds_its_client_ids_from_the_runs_seed() -> None:
    """gw0 and gw1 draw different random client ids from one recorded seed (the controller's)."""
    from types import SimpleNamespace

    from harness.pytest_plugin.workers import worker_seed, worker_slot

    def worker(n: int) -> Any:
        return SimpleNamespace(workerinput={"workerid": f"gw{n}", "workercount": 2, "ibgw_seed": 1234})

    assert [worker_slot(worker(n)) for n in (0, 1)] == [(0, 2), (1, 2)]  # type: ignore[arg-type]
    assert [worker_seed(worker(n), 99) for n in (0, 1)] == [1234, 1235]  # type: ignore[arg-type]
    assert worker_seed(SimpleNamespace(), 99) == 99  # type: ignore[arg-type]  # not a worker: its own seed
