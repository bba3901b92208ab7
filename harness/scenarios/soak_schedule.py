"""The soak's fault schedule: what is injected, when, and for how long.

Why a schedule of its own: the soak's verdict compares what the clients
suffered with what was injected ("no ping gap longer than the injected
outage plus a margin"), so every fault must say up front how long an
outage it is meant to cause. Against the mock the faults are the mock's own
(the daily restart, a connectivity loss, a stuck client id); against a
Gateway the harness does not control, only the fault proxy's (harness/proxy)
— a real Gateway is never restarted or disturbed by the harness.

Text form (CLI, env, make): ``KIND@AT[:SECONDS]`` joined by commas, e.g.
``restart@900:60,connectivity-loss@1800:30,stuck-id@2700:20``; AT is seconds
from the soak's start. The kinds with a realistic length of their own
(``nightly-reset``, ``auto-restart``: DEFAULT_SECONDS) take it when SECONDS
is left out; ``parse_schedule(..., time_scale=0.05)`` scales every length
(not the start times), so a test plays a 75 s auto-restart in under 4 s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import HarnessError
from ..core.wait import poll_until

log = logging.getLogger("harness.scenarios.soak")

# kind -> (target it needs, whether the outage breaks the connection, help)
KINDS: dict[str, tuple[str, bool, str]] = {
    "restart": ("mock", True, "the daily restart: every connection dropped, the port refused for SECONDS"),
    "connectivity-loss": ("mock", False, "error 1100, SECONDS later 1102; the socket stays up"),
    "stuck-id": ("mock", True, "every connection dropped; the dropped client ids stay 'in use' (326) for SECONDS"),
    "container-restart": ("container", True, "`docker restart` of the Gateway's container, waited for until its "
                          "API is ready again (SECONDS is not used: the restart takes what it takes)"),
    "nightly-reset": ("mock", False, "IB's nightly reset (IbcAlpha/IBC#143, #251): error 1100 repeated, then "
                      "2103/2105 farms broken, then 1102 carrying the farm list, then 2107/2108 farms inactive; the "
                      "socket stays up"),
    "nightly-reset-lost": ("mock", False, "the nightly reset ending in 1101 (restored, data lost: resubscribe; "
                           "QuantConnect/Lean PR #960) instead of 1102"),
    "auto-restart": ("mock", True, "the Gateway's auto-restart: every connection dropped, the port refused for "
                     "SECONDS, about 60-90 s for real (manhinhang/ib-gateway-docker PR #157)"),
    "proxy-reset": ("proxy", True, "the fault proxy resets (RST) every connection once"),
    "proxy-blackhole": ("proxy", True, "the fault proxy goes silent for SECONDS (accepts, forwards nothing)"),
    "proxy-reject": ("proxy", True, "the fault proxy resets every connection, and new ones at accept, for SECONDS"),
}


# Realistic lengths for the kinds public reports give one (seconds, before time_scale).
DEFAULT_SECONDS: dict[str, float] = {"nightly-reset": 60.0, "nightly-reset-lost": 60.0, "auto-restart": 75.0}


class ScheduleError(HarnessError, ValueError):
    """A schedule text that names no fault or has a bad time."""


@dataclass
class FaultStep:
    kind: str
    at: float  # seconds after the soak's start
    seconds: float = 0.0  # the injected outage's length
    started: float | None = None  # soak-relative seconds, filled in when it ran
    ended: float | None = None
    error: str | None = None
    # What the fault did, step by step ({"t": soak-relative s, "phase": name}): the evidence of each phase.
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def breaks_connection(self) -> bool:
        return KINDS[self.kind][1]

    @property
    def needs(self) -> str:
        return KINDS[self.kind][0]

    def window(self) -> tuple[float, float]:
        """[start, end] of the injected outage, soak-relative (planned times until it ran)."""
        start = self.started if self.started is not None else self.at
        return start, (self.ended if self.ended is not None else start + self.seconds)

    def text(self) -> str:
        return f"{self.kind}@{self.at:g}:{self.seconds:g}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_schedule(text: str, time_scale: float = 1.0) -> list[FaultStep]:
    """`restart@20:3,connectivity-loss@35:5` -> steps in time order; '' or 'none' -> [].
    Every SECONDS (given, or a kind's DEFAULT_SECONDS) is multiplied by `time_scale`."""
    if not time_scale > 0:
        raise ScheduleError(f"time scale must be above 0 (got {time_scale:g})")
    steps: list[FaultStep] = []
    for part in (p.strip() for p in text.split(",")):
        if not part or part == "none":
            continue
        kind, sep, when = part.partition("@")
        if kind not in KINDS:
            raise ScheduleError(f"unknown soak fault {kind!r}; valid: {', '.join(KINDS)}")
        if not sep:
            raise ScheduleError(f"soak fault {part!r} needs a time: {kind}@SECONDS_FROM_START[:DURATION]")
        at_text, _, seconds_text = when.partition(":")
        try:
            at, seconds = float(at_text), float(seconds_text or DEFAULT_SECONDS.get(kind, 0))
        except ValueError:
            raise ScheduleError(f"soak fault {part!r}: times must be numbers of seconds") from None
        if at < 0 or seconds < 0:
            raise ScheduleError(f"soak fault {part!r}: times must be >= 0")
        steps.append(FaultStep(kind, at, round(seconds * time_scale, 3)))
    return sorted(steps, key=lambda s: s.at)


# After each default fault the plan leaves the recovery bound plus this
# much, so a client that comes back just inside the bound is seen doing so.
RECOVERY_MARGIN = 5.0
# No default fault before this: the persistent connections come up first.
LEAD_IN = 5.0

# target kind -> the default faults, most important first (a short soak drops from the end):
# (kind, cap on its length in seconds, its length as a fraction of the run)
_DEFAULTS: dict[str, list[tuple[str, float, float]]] = {
    "mock": [("restart", 60.0, 0.05), ("connectivity-loss", 30.0, 0.1), ("stuck-id", 20.0, 0.05)],
    "container": [("container-restart", 0.0, 0.0), ("proxy-blackhole", 30.0, 0.05), ("proxy-reset", 0.0, 0.0)],
    "proxy": [("proxy-reset", 0.0, 0.0), ("proxy-blackhole", 30.0, 0.05), ("proxy-reject", 20.0, 0.05)],
}


@dataclass
class SchedulePlan:
    """The default schedule for one run, and the faults a short run had no room for."""

    steps: list[FaultStep]
    dropped: list[str]  # fault kinds left out, in the order they would have run
    duration: float
    recovery_bound: float
    full_duration: int  # the shortest run (whole seconds) that holds every default fault

    def describe(self) -> str:
        """One line for the printed plan: what runs, what was dropped and why."""
        ran = ",".join(s.text() for s in self.steps) or "none"
        text = f"schedule {ran} (the default for {self.duration:g} s)"
        if self.dropped:
            every = len(self.steps) + len(self.dropped)
            text += (f"; dropped {', '.join(self.dropped)}: {self.duration:g} s is too short to leave the recovery "
                     f"bound ({self.recovery_bound:g} s) plus {RECOVERY_MARGIN:g} s after each fault "
                     f"({self.full_duration} s or more runs all {every})")
        return text


def _place(duration: float, faults: list[tuple[str, float, float]], settle: float) -> list[FaultStep] | None:
    """The faults spread over the run (a quarter, half, three quarters for
    three), else each followed by `settle` seconds with the time to spare
    shared out between them; None when they do not fit with `settle`
    seconds after each and LEAD_IN before the first."""
    lengths = [round(min(cap, share * duration), 1) for _, cap, share in faults]

    def fits(starts: list[float]) -> bool:
        ends = [a + n for a, n in zip(starts, lengths, strict=True)]
        nexts = [*starts[1:], duration]
        return starts[0] >= LEAD_IN and all(e + settle <= b for e, b in zip(ends, nexts, strict=True))

    starts = [round((i + 1) / (len(faults) + 1) * duration, 1) for i in range(len(faults))]
    if not fits(starts):
        # Each fault followed by its settle time, and what time is left shared out evenly between them.
        spare = (duration - LEAD_IN - sum(lengths) - len(faults) * settle) / (len(faults) + 1)
        at, starts = LEAD_IN, []
        for length in lengths:
            at += spare
            starts.append(math.floor(at * 10) / 10)  # rounded down, so rounding never eats into a settle
            at += length + settle
        if spare < 0 or not fits(starts):
            return None
    return [FaultStep(kind, at, n) for (kind, _, _), at, n in zip(faults, starts, lengths, strict=True)]


def default_schedule(duration: float, target_kind: str, recovery_bound: float = 15.0) -> SchedulePlan:
    """One of each fault the target allows, spread over the run: at a
    quarter, half and three quarters, each a few percent of the run long
    (a one-hour soak: a 60 s restart, a 30 s connectivity loss, a 20 s stuck id).

    Why faults are dropped: a recovery is only judged if the run goes on for
    the recovery bound after the fault; a fault too late in a short run
    ends the run with the client still reconnecting, which proves nothing.
    So each fault gets the bound plus RECOVERY_MARGIN after it, and a run
    too short for all of them drops the least important (the last listed)."""
    faults = _DEFAULTS.get(target_kind, _DEFAULTS["proxy"])
    settle = recovery_bound + RECOVERY_MARGIN
    # The lengths scale with the run, so the shortest run holding every fault is searched for, from a lower bound.
    full = max(math.ceil(duration), math.ceil(LEAD_IN + len(faults) * settle))
    while _place(full, faults, settle) is None:
        full += 1
    for keep in range(len(faults), -1, -1):
        steps = _place(duration, faults[:keep], settle) if keep else []
        if steps is not None:
            return SchedulePlan(steps, [kind for kind, _, _ in faults[keep:]], duration, recovery_bound, full)
    raise AssertionError("unreachable: an empty schedule always fits")


def check_room(steps: list[FaultStep], duration: float, recovery_bound: float) -> None:
    """Refuse a schedule that ends a fault less than the recovery bound
    before the soak does: a client still reconnecting when the run stops
    could not be judged, and the run would fail for its own configuration."""
    for step in steps:
        end = step.at + step.seconds
        if end + recovery_bound > duration:
            need = max(s.at + s.seconds for s in steps) + recovery_bound
            raise ScheduleError(
                f"soak fault {step.text()} ends {max(0.0, duration - end):g} s before the {duration:g} s soak does, "
                f"less than the recovery bound ({recovery_bound:g} s) a client has to come back: use --duration "
                f"{math.ceil(need)} or more, move the fault earlier, or lower --recovery-bound")


def check_schedule(steps: list[FaultStep], *, has_mock: bool, has_proxy: bool, duration: float,
                   recovery_bound: float, has_container: bool = False) -> None:
    """Refuse a fault the target cannot inject, or one too late to judge its recovery, before the soak starts."""
    for step in steps:
        if step.needs == "container" and not has_container:
            raise ScheduleError(f"soak fault {step.kind} needs a container target (--gateway docker:IMAGE)")
        if step.needs == "mock" and not has_mock:
            proxy_kinds = ", ".join(k for k in KINDS if k.startswith("proxy"))
            raise ScheduleError(f"soak fault {step.kind} needs the mock; against a Gateway the harness does not "
                                f"control use the proxy faults ({proxy_kinds})")
        if step.needs == "proxy" and not has_proxy:
            raise ScheduleError(f"soak fault {step.kind} needs the fault proxy in front of the Gateway")
        if step.at >= duration:
            raise ScheduleError(f"soak fault {step.text()} starts after the soak ends ({duration:g} s)")
    check_room(steps, duration, recovery_bound)


async def inject(step: FaultStep, *, mock: Any = None, proxy: Any = None, container: Any = None,
                 phase: Callable[[str], None] | None = None) -> None:
    """Run one fault to its end. The waits here ARE the injected outages
    (how long the port stays refused, how long connectivity stays lost).
    `phase` hears each named step of a multi-step fault as it happens."""
    def say(name: str) -> None:
        if phase is not None:
            phase(name)

    if step.kind in ("restart", "auto-restart"):
        say(f"every connection dropped, port refused for {step.seconds:g} s")
        await mock.restart(step.seconds)
        say("port accepting again")
    elif step.kind in ("nightly-reset", "nightly-reset-lost"):
        await mock.nightly_reset(step.seconds, data_lost=step.kind == "nightly-reset-lost", phase=say)
    elif step.kind == "connectivity-loss":
        mock.set_fault(f"connectivity-loss=0,{step.seconds:g}")
        await asyncio.sleep(step.seconds)  # the outage's length
        # The mock's timer sends 1102 at the same moment; wait for it (bounded) before clearing the fault.
        # bounded polling of the mock's state; it exposes no event
        await poll_until(lambda: not mock.in_outage, timeout=5.0, raise_on_timeout=False)
        mock.clear_fault("connectivity-loss")
    elif step.kind == "stuck-id":
        mock.set_fault(f"client-id-stuck={step.seconds:g}")
        await mock.drop_all("soak fault stuck-id: connections dropped")
        mock.clear_fault("client-id-stuck")  # ids freed from now on are not stuck; the dropped ones stay stuck
        await asyncio.sleep(step.seconds)  # the ids' stuck time
    elif step.kind == "container-restart":
        await container.restart(cold=True)  # returns once the API is ready again (its own bounded wait)
    elif step.kind == "proxy-reset":
        await proxy.reset_all()
    elif step.kind == "proxy-blackhole":
        proxy.set_fault("blackhole")
        await asyncio.sleep(step.seconds)  # the outage's length
        proxy.clear_fault("blackhole")
    elif step.kind == "proxy-reject":
        proxy.set_fault("reset")  # resets every open connection now and each new one at accept
        await asyncio.sleep(step.seconds)  # the outage's length
        proxy.clear_fault("reset")
    else:  # parse_schedule admits only known kinds
        raise ScheduleError(f"unknown soak fault {step.kind!r}")
