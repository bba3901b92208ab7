"""Scenario: the soak. Connection health over an hour (or a night), with a
fault schedule, recovery timing and resource trends.

Why: the failures that cost the most only show after hours: new handshakes
stop completing while old connections live on, the daily restart, socket
forwarders timing out idle connections, CLOSE_WAIT sockets piling up, a
client that leaks memory on every reconnect (public reports: UnusualAlpha/
ib-gateway-docker#52 and gnzsnz/ib-gateway-docker#77 for forwarders timing out,
ml4t/live PR#87 for new handshakes stopping mid-soak, gnzsnz/ib-gateway-docker#15
and rust-ibapi#356 for the nightly reset, gnzsnz/ib-gateway-docker#37 for the
sporadic disconnect after hours). For DURATION this keeps one
connection per chosen client alive through the harness's reconnecting
client, pings it (reqCurrentTime) at a fixed rate, keeps its account-update
stream open (every adapter subscribes on connect), opens a fresh probe
connection on an unused client id now and then, and injects the schedule's
faults.

Evidence is written as JSON Lines WHILE it runs, one flushed line per event
and per interval, so a soak killed after 50 minutes leaves 50 minutes of
evidence; the verdict (an Evidence record) and a summary line come at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import psutil

from ..clients import make_client
from ..clients.base import HandshakeError
from ..clients.readiness import connect_until_ready
from ..clients.reconnecting import Backoff, LinkEvent, NotConnected, ReconnectingClient
from ..core.record import FAILED, PASSED, Evidence
from ..core.redact import redact_tree
from ..targets.base import Endpoint
from ..targets.sockets import SocketTableUnavailable, close_wait_count
from .soak_schedule import KINDS, FaultStep, check_schedule, inject

log = logging.getLogger("harness.scenarios.soak")

SCENARIO = "soak"
# failed_phase of a run whose only failure is its own configuration (too short to judge a recovery)
CONFIG_PHASE = "soak configuration"
PROBE_ID_RANGE = (700, 899)  # fresh-probe client ids, cycled; persistent ids stay below


def raise_if_cancelled() -> None:
    """Raise CancelledError when this task was cancelled but an await swallowed it.

    Why: on Python 3.11 asyncio.wait_for returns the awaited result instead of
    raising when the reply and the cancellation land in the same loop
    iteration (CPython bpo-42130, gh-86296; wait_for was rewritten in 3.12).
    Every client's ping is a wait_for on a reply, so on a loaded machine a
    SIGTERM could vanish inside one and the ping loop ran on to the end of
    --duration: the soak ignored SIGTERM (killed with -9 by whoever waited).
    A loop that checks this after each round trip stops at once instead.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class SoakConfig:
    """What to run and what counts as passing. Defaults suit the one-hour soak."""

    duration: float = 3600.0
    clients: tuple[str, ...] = ("raw", "ib_async")
    client_id_base: int = 41  # persistent connections use base, base+1, ...
    probe_id_range: tuple[int, int] = PROBE_ID_RANGE  # fresh probes cycle through these, skipping persistent ids
    ping_interval: float = 1.0
    ping_timeout: float = 2.0
    probe_interval: float = 30.0
    probe_timeout: float = 10.0
    interval: float = 10.0  # seconds per JSON Lines interval record
    # ib_async's connectAsync waits out its whole timeout after error 326 (a
    # stuck client id), so this bounds how long each reconnect attempt can hang.
    connect_timeout: float = 5.0
    reconnect: bool = True
    backoff_cap: float = 5.0
    dead_after_missed_pings: int = 3
    schedule: list[FaultStep] = field(default_factory=list)
    # fault lengths in a schedule text are multiplied by this (soak_schedule.parse_schedule): a test
    # plays the 75 s auto-restart at 0.05
    time_scale: float = 1.0
    # pass criteria
    # a ping gap may exceed the longest injected outage by this much: the backoff cap, a
    # ping interval and a connect must fit in it
    gap_margin: float = 15.0
    recovery_bound: float = 15.0  # ready again within this many seconds after the injected outage ended
    rss_growth_mb: float = 64.0  # RSS growth allowed from the end of the first interval to the end
    fd_growth: int = 32  # open-file-descriptor growth allowed over the same span
    probe_min_rate: float = 0.9  # fresh-probe success rate, probes outside fault windows only
    close_wait_settle: float = 10.0  # how long CLOSE_WAIT may take to return to baseline at the end

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schedule"] = [s.text() for s in self.schedule]
        return data


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class JsonLines:
    """Append-only JSON Lines, each line flushed and fsynced as written: the
    file is the soak's evidence even if the process is killed mid-run."""

    def __init__(self, path: Path, accounts: tuple[str, ...] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.accounts = accounts
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps(redact_tree(record, self.accounts), default=str, sort_keys=True) + "\n")
        self._file.flush()
        with contextlib.suppress(OSError):
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class _ClientRun:
    """One persistent connection under the soak: its reconnecting client,
    its ping loop and the figures of the current interval."""

    def __init__(self, name: str, client: ReconnectingClient, origin: float) -> None:
        self.name = name
        self.client = client
        self.origin = origin
        self.latencies: list[float] = []  # this interval, seconds
        self.missed = 0
        self.missed_reasons: dict[str, int] = {}
        self.pings = 0
        # Where the current gap began: the last answer, or the first ping before any answer. A client
        # whose pings were never answered (never connected, or a Gateway that answers nothing after the
        # handshake) has a gap from its first ping on; measured from the first answer only, it had none,
        # and the ping-gap check passed for it.
        self.gap_from: float | None = None
        self.max_gap = 0.0  # whole run, seconds between consecutive answered pings (or the first ping)
        self.interval_max_gap = 0.0
        self.gaps: list[tuple[float, float]] = []  # (start, end) soak-relative, gaps over 2 ping intervals
        self.total_pings = 0
        self.total_missed = 0
        self.account_updates_mark = 0

    def record_ping(self, at: float, latency: float | None, reason: str = "") -> None:
        self.pings += 1
        self.total_pings += 1
        if self.gap_from is None:
            self.gap_from = at
        if latency is None:
            self.missed += 1
            self.total_missed += 1
            self.missed_reasons[reason] = self.missed_reasons.get(reason, 0) + 1
            return
        self.latencies.append(latency)
        now = at + latency
        gap = now - self.gap_from
        self.max_gap = max(self.max_gap, gap)
        self.interval_max_gap = max(self.interval_max_gap, gap)
        self.gap_from = now

    def open_gap(self, now: float) -> float:
        """Seconds since the last answered ping, or since the first ping when none was answered
        (an outage still going on); 0 before any ping."""
        return 0.0 if self.gap_from is None else now - self.gap_from

    def interval_record(self, now: float, events: list[LinkEvent]) -> dict[str, Any]:
        lat = sorted(self.latencies)
        ms = (lambda v: None if v is None else round(v * 1000, 3))
        mine = [e for e in events if e.client == self.name]
        record = {
            "connected": self.client.connected, "pings": self.pings, "ok": len(lat), "missed": self.missed,
            "missed_reasons": dict(self.missed_reasons),
            "p50_ms": ms(_percentile(lat, 0.50)), "p95_ms": ms(_percentile(lat, 0.95)),
            "p99_ms": ms(_percentile(lat, 0.99)), "max_ms": ms(lat[-1] if lat else None),
            "max_gap_s": round(max(self.interval_max_gap, self.open_gap(now)), 3),
            "disconnects": sum(e.kind == "disconnected" for e in mine),
            "reconnect_s": [e.duration_s for e in mine if e.kind == "recovered"],
            "failed_attempts": sum(e.kind == "reconnect_attempt_failed" for e in mine),
            "data_outage": self.client.data_outage is not None,
            "account_updates": self.client.account_updates - self.account_updates_mark,
        }
        self.latencies, self.missed, self.missed_reasons, self.pings = [], 0, {}, 0
        self.interval_max_gap = 0.0
        self.account_updates_mark = self.client.account_updates
        return record


@dataclass
class _Probe:
    at: float  # soak-relative start
    client: str
    client_id: int
    ok: bool
    seconds: float
    cause: str = ""


class Soak:
    """One soak run. `run()` returns the verdict; everything it measured is
    in the JSON Lines file as it happened."""

    def __init__(self, config: SoakConfig, endpoint: Endpoint, out_dir: Path, *, mock: Any = None,
                 proxy: Any = None, container: Any = None, connect_endpoint: Endpoint | None = None,
                 progress: Callable[[dict[str, Any]], None] | None = None,
                 client_factory: Callable[[str], Any] | None = None,
                 stop_when: Callable[[], str | None] | None = None) -> None:
        self.config = config
        self.endpoint = endpoint  # the Gateway (CLOSE_WAIT is counted on its port)
        self.connect_endpoint = connect_endpoint or endpoint  # where clients connect (the proxy, if any)
        self.out_dir = out_dir
        self.mock = mock
        self.proxy = proxy
        self.container = container  # a ContainerTarget: `docker restart` is its fault
        self.progress = progress
        # Checked at every reporting interval: a reason to end the soak now
        # (a live run's proxy withheld a non-paper account), else None.
        self.stop_when = stop_when
        self.make = client_factory or (lambda name: make_client(name))
        check_schedule(config.schedule, has_mock=mock is not None, has_proxy=proxy is not None,
                       has_container=container is not None, duration=config.duration,
                       recovery_bound=config.recovery_bound)
        self.jsonl = JsonLines(out_dir / "soak.jsonl", tuple(getattr(getattr(mock, "model", None),
                                                                     "account_ids", ()) or ()))
        self.origin = time.monotonic()
        self.runs: list[_ClientRun] = []
        self.events: list[LinkEvent] = []
        self._interval_events: list[LinkEvent] = []
        self.probes: list[_Probe] = []
        self._interval_probes: list[_Probe] = []
        self.intervals: list[dict[str, Any]] = []
        self.process = psutil.Process()
        self.baseline: dict[str, Any] = {}
        self.aborted: str | None = None
        self._probe_ids: Iterator[int] = iter(())

    # ------------------------------------------------------------ helpers

    def t(self, monotonic: float | None = None) -> float:
        return round((time.monotonic() if monotonic is None else monotonic) - self.origin, 3)

    def _resources(self) -> dict[str, Any]:
        try:
            close_wait: int | None = close_wait_count(self.endpoint.port)
        except SocketTableUnavailable:
            close_wait = None
        return {"rss_mb": round(self.process.memory_info().rss / 2**20, 2), "fds": self.process.num_fds(),
                "close_wait": close_wait}

    def _on_link_event(self, event: LinkEvent) -> None:
        self.events.append(event)
        self._interval_events.append(event)
        record = {"type": "event", **event.to_dict(), "t": self.t(event.t)}  # soak-relative, not monotonic
        self.jsonl.write(record)

    def _fault_event(self, kind: str, step: FaultStep, detail: str = "") -> None:
        self.jsonl.write({"type": "event", "t": self.t(), "wall": _now_iso(), "kind": kind, "client": None,
                          "fault": step.kind, "seconds": step.seconds, "detail": detail})

    def _fault_phase(self, step: FaultStep, name: str) -> None:
        """One named step of a multi-step fault (the nightly reset's 1100s, farms, 1102), kept on the step
        and in the JSON Lines so the evidence shows each phase."""
        step.phases.append({"t": round(self.t(), 3), "phase": name})
        self._fault_event("fault_phase", step, name)

    # ------------------------------------------------------------ run

    async def run(self) -> Evidence:
        cfg = self.config
        self.baseline = self._resources()
        self.jsonl.write({"type": "start", "t": 0.0, "wall": _now_iso(), "config": cfg.to_dict(),
                          "target": self.endpoint.to_dict(), "connect_to": f"{self.connect_endpoint.host}:"
                          f"{self.connect_endpoint.port}", "baseline": self.baseline, "pid": os.getpid()})
        tasks: list[asyncio.Task[Any]] = []
        try:
            for i, name in enumerate(cfg.clients):
                rc = ReconnectingClient(functools.partial(self.make, name), self.connect_endpoint, cfg.client_id_base + i,
                                        name=name, connect_timeout=cfg.connect_timeout,
                                        backoff=Backoff(cap=cfg.backoff_cap, seed=i), reconnect=cfg.reconnect,
                                        dead_after_missed_pings=cfg.dead_after_missed_pings)
                rc.subscribe(self._on_link_event)
                self.runs.append(_ClientRun(name, rc, self.origin))
                await rc.start()
            persistent = {cfg.client_id_base + i for i in range(len(cfg.clients))}
            self._probe_ids = _cycle_ids(cfg.probe_id_range, persistent)
            end = self.origin + cfg.duration
            tasks = [asyncio.create_task(self._ping_loop(run, end)) for run in self.runs]
            tasks.append(asyncio.create_task(self._probe_loop(end)))
            tasks.append(asyncio.create_task(self._fault_loop(end)))
            await self._interval_loop(end)
        except asyncio.CancelledError:
            self.aborted = "cancelled (SIGTERM or Ctrl-C)"
            raise
        except HandshakeError as exc:
            # Behind the proxy a dead Gateway looks like "closed before the version reply"; say what the proxy saw.
            behind = getattr(self.proxy, "upstream_unreachable", None)
            self.aborted = f"a persistent connection never came up: {behind or exc}"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            evidence = await asyncio.shield(self._finish())
        return evidence

    async def _ping_loop(self, run: _ClientRun, end: float) -> None:
        """Fixed-rate pings: tick n is at origin + n * interval, so a slow
        ping never shifts the schedule (and missed ticks are counted)."""
        cfg = self.config
        tick = 0
        while True:
            tick += 1
            at = self.origin + tick * cfg.ping_interval
            if at >= end:
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))  # the fixed ping rate
            started = time.monotonic()
            try:
                # A ping may outlast its tick (the next one then starts late, never twice at once).
                latency = await run.client.ping(cfg.ping_timeout)
            except NotConnected:
                run.record_ping(started, None, "not connected")
            except TimeoutError:
                run.record_ping(started, None, "timeout")
            except Exception as exc:  # a library error is a missed ping, never the end of the soak
                run.record_ping(started, None, type(exc).__name__)
            else:
                run.record_ping(started, latency)
            raise_if_cancelled()

    async def _probe_loop(self, end: float) -> None:
        cfg = self.config
        n = 0
        while True:
            n += 1
            at = self.origin + n * cfg.probe_interval
            if at + cfg.probe_timeout >= end:
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))  # the probe rate
            name = cfg.clients[(n - 1) % len(cfg.clients)]
            client_id = next(self._probe_ids)
            client = self.make(name)
            started = time.monotonic()
            try:
                await connect_until_ready(client, self.connect_endpoint, client_id, timeout=cfg.probe_timeout)
                probe = _Probe(self.t(started), name, client_id, True, round(time.monotonic() - started, 3))
            except HandshakeError as exc:
                probe = _Probe(self.t(started), name, client_id, False, round(time.monotonic() - started, 3),
                               f"{exc.phase}: {exc.cause}")
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()
            self.probes.append(probe)
            self._interval_probes.append(probe)
            raise_if_cancelled()
            if not probe.ok:
                self.jsonl.write({"type": "event", "t": probe.at, "wall": _now_iso(), "kind": "probe_failed",
                                  "client": name, "client_id": client_id, "detail": probe.cause})

    async def _fault_loop(self, end: float) -> None:
        for step in self.config.schedule:
            await asyncio.sleep(max(0.0, self.origin + step.at - time.monotonic()))  # the scheduled offset
            step.started = self.t()
            self._fault_event("fault_start", step, KINDS_HELP.get(step.kind, ""))
            try:
                await inject(step, mock=self.mock, proxy=self.proxy, container=self.container,
                             phase=functools.partial(self._fault_phase, step))
            except asyncio.CancelledError:
                # The soak ended (or was stopped) mid-fault: the fault's outage lasted until now, which the
                # verdict needs to know (a container restart takes what it takes, perhaps past the run's end).
                step.ended = self.t()
                self._fault_event("fault_end", step, "cut off: the soak ended while the fault ran")
                raise
            except Exception as exc:  # recorded; the verdict names it
                step.error = f"{type(exc).__name__}: {exc}"
                log.exception("soak fault %s failed", step.text())
            step.ended = self.t()
            self._fault_event("fault_end", step, step.error or "")
            raise_if_cancelled()

    async def _interval_loop(self, end: float) -> None:
        n = 0
        while True:
            n += 1
            boundary = min(end, self.origin + n * self.config.interval)
            await asyncio.sleep(max(0.0, boundary - time.monotonic()))  # the reporting interval
            self._write_interval(boundary)
            if boundary >= end:
                return
            stop = self.stop_when() if self.stop_when is not None else None
            if stop:
                self.aborted = stop
                return

    def _write_interval(self, boundary: float) -> None:
        now = time.monotonic()
        events, self._interval_events = self._interval_events, []
        probes, self._interval_probes = self._interval_probes, []
        record = {"type": "interval", "t": self.t(boundary), "wall": _now_iso(),
                  "t_start": self.intervals[-1]["t"] if self.intervals else 0.0,
                  "clients": {run.name: run.interval_record(now, events) for run in self.runs},
                  "probes": {"attempts": len(probes), "ok": sum(p.ok for p in probes),
                             "failed": [p.cause for p in probes if not p.ok]},
                  **self._resources()}
        self.intervals.append(record)
        self.jsonl.write(record)
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress(self._live_figures(record))

    def _live_figures(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"t": record["t"], "duration": self.config.duration,
                "clients": {name: {k: c.get(k) for k in ("connected", "p50_ms", "p99_ms", "missed", "max_gap_s",
                                                           "data_outage")}
                            for name, c in record["clients"].items()},
                "disconnects": sum(e.kind == "disconnected" for e in self.events),
                "recoveries": sum(e.kind == "recovered" for e in self.events),
                "probes_ok": sum(p.ok for p in self.probes), "probes": len(self.probes),
                "rss_mb": record["rss_mb"], "fds": record["fds"], "close_wait": record["close_wait"]}

    # ------------------------------------------------------------ verdict

    async def _finish(self) -> Evidence:
        from .zombie import settled_close_wait

        cfg = self.config
        end_t = self.t()
        connected_at_end = {run.name: run.client.connected for run in self.runs}
        outages = {run.name: [o.to_dict(self.origin) for o in run.client.outages] for run in self.runs}
        for run in self.runs:
            await run.client.close()
        close_wait_end: int | None = None
        if self.baseline.get("close_wait") is not None:
            with contextlib.suppress(SocketTableUnavailable):
                close_wait_end = await settled_close_wait(self.endpoint.port, self.baseline["close_wait"],
                                                          cfg.close_wait_settle)
        resources = self._resources()
        evidence = self._verdict(end_t, connected_at_end, outages, close_wait_end, resources)
        summary = {"type": "summary", "t": end_t, "wall": _now_iso(), "outcome": evidence.outcome,
                   "aborted": self.aborted, "cause": evidence.cause, "checks": evidence.checks,
                   "measurements": evidence.measurements, "outages": outages,
                   "faults": [s.to_dict() for s in cfg.schedule], "intervals": len(self.intervals),
                   "probes": {"attempts": len(self.probes), "ok": sum(p.ok for p in self.probes)}}
        self.jsonl.write(summary)
        self.jsonl.close()
        return evidence

    def _verdict(self, end_t: float, connected_at_end: dict[str, bool], outages: dict[str, list[dict[str, Any]]],
                 close_wait_end: int | None, resources: dict[str, Any]) -> Evidence:
        cfg = self.config
        evidence = Evidence(scenario=SCENARIO, target=self.endpoint.to_dict(),
                            client={"name": ",".join(cfg.clients), "clients": list(cfg.clients)},
                            parameters=cfg.to_dict())
        first = next((run.client.result for run in self.runs if run.client.result is not None), None)
        evidence.server_version = first.server_version if first is not None else None
        causes: list[str] = []
        ran = [s for s in cfg.schedule if s.started is not None]
        conn_faults = [s for s in ran if s.breaks_connection]
        longest = max((s.window()[1] - s.window()[0] for s in ran), default=0.0)
        m = evidence.measurements
        m["duration_s"] = end_t
        m["injected_faults_count"] = len(ran)
        m["longest_injected_outage_s"] = round(longest, 3)

        j = _Judging(evidence, causes, end_t, outages, connected_at_end, close_wait_end, resources, ran, conn_faults,
                     longest)
        for check in (self._check_recovered, self._check_ping_gap, self._check_recovery_bound,
                      self._check_data_restored, self._check_fresh_probes, self._check_close_wait,
                      self._check_resources, self._check_schedule_ran):
            check(j)  # each sets its evidence.checks entry, its measurements and its causes
        need, recoveries = j.need, j.recoveries

        total_pings = sum(run.total_pings for run in self.runs)
        m["pings_count"] = total_pings
        m["missed_pings_count"] = sum(run.total_missed for run in self.runs)
        lat = sorted(x for rec in self.intervals for c in rec["clients"].values() for x in [c["p50_ms"]] if x)
        if lat:
            m["ping_p50_of_intervals_ms"] = _percentile(lat, 0.5) or 0.0
        evidence.details = {"outages": outages, "recoveries": recoveries,
                            "faults": [s.to_dict() for s in cfg.schedule],
                            "probes_failed": [asdict(p) for p in self.probes if not p.ok][:50],
                            "jsonl": str(self.jsonl.path), "aborted": self.aborted}
        if self.aborted:
            causes.insert(0, f"soak aborted: {self.aborted}")
        evidence.outcome = PASSED if not causes and all(evidence.checks.values()) else FAILED
        if evidence.outcome == FAILED:
            failing = [k for k, v in evidence.checks.items() if not v]
            evidence.failed_phase = CONFIG_PHASE if failing == ["room_to_recover"] else "soak"
            evidence.cause = "; ".join(causes) or "a check failed: " + ", ".join(failing)
            evidence.hint = _hint(evidence.checks, cfg, self.aborted, need)
        evidence.finish()
        # The record's duration is the run's, not the few ms the verdict took to build.
        evidence.duration_s = round(end_t, 3)
        return evidence

    def _check_recovered(self, j: _Judging) -> None:
        """Check 1: every connection outage recovered, every client up at the end. A client still
        reconnecting when the run ended less than the recovery bound after its fault was not given the time
        the bound allows: that is the run's configuration failing (too short for its schedule), not the
        Gateway."""
        cfg, evidence, causes = self.config, j.evidence, j.causes
        end_t, outages, connected_at_end, conn_faults = j.end_t, j.outages, j.connected_at_end, j.conn_faults
        unrecovered = [(name, o) for name, os_ in outages.items() for o in os_
                       if o["kind"] == "connection" and o["end_s"] is None]
        cut_short = j.cut_short
        for name, o in unrecovered:
            fault = _matching_fault(conn_faults, o["start_s"]) if cfg.reconnect else None
            if fault is not None and end_t - fault.window()[1] < cfg.recovery_bound:
                cut_short[name] = (o, fault)
        unrecovered = [(name, o) for name, o in unrecovered if name not in cut_short]
        down_at_end = [name for name, up in connected_at_end.items() if not up and name not in cut_short]
        evidence.checks["recovered"] = not unrecovered and not down_at_end and self.aborted is None
        evidence.checks["room_to_recover"] = not cut_short
        for name, o in unrecovered:
            off = "" if cfg.reconnect else " (the reconnecting client is switched off)"
            causes.append(f"{name}: disconnected at {o['start_s']:.1f} s ({o['cause']}) and never recovered{off}")
        for name, (o, fault) in cut_short.items():
            causes.append(f"{name}: disconnected at {o['start_s']:.1f} s ({o['cause']}); the run ended "
                          f"{end_t - fault.window()[1]:.1f} s after the {fault.kind} fault, before the recovery "
                          f"bound of {cfg.recovery_bound:g} s")
        j.need = max((fault.window()[1] + cfg.recovery_bound for _, fault in cut_short.values()), default=0.0)

    def _check_ping_gap(self, j: _Judging) -> None:
        """Check 2: ping gaps against the longest injected outage."""
        cfg, evidence, causes, m = self.config, j.evidence, j.causes, j.evidence.measurements
        end_t, longest, cut_short = j.end_t, j.longest, j.cut_short
        allowed_gap = longest + cfg.gap_margin
        # A gap still open at the end counts, except where the run was cut short (judged above).
        worst = {run.name: round(max(run.max_gap, 0.0 if run.name in cut_short else run.open_gap(self.origin + end_t)),
                                 3) for run in self.runs}
        for name, gap in worst.items():
            m[f"{name}_max_ping_gap_s"] = gap
        evidence.checks["ping_gap"] = all(gap <= allowed_gap for gap in worst.values())
        for name, gap in worst.items():
            if gap > allowed_gap:
                causes.append(f"{name}: a {gap:.1f} s ping gap, more than the longest injected outage "
                              f"({longest:.1f} s) plus the {cfg.gap_margin:g} s margin")

    def _check_recovery_bound(self, j: _Judging) -> None:
        """Check 3: recovery within the bound after the injected outage ended; no outage without a fault."""
        cfg, evidence, causes, m = self.config, j.evidence, j.causes, j.evidence.measurements
        outages, conn_faults = j.outages, j.conn_faults
        recoveries = j.recoveries
        unexpected: list[str] = []
        for name, os_ in outages.items():
            for o in os_:
                if o["kind"] != "connection" or o["end_s"] is None:
                    continue
                fault = _matching_fault(conn_faults, o["start_s"])
                after = o["end_s"] - (fault.window()[1] if fault else o["start_s"])
                recoveries.append({"client": name, "fault": fault.kind if fault else None,
                                   "outage_s": o["duration_s"], "after_fault_end_s": round(max(0.0, after), 3)})
                if fault is None:
                    unexpected.append(f"{name} at {o['start_s']:.1f} s ({o['cause']})")
        late = [r for r in recoveries if r["after_fault_end_s"] > cfg.recovery_bound]
        evidence.checks["recovery_bound"] = not late
        for r in late:
            causes.append(f"{r['client']}: ready again {r['after_fault_end_s']:.1f} s after the {r['fault']} "
                          f"outage ended (bound {cfg.recovery_bound:g} s)")
        evidence.checks["no_unexpected_disconnects"] = not unexpected
        if unexpected:
            causes.append(f"disconnects no fault explains: {'; '.join(unexpected[:5])}")
        if recoveries:
            m["max_recovery_after_fault_s"] = max(r["after_fault_end_s"] for r in recoveries)
            m["max_outage_s"] = max(r["outage_s"] for r in recoveries)
        m["disconnects_count"] = sum(e.kind == "disconnected" for e in self.events)
        m["recoveries_count"] = len(recoveries)

    def _check_data_restored(self, j: _Judging) -> None:
        """Check 4: data outages (1100) ended with 1101/1102."""
        evidence, causes, m = j.evidence, j.causes, j.evidence.measurements
        outages = j.outages
        data = [(name, o) for name, os_ in outages.items() for o in os_ if o["kind"] == "data"]
        evidence.checks["data_restored"] = all(o["end_s"] is not None for _, o in data)
        for name, o in data:
            if o["end_s"] is None:
                causes.append(f"{name}: connectivity lost (1100) at {o['start_s']:.1f} s and never restored")
        m["data_outages_count"] = len(data)

    def _check_fresh_probes(self, j: _Judging) -> None:
        """Check 5: fresh probes outside fault windows."""
        cfg, evidence, causes, m = self.config, j.evidence, j.causes, j.evidence.measurements
        ran = j.ran
        windows = [(s.window()[0] - cfg.probe_timeout, s.window()[1] + cfg.recovery_bound) for s in ran]
        clean = [p for p in self.probes if not any(a <= p.at <= b for a, b in windows)]
        rate = (sum(p.ok for p in clean) / len(clean)) if clean else 1.0
        m["probes_count"] = len(self.probes)
        m["probes_clean_count"] = len(clean)
        m["probe_success_rate"] = round(rate, 4)
        evidence.checks["fresh_probes"] = rate >= cfg.probe_min_rate
        if rate < cfg.probe_min_rate:
            failed = [p.cause for p in clean if not p.ok]
            causes.append(f"fresh probes outside fault windows succeeded {rate:.0%} (< {cfg.probe_min_rate:.0%}): "
                          f"{failed[0] if failed else ''}")

    def _check_close_wait(self, j: _Judging) -> None:
        """Check 6: CLOSE_WAIT back to baseline."""
        evidence, causes, m = j.evidence, j.causes, j.evidence.measurements
        close_wait_end = j.close_wait_end
        base_cw = self.baseline.get("close_wait")
        m["close_wait_baseline_count"] = -1 if base_cw is None else base_cw
        m["close_wait_end_count"] = -1 if close_wait_end is None else close_wait_end
        # close_wait_end is measured only when the baseline was (close-wait settling needs both)
        evidence.checks["close_wait_baseline"] = close_wait_end is None or base_cw is None or close_wait_end <= base_cw
        if close_wait_end is not None and base_cw is not None and close_wait_end > base_cw:
            causes.append(f"{close_wait_end} CLOSE_WAIT sockets on port {self.endpoint.port} at the end "
                          f"(baseline {base_cw})")

    def _check_resources(self, j: _Judging) -> None:
        """Check 7: resources, growth from the end of the first interval (after warm-up) to the end."""
        cfg, evidence, causes, m = self.config, j.evidence, j.causes, j.evidence.measurements
        resources = j.resources
        start_res = self.intervals[0] if self.intervals else self.baseline
        rss_growth = resources["rss_mb"] - start_res["rss_mb"]
        fd_growth = resources["fds"] - start_res["fds"]
        m["rss_start_mb"], m["rss_end_mb"] = start_res["rss_mb"], resources["rss_mb"]
        m["rss_growth_mb"], m["fd_growth_count"] = round(rss_growth, 2), fd_growth
        evidence.checks["rss_bounded"] = rss_growth <= cfg.rss_growth_mb
        evidence.checks["fds_bounded"] = fd_growth <= cfg.fd_growth
        if rss_growth > cfg.rss_growth_mb:
            causes.append(f"RSS grew {rss_growth:.1f} MB (bound {cfg.rss_growth_mb:g} MB)")
        if fd_growth > cfg.fd_growth:
            causes.append(f"open file descriptors grew by {fd_growth} (bound {cfg.fd_growth})")

    def _check_schedule_ran(self, j: _Judging) -> None:
        """Check 8: the schedule itself ran (a fault that failed to inject proves nothing)."""
        cfg, evidence, causes = self.config, j.evidence, j.causes
        not_run = [s for s in cfg.schedule if s.started is None or s.error]
        evidence.checks["schedule_ran"] = not not_run or self.aborted is not None
        for s in not_run:
            if self.aborted is None:
                causes.append(f"fault {s.text()} did not run: {s.error or 'never started'}")


@dataclass
class _Judging:
    """What the soak's checks share while judging one run: each check
    (one method of the runner) reads it and adds its checks, measurements
    and causes to the evidence."""

    evidence: Evidence
    causes: list[str]
    end_t: float
    outages: dict[str, list[dict[str, Any]]]
    connected_at_end: dict[str, bool]
    close_wait_end: int | None
    resources: dict[str, Any]
    ran: list[FaultStep]
    conn_faults: list[FaultStep]
    longest: float
    cut_short: dict[str, tuple[dict[str, Any], FaultStep]] = field(default_factory=dict)
    need: float = 0.0  # seconds the run would need for its cut-short clients (the hint)
    recoveries: list[dict[str, Any]] = field(default_factory=list)


KINDS_HELP = {kind: spec[2] for kind, spec in KINDS.items()}


def _matching_fault(faults: list[FaultStep], start_s: float) -> FaultStep | None:
    """The injected fault an outage belongs to: it started inside the
    fault's window (a dead link is noticed up to a few pings late)."""
    for step in faults:
        a, b = step.window()
        if a - 1.0 <= start_s <= b + 10.0:
            return step
    return None


def _hint(checks: dict[str, bool], cfg: SoakConfig, aborted: str | None = None, need: float = 0.0) -> str:
    if not checks.get("room_to_recover", True) and all(v for k, v in checks.items() if k != "room_to_recover"):
        return (f"the soak was too short to judge that recovery: run it for {math.ceil(need)} s or more "
                f"(--duration), end the fault earlier, or lower --recovery-bound")
    if aborted and "never came up" in aborted:
        return "the Gateway did not let the persistent connections in at the start; run `ibgw probe` against it"
    if not checks.get("recovered", True) and not cfg.reconnect:
        return "a client without a reconnect loop stays down after the daily restart; use a reconnecting client"
    if not checks.get("recovered", True) or not checks.get("recovery_bound", True):
        return "the client did not come back: check its backoff cap, that it reuses its client id, and error 326"
    if not checks.get("close_wait_baseline", True):
        return "CLOSE_WAIT sockets stayed on the Gateway port: the zombie signature (see `ibgw doctor`)"
    if not checks.get("rss_bounded", True) or not checks.get("fds_bounded", True):
        return "resources grew over the run: a leak per reconnect or per probe; compare interval records"
    return "see the interval records in the JSON Lines file"


def _cycle_ids(bounds: tuple[int, int], avoid: set[int]) -> Iterator[int]:
    while True:
        for client_id in range(bounds[0], bounds[1] + 1):
            if client_id not in avoid:
                yield client_id


async def run_soak(config: SoakConfig, endpoint: Endpoint, out_dir: Path, **options: Any) -> Evidence:
    """Run one soak; the JSON Lines evidence is out_dir/soak.jsonl."""
    return await Soak(config, endpoint, out_dir, **options).run()


__all__ = ["CONFIG_PHASE", "JsonLines", "Soak", "SoakConfig", "run_soak"]
