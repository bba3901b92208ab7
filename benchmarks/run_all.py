"""`make bench`: the mock Gateway against a bare server, as one table (not pass/fail).

    .venv/bin/python -m benchmarks.run_all [--seconds 60 | --minutes 10] [--sizes 1000,10000]
        [--handshakes 100] [--rounds 6] [--json PATH]

What it measures, and why this way (issue 20):
* the mock exactly as a user runs it: `ibgw mock serve` in its own process
  at INFO logging (its log on a file, as a terminal would take it), also at
  --log-level warning and, when uvloop is installed, on uvloop
  (IBGW_MOCK_LOOP=uvloop); against benchmarks/bare_server.py, a
  standard-library-only asyncio server doing the same round trips;
* server CPU (user + system of the server process, psutil, i.e.
  /proc/PID/stat), never wall time, per full handshake (connect, hello,
  startApi, API-ready, close) and per ping (reqCurrentTime) as the headline;
  every server is measured in the same run, in interleaved blocks whose
  order rotates, so a loaded machine hits all alike: read the ratios;
* the session rows: N sessions (default 1,000 and 10,000) held open on a
  fresh server, each pinging once a second at a uniformly spread phase for
  --seconds, driven by benchmarks/loadworker.py (worker processes on plain
  sockets and epoll, no decoding; source addresses spread over 127.0.0.x):
  p50/p99/max ping measured from the time each ping was DUE (a late send
  cannot hide latency), missed pings (due while the previous was
  unanswered), late sends; server CPU and the share of the run it waited
  for a CPU (schedstat: the machine's load, not the server's code); the
  client side beside it (latency from the send, send lag, the busiest
  worker's CPU and wait), so a reader sees whether the client or the
  machine made the tail; RSS with the sessions open, after a minute and at
  the end; memory per idle session (RSS with N open minus before, over N)
  and per busy session (RSS at the end minus before, over N).
No test suite runs here (benchmarks/suite_timing.py times it on its own).
Bounded: every phase has a deadline, the servers and workers are stopped
whatever happens. Exit 0 when everything was measured, 1 when a
measurement failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks import loadclient as lc  # noqa: E402
from benchmarks import loadworker as lw  # noqa: E402

BARE_SCRIPT = ROOT / "benchmarks" / "bare_server.py"
START_TIMEOUT = 30.0
MAX_MOCK_CLIENTS = 10_000  # `ibgw mock serve --max-clients` allows at most this
PING_SESSIONS_IDS = 500_000
HANDSHAKE_IDS = 600_000
SESSION_IDS = 1


@dataclass
class Server:
    kind: str
    proc: asyncio.subprocess.Process
    port: int
    log: Any = None
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.proc.pid)

    def _schedstat(self, column: int) -> float | None:
        """Seconds summed over /proc/PID/task/*/schedstat's column (0: on a
        CPU, 1: runnable but waiting for one), nanosecond resolution; None
        where Linux does not have it."""
        total, found = 0, False
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(f"/proc/{self.proc.pid}/task/{task}/schedstat") as f:
                        total += int(f.read().split()[column])
                        found = True
        return total / 1e9 if found else None

    def cpu(self) -> float:
        """CPU seconds of the server process (every thread): schedstat where
        Linux has it, else psutil's user + system (10 ms ticks)."""
        on_cpu = self._schedstat(0)
        if on_cpu is not None:
            return on_cpu
        t = self.ps.cpu_times()
        return t.user + t.system

    def waited(self) -> float:
        """Seconds the server was runnable but had no CPU (the machine's
        share of its latency: other processes, our load workers); 0.0 where
        schedstat is missing."""
        return self._schedstat(1) or 0.0

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)


def _ibgw() -> list[str]:
    script = Path(sys.executable).parent / "ibgw"
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli.main"]


def server_kinds(include_uvloop: bool) -> dict[str, tuple[list[str], dict[str, str]]]:
    """kind -> (command, extra environment); the mock at INFO is the user's `ibgw mock serve`."""
    mock = [*_ibgw(), "mock", "serve", "--port", "0", "--max-clients", str(MAX_MOCK_CLIENTS)]
    kinds = {
        "mock": ([*mock, "--log-level", "info"], {"IBGW_MOCK_LOOP": "asyncio"}),
        "mock-warning": ([*mock, "--log-level", "warning"], {"IBGW_MOCK_LOOP": "asyncio"}),
        "bare": ([sys.executable, str(BARE_SCRIPT)], {}),
    }
    if include_uvloop:
        kinds["mock-uvloop"] = ([*mock, "--log-level", "info"], {"IBGW_MOCK_LOOP": "uvloop"})
        kinds["bare-uvloop"] = ([sys.executable, str(BARE_SCRIPT), "--uvloop"], {})
    return kinds


def autogroup_enabled() -> bool:
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return int(f.read().strip()) == 1
    return False


def set_priority(pid: int, nice: int) -> str:
    """Give a child (started in its own session) the scheduling weight `nice`:
    the nice of its session's autogroup, where Linux groups by session (CFS
    then shares the CPUs between sessions first, so a per-process nice alone
    changes nothing against other sessions), and its own nice. '' when done,
    else why not (the run goes on at the default weight)."""
    try:
        if autogroup_enabled():
            with open(f"/proc/{pid}/autogroup", "w") as f:
                f.write(str(nice))
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError as exc:
        return f"could not set nice {nice} on pid {pid}: {exc.strerror or exc}"
    return ""


async def start(kind: str, spec: tuple[list[str], dict[str, str]], logdir: Path, nice: int = 0) -> Server:
    """The server in its own session (so its own autogroup: it does not share
    one CPU share with the benchmark and its load workers, as a real
    Gateway does not share one with its clients)."""
    cmd, extra = spec
    log = open(logdir / f"{kind}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed in stop()
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=log, env={**os.environ, **extra}, cwd=ROOT,
                                                start_new_session=True)
    try:
        if nice and (why := set_priority(proc.pid, nice)):
            raise RuntimeError(why + "; hint: --nice needs root or CAP_SYS_NICE for a negative value, or drop it")
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)).decode(errors="replace")
        found = re.search(r"PORT (\d+)|listening on [^ ]+:(\d+)", line)
        if not found:
            raise RuntimeError(f"{kind} did not announce its port (got {line.strip()!r}, exit {proc.returncode})")
        return Server(kind, proc, int(found.group(1) or found.group(2)), log)
    except BaseException:
        await stop(Server.__new__(Server), proc, log)
        raise


async def stop(server: Server | None, proc: asyncio.subprocess.Process | None = None, log: Any = None) -> None:
    proc = proc or (server.proc if server else None)
    log = log or (server.log if server else None)
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15.0)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if log is not None:
        log.close()


# ---------------------------------------------------------------- CPU per handshake and per ping, interleaved


async def cpu_costs(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, Any]:
    kinds = list(servers)
    totals = {k: {"hs_cpu": 0.0, "hs": 0, "hs_failed": 0, "ping_cpu": 0.0, "pings": 0, "ping_failed": 0}
              for k in kinds}
    sessions: dict[str, list[lc.Conn]] = {}
    next_id = HANDSHAKE_IDS
    for k in kinds:  # warm-up, and the sessions the ping blocks use
        await lc.handshakes(servers[k].port, 10, 1, next_id)
        next_id += 10
        conns, failed = await lc.open_sessions(servers[k].port, args.ping_sessions, PING_SESSIONS_IDS)
        if failed:
            raise RuntimeError(f"{k}: could not open the ping sessions: {failed[0]}")
        sessions[k] = conns
    for r in range(args.rounds):
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]  # rotate who goes first
        for k in order:
            s, t = servers[k], totals[k]
            c0 = s.cpu()
            res = await lc.handshakes(s.port, args.handshakes, 1, next_id)
            next_id += args.handshakes
            t["hs_cpu"] += s.cpu() - c0
            t["hs"] += res["done"]
            t["hs_failed"] += res["failed"]
            c0 = s.cpu()
            res = await lc.ping_rounds(sessions[k], args.pings)
            t["ping_cpu"] += s.cpu() - c0
            t["pings"] += res["pings"]
            t["ping_failed"] += res["failed"]
    for conns in sessions.values():
        for c in conns:
            await c.close(2.0)
    out: dict[str, Any] = {}
    for k, t in totals.items():
        out[k] = {"handshake_us": round(1e6 * t["hs_cpu"] / t["hs"], 1) if t["hs"] else None,
                  "ping_us": round(1e6 * t["ping_cpu"] / t["pings"], 1) if t["pings"] else None,
                  **{n: t[n] for n in ("hs", "hs_failed", "pings", "ping_failed")}}
    return out


# ---------------------------------------------------------------- N sessions pinging once a second


async def _line(proc: asyncio.subprocess.Process, prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {prefix} line from a load worker within {timeout:g} s")
        raw = await asyncio.wait_for(proc.stdout.readline(), left)
        if not raw:
            raise RuntimeError(f"a load worker exited (status {proc.returncode}) before its {prefix} line")
        text = raw.decode(errors="replace").strip()
        if text.startswith(prefix):
            return text[len(prefix):].strip()


async def sessions_row(server: Server, n: int, seconds: float, workers: int, nice: int = 0) -> dict[str, Any]:
    rss_before = server.rss()
    share = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    procs: list[asyncio.subprocess.Process] = []
    first = SESSION_IDS
    open_timeout = 60.0 + n / 20
    try:
        for i, count in enumerate(share):
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.loadworker", "--port", str(server.port), "--count",
                str(count), "--first-id", str(first), "--seconds", str(seconds), "--src-base", str(2 + 32 * i),
                "--open-timeout", str(open_timeout), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                cwd=ROOT, start_new_session=True))  # own session: its own CPU share, not the server's
            first += count
            if nice and (why := set_priority(procs[-1].pid, nice)):
                raise RuntimeError(why)
        opened = failed_open = 0
        first_error = ""
        for p in procs:
            parts = (await _line(p, "OPEN", open_timeout + 30.0)).split(" ", 2)
            opened += int(parts[0])
            failed_open += int(parts[1])
            first_error = first_error or (json.loads(parts[2])[:1] or [""])[0]
        rss_open = server.rss()
        cpu0, wait0 = server.cpu(), server.waited()
        started = time.monotonic()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        rss_1min: int | None = None
        results: list[dict[str, Any]] = []
        waits = [asyncio.ensure_future(_line(p, "RESULT", seconds + 120.0)) for p in procs]
        while not all(w.done() for w in waits):  # an RSS reading a minute in, for the flatness goal
            await asyncio.wait(waits, timeout=1.0)
            if rss_1min is None and time.monotonic() - started >= 60.0:
                rss_1min = server.rss()
        results = [json.loads(w.result()) for w in waits]
        cpu, waited = server.cpu() - cpu0, server.waited() - wait0
        wall = time.monotonic() - started
        rss_end = server.rss()
    finally:
        for p in procs:
            if p.stdin is not None:
                with contextlib.suppress(Exception):
                    p.stdin.close()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 30.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
    return {"sessions": n, "open": opened, "open_failed": failed_open, "first_open_error": first_error,
            "seconds": seconds, "workers": workers,
            "pings": lw.merge_percentiles([r["hist"] for r in results]),  # from the due time (loadworker's doc)
            "pings_from_send": lw.merge_percentiles([r["hist_send"] for r in results]),
            "send_lag": lw.merge_percentiles([r["hist_lag"] for r in results]),
            "client_cpu_share": round(max(r["cpu_s"] / r["wall_s"] for r in results), 3) if results else None,
            "client_wait_share": round(max(r["wait_s"] / r["wall_s"] for r in results), 3) if results else None,
            "server_wait_share": round(waited / wall, 3) if wall else None,
            "missed": sum(r["missed"] for r in results),
            "late": sum(r["late"] for r in results), "failed": sum(r["failed"] for r in results),
            "cpu_share": round(cpu / wall, 3) if wall else None,
            "rss_before_mib": round(rss_before / 2**20, 1), "rss_open_mib": round(rss_open / 2**20, 1),
            "rss_1min_mib": round(rss_1min / 2**20, 1) if rss_1min else None,
            "rss_end_mib": round(rss_end / 2**20, 1),
            "idle_kib_per_session": round((rss_open - rss_before) / max(1, opened) / 1024, 1),
            "busy_kib_per_session": round((rss_end - rss_before) / max(1, opened) / 1024, 1)}


# ---------------------------------------------------------------- the run and the table


async def measure(args: argparse.Namespace, report: dict[str, Any], logdir: Path) -> None:
    kinds = server_kinds(args.uvloop)
    servers: dict[str, Server] = {}
    try:
        for k, spec in kinds.items():
            servers[k] = await start(k, spec, logdir, args.nice)
        report["cpu"] = await cpu_costs(servers, args)
    finally:
        for s in servers.values():
            await stop(s)
    for n in args.sizes:
        for k in args.session_servers:  # interleaved: each size on the mock, then on the bare server
            server = await start(k, kinds[k], logdir, args.nice)
            try:
                row = await sessions_row(server, n, args.seconds, workers=1 if n <= 2000 else 2, nice=args.nice)
                report["sessions"].append({"server": k, **row})
            except Exception as exc:  # noqa: BLE001 - reported; the next row still runs
                report["errors"].append(f"{n} sessions on {k}: {type(exc).__name__}: {exc}")
            finally:
                await stop(server)


def _f(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def render(report: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    cpu = report.get("cpu") or {}
    for what, key in (("handshake", "handshake_us"), ("ping", "ping_us")):
        for k, bare in (("mock", "bare"), ("mock-warning", "bare"), ("mock-uvloop", "bare"),
                        ("mock-uvloop", "bare-uvloop")):
            if k not in cpu or bare not in cpu:
                continue
            m, b = cpu[k][key], cpu[bare][key]
            ratio = round(m / b, 2) if m and b else None
            label = {"mock": "ibgw mock serve (INFO)", "mock-warning": "ibgw mock serve (--log-level warning)",
                     "mock-uvloop": "ibgw mock serve (INFO, uvloop)"}[k]
            rows.append((f"server CPU per {what}, {label} vs {bare}", f"{_f(m)} us vs {_f(b)} us",
                         f"ratio {_f(ratio)}x (goal <= 1.5x); {cpu[k]['hs' if what == 'handshake' else 'pings']} "
                         f"{what}s each, {cpu[k]['hs_failed' if what == 'handshake' else 'ping_failed']} failed"))
    for s in report["sessions"]:
        p = s["pings"]
        ps, lag = s["pings_from_send"], s["send_lag"]
        rows.append((f"{s['sessions']} sessions on {s['server']}, 1 ping/s, {s['seconds']:g} s",
                     f"p50 {_f(p['p50_ms'])} p99 {_f(p['p99_ms'])} max {_f(p['max_ms'])} ms",
                     f"from the due time (goal p99 < 50 ms); {s['open']}/{s['sessions']} open, {p['count']} pings, "
                     f"{s['missed']} missed, {s['late']} late (sent >100 ms after due), {s['failed']} failed; "
                     f"server CPU {_pct(s['cpu_share'])} of a core, waited for a CPU {_pct(s['server_wait_share'])}; "
                     f"RSS {s['rss_open_mib']} -> {_f(s['rss_1min_mib'])} (1 min) -> {s['rss_end_mib']} MiB"))
        rows.append((f"  client side, {s['sessions']} on {s['server']}",
                     f"from send p99 {_f(ps['p99_ms'])} max {_f(ps['max_ms'])} ms",
                     f"send lag (sent - due) p50 {_f(lag['p50_ms'])} p99 {_f(lag['p99_ms'])} max {_f(lag['max_ms'])} ms; "
                     f"{s['workers']} load worker(s), busiest at {_pct(s['client_cpu_share'])} CPU, "
                     f"waited for a CPU {_pct(s['client_wait_share'])}"))
        rows.append((f"  memory per session, {s['sessions']} on {s['server']}",
                     f"idle {s['idle_kib_per_session']} KiB, busy {s['busy_kib_per_session']} KiB",
                     f"RSS before {s['rss_before_mib']} MiB; idle goal <= 16 KiB"))
    w0 = max((len(r[0]) for r in rows), default=10)
    w1 = max((len(r[1]) for r in rows), default=10)
    env = report["environment"]
    lines = [f"ibgw-harness benchmarks ({env['python']}, {env['cpus']} CPUs, {env['platform']}); not pass/fail",
             f"machine load (1/5/15 min) at start {env['load_start']}, at end {env.get('load_end')}; "
             "CPU figures are noisy on a shared machine: read the ratios (interleaved in one run)",
             f"scheduling: each server and load worker in its own session; nice {env.get('nice', 0)} "
             f"({'autogroup' if env.get('autogroup') else 'per process'}); 'waited for a CPU' = runnable but "
             "not running (other processes' load), from /proc/PID/schedstat", env.get("loops", ""), ""]
    lines.append(f"{'measure':<{w0}}  {'value':<{w1}}  detail")
    lines.append(f"{'-' * w0}  {'-' * w1}  {'-' * 40}")
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines += [f"ERROR: {e}" for e in report["errors"]]
    lines.append(f"\ntotal {report['run_s']:.0f} s")
    return "\n".join(lines)


def _loops_line(found: bool, measured: bool) -> str:
    """What the table says about uvloop: its rows come by themselves when it is installed."""
    if measured:
        from importlib.metadata import version

        return f"event loops: asyncio and uvloop {version('uvloop')} (installed, so its rows are measured too)"
    if found:
        return "event loops: asyncio only (uvloop installed, rows skipped by --no-uvloop)"
    return "event loops: asyncio only (uvloop not installed: pip install 'ibgw-harness[fast]' adds its rows)"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="session counts for the session rows (default 1000,10000)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long each session row pings (default 60)")
    p.add_argument("--minutes", type=float, default=None, help="the same in minutes (the full run: --minutes 10)")
    p.add_argument("--handshakes", type=int, default=100, help="handshakes per server per round (default 100)")
    p.add_argument("--ping-sessions", type=int, default=20, help="sessions pinging in the CPU-per-ping blocks")
    p.add_argument("--pings", type=int, default=25, help="pings per session per round (default 25)")
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds of every server (default 6)")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                   help="skip the uvloop rows (they run only when uvloop is installed)")
    p.add_argument("--session-servers", default="mock,bare",
                   help="servers the session rows run on (default mock,bare; e.g. mock for a long RSS run)")
    p.add_argument("--nice", type=int, default=0,
                   help="scheduling weight of the servers and load workers (default 0; e.g. -10 on a shared "
                        "machine, as root: measures the server rather than the neighbours; said in the header)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every number as JSON")
    args = p.parse_args(argv)
    if args.minutes is not None:
        args.seconds = args.minutes * 60
    args.sizes = [int(x) for x in str(args.sizes).split(",") if x.strip()]
    args.session_servers = [k for k in ("mock", "bare") if k in str(args.session_servers).split(",")]
    uvloop_found = importlib.util.find_spec("uvloop") is not None
    args.uvloop = args.uvloop and uvloop_found
    notes: list[str] = []
    limit = lc.raise_fd_limit(max(args.sizes, default=0) * 2 + 1024)  # the servers inherit it
    too_big = [n for n in args.sizes if n > min(MAX_MOCK_CLIENTS, limit - 512)]
    if too_big:
        notes.append(f"sizes {too_big} over the descriptor limit {limit} or the mock's cap: skipped")
        args.sizes = [n for n in args.sizes if n not in too_big]
    started = time.monotonic()
    report: dict[str, Any] = {"environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                              "platform": platform.platform(terse=True), "load_start": _load(),
                                              "nice": args.nice, "autogroup": autogroup_enabled()},
                              "sessions": [], "errors": [], "notes": notes}
    report["environment"]["loops"] = _loops_line(uvloop_found, args.uvloop)
    budget = 600.0 + len(args.sizes) * 2 * (args.seconds + 300.0)
    with tempfile.TemporaryDirectory(prefix="ibgw-bench-") as tmp:
        try:
            asyncio.run(asyncio.wait_for(measure(args, report, Path(tmp)), budget))
        except Exception as exc:  # noqa: BLE001 - reported in the table, exit 1
            report["errors"].append(f"{type(exc).__name__}: {exc}")
    report["environment"]["load_end"] = _load()
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
