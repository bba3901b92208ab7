"""Scenario: is it the Gateway, or our code?

The question every field report argued about for weeks. It is settled by an
experiment, not an opinion: run the user's client and the harness's
reference client (the raw client, which waits for nextValidId and
managedAccounts by event) back to back against the same Gateway, each
through connect-until-ready, one ping and the account snapshot, and read
the Gateway-side transcript of both connections (from the recording proxy,
or the mock's own record).

* both fail the same way          -> the Gateway (your code is not the cause);
* the reference succeeds where the
  user's client fails             -> the user's code, with the phase where the
                                     two parted and the wire evidence (when the
                                     Gateway sent managedAccounts, when the
                                     user's client gave up);
* both succeed                    -> neither: this Gateway serves both;
* only the reference fails        -> inconclusive (a flaky Gateway); rerun.

When both pass and a start-up plan is given (`ibgw doctor --client` and
the suite give the field reports' start-up: qualify AAPL, 5-minute bars, a
delayed snapshot, PnL), the comparison goes on step by step: the user's
client runs the start-up steps it offers on its own connection, the
start-up reference (the official ibapi by default) runs them on another,
and the verdict names the numbered step where they part ("the reference
got bars at step 3, your client stopped at step 3 (historical bars) after
qualify succeeded"), with both sides' per-step evidence side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..clients.base import (
    PHASE_API_READY,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    ClientAdapter,
    HandshakeError,
)
from ..clients.readiness import connect_until_ready
from ..clients.startup import supports
from ..core.record import FAILED, PASSED, Evidence
from ..core.wait import poll_until
from ..targets.base import Endpoint
from .app_startup import StartupPlan, run_app_startup, run_steps
from .common import new_evidence

SCENARIO = "gateway_or_code"
PHASE_PING = "ping"
PHASE_SYNC = "account_sync"

VERDICT_BOTH_OK = "both-ok"
VERDICT_GATEWAY = "gateway"
VERDICT_USER_CODE = "user-code"
VERDICT_INCONCLUSIVE = "inconclusive"

CANCELLED_DISCONNECT_S = 1.0  # an adapter's disconnect when the run is cancelled (Ctrl-C)

# Which Gateway message ends each handshake phase on the wire.
PHASE_MESSAGE = {PHASE_NEXT_VALID_ID: "nextValidId", PHASE_MANAGED_ACCOUNTS: "managedAccounts"}


@dataclass
class WireView:
    """One connection as the Gateway side saw it: (seconds since accept,
    "c2g" or "g2c", message name) per frame, and when it closed."""

    frames: list[tuple[float, str, str]] = field(default_factory=list)
    closed_at: float | None = None  # seconds since accept
    close_cause: str | None = None
    text: str = ""
    accepted_mono: float | None = None  # time.monotonic() of the accept, when the source shares this clock

    def first(self, name: str, direction: str | None = None) -> float | None:
        for t, d, n in self.frames:
            if n == name and (direction is None or d == direction):
                return t
        return None


# (client id, monotonic start of the run) -> the newest connection that used
# that id and was accepted after the start, or None when none arrived.
WireSource = Callable[[int, float], WireView | None]


def wire_from_mock(mock: Any) -> WireSource:
    """A WireSource over the mock Gateway's own connection records."""

    def lookup(client_id: int, since: float) -> WireView | None:
        record = mock.record_for_client(client_id)
        if record is None or record.accepted_at < since:
            return None
        closed = None if record.closed_at is None else round(record.closed_at - record.accepted_at, 6)
        frames = [(e.t, "c2g" if e.from_client else "g2c", e.name) for e in record.entries]
        return WireView(frames, closed, record.close_cause, record.to_text(), record.accepted_at)

    return lookup


@dataclass
class ClientRun:
    """What one client did: how far it got, where it stopped, and when."""

    client: str
    client_id: int
    ok: bool = False
    failed_phase: str | None = None
    cause: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    gave_up_after_s: float | None = None  # connect() call -> failure
    wire: WireView | None = None
    startup: dict[str, dict[str, Any]] | None = None  # per start-up step, when a plan ran (connect first)
    started: float = 0.0  # time.monotonic() at the connect call
    disconnect_returned: float = 0.0  # time.monotonic() when the adapter's disconnect() returned
    close_linger_ms: float | None = None  # disconnect() returned -> the Gateway side saw the close

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        data.pop("disconnect_returned")
        data["wire"] = None if self.wire is None else {
            "closed_at_s": self.wire.closed_at, "close_cause": self.wire.close_cause,
            "frames": [list(f) for f in self.wire.frames[:200]]}
        return data


async def run_client(client: ClientAdapter, endpoint: Endpoint, client_id: int, *, timeout: float,
                     startup: StartupPlan | None = None) -> ClientRun:
    """Connect until ready, ping once, take the account snapshot, then (with
    a plan, when the client offers any step) the start-up steps on the same
    connection, as an app does; disconnect."""
    run = ClientRun(str(client.info.name), client_id)
    started = time.monotonic()
    phase = PHASE_API_READY
    try:
        result = await connect_until_ready(client, endpoint, client_id, timeout=timeout)
        run.phases = dict(result.phases)
        phase = PHASE_PING
        await client.ping(timeout)
        phase = PHASE_SYNC
        snap = await client.account_snapshot(timeout)
        if not (snap.positions_end and snap.executions_end and snap.account_download_end):
            raise TimeoutError("a start-up request never got its end message")
        run.ok = True
        if startup is not None and any(supports(client, step) for step in startup.steps):
            ready_s = run.phases.get(PHASE_API_READY)
            steps: dict[str, dict[str, Any]] = {"connect": {"outcome": PASSED, "ms": None if ready_s is None
                                                            else round(ready_s * 1000, 3)}}
            run.startup = steps
            await run_steps(client, startup, timeout, steps)  # the failing step is in `steps`
    except HandshakeError as exc:
        run.failed_phase, run.cause = exc.phase, exc.cause
        if exc.result is not None:
            run.phases = dict(exc.result.phases)
    except (TimeoutError, ConnectionError) as exc:
        run.failed_phase, run.cause = phase, str(exc) or type(exc).__name__
    finally:
        if not run.ok:
            run.gave_up_after_s = round(time.monotonic() - started, 3)
        await _disconnect(client)
        run.disconnect_returned = time.monotonic()
    run.started = started
    return run


async def _disconnect(client: ClientAdapter) -> None:
    """The adapter's disconnect; bounded when the run is being cancelled.

    Why: on Ctrl-C the command must exit within a second or two, and a
    user's adapter may take its time to close (a worker asked to shut down
    mid-connect answers after the connect). What it leaves is stopped by
    the caller (harness/cli/signals.py stop_children). Unbounded otherwise,
    so a normal run keeps the adapter's own clean close."""
    task = asyncio.current_task()
    if task is None or not task.cancelling():
        await client.disconnect()
        return
    with contextlib.suppress(Exception):  # closing must not replace the cancellation
        await asyncio.wait_for(client.disconnect(), CANCELLED_DISCONNECT_S)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _after_start(view: WireView | None, name: str) -> float | None:
    """Seconds from the client's startApi to the Gateway's `name` on this connection."""
    if view is None:
        return None
    start, at = view.first("startApi", "c2g"), view.first(name, "g2c")
    return None if start is None or at is None else at - start


def wire_evidence(user: ClientRun, ref: ClientRun) -> str:
    """The sentence that shows where the two parted, from the Gateway side."""
    if user.wire is None:
        if ref.wire is None:
            return "no Gateway-side transcript is available for either client"
        return (f"no connection with client id {user.client_id} reached the Gateway: the user's client never "
                "completed the version handshake and sent startApi (check what it sends before connecting)")
    message = PHASE_MESSAGE.get(user.failed_phase or "", "managedAccounts")
    parts = []
    ref_at = _after_start(ref.wire, message)
    user_at = _after_start(user.wire, message)
    sent = []
    if ref_at is not None:
        sent.append(f"{_ms(ref_at)} after startApi to the reference client")
    if user_at is not None:
        sent.append(f"{_ms(user_at)} after startApi on the user's connection")
    if sent:
        parts.append(f"the Gateway sent {message} " + " and ".join(sent))
    start = user.wire.first("startApi", "c2g")
    if start is None:
        parts.append("the user's client never sent startApi")
    elif user_at is not None and (user.wire.closed_at is None or start + user_at <= user.wire.closed_at):
        parts.append("so the answer was on the user's socket and the client still reported it missing: it looked "
                     "before processing it")
    if start is not None and user.wire.closed_at is not None:
        before = f", before {message} arrived" if user_at is None or start + user_at > user.wire.closed_at else ""
        parts.append(f"the user's client closed its connection {_ms(user.wire.closed_at - start)} after "
                     f"startApi{before}")
    return "; ".join(parts) if parts else "the transcripts show no difference in the Gateway's answers"


def judge(user: ClientRun, ref: ClientRun) -> tuple[str, str | None, str]:
    """(verdict, phase where they part, explanation)."""
    if user.ok and ref.ok:
        return VERDICT_BOTH_OK, None, (f"both {user.client} and the reference ({ref.client}) reached API-ready, "
                                       "answered a ping and completed the account sync: this Gateway serves both")
    if not user.ok and not ref.ok:
        same = user.failed_phase == ref.failed_phase
        how = f"the same way, at {user.failed_phase}" if same else (
            f"at {user.failed_phase} ({user.client}) and {ref.failed_phase} (reference)")
        return VERDICT_GATEWAY, ref.failed_phase, (
            f"THE GATEWAY: both {user.client} and the reference client ({ref.client}) failed {how} "
            f"({user.cause} / {ref.cause}); the user's code is not the cause")
    if ref.ok:
        gave_up = f"; the user's client gave up after {user.gave_up_after_s:.1f} s" if user.gave_up_after_s else ""
        return VERDICT_USER_CODE, user.failed_phase, (
            f"THE USER'S CODE ({user.client}): the reference client ({ref.client}) succeeded against the same "
            f"Gateway, the user's client failed at {user.failed_phase} ({user.cause}){gave_up}; "
            f"{wire_evidence(user, ref)}")
    return VERDICT_INCONCLUSIVE, ref.failed_phase, (
        f"INCONCLUSIVE: the user's client succeeded but the reference client failed at {ref.failed_phase} "
        f"({ref.cause}); the Gateway is flaky: rerun")


# ------------------------------------------------------------------ start-up steps

STEP_LABEL = {"connect": "connect", "qualify": "qualify", "historical_bars": "historical bars",
              "snapshot": "snapshot", "pnl": "PnL"}


def _step_ok(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("outcome") == PASSED and row.get("has_data", True) is True  # type: ignore[union-attr]


def _got(step: str, row: dict[str, Any]) -> str:
    """What a passing step got, in words: 'got bars (78 bars)'."""
    if step == "connect":
        return "connected"
    if step == "qualify":
        return f"qualified the contract (conId {row.get('con_id')})"
    if step == "historical_bars":
        return f"got bars ({row.get('bars_count')} bars)"
    if step == "snapshot":
        return "got a quote"
    return "got PnL"


def _side(row: dict[str, Any] | None) -> str:
    """One side of one step, for the side-by-side table."""
    if not row:
        return "not reached"
    outcome = row.get("outcome")
    ms = row.get("ms")
    took = f" {ms:.0f} ms" if isinstance(ms, (int, float)) else ""
    if outcome == "not_run":
        return "not offered"
    if outcome == PASSED:
        return f"ok{took}" if row.get("has_data", True) is True else f"answered without data{took}"
    code = row.get("code")
    return f"FAILED{took}: " + (f"error {code}: " if code else "") + str(row.get("cause", ""))


def step_table(order: list[str], user: dict[str, dict[str, Any]], ref: dict[str, dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Per-step evidence of both clients, side by side (Evidence details 'startup_steps')."""
    return [{"step": n, "name": step, "label": STEP_LABEL.get(step, step), "user": user.get(step),
             "reference": ref.get(step), "user_says": _side(user.get(step)), "reference_says": _side(ref.get(step))}
            for n, step in enumerate(order, 1)]


def _table_text(table: list[dict[str, Any]]) -> str:
    return "; ".join(f"step {row['step']} {row['label']}: reference {row['reference_says']} | "
                     f"yours {row['user_says']}" for row in table)


def judge_startup(user_name: str, ref_name: str, order: list[str], user: dict[str, dict[str, Any]],
                  ref: dict[str, dict[str, Any]]) -> tuple[str, str | None, str]:
    """(verdict, step where they part, explanation) from both clients' start-up steps, in order.

    A step the user's client does not offer is skipped (not counted as a
    pass or a failure); the first step where exactly one side got data is
    where they part; both failing at the same step is the Gateway."""
    table_text = _table_text(step_table(order, user, ref))
    passed: list[str] = []
    for n, step in enumerate(order, 1):
        u, r = user.get(step), ref.get(step)
        if u is not None and u.get("outcome") == "not_run":
            continue
        label = STEP_LABEL.get(step, step)
        after = f" after {', '.join(STEP_LABEL.get(p, p) for p in passed)} succeeded" if passed else ""
        if _step_ok(u) and _step_ok(r):
            passed.append(step)
            continue
        if _step_ok(r):
            return VERDICT_USER_CODE, step, (
                f"THE USER'S CODE ({user_name}): the reference ({ref_name}) {_got(step, r)} at step {n}, "  # type: ignore[arg-type]
                f"your client stopped at step {n} ({label}){after}: {_side(u).rstrip('.')}. Side by side: {table_text}")
        if _step_ok(u):
            return VERDICT_INCONCLUSIVE, step, (
                f"INCONCLUSIVE: your client ({user_name}) {_got(step, u)} at step {n} but the reference "  # type: ignore[arg-type]
                f"({ref_name}) stopped there ({label}): {_side(r)}; the Gateway is flaky: rerun. "
                f"Side by side: {table_text}")
        return VERDICT_GATEWAY, step, (
            f"THE GATEWAY: both your client ({user_name}) and the reference ({ref_name}) stopped at step {n} "
            f"({label}){after} (yours: {_side(u)} / reference: {_side(r)}); your code is not the cause. "
            f"Side by side: {table_text}")
    return VERDICT_BOTH_OK, None, (
        f"both {user_name} and the reference ({ref_name}) reached API-ready, completed the account sync and "
        f"every start-up step ({', '.join(STEP_LABEL.get(s, s) for s in order)}): this Gateway serves both. "
        f"Side by side: {table_text}")


# A close that reaches the Gateway side this long after disconnect() returned is the client's own linger.
LINGER_NOTABLE_MS = 50.0
CLOSE_WATCH_S = 2.0  # how long the user's connection's close is waited for after both runs


def _client_close_linger(run: ClientRun) -> str | None:
    """The user's client's own slow close, measured from the Gateway side: the official ibapi closes its
    socket from its reader thread, whose recv has a 1 s timeout (ibapi connection.py settimeout(1)), so
    its FIN leaves up to 1 s after EClient.disconnect() returns; a same-id reconnect inside that window
    gets error 326 from a real Gateway too. Named as the client's behaviour, with the linger measured."""
    wire = run.wire
    if wire is None or wire.closed_at is None or wire.accepted_mono is None or not run.disconnect_returned:
        return None
    linger_ms = round((wire.accepted_mono + wire.closed_at - run.disconnect_returned) * 1000, 1)
    run.close_linger_ms = max(0.0, linger_ms)
    if linger_ms <= LINGER_NOTABLE_MS:
        return None
    return (f"the user's client's connection reached the Gateway closed {linger_ms:g} ms after its disconnect() "
            f"returned: the client's own slow close (the official ibapi closes from its reader thread, 1 s recv "
            f"timeout); reconnecting with client id {run.client_id} inside that window gets error 326 from a real "
            "Gateway too: wait for the close before reusing the id")


async def run_gateway_or_code(endpoint: Endpoint, user_client: Callable[[], ClientAdapter],
                              reference_client: Callable[[], ClientAdapter], *, client_id: int,
                              reference_client_id: int | None = None, timeout: float = 10.0,
                              wire: WireSource | None = None, startup: StartupPlan | None = None,
                              startup_reference: Callable[[], ClientAdapter] | None = None,
                              startup_reference_client_id: int | None = None) -> Evidence:
    """The user's client, then the reference, back to back; a verdict with evidence.

    The reference uses its own client id (default client_id + 1) so a client
    id the user's client left stuck cannot make the reference fail too.
    With a start-up plan and a start-up reference (a client that offers the
    steps: the raw reference offers none), the user's client also runs the
    plan's steps and, when both handshakes pass, the start-up reference runs
    them on its own id (default reference id + 1); the verdict then names
    the step where the two part.
    """
    user = user_client()
    ref_id = client_id + 1 if reference_client_id is None else reference_client_id
    startup_ref_id = ref_id + 1 if startup_reference_client_id is None else startup_reference_client_id
    plan = startup if startup_reference is not None else None
    evidence = new_evidence(SCENARIO, endpoint, user, client_id=client_id, reference_client_id=ref_id,
                            timeout_s=timeout, **({"startup_reference_client_id": startup_ref_id,
                                                   "plan": plan.to_dict()} if plan is not None else {}))
    user_run = await run_client(user, endpoint, client_id, timeout=timeout, startup=plan)
    reference = reference_client()
    ref_run = await run_client(reference, endpoint, ref_id, timeout=timeout)
    if wire is not None:  # read after both runs: the Gateway side has seen both connections close by now
        for run in (user_run, ref_run):
            run.wire = wire(run.client_id, run.started)
        # A client that closes late (ibapi: up to 1 s after disconnect() returned) may still be open: its close
        # time is the evidence, so it is waited for, bounded (the transcripts expose no event for it).
        read = wire

        def closed() -> bool:  # bounded polling of the Gateway-side record
            if user_run.wire is not None and user_run.wire.closed_at is None:
                user_run.wire = read(user_run.client_id, user_run.started)
            return user_run.wire is None or user_run.wire.closed_at is not None

        await poll_until(closed, timeout=CLOSE_WATCH_S, raise_on_timeout=False)
    verdict, phase, explanation = judge(user_run, ref_run)
    startup_table: list[dict[str, Any]] | None = None
    startup_evidence: Evidence | None = None
    if (verdict == VERDICT_BOTH_OK and plan is not None and startup_reference is not None
            and user_run.startup is not None):
        startup_evidence = await run_app_startup(endpoint, startup_reference(), startup_ref_id, plan=plan,
                                                 timeout=timeout)
        ref_steps: dict[str, dict[str, Any]] = startup_evidence.details.get("steps") or {}
        order = ["connect", *plan.steps]
        ref_name = str(startup_evidence.client.get("name", "reference"))
        verdict, phase, explanation = judge_startup(user_run.client, ref_name, order, user_run.startup, ref_steps)
        startup_table = step_table(order, user_run.startup, ref_steps)
    linger_note = _client_close_linger(user_run)
    if linger_note:
        explanation = f"{explanation}. Also: {linger_note}"
    evidence.details = {"verdict": verdict, "parting_phase": phase, "explanation": explanation,
                        "user": user_run.to_dict(), "reference": ref_run.to_dict(),
                        "reference_client": asdict(reference.info)}
    evidence.checks = {"user_client_ok": user_run.ok, "reference_client_ok": ref_run.ok}
    if startup_table is not None and startup_evidence is not None:
        evidence.details["startup_steps"] = startup_table
        evidence.details["startup_reference"] = {"client": startup_evidence.client,
                                                 "client_id": startup_ref_id, "outcome": startup_evidence.outcome,
                                                 "cause": startup_evidence.cause}
        offered = [row for row in startup_table if row["name"] != "connect"
                   and (row["user"] or {}).get("outcome") != "not_run"]
        evidence.checks["user_startup_ok"] = all(_step_ok(row["user"]) for row in offered)
        evidence.checks["reference_startup_ok"] = all(_step_ok(row["reference"]) for row in offered)
        for row in startup_table:
            for side in ("user", "reference"):
                ms = (row[side] or {}).get("ms")
                if isinstance(ms, (int, float)):
                    evidence.measurements[f"{side}_step_{row['name']}_ms"] = ms
    if user_run.close_linger_ms is not None:
        evidence.measurements["user_close_linger_ms"] = user_run.close_linger_ms
    if linger_note:
        evidence.details["client_close"] = linger_note
    for name, run in (("user", user_run), ("reference", ref_run)):
        if PHASE_API_READY in run.phases:
            evidence.measurements[f"{name}_api_ready_ms"] = round(run.phases[PHASE_API_READY] * 1000, 3)
    transcripts = [f"## {label} ({run.client}, client id {run.client_id})\n{run.wire.text}"
                   for label, run in (("user", user_run), ("reference", ref_run)) if run.wire and run.wire.text]
    evidence.transcript = "\n\n".join(transcripts) or None
    if verdict == VERDICT_BOTH_OK:
        evidence.outcome = PASSED
    else:
        evidence.outcome, evidence.failed_phase = FAILED, phase
        evidence.cause = explanation
        evidence.hint = {VERDICT_USER_CODE: "fix the client at that phase: wait for the event, not a fixed time"
                         if startup_table is None else "fix the client at that start-up step: compare its request "
                         "with the reference's in the transcript",
                         VERDICT_GATEWAY: "see `ibgw doctor` for the Gateway-side cause",
                         VERDICT_INCONCLUSIVE: "rerun; if it repeats, run `ibgw doctor`"}[verdict]
    return evidence.finish()


__all__ = ["STEP_LABEL", "VERDICT_BOTH_OK", "VERDICT_GATEWAY", "VERDICT_INCONCLUSIVE", "VERDICT_USER_CODE",
           "ClientRun", "WireSource", "WireView", "judge", "judge_startup", "run_client", "run_gateway_or_code",
           "step_table", "wire_from_mock"]
