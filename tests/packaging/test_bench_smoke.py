"""`make bench`'s entry point runs end to end at tiny sizes and prints its
table (issue 20 item 3). The rows must exist; their values are evidence for
a person, not assertions (the machine may be loaded)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil

from tests.support.processes import run


def test_make_bench_entry_point_prints_every_row_at_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc = run([sys.executable, "-m", "benchmarks.run_all", "--sizes", "20", "--seconds", "3", "--handshakes", "10",
                "--rounds", "2", "--ping-sessions", "3", "--pings", "3", "--nice", "1", "--json", str(out)], timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = proc.stdout
    for row in ("server CPU per handshake, ibgw mock serve (INFO) vs bare",
                "server CPU per handshake, ibgw mock serve (--log-level warning) vs bare",
                "server CPU per ping, ibgw mock serve (INFO) vs bare",
                "20 sessions on mock, 1 ping/s, 3 s", "20 sessions on bare, 1 ping/s, 3 s",
                "memory per session, 20 on mock", "memory per session, 20 on bare", "machine load",
                "client side, 20 on mock", "client side, 20 on bare", "from the due time", "waited for a CPU"):
        assert row in table, row
    assert "own session; nice 1" in table  # servers and load workers in their own sessions, at the weight asked
    assert "CI suite" not in table  # the suite is timed on its own (benchmarks/suite_timing.py)
    report = json.loads(out.read_text())
    assert report["errors"] == []
    assert report["environment"]["nice"] == 1
    for k in ("mock", "mock-warning", "bare"):
        assert report["cpu"][k]["hs"] == 20 and report["cpu"][k]["hs_failed"] == 0
    rows = {s["server"]: s for s in report["sessions"]}
    assert set(rows) == {"mock", "bare"}
    assert all(s["open"] == 20 and s["failed"] == 0 and s["pings"]["count"] > 0 for s in rows.values())
    for s in rows.values():  # the load worker's side is reported beside the server's (benchmarks/loadworker.py)
        assert s["pings_from_send"]["count"] == s["pings"]["count"] == s["send_lag"]["count"]
        assert s["pings"]["p99_ms"] >= s["pings_from_send"]["p99_ms"] * 0.98  # from due includes the send lag
        assert s["client_cpu_share"] is not None and s["server_wait_share"] is not None
    leaked = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leaked  # every server and load worker stopped


def test_a_priority_that_cannot_be_set_says_why() -> None:
    from benchmarks.run_all import set_priority

    why = set_priority(2**22 + 1, 1)  # above Linux's largest pid_max: no such process
    assert why.startswith("could not set nice 1 on pid")
