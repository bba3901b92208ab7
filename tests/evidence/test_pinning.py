"""The pinning decision on synthetic results: it reads evidence files only,
so hand-made records exercise every rule (a newest build failing one cell,
a 1-in-10 flaky cell, missing cells, a build too old for a client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.evidence.pinning import (
    FLAKY,
    INCONCLUSIVE,
    MISSING,
    RECOMMENDED,
    TOO_OLD,
    PinInputError,
    build_report,
    version_order,
)
from tests.support.processes import pytest_cmd, run, run_cli

CLIENTS = {"raw": 100, "ib_async": 157}  # name -> the minimum server version it offers
SCENARIOS = ("handshake", "account_sync", "zombie")
VERSIONS = {"10.45": 223, "10.41": 216, "10.30": 187, "10.19": 176}


def record(version: str, client: str, scenario: str, passed: bool = True, *, ready_ms: float = 5.0,
           fault: str | None = None, max_sv: int | None = None) -> dict:
    sv = min(max_sv or VERSIONS.get(version, 178), 200)
    params: dict = {"gateway_version": version, "matrix": True}
    if fault:
        params["fault"] = fault
    return {
        "scenario": scenario, "outcome": "passed" if passed else "failed",
        "failed_phase": None if passed else "close_wait", "cause": None if passed else "zombie sockets: 5 left",
        "target": {"kind": "mock", "build": f"{version}.1x", "label": f"mock:{version}"},
        "client": {"name": client, "version": "1.0", "min_version": CLIENTS[client], "max_version": 200},
        "server_version": sv if passed else None, "parameters": params,
        "measurements": {"api_ready_ms": ready_ms} if scenario == "handshake" else {},
    }


def probe(version: str, max_sv: int | None = None, passed: bool = True) -> dict:
    return {"scenario": "version_probe", "outcome": "passed" if passed else "failed",
            "cause": None if passed else "zombie sockets: probe left CLOSE_WAIT",
            "target": {"build": f"{version}.1x"}, "client": {"name": "version-probe"},
            "server_version": max_sv or VERSIONS[version], "parameters": {"gateway_version": version}}


def full_grid(versions=VERSIONS) -> list[dict]:
    rows = [probe(v) for v in versions]
    rows += [record(v, c, s) for v in versions for c in CLIENTS for s in SCENARIOS]
    return rows


def write(tmp_path: Path, rows: list[dict], name: str = "results") -> Path:
    directory = tmp_path / name
    directory.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        (directory / f"r{i:04d}.json").write_text(json.dumps(row), encoding="utf-8")
    return directory


def cell(report: dict, version: str, client: str, scenario: str) -> dict:
    return next(c for c in report["cells"] if (c["version"], c["client"], c["scenario"]) == (version, client, scenario))


def test_all_pass_recommends_the_newest(tmp_path):
    report = build_report([write(tmp_path, full_grid())])
    assert report["status"] == RECOMMENDED and report["recommended"] == "10.45"
    assert report["rejected"]["10.41"] == "passed, but older than 10.45"
    assert all(d["version"] == "10.45" for d in report["per_client"].values())


def test_newest_build_failing_one_cell_is_rejected_with_the_cell_named(tmp_path):
    rows = [r for r in full_grid() if not (r["parameters"].get("gateway_version") == "10.45"
                                            and r["client"]["name"] == "ib_async" and r["scenario"] == "zombie")]
    rows.append(record("10.45", "ib_async", "zombie", passed=False))
    report = build_report([write(tmp_path, rows)])
    assert report["recommended"] == "10.41"
    assert "ib_async x zombie: fail 0/1" in report["rejected"]["10.45"]
    assert "zombie sockets" in report["rejected"]["10.45"]
    # per client: raw never failed on 10.45, so raw alone may still pin it
    assert report["per_client"]["raw"]["version"] == "10.45"
    assert report["per_client"]["ib_async"]["version"] == "10.41"


def test_one_in_ten_flaky_cell_is_flaky_and_not_a_pass(tmp_path):
    rows = full_grid()
    rows += [record("10.45", "raw", "handshake", ready_ms=float(i)) for i in range(8)]
    rows.append(record("10.45", "raw", "handshake", passed=False))
    report = build_report([write(tmp_path, rows)])
    flaky = cell(report, "10.45", "raw", "handshake")
    assert flaky["status"] == FLAKY and (flaky["passed"], flaky["runs"]) == (9, 10)
    assert report["recommended"] == "10.41"
    assert "raw x handshake: flaky 9/10" in report["rejected"]["10.45"]


def test_missing_cells_make_the_answer_inconclusive(tmp_path):
    rows = [r for r in full_grid() if not (r["parameters"].get("gateway_version") == "10.45"
                                            and r["client"]["name"] == "raw" and r["scenario"] == "account_sync")]
    report = build_report([write(tmp_path, rows)])
    assert cell(report, "10.45", "raw", "account_sync")["status"] == MISSING
    assert report["status"] == INCONCLUSIVE and report["recommended"] is None
    assert "raw x account_sync" in report["reason"]
    # ib_async has all its 10.45 cells: its own answer stands
    assert report["per_client"]["ib_async"]["version"] == "10.45"


def test_a_build_too_old_for_a_client_is_reported_apart_from_regressions(tmp_path):
    versions = {**VERSIONS, "981": 150}
    rows = full_grid(VERSIONS) + [probe("981", 150)]
    rows += [record("981", "raw", s, max_sv=150) for s in SCENARIOS]
    rows += [record("981", "ib_async", s, passed=False, max_sv=150) for s in SCENARIOS]
    report = build_report([write(tmp_path, rows)])
    assert versions and cell(report, "981", "ib_async", "handshake")["status"] == TOO_OLD
    assert "981" in report["too_old"] and "ib_async" in report["too_old"]["981"]
    assert "981" not in report["rejected"]  # its reason is under too_old, not among the regressions
    assert report["recommended"] == "10.45"
    assert [v["version"] for v in report["versions"]][-1] == "981"  # 981 sorts as 9.81


def test_injected_fault_records_are_skipped(tmp_path):
    rows = full_grid() + [record("10.45", "raw", "zombie", passed=False, fault="close-wait-leak=3")]
    report = build_report([write(tmp_path, rows)])
    assert report["recommended"] == "10.45"
    assert report["skipped"] == {"injected fault (detector self-test)": 1}


def test_several_results_directories_merge_into_one_decision(tmp_path):
    grid = full_grid()
    half = len(grid) // 2
    report = build_report([write(tmp_path, grid[:half], "a"), write(tmp_path, grid[half:], "b")])
    assert report["recommended"] == "10.45" and len(report["sources"]) == 2


def test_a_failing_version_probe_rejects_the_version(tmp_path):
    rows = [r for r in full_grid() if not (r["scenario"] == "version_probe"
                                            and r["parameters"]["gateway_version"] == "10.45")]
    rows.append(probe("10.45", passed=False))
    report = build_report([write(tmp_path, rows)])
    assert report["recommended"] == "10.41"
    assert report["rejected"]["10.45"].startswith("version probe: zombie sockets")


def test_handshake_percentiles(tmp_path):
    rows = full_grid() + [record("10.45", "raw", "handshake", ready_ms=float(ms)) for ms in range(1, 101)]
    report = build_report([write(tmp_path, rows)])
    c = cell(report, "10.45", "raw", "zombie")
    assert 40 <= c["handshake_p50_ms"] <= 60 and 90 <= c["handshake_p95_ms"] <= 100


def test_declared_build_without_gateway_version_groups_by_major_minor(tmp_path):
    desktop = record("10.45", "raw", "handshake")
    del desktop["parameters"]["gateway_version"]
    desktop["target"]["build"] = "10.45.1j"
    report = build_report([write(tmp_path, [desktop])])
    assert report["versions"][0]["version"] == "10.45"


def test_no_usable_results_is_an_input_error(tmp_path):
    (tmp_path / "junk.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PinInputError, match="no usable evidence"):
        build_report([tmp_path])


def test_version_order():
    assert sorted(["10.9", "10.45", "981", "10.19"], key=version_order) == ["981", "10.9", "10.19", "10.45"]


def test_cli_writes_markdown_and_json(tmp_path):
    results = write(tmp_path, full_grid())
    out = tmp_path / "out"
    proc = run_cli("pin", str(results), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "**Overall: 10.45**" in proc.stdout
    assert json.loads((out / "pinning.json").read_text())["recommended"] == "10.45"
    assert "| 10.45 |" in (out / "pinning.md").read_text()


def test_cli_bad_input_is_one_line(tmp_path):
    proc = run_cli("pin", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such results path" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_declared_desktop_build_reaches_the_pin(tmp_path):
    """--gateway-version: a Gateway that cannot report its build (a desktop
    install) still lands in the right row of the decision."""
    evidence = tmp_path / "desk"
    proc = run(pytest_cmd("-q", "suites/test_handshake.py", "-k", "raw and id1 and readonly and not readwrite",
                          "--client", "raw", "--gateway-version", "10.45.1j", evidence_dir=evidence), timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    report = build_report([evidence])
    assert [v["version"] for v in report["versions"]] == ["10.45"]
    assert report["versions"][0]["builds"] == ["10.45.1j"]
    assert cell(report, "10.45", "raw", "handshake")["status"] == "pass"
    assert report["status"] == RECOMMENDED and report["recommended"] == "10.45"
