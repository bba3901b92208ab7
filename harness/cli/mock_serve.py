"""`ibgw mock serve` / `ibgw mock profiles`: the mock Gateway in the foreground.

Why a foreground server: it is what a developer points their own client at
("does my code survive a Gateway that sends managedAccounts first?"), what a
container runs as its main process, and what the CLI tests start as a real
subprocess. So it must say where it listens (also for --port 0), log each
connection, and stop cleanly on Ctrl-C and on SIGTERM (docker stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import signal
import sys
from typing import Any

import click

from .. import runstate
from ..core.config import env as config_env
from ..core.constants import PAPER_PREFIXES
from ..core.log_setup import setup_logging
from ..core.redact import redact_account, redact_text, remember_accounts
from ..core.signals import on_stop_signals
from ..mock import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    FAULT_SPECS,
    PROFILES,
    ControlServer,
    FaultError,
    GatewayProfile,
    MockGateway,
    UnknownProfileError,
    get_profile,
    parse_fault,
)
from ..mock.gctune import tune_for_serving

log = logging.getLogger("harness.mock")

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1
STOP_TIMEOUT = 5.0
LOG_LEVELS = ("debug", "info", "warning", "error")


STRICT_KEY = "ibgw.mock.strict"  # --strict, carried in the click context to _serve


def _strict_option(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[STRICT_KEY] = value


# ---------------------------------------------------------------- option parsing


def parse_accounts(value: str) -> list[str]:
    """'DU111,DU222' -> ['DU111', 'DU222']; ValueError with the reason otherwise.

    Only paper ids are accepted: the mock stands for a paper Gateway, and a
    live-looking id in test evidence would be indistinguishable from a leak.
    """
    ids = [part.strip() for part in value.split(",")]
    if not value.strip():
        raise ValueError("no account id given; expected e.g. DU1234567 or DU111,DU222")
    seen: set[str] = set()
    for account in ids:
        if not account:
            raise ValueError(f"empty account id in {_shown(value)!r}; expected comma-separated ids like DU111,DU222")
        if not (account.startswith(PAPER_PREFIXES) and len(account) > 2 and account.isascii()
                and account.isalnum()):
            raise ValueError(f"{_shown(account)!r} is not a paper account id: it must start with "
                             f"{' or '.join(PAPER_PREFIXES)} followed by letters/digits only, e.g. DU1234567")
        if account in seen:
            raise ValueError(f"account id {_shown(account)!r} is given twice")
        seen.add(account)
    return ids


def _shown(text: str) -> str:
    """A refused --accounts value as an error may show it: a live id (U1234567)
    is exactly what must never be printed in full, so anything id-shaped, or
    with five or more digits in one piece, is redacted."""
    parts = []
    for part in text.split(","):
        shown = redact_text(part)
        if shown == part and re.search(r"\d{5,}", part):
            shown = redact_account(part)
        parts.append(shown)
    return ",".join(parts)


def _accounts_option(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    try:
        accounts = parse_accounts(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    remember_accounts(accounts)
    return accounts


def _profile_option(ctx: click.Context, param: click.Parameter, value: str) -> GatewayProfile:
    try:
        return get_profile(value)
    except UnknownProfileError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _replay_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from pathlib import Path

    from ..recording import RecordingError, load

    try:
        return load(Path(value))
    except RecordingError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _faults_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    for text in value:
        try:
            parse_fault(text)
        except FaultError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return list(value)


# ---------------------------------------------------------------- commands


@click.group("mock", short_help="Serve the mock Gateway, or list its Gateway profiles.")
def mock() -> None:
    """The mock IB Gateway: serve it, or list the Gateway profiles it can imitate."""


@mock.command("serve", context_settings={"max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=4002, show_default=True,
              help="Port to listen on; 0 picks a free port (the chosen one is printed).")
@click.option("--accounts", callback=_accounts_option, default=None, metavar="DU111,DU222",
              help="Comma-separated paper account ids (DU.../DF...) the login manages.  [default: DU1234567]")
@click.option("--profile", callback=_profile_option, default="default", show_default=True,
              help=f"Gateway profile to imitate: {', '.join(sorted(PROFILES))} (see `ibgw mock profiles`).")
@click.option("--max-clients", type=click.IntRange(1, 10_000), default=DEFAULT_MAX_CLIENTS, show_default=True,
              help="API client cap; a real Gateway accepts 32 API clients. Only connections that completed "
                   "startApi count.")
@click.option("--handshake-timeout", type=click.FloatRange(0), default=DEFAULT_HANDSHAKE_TIMEOUT, show_default=True,
              metavar="SECONDS",
              help="Close a connection that has not sent startApi this long after accept (an assumption: what a "
                   "real Gateway does with a silent socket is not public); 0 waits for ever.")
@click.option("--fault", "faults", multiple=True, callback=_faults_option, metavar="NAME[=VALUE]",
              help="A Gateway failure to reproduce; repeat to combine (see `ibgw mock faults`).")
@click.option("--control-port", type=click.IntRange(0, 65535), default=None,
              help="Serve the JSON control endpoint (state, faults, restart, drop) on this port of --host; "
                   "0 picks a free one (printed).")
@click.option("--idle-timeout", type=click.FloatRange(0, min_open=False), default=0.0, show_default=True,
              metavar="SECONDS",
              help="Close a connection that sends nothing, or reads nothing while replies wait, for this long; "
                   "0 keeps idle clients forever, as a real Gateway does.")
@click.option("--strict", is_flag=True, default=False, expose_value=False, callback=_strict_option,
              help="Treat every request the mock does not model as a failure: logged as FAILURE, marked in the "
                   "transcript, and its error's text names it as unmodelled (the code stays the one a real Gateway "
                   "sends, e.g. 354 or 162, so clients end the request as they would).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="info",
              show_default=True, help="Level of the connection log on stderr.")
@click.option("--replay", "replay_file", default=None, metavar="FILE", callback=_replay_option,
              help="Answer from a recording (`ibgw record`) instead of the account model; the server version, "
                   "build, time zone and accounts come from the recording (so --profile and --accounts are "
                   "refused with it). Divergences are logged.")
@click.option("--replay-speed", type=click.FloatRange(0), default=1.0, show_default=True, metavar="FACTOR",
              help="With --replay: 1 keeps the recorded timing, 2 replays twice as fast, 0 without delays.")
def serve(host: str, port: int, accounts: list[str] | None, profile: GatewayProfile, max_clients: int,
          faults: list[str], control_port: int | None, idle_timeout: float, log_level: str,
          replay_file: Any = None, replay_speed: float = 1.0,
          handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT) -> None:
    """Run the mock Gateway in the foreground until Ctrl-C or SIGTERM.

    \b
    Prints "mock Gateway listening on HOST:PORT (...)" on stdout once it
    accepts connections, logs one line per connection event on stderr (beyond
    20 routine lines a second, a summary every 10 s instead; errors and
    faults always get their own line), and exits 0 when stopped by SIGINT or
    SIGTERM. Exit 1: it could not listen (port in use, address not available).
    """
    _check_replay_options(click.get_current_context(), replay_file is not None)
    _configure_logging(log_level)
    if replay_file is not None:
        from ..recording.replay import replay_gateway

        gw, replayer = replay_gateway(replay_file, speed=replay_speed, host=host, port=port,
                                      max_clients=max_clients, faults=faults, idle_timeout=idle_timeout or None,
                                      handshake_timeout=handshake_timeout or None)
        # Before any client comes: what the recording can serve (versions, read-only), so a
        # refusal later ("no session at server version N", "made read-only") is no surprise.
        click.echo(replayer.describe(), err=True)
    else:
        gw = MockGateway(host, port, profile=profile, accounts=accounts, max_clients=max_clients, faults=faults,
                         idle_timeout=idle_timeout or None, handshake_timeout=handshake_timeout or None)
    _choose_event_loop()
    try:
        code = asyncio.run(_serve(gw, control_port))
    except KeyboardInterrupt:  # SIGINT before the loop's own handler was installed
        code = EXIT_OK
    sys.exit(code)


def _choose_event_loop() -> None:
    """IBGW_MOCK_LOOP=uvloop runs the mock on uvloop when it is installed
    (optional, never a dependency: `make bench` measures both); anything
    else, or uvloop missing, keeps the standard library's loop."""
    if config_env("IBGW_MOCK_LOOP").strip().lower() != "uvloop":
        return
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        log.warning("IBGW_MOCK_LOOP=uvloop but uvloop is not installed: using asyncio's own loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _check_replay_options(ctx: click.Context, replaying: bool) -> None:
    """Refuse options that would be silently ignored: a replay answers with
    the recording's server version, build, time zone and accounts
    (harness/recording/replay.py replay_profile), and --replay-speed means
    nothing without a recording. Only options given on the command line
    count, so the defaults never trip this."""
    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source is not click.core.ParameterSource.DEFAULT

    if replaying:
        for name, option in (("profile", "--profile"), ("accounts", "--accounts")):
            if given(name):
                raise click.BadParameter(
                    "cannot be combined with --replay: a replay's server version, build, time zone and accounts "
                    f"come from the recording; hint: drop {option}, or record a Gateway with that behaviour "
                    "(`ibgw record`)", ctx, param_hint=option)
    elif given("replay_speed"):
        raise click.BadParameter("only applies with --replay FILE; hint: add --replay FILE, or drop --replay-speed "
                                 "(the account model has no recorded timing to scale)", ctx,
                                 param_hint="--replay-speed")


async def _serve(gw: MockGateway, control_port: int | None) -> int:
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(STRICT_KEY):
        gw.strict = True  # read by the request desk (harness/mock/requests_market.py)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: int) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    on_stop_signals(loop, on_signal)
    try:
        try:
            await gw.start()
        except OSError as exc:
            click.echo(_listen_error(gw.host, gw.requested_port, exc), err=True)
            return EXIT_CANNOT_LISTEN
        control = None
        if control_port is not None:
            try:
                control = await ControlServer(gw, gw.host, control_port).start()
            except OSError as exc:
                await gw.stop()
                click.echo(_listen_error(gw.host, control_port, exc).replace("--port", "--control-port"), err=True)
                return EXIT_CANNOT_LISTEN
        tune_for_serving()  # a long-running server's GC settings (harness/mock/gctune.py says why)
        if type(loop).__module__.startswith("uvloop"):  # said once listening: a failed start stays one line
            log.info("event loop: uvloop (IBGW_MOCK_LOOP=uvloop)")
        click.echo(f"mock Gateway listening on {gw.host}:{gw.port} "
                   f"(profile {gw.profile.name}, server version <= {gw.effective_max_server_version})"
                   + (f"; faults: {' '.join(gw.faults.describe())}" if gw.faults.active else ""))
        if control is not None:
            click.echo(f"control endpoint on http://{gw.host}:{control.port}/state")
        sys.stdout.flush()
        # Inside a harness run: register, so a killed run's next start-up sweep stops us (harness/runstate.py).
        pidfile = runstate.register("mock-serve", port=gw.port)
        try:
            await stop.wait()
        finally:
            runstate.unregister(pidfile)
        if control is not None:
            await control.stop()
        log.info("%s received: stopping (%d connection(s) open)", received[0], gw.active_connections)
        try:
            await asyncio.wait_for(gw.stop(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("connections did not close within %g s; exiting anyway", STOP_TIMEOUT)
        log.info("mock Gateway stopped")
        return EXIT_OK
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)


def _listen_error(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} is already in use on {host}: {reason}; "
                "hint: choose another --port or stop the other process")
    if exc.errno == errno.EACCES:
        return f"cannot listen on {host}:{port}: {reason}; hint: ports below 1024 need privileges, choose another --port"
    return f"cannot listen on {host}:{port}: {reason}; hint: check --host is an address of this machine"


def _configure_logging(level: str) -> None:
    # other libraries: warnings only; the harness at the level asked for
    setup_logging(logging.WARNING, levels={"harness": level.upper()})


@mock.command("faults")
def faults_command() -> None:
    """List the faults `ibgw mock serve --fault` accepts, with the real failure each reproduces and its
    source: the public report (repo#issue) or "field reports only"."""
    for spec in FAULT_SPECS.values():
        click.echo(f"{spec.usage:<25} {spec.description}")
        click.echo(f"{'':<26}source: {spec.source}")


@mock.command("profiles")
def profiles() -> None:
    """List the Gateway profiles `ibgw mock serve --profile` accepts; a profile with a regression fixture
    names the faults it starts with and the public report they reproduce."""
    click.echo(f"{'profile':<12}{'build':<22}{'max server version':>19}  {'startup order':<26}time zone")
    for name in sorted(PROFILES):
        p = PROFILES[name]
        order = "managedAccounts first" if p.accounts_first else "nextValidId first"
        click.echo(f"{p.name:<12}{p.build:<22}{p.max_server_version:>19}  {order:<26}{p.time_zone}")
        if p.default_faults:
            click.echo(f"{'':<12}regression fixture: {' '.join(p.default_faults)}; source: {p.regression_source}")


__all__ = ["mock", "parse_accounts", "profiles", "serve"]
