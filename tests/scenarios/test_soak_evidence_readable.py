"""Soak evidence a person reads: the record's duration_s is the run's, the
progress line says when a data outage (1100 until 1101/1102) is going on,
and the timeline's legends never cover the plotted data."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from harness.evidence.soak_outputs import SoakProgress
from harness.evidence.soak_plot import plot_timeline
from harness.mock import MockGateway
from harness.scenarios.soak import SoakConfig, run_soak
from harness.scenarios.soak_schedule import parse_schedule
from harness.targets.base import Endpoint

HOST = "127.0.0.1"


def _figures(data_outage: bool, connected: bool = True) -> dict[str, Any]:
    client = {"connected": connected, "p50_ms": 1.0, "p99_ms": 2.0, "missed": 0, "max_gap_s": 0.5,
              "data_outage": data_outage}
    return {"t": 12.0, "duration": 60, "clients": {"raw": client}, "disconnects": 0, "recoveries": 0,
            "probes_ok": 1, "probes": 1, "rss_mb": 50.0, "fds": 10, "close_wait": 0}


def test_progress_line_shows_a_data_outage_while_it_lasts() -> None:
    stream = io.StringIO()
    with SoakProgress(60, stream) as progress:
        progress(_figures(data_outage=True))
        progress(_figures(data_outage=False))
        progress(_figures(data_outage=False, connected=False))
    lines = stream.getvalue().splitlines()
    assert "raw up, DATA OUTAGE (1100)" in lines[0], lines[0]
    assert "raw up p50" in lines[1] and "OUTAGE" not in lines[1], lines[1]
    assert "raw DOWN p50" in lines[2], lines[2]


def test_timeline_legends_never_cover_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [{"type": "start", "t": 0.0, "config": {"clients": ["raw", "ib_async", "ibapi"]},
                "target": {"label": "mock:default"}}]
    for i in range(1, 13):
        records.append({"type": "interval", "t": i * 5.0, "rss_mb": 50 + i, "fds": 10 + i, "close_wait": i % 3,
                        "clients": {c: {"p50_ms": 1.0 + i, "p99_ms": 5.0 + i, "missed": i % 4}
                                    for c in ("raw", "ib_async", "ibapi")}})
    records.append({"type": "summary", "t": 60.0, "outcome": "passed"})
    jsonl = tmp_path / "soak.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    kept: list[Any] = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    plot_timeline(jsonl, tmp_path / "timeline.png")
    fig = kept[0]
    renderer = fig.canvas.get_renderer()
    plots = [ax.get_window_extent(renderer) for ax in fig.axes]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for area in plots:
            assert not box.overlaps(area), "a legend lies over a plotting area"
        assert box.x1 <= fig.bbox.x1 + 1, "a legend is cut off at the figure's edge"
    plt.close(fig)


@pytest.mark.timeout(60)
async def test_record_duration_is_the_runs(tmp_path: Path) -> None:
    config = SoakConfig(duration=3, clients=("raw",), ping_interval=0.5, ping_timeout=1.0, probe_interval=2.0,
                        probe_timeout=2.0, interval=1.0, connect_timeout=4.0, backoff_cap=1.0, gap_margin=8.0,
                        recovery_bound=8.0, schedule=parse_schedule("none"))
    async with MockGateway(HOST, 0) as gw:
        evidence = await run_soak(config, Endpoint("mock", HOST, gw.port, "mock:default", profile="default"),
                                  tmp_path, mock=gw)
    assert evidence.duration_s >= 2.5, evidence.duration_s
    assert evidence.duration_s == pytest.approx(evidence.measurements["duration_s"], abs=0.01)
