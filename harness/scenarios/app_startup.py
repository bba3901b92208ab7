"""Scenario: a trading app's start-up, step by step, through any client.

The symptom it settles: "connected and synced, but the app never boots". A
green handshake says nothing about the requests an app sends next; the field
reports' app (`./START_TRADER.sh AAPL`) connects, qualifies its contract,
pulls bars, takes a quote and reads PnL before it trades. Each of those is a
named step here, timed, with the Gateway's own refusal (200 no security
definition, 162 HMDS query error, 354/10089/10168 market data) as its cause
when it fails, so the evidence says which step the app would hang or die on.

A step the client does not offer (a team's `--client module:factory` adapter
without `historical_bars`, say) is reported as not run, never as passed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from ..clients.base import ClientAdapter
from ..clients.startup import STEPS, StartupError, supports
from ..core.record import FAILED, PASSED, Evidence
from ..protocol.messages import Contract
from ..targets.base import Endpoint
from .common import TranscriptSource, attach_transcript, connect_with_evidence, new_evidence

SCENARIO = "app_startup"

# What each step's failure usually means, for the evidence's hint.
STEP_HINTS: dict[str, str] = {
    "qualify": "the contract did not resolve (error 200: wrong symbol, exchange or currency, or the sec-def farm "
               "is down); an app that qualifies first never gets further (codes: IBKR's API message codes; "
               "the hang at qualifyContracts: field reports only)",
    "historical_bars": "HMDS refused or never answered (162: no permissions, pacing violation, bad duration or bar "
                       "size, per IBKR's API message codes; 2105/2107 HMDS farm notices: IbcAlpha/IBC#251)",
    "snapshot": "no quote: market data not subscribed (354/10089/10168, IBKR's API message codes; 10167 comes "
                "before delayed data: wboayue/rust-ibapi#672) or the market-data farm is down (2103: IBC#251)",
    "pnl": "reqPnL never answered for the account (wrong account id, or PnL not available for it; field reports "
           "only)",
}


@dataclass
class StartupPlan:
    """What the app does after connecting; the defaults are the field reports' start-up
    (qualify AAPL, a day of 5-minute bars, a delayed snapshot, the account's PnL)."""

    contract: Contract = field(default_factory=lambda: Contract.request("AAPL"))
    steps: tuple[str, ...] = STEPS
    bar_duration: str = "1 D"
    bar_size: str = "5 mins"
    what_to_show: str = "TRADES"
    market_data_type: int = 3  # delayed: what a paper account without subscriptions gets
    account: str = ""  # default: the first managed account

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "contract": asdict(self.contract), "steps": list(self.steps)}


async def run_app_startup(endpoint: Endpoint, client: ClientAdapter, client_id: int, *, plan: StartupPlan | None = None,
                          timeout: float = 10.0, transcript: TranscriptSource | None = None) -> Evidence:
    """Connect until ready, then run each step of the plan; stop at the first failing step."""
    plan = plan or StartupPlan()
    unknown = [s for s in plan.steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown start-up steps {unknown}; valid: {', '.join(STEPS)}")
    evidence = new_evidence(SCENARIO, endpoint, client, client_id=client_id, timeout_s=timeout, plan=plan.to_dict())
    steps: dict[str, dict[str, object]] = {}
    evidence.details["steps"] = steps
    try:
        started = time.monotonic()
        if not await connect_with_evidence(evidence, client, endpoint, client_id, timeout=timeout, readonly=True):
            steps["connect"] = {"outcome": FAILED, "cause": evidence.cause}
            return evidence
        steps["connect"] = {"outcome": PASSED, "ms": round((time.monotonic() - started) * 1000, 3)}
        evidence.measurements["step_connect_ms"] = steps["connect"]["ms"]  # type: ignore[assignment]
        failure = await run_steps(client, plan, timeout, steps)
        for step, row in steps.items():
            if step != "connect" and "ms" in row:
                evidence.measurements[f"step_{step}_ms"] = row["ms"]  # type: ignore[assignment]
        if failure is not None:
            step, code, message = failure
            evidence.outcome, evidence.failed_phase = FAILED, step
            evidence.cause = f"{step} failed: error {code}: {message}" if code else f"{step} failed: {message}"
            evidence.hint = STEP_HINTS.get(step, "")
            return evidence
        ran = [s for s in plan.steps if steps.get(s, {}).get("outcome") == PASSED]
        evidence.checks = {f"{s}_has_data": steps[s].get("has_data") is True for s in ran}
        evidence.measurements["steps_run_count"] = len(ran)
        empty = [s for s, ok in evidence.checks.items() if not ok]
        if not ran:
            evidence.outcome, evidence.failed_phase = FAILED, "app_startup"
            evidence.cause = f"{client.info.name} offers none of the start-up steps ({', '.join(plan.steps)})"
            evidence.hint = "give the adapter qualify/historical_bars/snapshot/pnl (harness/clients/startup.py)"
        elif empty:
            evidence.outcome, evidence.failed_phase = FAILED, empty[0].removesuffix("_has_data")
            evidence.cause = "answered without data: " + ", ".join(empty)
            evidence.hint = STEP_HINTS.get(evidence.failed_phase, "")
        else:
            evidence.outcome = PASSED
    finally:
        await client.disconnect()
        attach_transcript(evidence, transcript, client_id)
        evidence.finish()
    return evidence


async def _run_step(client: ClientAdapter, step: str, spec: Contract, plan: StartupPlan,
                    timeout: float) -> dict[str, object]:
    c = client  # the optional start-up methods (clients/startup.py), checked by supports()
    if step == "qualify":
        q = await c.qualify(spec, timeout=timeout)  # type: ignore[attr-defined]
        return {"has_data": q.con_id > 0, "con_id": q.con_id, "primary_exchange": q.primary_exchange,
                "min_tick": q.min_tick, "_spec": q.spec()}
    if step == "historical_bars":
        bars = await c.historical_bars(spec, plan.bar_duration, plan.bar_size, plan.what_to_show,  # type: ignore[attr-defined]
                                       timeout=timeout)
        return {"has_data": bool(bars), "bars_count": len(bars),
                "first": bars[0].date if bars else None, "last": bars[-1].date if bars else None}
    if step == "snapshot":
        snap = await c.snapshot(spec, plan.market_data_type, timeout=timeout)  # type: ignore[attr-defined]
        return {"has_data": snap.has_price, **snap.to_dict()}
    value = await c.pnl(plan.account, timeout=timeout)  # type: ignore[attr-defined]
    return {"has_data": value.daily is not None or value.unrealized is not None, "daily": value.daily,
            "unrealized": value.unrealized, "realized": value.realized}


StepFailure = tuple[str, int, str]  # (step, Gateway error code or 0, message)


async def run_steps(client: ClientAdapter, plan: StartupPlan, timeout: float,
                    steps: dict[str, dict[str, object]]) -> StepFailure | None:
    """Run the plan's steps on a connected client, filling `steps` (outcome,
    ms, data summary or the error) in order; the first failing step ends the
    run and is returned. A step the client does not offer is recorded as
    not run. Shared by this scenario and the gateway-or-code verdict, so
    both sides of a comparison run the same steps the same way."""
    spec = plan.contract
    for step in plan.steps:
        if not supports(client, step):
            steps[step] = {"outcome": "not_run", "cause": f"{client.info.name} offers no {step}()"}
            continue
        t0 = time.monotonic()
        try:
            result = await _run_step(client, step, spec, plan, timeout)
        except StartupError as exc:
            return _failed(steps, step, t0, exc.code, exc.message)
        except (TimeoutError, ConnectionError) as exc:
            return _failed(steps, step, t0, 0, str(exc) or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a team's adapter raising is that step's failure, named
            return _failed(steps, step, t0, 0, f"{type(exc).__name__}: {exc}")
        steps[step] = {"outcome": PASSED, "ms": round((time.monotonic() - t0) * 1000, 3), **result}
        if step == "qualify":
            spec = result.pop("_spec")  # type: ignore[assignment]
            steps[step].pop("_spec", None)
    return None


def _failed(steps: dict[str, dict[str, object]], step: str, t0: float, code: int, message: str) -> StepFailure:
    steps[step] = {"outcome": FAILED, "ms": round((time.monotonic() - t0) * 1000, 3), "code": code,
                   "cause": message}
    return step, code, message
