"""The run plots: which evidence they draw, and that they are real PNGs."""

from __future__ import annotations

from pathlib import Path

from harness.evidence.plots import PHASE_PLOT, phase_points, plot_run


def _record(build: str, client: str, outcome: str = "passed", **ms: float) -> dict:
    return {"scenario": "handshake", "outcome": outcome, "target": {"build": build}, "client": {"name": client},
            "measurements": {f"{k}_ms": v for k, v in ms.items()}}


def test_points_group_by_version_and_client_and_skip_failed_runs() -> None:
    records = [
        _record("10.30.1", "raw", tcp_connect=0.4, server_version=0.7),
        _record("10.30.1", "raw", tcp_connect=0.5),
        _record("10.19.2", "ib_async", api_ready=3.0),
        _record("10.19.2", "ibapi", "failed", tcp_connect=9000.0),  # a failure's timings are not latency
        [{"fault": "x"}],  # fault_matrix.json sits in the same directory: not a record
    ]
    points = phase_points(records)  # type: ignore[arg-type]
    assert points == {("10.30.1", "raw"): {"tcp_connect": [0.4, 0.5], "server_version": [0.7]},
                      ("10.19.2", "ib_async"): {"api_ready": [3.0]}}


def test_plot_run_writes_a_png_per_view(tmp_path: Path) -> None:
    records = [_record(b, c, tcp_connect=0.3 + i / 10, server_version=0.6 + i / 10, api_ready=1.0 + i)
               for i, (b, c) in enumerate([("10.30.1", "raw"), ("10.30.1", "ibapi"), ("10.19.2", "raw")])]
    made = plot_run(records, tmp_path / "plots")
    assert made == [tmp_path / "plots" / PHASE_PLOT]
    assert made[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot_makes_no_file(tmp_path: Path) -> None:
    assert plot_run([_record("10.30.1", "raw", "failed", tcp_connect=1.0)], tmp_path) == []
    assert not any(tmp_path.iterdir())
