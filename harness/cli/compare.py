"""`ibgw doctor --client module.path:factory`: Gateway or our code?

Runs the user's client and the harness's reference client (raw) back to
back against the same Gateway, both through a recording proxy with the
order guard (so the Gateway-side transcript of each connection is evidence
and no order can pass), and prints the verdict
(harness/scenarios/gateway_or_code.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from ..clients import make_client
from ..clients.custom import ClientSpecError, validate_spec
from ..core.redact import redact_text
from ..core.signals import EXIT_INTERRUPTED, CancelOnSignal
from ..live.policy import ClientIdAllocator, LivePolicy
from ..live.proxy_glue import wire_for_client
from ..live.session import LiveRunRefused, live_session
from ..scenarios.app_startup import StartupPlan
from ..scenarios.doctor import HostProblem, diagnose_host
from ..scenarios.gateway_or_code import VERDICT_BOTH_OK, run_gateway_or_code
from ..targets.base import TARGET_EXTERNAL, Endpoint
from .signals import stop_children, terminate_children

EXIT_BOTH_OK = 0
EXIT_DIFFERENCE = 1  # a failure on either side: the verdict says whose
EXIT_USAGE = 2


def run_compare(host: str, port: int, spec: str, client_id: int, timeout: float, allow_live_account: bool,
                as_json: bool) -> int:
    """The whole command: the verdict printed, or the one-line reason it did not run (exit 1).

    An interrupt (SIGINT / SIGTERM) returns 130 / 143 with nothing printed
    (the caller prints the interrupted line, as for the ladder); whatever
    process the user's adapter started is stopped before returning."""
    try:
        outcome = asyncio.run(_compare_interruptible(host, port, spec, client_id, timeout, allow_live_account))
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        outcome = EXIT_INTERRUPTED
    except LiveRunRefused as exc:
        click.echo(redact_text(f"ERROR: {exc}"), err=True)
        return EXIT_DIFFERENCE
    finally:
        stop_children()  # the adapter's worker, if its own clean-up did not end it
    if isinstance(outcome, int):
        return outcome
    if isinstance(outcome, HostProblem):  # before any client: both would fail alike and blame the Gateway
        click.echo(f"ERROR: {outcome.cause}: {outcome.meaning}", err=True)
        click.echo(f"hint: {outcome.hint}", err=True)
        return EXIT_DIFFERENCE
    evidence, notes = outcome
    return print_verdict(evidence, notes, spec, as_json)


async def _compare_interruptible(host: str, port: int, spec: str, client_id: int, timeout: float,
                                 allow_live_account: bool) -> tuple[Any, list[str]] | HostProblem | int:
    """compare(), why the host name cannot be used, or the exit code of the signal that stopped it.

    The signal first terminates the adapter's child processes (a worker busy
    with a connect would answer a shutdown only after it), then cancels the
    run so the reference client, the proxy and the adapter close in their
    finally blocks (run_client bounds the adapter's disconnect when cancelled)."""
    with CancelOnSignal(on_signal=terminate_children) as signals:
        try:
            unresolved = await diagnose_host(host, timeout)
            if unresolved is not None:
                return unresolved
            return await compare(host, port, spec, client_id, timeout, allow_live_account)
        except asyncio.CancelledError:
            if not signals.absorb():
                raise
            return signals.exit_code


def check_client_spec(spec: str) -> None:
    """Exit 2 with the one-line cause when the module:factory cannot be loaded."""
    try:
        validate_spec(spec)
    except ClientSpecError as exc:
        click.echo(f"ERROR: {exc}", err=True)
        sys.exit(EXIT_USAGE)


async def compare(host: str, port: int, spec: str, client_id: int, timeout: float,
                  allow_live_account: bool = False) -> tuple[Any, list[str]]:
    """(evidence, notes): the verdict's evidence and what the run should say about itself.

    Set up as a live run is (harness/live/session.py): live-port warning,
    the recording proxy with the order guard, the paper-account check
    (LiveRunRefused when it fails). Client ids: client_id (yours),
    client_id + 1 (reference), client_id + 2 (the account check),
    client_id + 3 (the start-up reference, the official ibapi, when your
    adapter offers start-up steps: harness/clients/startup.py).
    """
    upstream = Endpoint(TARGET_EXTERNAL, host, port, f"{host}:{port}")
    notes: list[str] = []
    policy = LivePolicy(live=True, allow_live_account=allow_live_account)
    async with live_session(upstream, policy, ClientIdAllocator((client_id + 2, client_id + 2)), timeout=timeout,
                            report=notes.append) as session:
        proxy = session.proxy
        evidence = await run_gateway_or_code(
            session.endpoint, lambda: make_client(spec), lambda: make_client("raw"), client_id=client_id,
            timeout=timeout, wire=lambda cid, since: wire_for_client(proxy, cid, since), startup=StartupPlan(),
            startup_reference=lambda: make_client("ibapi"), startup_reference_client_id=client_id + 3)
    return evidence, notes


def print_verdict(evidence: Any, notes: list[str], spec: str, as_json: bool) -> int:
    details = evidence.details
    if as_json:
        click.echo(json.dumps({"verdict": details["verdict"], "parting_phase": details["parting_phase"],
                               "explanation": redact_text(details["explanation"]), "evidence": evidence.to_dict()},
                              indent=2, default=str))
    else:
        for note in notes:
            click.echo(f"  {note}")
        for label, run in (("your client", details["user"]), ("reference", details["reference"])):
            state = "OK" if run["ok"] else f"FAIL at {run['failed_phase']}: {run['cause']}"
            click.echo(redact_text(f"  {label:<12} {run['client']} (client id {run['client_id']}): {state}"))
        for row in details.get("startup_steps") or []:  # the start-up, step by step, side by side
            click.echo(redact_text(f"  step {row['step']} {row['label']:<16} reference {row['reference_says']} | "
                                   f"yours {row['user_says']}"))
        click.echo()
        click.echo(redact_text(f"Verdict: {details['explanation']}"))
    return EXIT_BOTH_OK if details["verdict"] == VERDICT_BOTH_OK else EXIT_DIFFERENCE


__all__ = ["check_client_spec", "compare", "print_verdict", "run_compare"]
