"""Mock Gateway benchmark: handshake cost against a bare baseline, and ping
latency with hundreds of sessions open at once.

    .venv/bin/python benchmarks/bench_mock.py [--handshakes 300] [--sessions 500]
        [--pings-per-session 5] [--concurrency 8] [--deadline 120] [--json PATH]

Both servers run in their own process (benchmarks/_servers.py); the client
(harness.clients.raw.RawClient) runs here, so each server gets the same
client code, the same loopback path and the same number of round trips.
See benchmarks/README.md for exactly what the baseline sends.

Exit status: 0 when the measurements completed (whether or not the 3x
target is met; the verdict is informational), 1 when a server failed to
start, a handshake or ping failed, or the run hit its deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.clients.raw import RawClient  # noqa: E402

HOST = "127.0.0.1"
SERVERS_SCRIPT = Path(__file__).resolve().parent / "_servers.py"
TARGET_RATIO = 3.0
WARMUP_HANDSHAKES = 20
BLOCK = 50  # handshakes per server before switching, so drift hits both alike
OPEN_CONCURRENCY = 32  # connects in flight while opening the ping sessions
FD_MARGIN = 64  # descriptors beyond one per session (listening socket, pipes, stdio, ...)
CONNECT_TIMEOUT = 10.0
PING_TIMEOUT = 5.0
SERVER_START_TIMEOUT = 15.0
# Client-id ranges per phase, so no phase can collide with another's ids.
SESSION_IDS = 1  # ping sessions: 1..sessions (as the issue asks)
SEQUENTIAL_IDS = 100_000
CONCURRENT_IDS = 200_000


class DeadlineReached(Exception):
    pass


@dataclass
class Deadline:
    at: float

    def left(self) -> float:
        return self.at - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise DeadlineReached(f"deadline reached during {what}")


# ---------------------------------------------------------------- server processes


@dataclass
class ServerProcess:
    kind: str
    proc: asyncio.subprocess.Process
    port: int

    async def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system), as it reports it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"cpu\n")
        await self.proc.stdin.drain()
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 5.0)).decode(errors="replace").split()
        if len(line) != 2 or line[0] != "CPU":
            raise RuntimeError(f"{self.kind} server gave no CPU reading (got {' '.join(line)!r})")
        return float(line[1])


async def start_server(kind: str, max_clients: int) -> ServerProcess:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVERS_SCRIPT), kind, "--max-clients", str(max_clients),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), SERVER_START_TIMEOUT)
        text = line.decode(errors="replace").strip()
        if not text.startswith("PORT "):
            raise RuntimeError(f"{kind} server did not announce its port (got {text!r}, "
                               f"exit status {proc.returncode})")
        return ServerProcess(kind, proc, int(text.split()[1]))
    except BaseException:
        await stop_process(proc)
        raise


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    """Close its stdin (it exits on EOF), then terminate, then kill."""
    if proc.returncode is None and proc.stdin is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 2.0)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 3.0)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# ---------------------------------------------------------------- handshakes


@dataclass
class HandshakeStats:
    done: int = 0
    failed: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    first_error: str = ""

    def add(self, other: HandshakeStats) -> None:
        self.done += other.done
        self.failed += other.failed
        self.wall_s += other.wall_s
        self.server_cpu_s += other.server_cpu_s
        self.first_error = self.first_error or other.first_error

    def summary(self) -> dict[str, Any]:
        ok = self.done > 0
        return {
            "handshakes": self.done,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 4),
            "handshakes_per_s": round(self.done / self.wall_s, 1) if ok and self.wall_s else None,
            "ms_per_handshake": round(1000 * self.wall_s / self.done, 3) if ok else None,
            "server_cpu_ms_per_handshake": round(1000 * self.server_cpu_s / self.done, 3) if ok else None,
            "first_error": self.first_error or None,
        }


async def handshake(port: int, client_id: int, deadline: Deadline) -> None:
    """One full raw-client handshake (hello, version reply, startApi,
    nextValidId + managedAccounts), then a clean disconnect."""
    client = RawClient(await_account_value=False)
    try:
        await client.connect(HOST, port, client_id, timeout=max(0.5, min(CONNECT_TIMEOUT, deadline.left())))
    finally:
        await client.disconnect()


async def handshake_block(server: ServerProcess, ids: Iterator[int], count: int, concurrency: int,
                          deadline: Deadline) -> HandshakeStats:
    stats = HandshakeStats()
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and deadline.left() > 0:
            remaining -= 1
            try:
                await handshake(server.port, next(ids), deadline)
                stats.done += 1
            except Exception as exc:  # counted and reported, never fatal mid-block
                stats.failed += 1
                stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"

    cpu0 = await server.cpu_seconds()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    stats.wall_s = time.perf_counter() - t0
    stats.server_cpu_s = await server.cpu_seconds() - cpu0
    return stats


async def compare_handshakes(mock: ServerProcess, base: ServerProcess, count: int, concurrency: int,
                             first_id: int, deadline: Deadline) -> dict[str, Any]:
    """Alternate blocks of BLOCK handshakes between the servers until each did `count`."""
    ids = iter(range(first_id, first_id + 10 * (count + WARMUP_HANDSHAKES) + 1000))
    for server in (base, mock):  # warm-up: imports, code paths, socket caches; not counted
        await handshake_block(server, ids, min(WARMUP_HANDSHAKES, count), concurrency, deadline)
    totals = {"mock": HandshakeStats(), "baseline": HandshakeStats()}
    done = 0
    truncated = False
    while done < count:
        if deadline.left() <= 0:
            truncated = True
            break
        n = min(BLOCK, count - done)
        totals["baseline"].add(await handshake_block(base, ids, n, concurrency, deadline))
        totals["mock"].add(await handshake_block(mock, ids, n, concurrency, deadline))
        done += n
    m, b = totals["mock"].summary(), totals["baseline"].summary()
    result: dict[str, Any] = {"concurrency": concurrency, "mock": m, "baseline": b}
    if truncated or m["handshakes"] + m["failed"] < count or b["handshakes"] + b["failed"] < count:
        result["truncated"] = f"deadline reached: {m['handshakes']} mock / {b['handshakes']} baseline of {count}"
    if m["ms_per_handshake"] and b["ms_per_handshake"]:
        ratio = m["ms_per_handshake"] / b["ms_per_handshake"]
        result["ratio_cost_mock_over_baseline"] = round(ratio, 2)
        result["verdict"] = "PASS" if ratio <= TARGET_RATIO else "MISS"
    if m["server_cpu_ms_per_handshake"] and b["server_cpu_ms_per_handshake"]:
        result["ratio_server_cpu_mock_over_baseline"] = round(
            m["server_cpu_ms_per_handshake"] / b["server_cpu_ms_per_handshake"], 2)
    return result


# ---------------------------------------------------------------- pings with many sessions


@dataclass
class PingStats:
    sessions_requested: int = 0
    sessions_open: int = 0
    open_failed: int = 0
    open_s: float = 0.0
    pings_sequential: list[float] = field(default_factory=list)
    pings_burst: list[float] = field(default_factory=list)
    ping_failed: int = 0
    server_cpu_s: float = 0.0
    first_error: str = ""


def percentiles(samples: list[float]) -> dict[str, Any]:
    """Nearest-rank percentiles, in milliseconds."""
    if not samples:
        return {"count": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    return {"count": len(ordered), "p50_ms": round(rank(50), 3), "p95_ms": round(rank(95), 3),
            "p99_ms": round(rank(99), 3), "max_ms": round(ordered[-1] * 1000, 3)}


async def ping_many(server: ServerProcess, sessions: int, pings_per_session: int,
                    deadline: Deadline) -> PingStats:
    """Open `sessions` raw-client sessions (client ids 1..sessions), keep them
    all open, then ping:

    * sequential: round-robin, one ping in flight at a time, `pings_per_session`
      rounds over every session (latency with N idle sessions open);
    * burst: the same number of rounds, every session pinging at once
      (latency when all N sessions are busy).
    """
    stats = PingStats(sessions_requested=sessions)
    clients: list[RawClient] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(client_id: int) -> None:
        async with gate:
            if deadline.left() <= 0:
                stats.open_failed += 1
                return
            client = RawClient(await_account_value=False)
            try:
                await client.connect(HOST, server.port, client_id,
                                     timeout=max(0.5, min(CONNECT_TIMEOUT, deadline.left())))
                clients.append(client)
            except Exception as exc:
                stats.open_failed += 1
                stats.first_error = stats.first_error or f"open: {type(exc).__name__}: {exc}"
                await client.disconnect()

    def note(exc: BaseException) -> None:
        stats.ping_failed += 1
        stats.first_error = stats.first_error or f"ping: {type(exc).__name__}: {exc}"

    async def one_ping(client: RawClient, into: list[float]) -> None:
        try:
            into.append(await client.ping(timeout=PING_TIMEOUT))
        except Exception as exc:
            note(exc)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(open_one(SESSION_IDS + i) for i in range(sessions)))
        stats.open_s = time.perf_counter() - t0
        stats.sessions_open = len(clients)
        cpu0 = await server.cpu_seconds()
        for _ in range(pings_per_session):
            for client in clients:
                if deadline.left() <= 0:
                    break
                await one_ping(client, stats.pings_sequential)
        for _ in range(pings_per_session):
            if deadline.left() <= 0:
                break
            await asyncio.gather(*(one_ping(c, stats.pings_burst) for c in clients))
        stats.server_cpu_s = await server.cpu_seconds() - cpu0
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    return stats


def ping_summary(stats: PingStats, pings_per_session: int) -> dict[str, Any]:
    n = len(stats.pings_sequential) + len(stats.pings_burst)
    expected = 2 * pings_per_session * stats.sessions_open
    summary: dict[str, Any] = {
        "sessions_requested": stats.sessions_requested,
        "sessions_open": stats.sessions_open,
        "open_failed": stats.open_failed,
        "open_s": round(stats.open_s, 3),
        "sequential": percentiles(stats.pings_sequential),
        "burst": percentiles(stats.pings_burst),
        "ping_failed": stats.ping_failed,
        "server_cpu_us_per_ping": round(1e6 * stats.server_cpu_s / n, 1) if n else None,
        "first_error": stats.first_error or None,
    }
    if n + stats.ping_failed < expected:
        summary["truncated"] = f"deadline reached: {n + stats.ping_failed} of {expected} pings sent"
    return summary


# ---------------------------------------------------------------- descriptors


def ensure_descriptors(sessions: int) -> tuple[int, list[str]]:
    """Raise RLIMIT_NOFILE's soft limit if needed (children inherit it);
    scale the session count down when even the hard limit is too low."""
    notes: list[str] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = sessions + FD_MARGIN
    if soft < need:
        new_soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(need, soft))
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            notes.append(f"raised the open-file soft limit from {soft} to {new_soft}")
            soft = new_soft
        except (ValueError, OSError) as exc:
            notes.append(f"could not raise the open-file soft limit ({soft}): {exc}")
    if soft != resource.RLIM_INFINITY and soft < need:
        scaled = max(1, soft - FD_MARGIN)
        notes.append(f"open-file limit {soft} is too low for {sessions} sessions "
                     f"(need about {need}); scaled down to {scaled} sessions")
        sessions = scaled
    return sessions, notes


# ---------------------------------------------------------------- report


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    cfg = report["config"]
    lines.append(f"mock Gateway benchmark  ({report['environment']['python']}, "
                 f"{report['environment']['cpus']} CPUs, {report['environment']['platform']})")
    lines.append(f"client: RawClient(await_account_value=False), loopback {HOST}; each server in its own process; "
                 f"mock max_clients={cfg['mock_max_clients']}")
    for note in report["notes"]:
        lines.append(f"note: {note}")
    for key, title in (("sequential", "Full handshakes, one at a time"),
                       ("concurrent", "Full handshakes, concurrent")):
        h = report["handshakes"].get(key)
        if not h:
            continue
        lines.append("")
        lines.append(f"{title} (concurrency {h['concurrency']}, {cfg['handshakes']} per server, "
                     f"+{WARMUP_HANDSHAKES} warm-up, alternating blocks of {BLOCK})")
        lines.append(f"  {'server':<10}{'done':>6}{'failed':>8}{'handshakes/s':>15}{'ms/handshake':>15}"
                     f"{'server CPU ms/hs':>18}")
        for name in ("mock", "baseline"):
            s = h[name]
            lines.append(f"  {name:<10}{s['handshakes']:>6}{s['failed']:>8}{_fmt(s['handshakes_per_s'], '.1f'):>15}"
                         f"{_fmt(s['ms_per_handshake'], '.3f'):>15}{_fmt(s['server_cpu_ms_per_handshake'], '.3f'):>18}")
        lines.append(f"  ratio mock/baseline, cost per handshake (wall): "
                     f"{_fmt(h.get('ratio_cost_mock_over_baseline'))}x"
                     f"  -> {h.get('verdict', '-')} (target <= {TARGET_RATIO:g}x)")
        lines.append(f"  ratio mock/baseline, server CPU per handshake:  "
                     f"{_fmt(h.get('ratio_server_cpu_mock_over_baseline'))}x")
        if h.get("truncated"):
            lines.append(f"  TRUNCATED: {h['truncated']}")
    for name in ("mock", "baseline"):
        p = report["pings"].get(name)
        if not p:
            continue
        lines.append("")
        lines.append(f"Ping (reqCurrentTime -> currentTime) with {p['sessions_open']} sessions open at once on the "
                     f"{name} ({p['sessions_open']}/{p['sessions_requested']} opened in {p['open_s']:.2f} s, "
                     f"{cfg['pings_per_session']} pings per session per mode)")
        lines.append(f"  {'mode':<38}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for mode, label in (("sequential", "sequential (round-robin, 1 in flight)"),
                            ("burst", f"burst (all {p['sessions_open']} at once)")):
            q = p[mode]
            lines.append(f"  {label:<38}{q['count']:>7}{_fmt(q.get('p50_ms'), '.3f'):>9}"
                         f"{_fmt(q.get('p95_ms'), '.3f'):>9}{_fmt(q.get('p99_ms'), '.3f'):>9}"
                         f"{_fmt(q.get('max_ms'), '.3f'):>9}")
        lines.append(f"  failed: open {p['open_failed']}, ping {p['ping_failed']}; "
                     f"server CPU per ping {_fmt(p['server_cpu_us_per_ping'])} us")
        if p.get("truncated"):
            lines.append(f"  TRUNCATED: {p['truncated']}")
        if p["first_error"]:
            lines.append(f"  first error: {p['first_error']}")
    for key in ("sequential", "concurrent"):
        for name in ("mock", "baseline"):
            err = report["handshakes"].get(key, {}).get(name, {}).get("first_error")
            if err:
                lines.append(f"handshake error ({key}, {name}): {err}")
    if report.get("error"):
        lines.append("")
        lines.append(f"ERROR: {report['error']}")
    lines.append("")
    lines.append(f"total run time {report['run_s']:.1f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace, report: dict[str, Any]) -> None:
    deadline = Deadline(time.monotonic() + args.deadline)
    servers: list[ServerProcess] = []
    try:
        mock = await start_server("mock", args.mock_max_clients)
        servers.append(mock)
        base = await start_server("echo", args.mock_max_clients)
        servers.append(base)
        if args.handshakes > 0:
            report["handshakes"]["sequential"] = await compare_handshakes(
                mock, base, args.handshakes, 1, SEQUENTIAL_IDS, deadline)
            if args.concurrency > 1:
                report["handshakes"]["concurrent"] = await compare_handshakes(
                    mock, base, args.handshakes, args.concurrency, CONCURRENT_IDS, deadline)
        if args.sessions > 0:
            deadline.check("ping sessions (not started)")
            report["pings"]["mock"] = ping_summary(
                await ping_many(mock, args.sessions, args.pings_per_session, deadline), args.pings_per_session)
            if not args.no_baseline_pings:
                deadline.check("baseline ping sessions (not started)")
                report["pings"]["baseline"] = ping_summary(
                    await ping_many(base, args.sessions, args.pings_per_session, deadline), args.pings_per_session)
        for s in servers:
            if s.proc.returncode is not None:
                raise RuntimeError(f"{s.kind} server exited early with status {s.proc.returncode}")
    finally:
        await asyncio.gather(*(stop_process(s.proc) for s in servers), return_exceptions=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Mock Gateway handshake cost vs a bare baseline, and ping "
                                            "latency with many sessions open.")
    p.add_argument("--handshakes", type=int, default=300, help="full handshakes per server per mode (default 300)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="handshakes in flight for the concurrent variant; 1 skips it (default 8)")
    p.add_argument("--sessions", type=int, default=500, help="sessions open at once for the ping test (default 500)")
    p.add_argument("--pings-per-session", type=int, default=5,
                   help="pings per session, per mode (sequential and burst) (default 5)")
    p.add_argument("--no-baseline-pings", action="store_true",
                   help="skip the same ping test against the baseline (context only)")
    p.add_argument("--deadline", type=float, default=120.0, help="overall time budget in seconds (default 120)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers as JSON")
    args = p.parse_args(argv)
    for name in ("handshakes", "sessions", "pings_per_session"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.concurrency < 1 or args.deadline <= 0:
        p.error("--concurrency must be >= 1 and --deadline > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    sessions, notes = ensure_descriptors(args.sessions)
    args.sessions = sessions
    # The mock's default cap is a real Gateway's 32 API clients; the ping test
    # needs every session open at once, so the benchmark's mock allows more.
    args.mock_max_clients = max(600, sessions + 100)
    report: dict[str, Any] = {
        "config": {"handshakes": args.handshakes, "concurrency": args.concurrency, "sessions": args.sessions,
                   "pings_per_session": args.pings_per_session, "deadline_s": args.deadline,
                   "warmup_handshakes": WARMUP_HANDSHAKES, "block": BLOCK,
                   "mock_max_clients": args.mock_max_clients, "target_ratio": TARGET_RATIO},
        "environment": {"python": platform.python_version(), "platform": platform.platform(terse=True),
                        "cpus": os.cpu_count(),
                        "open_file_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]},
        "notes": notes,
        "handshakes": {},
        "pings": {},
    }
    status = 0
    try:
        # Hard cap: phases stop themselves at the deadline; this catches a hang.
        asyncio.run(asyncio.wait_for(run(args, report), args.deadline + 30))
    except DeadlineReached as exc:
        report["error"] = f"{exc} (raise --deadline or lower the counts)"
        status = 1
    except (asyncio.TimeoutError, TimeoutError):
        report["error"] = f"run exceeded its hard limit of {args.deadline + 30:g} s"
        status = 1
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    failures = sum(h[n]["failed"] for h in report["handshakes"].values() for n in ("mock", "baseline"))
    failures += sum(p["open_failed"] + p["ping_failed"] for p in report["pings"].values())
    if failures and not report.get("error"):
        report["error"] = f"{failures} handshake/session/ping failures; the numbers are suspect"
        status = 1
    truncated = [f"{section} {k}" for section in ("handshakes", "pings")
                 for k, v in report[section].items() if v.get("truncated")]
    if truncated and not report.get("error"):
        report["error"] = (f"the deadline of {args.deadline:g} s cut short: {', '.join(truncated)} "
                           "(raise --deadline or lower the counts)")
        status = 1
    report["run_s"] = round(time.monotonic() - started, 2)
    report["exit_status"] = status
    print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
