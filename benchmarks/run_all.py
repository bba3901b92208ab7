"""`make bench`: every benchmark, printed as one table (not pass/fail).

    .venv/bin/python -m benchmarks.run_all [--sessions 1000] [--ping-seconds 10] [--handshakes 300]
        [--suite-json PATH | --skip-suite] [--json PATH]

Rows:
* full handshakes to API-ready (hello, version reply, startApi, nextValidId +
  managedAccounts) per second, the mock against the bare asyncio baseline
  (benchmarks/_servers.py) doing the same round trips, as a cost ratio, with
  1 and with 50 clients connecting at once (bench_mock.compare_handshakes);
* 1,000 raw sessions open at once on the mock, each pinging once a second
  for --ping-seconds: ping latency p50/p99 and the mock's RSS per session
  (its RSS with the sessions open minus before, over the sessions);
* the CI suite (`pytest tests suites`, what `make test` runs): its wall time,
  and the share spent idle inside fault-injecting tests, i.e. waiting on the
  timeouts the faults require (benchmarks/suite_timing.py): the floor; the
  rest is harness overhead.

Targets (informational): handshake cost ratio <= 3x; p99 ping < 50 ms with
1,000 sessions. Exit 0 when everything was measured, 1 when a measurement
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil

from benchmarks import bench_mock as bm
from harness.clients.raw import RawClient

P99_TARGET_MS = 50.0
PACED_IDS = 300_000


# ---------------------------------------------------------------- 1,000 sessions, one ping a second each


async def paced_pings(server: bm.ServerProcess, sessions: int, seconds: float, deadline: bm.Deadline) -> dict[str, Any]:
    proc = psutil.Process(server.proc.pid)
    rss_before = proc.memory_info().rss
    clients: list[RawClient] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(bm.OPEN_CONCURRENCY)

    async def open_one(client_id: int) -> None:
        async with gate:
            client = RawClient(await_account_value=False)
            try:
                await client.connect(bm.HOST, server.port, client_id, timeout=bm.CONNECT_TIMEOUT)
                clients.append(client)
            except Exception as exc:
                failures.append(f"open: {type(exc).__name__}: {exc}")
                await client.disconnect()

    latencies: list[float] = []
    t_open = time.perf_counter()
    try:
        await asyncio.gather(*(open_one(PACED_IDS + i) for i in range(sessions)))
        open_s = time.perf_counter() - t_open
        rss_open = proc.memory_info().rss
        cpu0 = await server.cpu_seconds()
        start = time.monotonic() + 0.5
        rng = random.Random(0)

        async def pinger(client: RawClient) -> None:
            # Each session pings once a second at its own phase: the pacing is
            # the load being measured, so it sleeps to an absolute schedule.
            tick = start + rng.random()
            while tick < start + seconds and deadline.left() > 0:
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
                try:
                    latencies.append(await client.ping(timeout=bm.PING_TIMEOUT))
                except Exception as exc:
                    failures.append(f"ping: {type(exc).__name__}: {exc}")
                tick += 1.0

        await asyncio.gather(*(pinger(c) for c in clients))
        server_cpu = await server.cpu_seconds() - cpu0
        rss_peak = proc.memory_info().rss
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    pct = bm.percentiles(latencies)
    return {"sessions_requested": sessions, "sessions_open": len(clients), "open_s": round(open_s, 2),
            "seconds": seconds, "pings": pct, "failures": len(failures), "first_failure": failures[0] if failures else None,
            "rss_before_mib": round(rss_before / 2**20, 1), "rss_open_mib": round(rss_open / 2**20, 1),
            "rss_peak_mib": round(rss_peak / 2**20, 1),
            "rss_per_session_kib": round((rss_open - rss_before) / max(1, len(clients)) / 1024, 1),
            "server_cpu_share": round(server_cpu / seconds, 3),
            "verdict": ("PASS" if pct.get("p99_ms") is not None and pct["p99_ms"] < P99_TARGET_MS
                        and len(clients) == sessions and not failures else "MISS")}


async def measure_mock(args: argparse.Namespace, report: dict[str, Any]) -> None:
    deadline = bm.Deadline(time.monotonic() + args.deadline)
    servers: list[bm.ServerProcess] = []
    try:
        mock = await bm.start_server("mock", args.sessions + 100)
        servers.append(mock)
        base = await bm.start_server("echo", args.sessions + 100)
        servers.append(base)
        for concurrency, first_id in ((1, bm.SEQUENTIAL_IDS), (50, bm.CONCURRENT_IDS)):
            report["handshakes"][str(concurrency)] = await bm.compare_handshakes(
                mock, base, args.handshakes, concurrency, first_id, deadline)
        report["sessions"] = await paced_pings(mock, args.sessions, args.ping_seconds, deadline)
    finally:
        await asyncio.gather(*(bm.stop_process(s.proc) for s in servers), return_exceptions=True)


# ---------------------------------------------------------------- the CI suite


def measure_suite(args: argparse.Namespace) -> dict[str, Any]:
    if args.suite_json:
        data = json.loads(Path(args.suite_json).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "suite.json"
            env = dict(os.environ, IBGW_SUITE_TIMING=str(out))
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "pytest", "tests", "suites", "-q", "-p", "no:cacheprovider",
                                   "-p", "benchmarks.suite_timing"], cwd=ROOT, env=env, capture_output=True, check=False,
                                  text=True, timeout=args.suite_timeout)
            wall = time.monotonic() - started
            if not out.is_file():
                raise RuntimeError(f"the suite wrote no timing (exit {proc.returncode}): {proc.stdout[-500:]}")
            data = json.loads(out.read_text())
            data["process_wall_s"] = round(wall, 2)
            data["tail"] = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    tests = data["tests"]
    by_kind: dict[str, dict[str, float]] = {}
    for row in tests:
        k = by_kind.setdefault(row["kind"], {"tests": 0, "wall_s": 0.0, "idle_s": 0.0})
        k["tests"] += 1
        k["wall_s"] += row["wall_s"]
        k["idle_s"] += row["idle_s"]
    wall = data.get("process_wall_s", data["session_wall_s"])
    fault_wait = by_kind.get("fault", {}).get("idle_s", 0.0)
    slowest = sorted(tests, key=lambda r: -r["wall_s"])[:5]
    return {"wall_s": wall, "session_wall_s": data["session_wall_s"], "tests": len(tests),
            "exitstatus": data.get("exitstatus"), "result": data.get("tail", []),
            "by_kind": {k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in by_kind.items()},
            "fault_wait_s": round(fault_wait, 2), "fault_wait_share": round(fault_wait / wall, 3) if wall else None,
            "slowest": [(r["nodeid"], r["wall_s"], r["kind"]) for r in slowest]}


# ---------------------------------------------------------------- the table


def render(report: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    for conc, h in report["handshakes"].items():
        m, b = h["mock"], h["baseline"]
        rows.append((f"handshakes/s to API-ready, {conc} connecting at once",
                     f"mock {bm._fmt(m['handshakes_per_s'])}  bare {bm._fmt(b['handshakes_per_s'])}",
                     f"cost ratio {bm._fmt(h.get('ratio_cost_mock_over_baseline'))}x (<= 3x: {h.get('verdict', '-')}); "
                     f"server CPU ratio {bm._fmt(h.get('ratio_server_cpu_mock_over_baseline'))}x"))
    s = report.get("sessions")
    if s:
        p = s["pings"]
        rows.append((f"{s['sessions_open']}/{s['sessions_requested']} sessions, 1 ping/s each, {s['seconds']:g} s",
                     f"p50 {bm._fmt(p.get('p50_ms'), '.2f')} ms  p99 {bm._fmt(p.get('p99_ms'), '.2f')} ms",
                     f"{p['count']} pings, {s['failures']} failed, max {bm._fmt(p.get('max_ms'), '.1f')} ms; "
                     f"p99 < {P99_TARGET_MS:g} ms: {s['verdict']}"))
        rows.append(("mock RSS per open session", f"{s['rss_per_session_kib']} KiB",
                     f"RSS {s['rss_before_mib']} -> {s['rss_open_mib']} MiB ({s['sessions_open']} open), "
                     f"peak {s['rss_peak_mib']} MiB; mock CPU {100 * s['server_cpu_share']:.0f}% of a core"))
    suite = report.get("suite")
    if suite:
        rows.append(("CI suite (pytest tests suites) wall time", f"{suite['wall_s']:.1f} s",
                     f"{suite['tests']} tests; {' '.join(suite['result'])}"))
        kinds = suite["by_kind"]
        f = kinds.get("fault", {"tests": 0, "wall_s": 0, "idle_s": 0})
        rows.append(("  waiting on fault timeouts (the floor)",
                     f"{suite['fault_wait_s']:.1f} s = {100 * (suite['fault_wait_share'] or 0):.0f}%",
                     f"idle time inside {int(f['tests'])} fault tests ({f['wall_s']:.1f} s wall)"))
        sub = kinds.get("subprocess", {"tests": 0, "wall_s": 0})
        other = kinds.get("other", {"tests": 0, "wall_s": 0})
        rows.append(("  subprocess-driven tests", f"{sub['wall_s']:.1f} s", f"{int(sub['tests'])} tests (fuzz, interruption, CLI)"))
        rows.append(("  everything else (harness overhead)",
                     f"{suite['wall_s'] - suite['fault_wait_s'] - sub['wall_s']:.1f} s",
                     f"{int(other['tests'])} other tests {other['wall_s']:.1f} s, fault tests' own work "
                     f"{f['wall_s'] - f['idle_s']:.1f} s, collection and start-up"))
    elif report.get("suite_skipped"):
        rows.append(("CI suite", "skipped", report["suite_skipped"]))
    w0 = max(len(r[0]) for r in rows) if rows else 10
    w1 = max(len(r[1]) for r in rows) if rows else 10
    env = report["environment"]
    lines = [f"ibgw-harness benchmarks ({env['python']}, {env['cpus']} CPUs, {env['platform']}); not pass/fail", ""]
    lines.append(f"{'measure':<{w0}}  {'value':<{w1}}  detail")
    lines.append(f"{'-' * w0}  {'-' * w1}  {'-' * 40}")
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    for err in report["errors"]:
        lines.append(f"ERROR: {err}")
    lines.append(f"\ntotal {report['run_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--handshakes", type=int, default=300, help="handshakes per server per concurrency (default 300)")
    p.add_argument("--sessions", type=int, default=1000, help="sessions held open, each pinging 1/s (default 1000)")
    p.add_argument("--ping-seconds", type=float, default=10.0, help="how long the sessions ping (default 10)")
    p.add_argument("--deadline", type=float, default=300.0, help="budget for the mock measurements (default 300 s)")
    p.add_argument("--suite-json", help="timing JSON from an earlier `pytest -p benchmarks.suite_timing` run")
    p.add_argument("--skip-suite", action="store_true", help="do not run the CI suite")
    p.add_argument("--suite-timeout", type=float, default=1200.0)
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every number as JSON")
    args = p.parse_args(argv)
    started = time.monotonic()
    sessions, notes = bm.ensure_descriptors(args.sessions)
    args.sessions = sessions
    report: dict[str, Any] = {"environment": {"python": bm.platform.python_version(), "cpus": os.cpu_count(),
                                              "platform": bm.platform.platform(terse=True)},
                              "notes": notes, "handshakes": {}, "errors": []}
    try:
        asyncio.run(asyncio.wait_for(measure_mock(args, report), args.deadline + 60))
    except Exception as exc:
        report["errors"].append(f"mock measurements: {type(exc).__name__}: {exc}")
    if args.skip_suite:
        report["suite_skipped"] = "--skip-suite"
    else:
        try:
            report["suite"] = measure_suite(args)
        except Exception as exc:
            report["errors"].append(f"CI suite: {type(exc).__name__}: {exc}")
    failed = [k for k, h in report["handshakes"].items() for n in ("mock", "baseline") if h[n]["failed"]]
    if failed:
        report["errors"].append(f"handshake failures at concurrency {', '.join(failed)}")
    report["run_s"] = time.monotonic() - started
    print(render(report))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
