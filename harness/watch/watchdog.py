"""The watch loop: probe on an interval, classify, decide, act, record.

Every probe and every action is one JSON object per line (the evidence a
human reads after the fact: what was seen, what was decided and why). An
episode is the span from the first unhealthy probe after a healthy one to
the next healthy probe; it is recorded whole when it closes (detected,
restarts sent, healed) so "what happened at 03:12" is one line.
No account id is recorded: the health check only counts accounts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..mock.healthcheck import HEALTHY, STARTING, Readiness, check_api_ready
from .classify import Verdict, classify
from .ibc import CommandServerError, send_command
from .policy import RestartPolicy
from .sockets import SocketEvidence, is_local, port_evidence

WATCH_CLIENT_ID = 999  # reserved, read-only (the health check never sends a request after startApi)


@dataclass
class WatchConfig:
    host: str
    port: int
    ibc: tuple[str, int] | None = None
    interval_s: float = 30.0
    timeout_s: float = 10.0
    client_id: int = WATCH_CLIENT_ID
    min_version: int = 0
    login_grace_s: float = 600.0  # a 2FA prompt waits 180 s (IBC's SecondFactorAuthenticationTimeout), a login more
    socket_ports: set[int] = field(default_factory=set)  # extra local ports whose sockets are evidence


@dataclass
class Episode:
    started: str
    first_state: str
    cause: str | None
    probes: int = 0
    restarts: list[dict[str, Any]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)


class Watchdog:
    def __init__(self, config: WatchConfig, policy: RestartPolicy, *, evidence: TextIO | None = None,
                 on_probe: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.policy = policy
        self.evidence = evidence
        self.on_probe = on_probe  # metrics, live view
        self.was_healthy = False
        self.not_serving_since: float | None = None
        self.consecutive_wedged = 0
        self.episode: Episode | None = None
        self.episodes: list[dict[str, Any]] = []
        self.restarts = 0
        self.last: dict[str, Any] = {}
        # A remote Gateway's sockets are not in this table: evidence would read as "nothing stuck".
        self.local = is_local(config.host)
        self.changed = asyncio.Event()  # set after every probe: tests and the live view await it
        self.stopped = asyncio.Event()

    # ------------------------------------------------------------ evidence

    def _emit(self, record: dict[str, Any]) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds")} | record
        if self.evidence is not None:
            self.evidence.write(json.dumps(record, sort_keys=False) + "\n")
            self.evidence.flush()

    # ------------------------------------------------------------ one probe

    async def probe_once(self) -> dict[str, Any]:
        ports = {self.config.port, *self.config.socket_ports}
        sampled: list[SocketEvidence] = []

        async def read() -> SocketEvidence:
            return await asyncio.to_thread(port_evidence, ports) if self.local else SocketEvidence(False)

        async def sample(_: Readiness) -> None:  # while the failed connection is still open
            sampled.append(await read())

        result = await check_api_ready(self.config.host, self.config.port, timeout=self.config.timeout_s,
                                       client_id=self.config.client_id, clean_close=True,
                                       required_version=self.config.min_version, before_close=sample)
        evidence = sampled[0] if sampled else await read()
        now = time.monotonic()
        if result.ready:
            self.not_serving_since = None
        elif self.not_serving_since is None:
            self.not_serving_since = now
        verdict = classify(result, evidence, was_healthy=self.was_healthy,
                           not_serving_s=now - (self.not_serving_since or now),
                           login_grace_s=self.config.login_grace_s)
        self.consecutive_wedged = self.consecutive_wedged + 1 if verdict.state == "wedged" else 0
        decision = self.policy.decide(verdict, self.consecutive_wedged, now, datetime.now(UTC))
        record = self._probe_record(result, evidence, verdict, decision.reason)
        self._emit(record)
        self._track_episode(verdict, record)
        if decision.restart:
            await self._restart(verdict)
        if result.ready:
            self.was_healthy = True
            self.policy.record_healthy()
        self.last = record
        if self.on_probe is not None:
            self.on_probe(record)
        self.changed.set()
        return record

    def _probe_record(self, result: Readiness, evidence: SocketEvidence, verdict: Verdict,
                      reason: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "kind": "probe", "gateway": f"{self.config.host}:{self.config.port}", "state": verdict.state,
            "cause": verdict.cause, "title": verdict.title, "restart_fixes": verdict.restart_fixes,
            "confirmed": verdict.confirmed, "why": verdict.why, "decision": reason,
            "phase": result.phase, "failure": result.failure, "detail": result.detail,
            "phase_ms": result.phase_ms, "server_version": result.server_version,
            "accounts_count": result.accounts_count, "close": result.close, "sockets": evidence.to_dict(),
            "consecutive_wedged": self.consecutive_wedged, "restarts": self.restarts,
        }
        if verdict.candidates:
            record["candidates"] = list(verdict.candidates)
        if verdict.source:
            record["source"] = verdict.source
        return record

    # ------------------------------------------------------------ actions

    async def _restart(self, verdict: Verdict) -> None:
        assert self.config.ibc is not None
        host, port = self.config.ibc
        now = time.monotonic()
        self.policy.record_restart(now)  # counted even when it fails: a failing command server is not retried hot
        try:
            reply = await send_command(host, port, "RESTART")
            ok, text = reply.ok, reply.text
        except CommandServerError as exc:
            ok, text = False, str(exc)
        self.restarts += ok
        action = {"kind": "action", "action": "restart", "via": f"ibc {host}:{port}", "command": "RESTART",
                  "ok": ok, "reply": text, "cause": verdict.cause, "title": verdict.title}
        self._emit(action)
        if self.episode is not None:
            self.episode.restarts.append({"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "ok": ok,
                                          "reply": text})

    # ------------------------------------------------------------ episodes

    def _track_episode(self, verdict: Verdict, record: dict[str, Any]) -> None:
        if verdict.state == HEALTHY:
            if self.episode is not None:
                episode, self.episode = self.episode, None
                summary = {"kind": "episode", "started": episode.started, "ended": record["ts"],
                           "first_state": episode.first_state, "cause": episode.cause, "probes": episode.probes,
                           "states": episode.states, "restarts": episode.restarts,
                           "healed_by_restart": bool(episode.restarts) and any(r["ok"] for r in episode.restarts)}
                self.episodes.append(summary)
                self._emit(summary)
            return
        if self.episode is None and (self.was_healthy or verdict.state != STARTING):
            self.episode = Episode(datetime.now(UTC).isoformat(timespec="milliseconds"), verdict.state,
                                   verdict.cause)
        if self.episode is not None:
            self.episode.probes += 1
            if not self.episode.states or self.episode.states[-1] != verdict.state:
                self.episode.states.append(verdict.state)
            if verdict.state == "wedged" and self.episode.cause != verdict.cause and verdict.confirmed:
                self.episode.cause = verdict.cause

    # ------------------------------------------------------------ loop

    async def run(self, *, count: int | None = None) -> None:
        """Probe every interval (from the start of one probe to the next)
        until stop() or `count` probes."""
        done = 0
        loop = asyncio.get_running_loop()
        while not self.stopped.is_set() and (count is None or done < count):
            started = loop.time()
            await self.probe_once()
            done += 1
            try:
                await asyncio.wait_for(self.stopped.wait(), max(0.0, self.config.interval_s -
                                                                (loop.time() - started)))
            except TimeoutError:
                pass

    def stop(self) -> None:
        self.stopped.set()


def open_evidence(path: Path | None) -> TextIO | None:
    """Append: a restarted watch continues the same file."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8")


__all__ = ["Episode", "WatchConfig", "Watchdog", "open_evidence"]
