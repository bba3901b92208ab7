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
from the soak's start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("harness.scenarios.soak")

# kind -> (target it needs, whether the outage breaks the connection, help)
KINDS: dict[str, tuple[str, bool, str]] = {
    "restart": ("mock", True, "the daily restart: every connection dropped, the port refused for SECONDS"),
    "connectivity-loss": ("mock", False, "error 1100, SECONDS later 1102; the socket stays up"),
    "stuck-id": ("mock", True, "every connection dropped; the dropped client ids stay 'in use' (326) for SECONDS"),
    "container-restart": ("container", True, "`docker restart` of the Gateway's container, waited for until its "
                          "API is ready again (SECONDS is not used: the restart takes what it takes)"),
    "proxy-reset": ("proxy", True, "the fault proxy resets (RST) every connection once"),
    "proxy-blackhole": ("proxy", True, "the fault proxy goes silent for SECONDS (accepts, forwards nothing)"),
    "proxy-reject": ("proxy", True, "the fault proxy resets every connection, and new ones at accept, for SECONDS"),
}


class ScheduleError(ValueError):
    """A schedule text that names no fault or has a bad time."""


@dataclass
class FaultStep:
    kind: str
    at: float  # seconds after the soak's start
    seconds: float = 0.0  # the injected outage's length
    started: float | None = None  # soak-relative seconds, filled in when it ran
    ended: float | None = None
    error: str | None = None

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


def parse_schedule(text: str) -> list[FaultStep]:
    """`restart@20:3,connectivity-loss@35:5` -> steps in time order; '' or 'none' -> []."""
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
            at, seconds = float(at_text), float(seconds_text or 0)
        except ValueError:
            raise ScheduleError(f"soak fault {part!r}: times must be numbers of seconds") from None
        if at < 0 or seconds < 0:
            raise ScheduleError(f"soak fault {part!r}: times must be >= 0")
        steps.append(FaultStep(kind, at, seconds))
    return sorted(steps, key=lambda s: s.at)


def default_schedule(duration: float, target_kind: str) -> list[FaultStep]:
    """One of each fault the target allows, spread over the run: at a
    quarter, half and three quarters, each a few percent of the run long
    (a one-hour soak: a 60 s restart, a 30 s connectivity loss, a 20 s stuck id)."""
    if target_kind == "mock":
        return [FaultStep("restart", 0.25 * duration, round(min(60.0, 0.05 * duration), 1)),
                FaultStep("connectivity-loss", 0.5 * duration, round(min(30.0, 0.1 * duration), 1)),
                FaultStep("stuck-id", 0.75 * duration, round(min(20.0, 0.05 * duration), 1))]
    if target_kind == "container":
        return [FaultStep("container-restart", 0.25 * duration, 0.0),
                FaultStep("proxy-blackhole", 0.5 * duration, round(min(30.0, 0.05 * duration), 1)),
                FaultStep("proxy-reset", 0.75 * duration, 0.0)]
    return [FaultStep("proxy-reset", 0.25 * duration, 0.0),
            FaultStep("proxy-blackhole", 0.5 * duration, round(min(30.0, 0.05 * duration), 1)),
            FaultStep("proxy-reject", 0.75 * duration, round(min(20.0, 0.05 * duration), 1))]


def check_schedule(steps: list[FaultStep], *, has_mock: bool, has_proxy: bool, duration: float,
                   has_container: bool = False) -> None:
    """Refuse a fault the target cannot inject, before the soak starts."""
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


async def inject(step: FaultStep, *, mock: Any = None, proxy: Any = None, container: Any = None) -> None:
    """Run one fault to its end. The waits here ARE the injected outages
    (how long the port stays refused, how long connectivity stays lost)."""
    if step.kind == "restart":
        await mock.restart(step.seconds)
    elif step.kind == "connectivity-loss":
        mock.set_fault(f"connectivity-loss=0,{step.seconds:g}")
        await asyncio.sleep(step.seconds)  # the outage's length
        # The mock's timer sends 1102 at the same moment; wait for it (bounded) before clearing the fault.
        deadline = time.monotonic() + 5.0
        while mock.in_outage and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # bounded polling of the mock's state; it exposes no event
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
