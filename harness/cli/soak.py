"""`ibgw soak`: the soak from a shell, with a live progress line.

    ibgw soak --duration 3600 --gateway mock
    ibgw soak --duration 600 --gateway 127.0.0.1:4002 --schedule proxy-reset@120,proxy-blackhole@300:20

Against the mock the mock runs in this process and the schedule uses its
faults; against any other Gateway the clients go through the fault proxy
(harness/proxy) and only proxy faults are injected. Evidence goes to
reports/soak/<UTC time>/: soak.jsonl (written while it runs), evidence.json
(the verdict), timeline.png and, through the proxy, wire.jsonl (every frame
both ways, decoded, account ids redacted). A Gateway that is not the mock is a
live run: complete order guard, client ids 900-999, and a stop before the
first connection when an account is not paper (--allow-live-account).
SIGTERM or Ctrl-C stops it early with the evidence so far and a summary
line; exit status 0 pass, 1 fail (or the target could not be started: no
Docker engine, a container that never got ready), 2 bad input (including a
run that ended too soon after a fault to judge its recovery), 3 refused
(live account), 130/143 interrupted.

The default schedule leaves the recovery bound plus a margin after every
fault and drops, from the end, the faults a short soak has no room for; the
plan it prints says which and why. An explicit --schedule that ends a fault
less than the recovery bound before the soak ends is refused (exit 2) with
the shortest duration that would judge it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..clients import CLIENT_NAMES, require_client
from ..clients.custom import ClientSpecError, validate_spec
from ..clients.reconnecting import Backoff
from ..evidence.record import Evidence
from ..extras import MissingExtra
from ..live.policy import ClientIdAllocator, LivePolicy
from ..live.session import (
    LIVE_REFUSED_EXIT,
    LiveAccountRefused,
    LiveRunRefused,
    live_session,
)
from ..safety.accounts import ALLOW_FLAG
from ..scenarios.soak import CONFIG_PHASE, SoakConfig, run_soak
from ..scenarios.soak_schedule import (
    ScheduleError,
    check_room,
    default_schedule,
    parse_schedule,
)
from ..targets import SPEC_HELP, TargetSpecError, parse_target
from ..targets.container_target import ContainerNotReady
from ..targets.docker_engine import EngineUnavailable
from .paths import check_writable_dir

DEFAULT_OUT = Path("reports/soak")
EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# The target never came up (no Docker engine, a container that never got ready): exit 1 with the one-line
# reason, as `ibgw probe`, `ibgw doctor --client` and an unreachable Gateway here do.
EXIT_TARGET_UNAVAILABLE = EXIT_FAILED


class SoakProgress:
    """A progress bar with the live figures of the last interval on a
    terminal; one plain line per interval otherwise (CI logs)."""

    def __init__(self, duration: float, stream: Any = None) -> None:
        self.duration = duration
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SoakProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.table import Column

            # The figures wrap under a narrow terminal rather than being cut off.
            self._progress = Progress(TextColumn("soak"), BarColumn(bar_width=20), TimeElapsedColumn(),
                                      TextColumn("{task.fields[figures]}",
                                                 table_column=Column(overflow="fold", ratio=1)),
                                      console=Console(file=self.stream), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("soak", total=self.duration, figures="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, figures: dict[str, Any]) -> None:
        parts = []
        for name, c in figures["clients"].items():
            # A data outage (1100 until 1101/1102) keeps the socket up: said while it lasts.
            state = "DOWN" if not c["connected"] else "up, DATA OUTAGE (1100)" if c.get("data_outage") else "up"
            p50 = "-" if c["p50_ms"] is None else f"{c['p50_ms']:.1f}"
            p99 = "-" if c["p99_ms"] is None else f"{c['p99_ms']:.1f}"
            parts.append(f"{name} {state} p50 {p50} p99 {p99} ms missed {c['missed']}")
        parts.append(f"disc {figures['disconnects']} rec {figures['recoveries']} "
                     f"probes {figures['probes_ok']}/{figures['probes']} rss {figures['rss_mb']:.0f}MB "
                     f"fds {figures['fds']} cw {figures['close_wait']}")
        text = " | ".join(parts)
        if self._progress is not None:
            self._progress.update(self._task, completed=figures["t"], figures=text)
        else:
            print(f"[soak {figures['t']:7.1f}/{figures['duration']:g} s] {text}", file=self.stream, flush=True)


def soak_out_dir(base: Path) -> Path:
    return base / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


async def run_soak_against(spec: str, config: SoakConfig, out_dir: Path, *, schedule_text: str | None,
                           progress: Any = None, allow_live_account: bool = False,
                           report: Callable[[str], None] | None = None) -> Evidence:
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
    target = parse_target(spec)
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


def write_outputs(evidence: Evidence, out_dir: Path) -> list[Path]:
    """evidence.json and the timeline plot next to soak.jsonl."""
    from ..evidence.soak_plot import plot_timeline

    written = [evidence.write(out_dir, "evidence")]
    jsonl = out_dir / "soak.jsonl"
    if jsonl.is_file():
        with contextlib.suppress(ImportError):  # matplotlib missing: the JSON Lines are the evidence
            written.append(plot_timeline(jsonl, out_dir / "timeline.png"))
    return written


def _clients_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Built-in names, or a team's module:factory loaded now, so a typo fails before the soak starts."""
    for name in value:
        if name in CLIENT_NAMES:
            try:
                require_client(name)  # a library the base install leaves out: one line naming the extra
            except MissingExtra as exc:
                raise click.BadParameter(str(exc)) from None
            continue
        try:
            validate_spec(name)
        except ClientSpecError as exc:
            raise click.BadParameter(f"{exc} (built-in clients: {', '.join(CLIENT_NAMES)})") from None
    return value


@click.command("soak")
@click.option("--duration", type=click.FloatRange(min=1), default=3600.0, show_default=True, help="seconds")
@click.option("--gateway", default="mock", show_default=True, help=f"the target: {SPEC_HELP}")
@click.option("--client", "clients", multiple=True, callback=_clients_option, metavar="NAME|module:factory",
              help=f"persistent connections (repeatable; default raw and ib_async): {', '.join(CLIENT_NAMES)}, or "
                   "your own adapter as module.path:factory (harness/clients/custom.py)")
@click.option("--schedule", default=None,
              help="faults KIND@AT[:SECONDS],... ('none' for no faults; default: one of each, spread over the run)")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="multiply every --schedule fault length by this (nightly-reset 60 s and auto-restart 75 s by "
                   "default: 0.05 plays them in 3 and 3.75 s)")
@click.option("--ping-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@click.option("--probe-interval", type=click.FloatRange(min=0.5), default=30.0, show_default=True)
@click.option("--probe-timeout", type=click.FloatRange(min=0.5), default=None,
              help="seconds a fresh probe may take to be ready (default 10); no probe starts that could end after "
                   "the soak")
@click.option("--interval", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="seconds per JSON Lines interval record")
@click.option("--no-reconnect", is_flag=True, help="switch the reconnecting client off (shows what a client "
              "without a reconnect loop suffers)")
# The pass criteria and timeouts are checked here: a negative bound or timeout would fail every run and
# blame the Gateway for it.
@click.option("--gap-margin", type=click.FloatRange(min=0, min_open=True), default=None,
              help="pass criterion: ping gap <= longest outage + this (seconds; default 15)")
@click.option("--recovery-bound", type=click.FloatRange(min=0, min_open=True), default=None,
              help="pass criterion: ready again within S after a fault (seconds; default 15)")
@click.option("--rss-growth-mb", type=click.FloatRange(min=0), default=None,
              help="pass criterion: RSS growth bound (MB; default 64)")
@click.option("--out", "out_base", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default=True, help="evidence goes to OUT/<UTC time>/, created before the soak starts")
@click.option("--connect-timeout", type=click.FloatRange(min=0.5), default=None,
              help="seconds each reconnect attempt may take (default 5)")
@click.option("--backoff-cap", type=click.FloatRange(min=Backoff.initial), default=None,
              help=f"longest wait between reconnect attempts (seconds, at least the first wait, {Backoff.initial:g}; "
                   "default 5)")
@click.option(ALLOW_FLAG, "allow_live_account", is_flag=True,
              help="go on when the Gateway manages a non-paper account (default: stop before the first connection)")
def soak(duration: float, gateway: str, clients: tuple[str, ...], schedule: str | None, time_scale: float,
         ping_interval: float,
         probe_interval: float, probe_timeout: float | None, interval: float, no_reconnect: bool,
         gap_margin: float | None, recovery_bound: float | None, rss_growth_mb: float | None, out_base: Path,
         connect_timeout: float | None, backoff_cap: float | None, allow_live_account: bool) -> None:
    """Keep connections alive for DURATION under a fault schedule; measure outages, recoveries, resources."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # ib_async logs every refused reconnect attempt as an ERROR; the JSON Lines record them already.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    overrides = {k: v for k, v in {"gap_margin": gap_margin, "recovery_bound": recovery_bound,
                                   "rss_growth_mb": rss_growth_mb, "connect_timeout": connect_timeout,
                                   "backoff_cap": backoff_cap, "probe_timeout": probe_timeout}.items() if v is not None}
    config = SoakConfig(duration=duration, clients=clients or SoakConfig.clients, ping_interval=ping_interval,
                        probe_interval=probe_interval, interval=interval, reconnect=not no_reconnect,
                        time_scale=time_scale, **overrides)
    try:
        if schedule is not None:  # fail before starting anything
            check_room(parse_schedule(schedule, time_scale), config.duration, config.recovery_bound)
        parse_target(gateway)
    except (ScheduleError, TargetSpecError) as exc:
        raise click.UsageError(str(exc)) from None
    out_dir = make_out_dir(out_base)
    click.echo(f"soak: {duration:g} s against {gateway}, clients {', '.join(config.clients)}; evidence in {out_dir}",
               err=True)
    status, evidence = asyncio.run(_main(gateway, config, out_dir, schedule, allow_live_account))
    if evidence is not None:
        for path in write_outputs(evidence, out_dir):
            click.echo(f"wrote {path}", err=True)
        click.echo(evidence.summary_line())
        if evidence.cause:
            click.echo(f"cause: {evidence.cause}")
            click.echo(f"hint: {evidence.hint}")
    sys.exit(status)


def make_out_dir(base: Path) -> Path:
    """Create OUT/<UTC time>/ now, so an unusable --out is a usage error
    before the target starts, not a traceback after the soak ran."""
    out_dir = soak_out_dir(base)
    check_writable_dir(out_dir, "--out")
    return out_dir


async def _main(gateway: str, config: SoakConfig, out_dir: Path, schedule: str | None,
                allow_live_account: bool) -> tuple[int, Evidence | None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted: list[int] = []

    def stop(signum: int) -> None:
        interrupted.append(128 + signum)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    with SoakProgress(config.duration) as progress:
        try:
            evidence = await run_soak_against(gateway, config, out_dir, schedule_text=schedule, progress=progress,
                                              allow_live_account=allow_live_account)
        except asyncio.CancelledError:
            click.echo(f"soak interrupted; the evidence so far is in {out_dir / 'soak.jsonl'}", err=True)
            with contextlib.suppress(Exception):
                from ..evidence.soak_plot import plot_timeline

                plot_timeline(out_dir / "soak.jsonl", out_dir / "timeline.png")
            return (interrupted[0] if interrupted else 130), None
        except (ScheduleError, TargetSpecError) as exc:
            click.echo(f"error: {exc}", err=True)
            return EXIT_BAD_INPUT, None
        except (EngineUnavailable, ContainerNotReady) as exc:  # each carries its cause and fix in one line
            click.echo(f"error: {exc}", err=True)
            return EXIT_TARGET_UNAVAILABLE, None
        except LiveRunRefused as exc:
            click.echo(str(exc), err=True)
            return LIVE_REFUSED_EXIT, None
    if evidence.ok:
        return EXIT_PASSED, evidence
    return (EXIT_BAD_INPUT if evidence.failed_phase == CONFIG_PHASE else EXIT_FAILED), evidence


__all__ = ["SoakProgress", "run_soak_against", "soak", "write_outputs"]
