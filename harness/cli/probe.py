"""`ibgw probe`: the on-call command. One connect, one ping, a verdict.

Why it looks the way it does: when a trading system says "IB timeout", the
on-call engineer needs to know *which* step of the Gateway handshake stalled,
because each stall has a different cause (Gateway down, not logged in,
client id taken, account sync stuck). So the probe prints every phase as it
is reached, ends with one line naming the phase that failed and what that
usually means, and exits with a code per phase so scripts can branch on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import click

from ..clients import CLIENT_NAMES, make_client
from ..clients.base import (
    PHASE_API_READY,
    PHASE_FIRST_ACCOUNT_VALUE,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    PHASE_SERVER_VERSION,
    PHASE_TCP,
    ClientAdapter,
    ConnectResult,
    HandshakeError,
    observe_phases,
)
from ..clients.raw import RawClient
from ..core.constants import LIVE_CLIENT_ID_RANGE
from ..core.log_setup import setup_logging
from ..core.redact import redact_accounts, redact_text, redact_tree
from ..core.signals import EXIT_INTERRUPTED, CancelOnSignal
from ..protocol.versions import PROTOCOL_MAX
from ..scenarios.causes import CAUSES, Cause
from ..scenarios.doctor import (
    CLOSE_WAIT_THRESHOLD,
    SocketSurvey,
    diagnose_host,
    host_port_in_host,
    installed_client_floors,
    silent_family,
    survey_sockets,
)
from ..scenarios.judge import closed_after_accept, connectivity_detail, connectivity_lost, failure_causes
from ..scenarios.listener import port_queues

# ---------------------------------------------------------------- exit codes

EXIT_READY = 0
EXIT_ERROR = 1  # the probe itself could not run (client library missing, adapter bug)

PHASE_PING = "ping"  # not a handshake phase: the reqCurrentTime round trip after it

EXIT_CODES: dict[str, int] = {
    PHASE_TCP: 2,
    PHASE_SERVER_VERSION: 3,
    PHASE_NEXT_VALID_ID: 4,
    PHASE_MANAGED_ACCOUNTS: 4,
    PHASE_FIRST_ACCOUNT_VALUE: 5,
    PHASE_API_READY: 5,
    PHASE_PING: 5,
}

EXIT_NOT_READY_TO_TRADE = 6  # the API answered, but error 1100 (IB connectivity lost) is outstanding

# What a failure means and what to do come from the one table of causes
# (harness/scenarios/causes.py), shared with doctor; judge.py picks the rows.
SILENT_MEANING = "TCP accepted but the API layer is not answering"
CLOSED_MEANING = "TCP accepted, then closed with no version reply"

HELP = """Connect once to an IB Gateway / TWS API port, ping it, and say where it stalls.

\b
Prints each handshake phase with its time in ms as it is reached, then the
negotiated server version, connection time, managed accounts (redacted, e.g.
DU\u2026567) and the Gateway's messages (2104, 2106, 2158, ...). Read-only: the
probe never sends an order message.

\b
A failure names its cause from the table doctor uses, or lists the causes
that remain possible (most likely first), each with the public report it
comes from ("source:") or "field reports only".

\b
--client-id defaults to a random id in 900..999, so an on-call probe never
takes (and never kicks out) a production client's id. Pass --client-id to
test a specific id, e.g. to see whether it is in use (error 326).

\b
Exit codes:
  0    the API is ready (handshake complete and a ping answered)
  2    failed at tcp_connect: nothing listening / connection refused, or
       the host name does not resolve
  3    failed at server_version: TCP accepted, but no usable version reply
       (silent, closed, the Gateway's version outside the client's range,
       or the port speaks another protocol: HTTP, TLS, SSH, VNC)
  4    failed at next_valid_id / managed_accounts: API not ready (e.g. error 326)
  5    failed at first_account_value / api_ready, or the ping got no answer
  6    the API answered, but error 1100 (connectivity between IB and the
       Gateway lost) came with no 1101/1102 after it: not ready to trade
  1    the probe could not run (client library missing, internal error)
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
Bad options (e.g. --host HOST:PORT: the port goes in --port) are a usage error,
which click also reports with exit code 2;
with --json a usage error prints no JSON.
"""


def exit_code_for(phase: str | None) -> int:
    return EXIT_CODES.get(phase or "", EXIT_ERROR)


def random_client_id() -> int:
    """A probe-only client id in 900..999 (see --help)."""
    return random.SystemRandom().randint(*LIVE_CLIENT_ID_RANGE)


# ---------------------------------------------------------------- outcome


@dataclass
class ProbeOutcome:
    result: ConnectResult
    exit_code: int
    verdict: str  # "ready" | "not ready" (API up, IB connectivity lost) | "failed" | "error" | "interrupted"
    failed_phase: str | None = None
    cause: str | None = None
    meaning: str | None = None
    hint: str | None = None
    elapsed_s: float = 0.0
    ping_s: float | None = None
    causes: list[Cause] = field(default_factory=list)  # most likely first
    cause_detail: str = ""  # the numbers behind them, e.g. established connections seen

    def to_json_dict(self) -> dict[str, Any]:
        data = self.result.to_dict()
        data["accounts"] = redact_accounts(self.result.accounts)
        data = redact_tree(data, self.result.accounts)
        if self.failed_phase is not None:
            data["failed_phase"] = self.failed_phase
        if self.cause is not None:
            data["error"] = redact_text(self.cause, self.result.accounts)
        data.update(
            verdict=self.verdict,
            exit_code=self.exit_code,
            elapsed_s=round(self.elapsed_s, 6),
            ping_s=None if self.ping_s is None else round(self.ping_s, 6),
            meaning=self.meaning,
            hint=self.hint,
            causes=[c.to_dict() for c in self.causes],
            cause_detail=self.cause_detail or None,
        )
        return data


# ---------------------------------------------------------------- output


class Printer:
    """Human output: aligned plain lines, so it reads the same in a terminal,
    a pipe, a CI log or a ticket. Silent in --json mode. Thread-safe: the
    ibapi adapter marks phases from its reader thread."""

    WIDTH = 22

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self.seen: dict[str, float] = {}  # every phase reported, even when connect() never returns

    def line(self, text: str = "", *, err: bool = False) -> None:
        if self.enabled:
            with self._lock:
                click.echo(text, err=err)

    def phase(self, phase: str, seconds: float) -> None:
        with self._lock:
            if phase in self.seen:
                return
            self.seen[phase] = seconds
            if self.enabled:
                click.echo(f"  {phase:<{self.WIDTH}}{seconds * 1000:>10.1f} ms")

    def phases_from(self, phases: dict[str, float]) -> None:
        """Anything an adapter recorded without the live hook, in time order."""
        for phase, seconds in sorted(phases.items(), key=lambda item: item[1]):
            self.phase(phase, seconds)

    def field(self, name: str, value: object) -> None:
        self.line(f"  {name:<{self.WIDTH}}{value}")


# ---------------------------------------------------------------- the probe


async def run_probe(client: ClientAdapter, host: str, port: int, client_id: int, timeout: float,
                    printer: Printer) -> ProbeOutcome:
    """Connect, ping, disconnect. Never raises for an expected failure."""
    with CancelOnSignal() as signals:
        return await _probe_once(client, host, port, client_id, timeout, printer, signals)


async def _probe_once(client: ClientAdapter, host: str, port: int, client_id: int, timeout: float,
                      printer: Printer, signals: CancelOnSignal) -> ProbeOutcome:
    started = time.monotonic()
    result = ConnectResult(client.info, host, port, client_id, True)
    try:
        unresolved = await diagnose_host(host, timeout)
        if unresolved is not None:  # before any client: every library would call it "nothing listening"
            result.ok, result.failed_phase, result.error = False, PHASE_TCP, unresolved.cause
            return ProbeOutcome(result, EXIT_CODES[PHASE_TCP], "failed", PHASE_TCP, unresolved.cause,
                                unresolved.meaning, unresolved.hint, time.monotonic() - started,
                                causes=[CAUSES["host_unresolved"]])
        # Before connecting, as doctor does, so the probe's own socket is not counted.
        survey = await survey_sockets(host, port, min(0.5, timeout / 4))
        try:
            with observe_phases(printer.phase):
                result = await client.connect(host, port, client_id, timeout=timeout, readonly=True)
        except HandshakeError as exc:
            if exc.result is not None:
                result = exc.result
            printer.phases_from(result.phases)
            for phase, seconds in printer.seen.items():
                result.phases.setdefault(phase, seconds)
            result.failed_phase = result.failed_phase or exc.phase
            result.error = result.error or exc.cause
            outcome = ProbeOutcome(result, exit_code_for(exc.phase), "failed", exc.phase, exc.cause,
                                   elapsed_s=time.monotonic() - started)
            await _judge_failure(outcome, client, survey, host, port, timeout)
            return outcome
        printer.phases_from(result.phases)
        try:
            ping_s = await client.ping(timeout=min(timeout, 5.0))
        except (TimeoutError, OSError, ConnectionError) as exc:
            cause = _describe(exc, f"no reply within {min(timeout, 5.0):g} s")
            result.ok = False
            return _with_causes(ProbeOutcome(result, EXIT_CODES[PHASE_PING], "failed", PHASE_PING, cause,
                                             elapsed_s=time.monotonic() - started), [CAUSES["ping_unanswered"]])
        printer.phase(PHASE_PING, ping_s)
        lost = connectivity_lost(result.messages)
        if lost is not None:  # the API answers, IB does not: exit non-zero, say why
            detail = connectivity_detail(lost)
            return _with_causes(ProbeOutcome(result, EXIT_NOT_READY_TO_TRADE, "not ready", None,
                                             detail,
                                             elapsed_s=time.monotonic() - started, ping_s=ping_s),
                                [CAUSES["connectivity_lost"]], detail)
        return ProbeOutcome(result, EXIT_READY, "ready", elapsed_s=time.monotonic() - started, ping_s=ping_s)
    except asyncio.CancelledError:
        if not signals.absorb():
            raise
        printer.phases_from(result.phases)
        for phase, seconds in printer.seen.items():  # connect() never returned its result
            result.phases.setdefault(phase, seconds)
        result.phases.pop(PHASE_PING, None)
        return ProbeOutcome(result, signals.exit_code, "interrupted", None, f"interrupted by {signals.name}",
                            elapsed_s=time.monotonic() - started)
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), 5.0)
        except (asyncio.CancelledError, Exception):  # closing must not turn a verdict into a traceback
            pass


def _with_causes(outcome: ProbeOutcome, causes: list[Cause], detail: str = "",
                 meaning: str | None = None) -> ProbeOutcome:
    """Meaning and hint from the table: one cause says what it means; several
    are listed as candidates (most likely first) and the first one's fix is the hint."""
    outcome.causes, outcome.cause_detail = causes, detail
    if meaning is not None:
        outcome.meaning = f"{meaning}; possible causes, most likely first: " + "; ".join(c.title for c in causes)
    elif len(causes) == 1:
        outcome.meaning = f"{causes[0].title}: {causes[0].meaning}"
    else:
        outcome.meaning = "possible causes, most likely first: " + "; ".join(c.title for c in causes)
    outcome.hint = causes[0].fix if causes else None
    return outcome


async def _judge_failure(outcome: ProbeOutcome, client: ClientAdapter, survey: SocketSurvey, host: str, port: int,
                         timeout: float) -> None:
    """Name the cause of a handshake failure from the same evidence doctor
    reads: the failure's own text first; for a version step that was silent
    or closed, a second look with the raw client (which sees the bytes) and
    the socket table."""
    codes = [msg.code for msg in outcome.result.messages]
    settled = failure_causes(outcome.failed_phase, outcome.cause, codes)
    if settled is not None:
        _with_causes(outcome, settled)
        return
    kind = _version_step_kind(outcome.cause or "")
    if client.info.name != "raw":  # a library only says "timeout": look at the bytes once more
        look = RawClient(await_account_value=False)
        try:
            await look.connect(host, port, random_client_id(), timeout=min(timeout, 3.0), readonly=True)
        except HandshakeError as exc:
            settled = failure_causes(exc.phase, exc.cause)
            if settled is not None:
                _with_causes(outcome, settled, exc.cause)
                return
            kind = _version_step_kind(exc.cause)
        finally:
            try:
                await asyncio.wait_for(look.disconnect(), 5.0)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                pass
    if kind == "closed":
        judged = closed_after_accept(survey.established if survey.visible else None, port)
        _with_causes(outcome, judged.causes, judged.detail, CLOSED_MEANING + f" ({judged.detail})")
        return
    detail = (f"{survey.count} CLOSE_WAIT socket(s) on port {port}" if survey.visible
              else f"CLOSE_WAIT sockets not visible here ({survey.reason})")
    keys = silent_family(survey, CLOSE_WAIT_THRESHOLD)
    if survey.visible:  # the listener's own queues: the wedge's signature (scenarios/listener.py)
        queues = await asyncio.to_thread(port_queues, port)
        if queues.wedged:
            keys = ["wedge", *(key for key in keys if key != "wedge")]
            detail = f"{detail}; {queues.signature}"
    _with_causes(outcome, [CAUSES[key] for key in keys], detail, f"{SILENT_MEANING} ({detail})")


def _version_step_kind(cause: str) -> str:
    """closed | silent, from a failure at the version step."""
    text = cause.lower()
    return "closed" if any(word in text for word in ("closed", "reset", "broken pipe", "eof")) else "silent"


def _describe(exc: BaseException, default: str) -> str:
    if isinstance(exc, TimeoutError):
        return default
    return str(exc) or type(exc).__name__


def _redacted_accounts(result: ConnectResult) -> str:
    return ", ".join(redact_accounts(result.accounts)) if result.accounts else "(none)"


def print_report(outcome: ProbeOutcome, printer: Printer) -> None:
    r = outcome.result
    if r.server_version is not None:
        printer.line()
        printer.field("server version", r.server_version)
        printer.field("connection time", r.connection_time or "?")
        if r.next_valid_id is not None:
            printer.field("next valid id", r.next_valid_id)
        printer.field("accounts", _redacted_accounts(r))
    if r.messages:
        printer.line("  Gateway messages:")
        for msg in r.messages:
            printer.line(f"    {msg.code:>5}  {redact_text(msg.message, r.accounts)}"
                         + (f"  (req {msg.req_id})" if msg.req_id not in (-1, None) else ""))
    printer.line()
    if outcome.verdict == "ready":
        for note in version_notes(r):
            printer.line(f"note: {note}")
        ping = f", ping {outcome.ping_s * 1000:.1f} ms" if outcome.ping_s is not None else ""
        # The same number as the api_ready phase above and in --json's phases;
        # the whole probe (name lookup, ping, disconnect) is said apart.
        ready_s = r.phases.get("api_ready")
        ready = (f"API ready after {ready_s * 1000:.1f} ms" if isinstance(ready_s, (int, float))
                 else "API ready")
        printer.line(f"OK: {ready} (server version {r.server_version}{ping}; "
                     f"the probe took {outcome.elapsed_s * 1000:.1f} ms)")
    elif outcome.verdict == "interrupted":
        printer.line(f"INTERRUPTED after {outcome.elapsed_s:.1f} s ({outcome.cause}); connection closed", err=True)
    else:
        _print_causes(outcome, printer)
        cause = redact_text(outcome.cause or "", r.accounts)
        if outcome.verdict == "not ready":
            printer.line(f"NOT READY after {outcome.elapsed_s * 1000:.1f} ms: {cause}: {outcome.meaning}", err=True)
        else:
            printer.line(f"FAILED at {outcome.failed_phase} after {outcome.elapsed_s:.1f} s: {cause}: "
                         f"{outcome.meaning}", err=True)
        if outcome.hint:
            printer.line(f"hint: {outcome.hint}", err=True)


def version_notes(result: ConnectResult) -> list[str]:
    """When the negotiated version is the build's maximum (the client offered
    more) and a client library installed here needs more than that: doctor
    calls it not healthy; the probe, which connected, says so in a note."""
    top, offered = result.server_version, result.client.max_version
    if top is None or not offered or top >= offered:
        return []
    return [f"the Gateway's maximum ({top}) is below {name}'s minimum ({low}): {name} cannot connect to this "
            "build (upgrade the Gateway or use an older client)"
            for name, low in installed_client_floors().items() if top < low]


def _print_causes(outcome: ProbeOutcome, printer: Printer) -> None:
    """The causes with their public sources, on stdout beside the evidence."""
    if not outcome.causes:
        return
    printer.line("Cause:" if len(outcome.causes) == 1 else "Possible causes (most likely first):")
    for row in outcome.causes:
        printer.line(f"  - {row.title}")
        printer.line(f"      source: {row.source}")
    if outcome.cause_detail:
        printer.line(f"  seen: {outcome.cause_detail}")
    printer.line()


# ---------------------------------------------------------------- command


def parse_client_range(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """`MIN..MAX` (or one version) -> (min, max), within what the codec speaks."""
    if value is None:
        return None
    low_text, _, high_text = value.partition("..")
    try:
        low, high = int(low_text), int(high_text or low_text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not MIN..MAX, e.g. 100..226") from None
    if not 100 <= low <= high <= PROTOCOL_MAX:
        raise click.BadParameter(f"{value!r}: need 100 <= MIN <= MAX <= {PROTOCOL_MAX}")
    return low, high


def check_host_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--host HOST:PORT is a usage error: the port would be taken as part of
    the name, and the failure would read like a Gateway fault. Shared by
    probe and doctor."""
    split = host_port_in_host(value)
    if split is not None:
        raise click.BadParameter(f"{value!r} looks like HOST:PORT; use --host {split[0]} --port {split[1]}")
    return value


@click.command("probe", help=HELP, short_help="Connect once, ping, and say which handshake phase stalls.",
               context_settings={"max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True, callback=check_host_option,
              help="Gateway / TWS host name or IP address (the port goes in --port).")
@click.option("--port", type=click.IntRange(1, 65535), default=4002, show_default=True,
              help="API port (Gateway 4001 live / 4002 paper, TWS 7496 / 7497).")
@click.option("--client", "client_name", type=click.Choice(CLIENT_NAMES), default="raw", show_default=True,
              help="Client to connect with: the harness's raw client or a real library.")
@click.option("--client-id", type=click.IntRange(0, 2**31 - 1), default=None,
              help="API client id.  [default: random in 900..999]")
@click.option("--timeout", type=click.FloatRange(0, 3600, min_open=True), default=10.0, show_default=True,
              help="Seconds to wait for the handshake (and at most 5 s for the ping).")
@click.option("--client-range", "client_range", default=None, metavar="MIN..MAX", callback=parse_client_range,
              help="Server versions the raw client offers (100..226).  [default: 100..226, the modern official "
                   "client's; e.g. 157..178 to ask what ib_async would get]")
@click.option("--json", "as_json", is_flag=True,
              help="Print only the result as JSON on stdout (accounts redacted), with verdict and exit_code.")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show the client library's own log warnings on stderr (hidden by default).")
def probe(host: str, port: int, client_name: str, client_id: int | None, timeout: float,
          client_range: tuple[int, int] | None, as_json: bool, verbose: bool) -> None:
    if client_id is None:
        client_id = random_client_id()
    _configure_logging(verbose)
    printer = Printer(enabled=not as_json)
    if client_range is not None and client_name != "raw":
        _fatal(f"--client-range applies to the raw client; {client_name} offers its own range", as_json)
        return
    try:
        options = {} if client_range is None else {"min_version": client_range[0], "max_version": client_range[1]}
        client = make_client(client_name, **options)
    except ImportError as exc:
        _fatal(f"client {client_name!r} is not available here: {exc}", as_json)
        return
    info = client.info
    offers = f", offers v{info.min_version}..{info.max_version}" if info.max_version else ""
    printer.line(f"probe {host}:{port} with {info.name} ({info.package} {info.version}{offers}), "
                 f"client id {client_id}, timeout {timeout:g} s")
    try:
        outcome = asyncio.run(run_probe(client, host, port, client_id, timeout, printer))
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        if not as_json:
            click.echo("INTERRUPTED", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an adapter bug: one line, not a traceback
        _fatal(f"the {client_name} adapter failed unexpectedly: {type(exc).__name__}: {exc}", as_json)
        return
    if as_json:
        click.echo(json.dumps(outcome.to_json_dict(), indent=2, default=str))
    else:
        print_report(outcome, printer)
    sys.exit(outcome.exit_code)


def _configure_logging(verbose: bool) -> None:
    """Client libraries log their own view of a failure ("API connection
    failed: TimeoutError()"); by default the probe's one FAILED line replaces
    that noise, so library records go nowhere unless --verbose."""
    setup_logging(None, handler_level=logging.WARNING, quiet=not verbose)


def _fatal(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"verdict": "error", "exit_code": EXIT_ERROR, "error": message}, indent=2))
    else:
        click.echo(f"ERROR: {message}", err=True)
    sys.exit(EXIT_ERROR)


__all__ = ["EXIT_CODES", "EXIT_NOT_READY_TO_TRADE", "ProbeOutcome", "check_host_option", "exit_code_for", "probe", "random_client_id",
           "run_probe"]
