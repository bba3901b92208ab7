"""A soak against any target: start it, run the soak (a live one through the live session), stop it.

Why apart from the command: `ibgw soak` and suites/test_soak.py run the same
thing, and a suite must not import the CLI (the layer order in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..core.record import Evidence
from ..scenarios.soak import SoakConfig, run_soak
from ..scenarios.soak_schedule import default_schedule, parse_schedule
from ..targets import parse_target
from .policy import ClientIdAllocator, LivePolicy
from .session import LiveAccountRefused, live_session

DEFAULT_OUT = Path("reports/soak")


def soak_out_dir(base: Path) -> Path:
    return base / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


async def run_soak_against(spec: str, config: SoakConfig, out_dir: Path, *, schedule_text: str | None,
                           progress: Any = None, allow_live_account: bool = False,
                           report: Callable[[str], None] | None = None, docker_host: str | None = None) -> Evidence:
    """Start the target, run the soak, stop everything. Used by `ibgw soak`
    and suites/test_soak.py.

    Anything but the in-process mock (a HOST:PORT Gateway, a container) is
    treated as a live run, as the suites treat it (harness/live/session.py):
    clients go through the recording proxy with the complete order guard (its
    transcript is the Gateway-side wire record, and it injects the proxy
    faults), the soak stops before its first connection when a managed
    account is not a paper account unless allow_live_account, and every
    client id comes from the live range (900-999), never a production
    client's. Raises LiveRunRefused for the caller to stop with exit 3.
    """
    say = report or _say
    target = parse_target(spec, docker_host)
    try:
        endpoint = await target.start()
        mock = target.mock
        container = target if target.is_live and target.can_restart else None  # soak steps restart it
        kind = "mock" if mock is not None else ("container" if container is not None else "proxy")
        if schedule_text is None:
            plan = default_schedule(config.duration, kind, config.recovery_bound)
            config.schedule = plan.steps
            say(plan.describe())
        else:
            config.schedule = parse_schedule(schedule_text, config.time_scale)
            say(f"schedule {','.join(s.text() for s in config.schedule) or 'none'} (as given)")
        if mock is not None:
            return await run_soak(config, endpoint, out_dir, mock=mock, container=container, progress=progress)
        policy = LivePolicy(live=True, allow_live_account=allow_live_account)
        client_ids = ClientIdAllocator(policy.id_range)
        async with live_session(endpoint, policy, client_ids, timeout=config.probe_timeout,
                                report=say, transcript=out_dir / "wire.jsonl") as session:
            config.client_id_base = client_ids.take(0, len(config.clients))
            config.probe_id_range = (config.client_id_base + len(config.clients), policy.id_range[1])
            evidence = await run_soak(config, endpoint, out_dir, mock=None, proxy=session.proxy, container=container,
                                      connect_endpoint=session.endpoint, progress=progress,
                                      stop_when=session.refusal)
            refusal = session.refusal()
            if refusal:  # the start-up check could not run; a later connection saw the account
                evidence.write(out_dir, "evidence")
                raise LiveAccountRefused(refusal)
            return evidence
    finally:
        await target.stop()


def _say(text: str) -> None:
    click.echo(f"soak: {text}", err=True)


__all__ = ["DEFAULT_OUT", "run_soak_against", "soak_out_dir"]
