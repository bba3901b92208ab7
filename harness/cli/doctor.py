"""`ibgw doctor`: the diagnostic ladder a person runs when trading stops.

Why next to `ibgw probe`: probe answers "where does one connect stall";
doctor answers "why", by climbing a ladder of rungs (port, version reply,
nextValidId, managedAccounts, startup sync, client id, CLOSE_WAIT sockets,
paper or live) and, where faults look the same on the wire, gathering the
evidence that separates them. It judges only from the wire and the host's
socket table, so it works the same against a real Gateway and the mock.
The ladder itself is harness.scenarios.doctor; this module only prints it.
"""

from __future__ import annotations

import asyncio
import json
import sys

import click

from ..core.redact import redact_text, redact_tree
from ..core.signals import EXIT_INTERRUPTED, EXIT_TERMINATED, CancelOnSignal
from ..scenarios.doctor import CLOSE_WAIT_THRESHOLD, DoctorResult, Rung, run_doctor
from .probe import Printer, check_host_option, parse_client_range, random_client_id

EXIT_HEALTHY = 0
EXIT_NOT_HEALTHY = 1  # any rung failed or warned, or doctor itself could not run

LABELS = {"ok": "OK", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}

HELP = """Diagnose an IB Gateway / TWS API port: a ladder of checks, each with a verdict,
its evidence and what to do about it.

\b
Rungs, in order (a rung that cannot run after a failure is SKIP):
  port reachable        the host name resolves, then TCP connect (refused: Gateway
                        down, wrong port, API off)
  version reply         the API answers the handshake (a port that speaks HTTP, TLS, SSH or
                        VNC is named); its version is within the range of the client
                        libraries installed here (and of --client-range)
  nextValidId           the API is ready for this client id
  managedAccounts       the login lists its accounts
  IB connectivity       no error 1100 (IB connectivity lost) without a 1101/1102 after it
  startup sync ends     positions, account download and executions all end
  client id in use      error 326, and whether a fresh client id helps
  CLOSE_WAIT sockets    zombie sockets on the port (count, owning process)
  paper or live account DU/DF accounts are paper; anything else is LIVE

\b
When TCP is accepted and nothing answers (an incoming-connection dialog,
a wedged API, an API red after a disconnect all look alike), doctor retries
with a fresh client id, counts CLOSE_WAIT sockets and reads the listener's
queues (connections never accept()ed, bytes never read: the wedge), then
lists under "Diagnosis:" the causes that remain possible, most likely first,
each with the public report it comes from ("source:"), or "field reports only".
A login or 2FA in progress is not silence: the port refuses, or a forwarder
in front closes at once.
CLOSE_WAIT sockets are counted from this host's socket table (psutil, lsof
where psutil needs privileges), so run doctor on the Gateway's host.

\b
Read-only: doctor never sends an order message. --client-id defaults to a
random id in 900..999 so it never takes a production client's id. Against a
silent Gateway it takes about twice --timeout.

\b
Exit codes:
  0    healthy: every rung OK
  1    not healthy: any rung FAIL or WARN (a LIVE account or a live port
       counts: doctor does not call a live session healthy), or doctor
       itself could not run
  2    usage error (bad option)
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
"""


def print_result(result: DoctorResult, printer: Printer) -> None:
    width = max(len(rung.name) for rung in result.rungs) + 2
    for rung in result.rungs:
        printer.line(redact_text(f"  {LABELS.get(rung.verdict, rung.verdict.upper()):<5} {rung.name:<{width}}"
                                 f"{rung.summary}"))
        if rung.verdict in ("fail", "warn") and rung.remediation:
            printer.line(redact_text(f"  {'':<5} {'':<{width}}fix: {rung.remediation}"))
        for row in _socket_lines(rung):
            printer.line(redact_text(f"  {'':<5} {'':<{width}}{row}"))
    printer.line()
    if result.diagnosis:
        printer.line("Diagnosis:" + (" (most likely first)" if len(result.diagnosis) > 1 else ""))
        for cause, cited in zip(result.diagnosis, result.causes, strict=True):
            printer.line(redact_text(f"  - {cause}"))
            if cited.get("source"):
                printer.line(redact_text(f"      source: {cited['source']}"))
    else:
        printer.line("Diagnosis: none")
    verdict = "HEALTHY" if result.healthy else "NOT HEALTHY"
    printer.line(f"{verdict} after {result.elapsed_s:.1f} s")


def _socket_lines(rung: Rung) -> list[str]:
    """The CLOSE_WAIT sockets themselves: which client churned, which process owns them."""
    sockets = rung.evidence.get("sockets") if rung.verdict in ("fail", "warn") else None
    lines = []
    for row in sockets or []:
        owner = f"{row.get('process') or '?'} pid {row['pid']}" if row.get("pid") is not None else "pid not visible"
        lines.append(f"{row.get('local')} <- {row.get('remote')}  CLOSE_WAIT  ({owner})")
    return lines


async def _run_interruptible(host: str, port: int, client_id: int, timeout: float,
                             threshold: int, client_range: tuple[int, int] | None = None) -> DoctorResult | int:
    """The ladder, or the exit code of the signal that stopped it. A signal
    cancels the ladder so its connections are closed before exit."""
    with CancelOnSignal() as signals:
        try:
            return await run_doctor(host, port, client_id=client_id, timeout=timeout,
                                    close_wait_threshold=threshold, client_range=client_range)
        except asyncio.CancelledError:
            if not signals.absorb():
                raise
            return signals.exit_code


def _report_interrupted(code: int, as_json: bool) -> None:
    """The one interrupted line, the same for the ladder and --client."""
    if as_json:
        click.echo(json.dumps({"healthy": False, "exit_code": code, "error": "interrupted"}, indent=2))
    else:
        click.echo("INTERRUPTED: connections closed", err=True)


@click.command("doctor", help=HELP, context_settings={"max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True, callback=check_host_option,
              help="Gateway / TWS host name or IP address (the port goes in --port).")
@click.option("--port", type=click.IntRange(1, 65535), default=4002, show_default=True,
              help="API port (Gateway 4001 live / 4002 paper, TWS 7496 / 7497).")
@click.option("--client-id", type=click.IntRange(0, 2**31 - 1), default=None,
              help="API client id for the first attempt.  [default: random in 900..999]")
@click.option("--timeout", type=click.FloatRange(0, 3600, min_open=True), default=5.0, show_default=True,
              help="Seconds to wait for each handshake attempt and for the startup sync.")
@click.option("--close-wait-threshold", type=click.IntRange(1, 100000), default=CLOSE_WAIT_THRESHOLD,
              show_default=True, help="CLOSE_WAIT sockets at which zombie saturation becomes the leading verdict.")
@click.option("--client-range", "client_range", default=None, metavar="MIN..MAX", callback=parse_client_range,
              help="Server versions doctor's client offers (100..226), e.g. 157..178 to judge the Gateway "
                   "as ib_async would.  [default: 100..226]")
@click.option("--json", "as_json", is_flag=True,
              help="Print only the structured result as JSON on stdout (accounts redacted).")
@click.option("--client", "client_spec", default=None, metavar="MODULE:FACTORY",
              help="Gateway or your code? Instead of the ladder, run your adapter (module.path:factory) and the "
                   "reference raw client back to back through a recording proxy and give a verdict "
                   "(exit 0 both OK, 1 otherwise).")
@click.option("--allow-live-account", is_flag=True,
              help="With --client: go on when the Gateway manages a non-paper (non DU/DF) account.")
def doctor(host: str, port: int, client_id: int | None, timeout: float, close_wait_threshold: int,
           client_range: tuple[int, int] | None, as_json: bool, client_spec: str | None,
           allow_live_account: bool) -> None:
    if client_id is None:
        client_id = random_client_id()
    if client_spec is not None:
        from .compare import check_client_spec, run_compare

        check_client_spec(client_spec)
        if not as_json:
            click.echo(f"doctor {host}:{port}: {client_spec} vs the reference client, client ids {client_id} and "
                       f"{client_id + 1}, timeout {timeout:g} s")
        code = run_compare(host, port, client_spec, client_id, timeout, allow_live_account, as_json)
        if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            _report_interrupted(code, as_json)
        sys.exit(code)
    printer = Printer(enabled=not as_json)
    printer.line(f"doctor {host}:{port}, client id {client_id}, timeout {timeout:g} s")
    try:
        outcome = asyncio.run(_run_interruptible(host, port, client_id, timeout, close_wait_threshold,
                                                 client_range))
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        outcome = EXIT_INTERRUPTED
    except Exception as exc:  # a doctor bug: one line, not a traceback
        message = f"doctor failed unexpectedly: {type(exc).__name__}: {exc}"
        if as_json:
            click.echo(json.dumps({"healthy": False, "exit_code": EXIT_NOT_HEALTHY, "error": message}, indent=2))
        else:
            click.echo(f"ERROR: {message}", err=True)
        sys.exit(EXIT_NOT_HEALTHY)
    if isinstance(outcome, int):
        _report_interrupted(outcome, as_json)
        sys.exit(outcome)
    if as_json:
        click.echo(json.dumps(redact_tree(outcome.to_dict()), indent=2, default=str))
    else:
        print_result(outcome, printer)
    sys.exit(outcome.exit_code)


__all__ = ["doctor", "print_result"]
