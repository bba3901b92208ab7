"""`make test` several times in a row with CPU hogs beside it (issue 20).

    .venv/bin/python -m benchmarks.suite_under_load [--runs 3] [--hogs 2] [--timeout 2400] [--json PATH]
        [--logs reports/under-load]

Why: a suite that passes only on a quiet machine fails in CI the day a
neighbour compiles. The issue's goal is zero failures in three consecutive
runs of the README's test command with two CPU-bound processes beside it,
so this runs exactly that command (`make test`, lint included, with the
environment it is given: IBGW_REQUIRE_DOCKER and friends pass through) and
prints one row per run: its exit status, wall time, pytest's summary line
and the load average before and after; each run's whole output is kept in
--logs (run-N.log). The hogs are plain busy loops in
their own processes, started before the first run and stopped after the
last one whatever happens. Bounded: --runs, and --timeout per run (the run's
process group is killed when it passes). Not pass/fail for the suite's own
tests: exit 0 when every run exited 0, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"^=+ (.*(?:passed|failed|error).*) =+$", re.MULTILINE)


def _hog() -> None:
    """A CPU-bound neighbour: spins until terminated."""
    while True:
        pass


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


def run_once(index: int, timeout: float, make: str, logs: Path) -> dict[str, Any]:
    """One `make test` in its own process group, killed whole at the timeout."""
    load_before = _loadavg()
    started = time.monotonic()
    proc = subprocess.Popen([make, "test"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = f"killed after {timeout:.0f} s"
    except BaseException:  # Ctrl-C: the run's whole group goes with us
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    wall = time.monotonic() - started
    (logs / f"run-{index}.log").write_text(out or "", encoding="utf-8")
    found = SUMMARY.findall(out or "")
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+::\S+|\S+\.py)", out or "", re.MULTILINE)
    return {"run": index, "exit": code, "wall_s": round(wall, 1), "summary": found[-1] if found else "(no summary)",
            "failures": failures, "load_before": load_before, "load_after": _loadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="consecutive runs of `make test` (default 3)")
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes beside them (default 2)")
    parser.add_argument("--timeout", type=float, default=2400.0, help="seconds per run before it is killed")
    parser.add_argument("--make", default="make", help="the make program")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--logs", type=Path, default=ROOT / "reports" / "under-load",
                        help="directory for each run's whole output (default reports/under-load)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hogs < 0 or args.timeout <= 0:
        parser.error("--runs must be >= 1, --hogs >= 0 and --timeout > 0")
    try:
        args.logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--logs {args.logs}: {exc.strerror or exc}; hint: choose a writable directory")
    ctx = multiprocessing.get_context("spawn")
    hogs = [ctx.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
    rows: list[dict[str, Any]] = []
    try:
        for hog in hogs:
            hog.start()
        for i in range(1, args.runs + 1):
            row = run_once(i, args.timeout, args.make, args.logs)
            rows.append(row)
            print(f"run {row['run']}: exit {row['exit']}, {row['wall_s']:.0f} s, {row['summary']} "
                  f"(load {row['load_before']} -> {row['load_after']}, {args.hogs} hogs)", flush=True)
            for nodeid in row["failures"]:
                print(f"    failed: {nodeid}", flush=True)
    except KeyboardInterrupt:
        print(f"suite_under_load: interrupted after {len(rows)} run(s); the run in progress was stopped",
              file=sys.stderr)
        return 2
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join(10)
    if args.json:
        args.json.write_text(json.dumps({"hogs": args.hogs, "cpus": os.cpu_count(), "runs": rows}, indent=2),
                         encoding="utf-8")
    return 0 if rows and all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
