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
import sys
from pathlib import Path
from typing import Any

import click

from ..clients import CLIENT_NAMES, require_client
from ..clients.custom import ClientSpecError, validate_spec
from ..clients.reconnecting import Backoff
from ..core.log_setup import setup_logging
from ..core.record import Evidence
from ..core.signals import on_stop_signals
from ..evidence.soak_outputs import SoakProgress, write_outputs
from ..extras import MissingExtra
from ..live.session import (
    LIVE_REFUSED_EXIT,
    LiveRunRefused,
)
from ..live.soak_run import DEFAULT_OUT, run_soak_against, soak_out_dir
from ..safety.accounts import ALLOW_FLAG
from ..scenarios.soak import CONFIG_PHASE, SoakConfig
from ..scenarios.soak_schedule import (
    ScheduleError,
    check_room,
    parse_schedule,
)
from ..targets import SPEC_HELP, TargetSpecError, parse_target
from ..targets.container_target import ContainerNotReady
from ..targets.docker_engine import EngineUnavailable
from ..targets.engines import choose_hosts
from .paths import check_writable_dir

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# The target never came up (no Docker engine, a container that never got ready): exit 1 with the one-line
# reason, as `ibgw probe`, `ibgw doctor --client` and an unreachable Gateway here do.
EXIT_TARGET_UNAVAILABLE = EXIT_FAILED


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
@click.option("--docker-host", default=None, metavar="URL",
              help="the Docker engine a docker:IMAGE target starts on: unix://, tcp:// (TLS from DOCKER_TLS_VERIFY/"
                   "DOCKER_CERT_PATH) or ssh://USER@HOST[:PORT] (default: the first of IBGW_DOCKER_HOSTS, else "
                   "DOCKER_HOST)")
def soak(duration: float, gateway: str, clients: tuple[str, ...], schedule: str | None, time_scale: float,
         ping_interval: float,
         probe_interval: float, probe_timeout: float | None, interval: float, no_reconnect: bool,
         gap_margin: float | None, recovery_bound: float | None, rss_growth_mb: float | None, out_base: Path,
         connect_timeout: float | None, backoff_cap: float | None, allow_live_account: bool,
         docker_host: str | None = None) -> None:
    """Keep connections alive for DURATION under a fault schedule; measure outages, recoveries, resources."""
    setup_logging(logging.WARNING, if_unconfigured=True)
    # ib_async logs every refused reconnect attempt as an ERROR; the JSON Lines record them already.
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    overrides: dict[str, Any] = {k: v for k, v in {"gap_margin": gap_margin, "recovery_bound": recovery_bound,
                                   "rss_growth_mb": rss_growth_mb, "connect_timeout": connect_timeout,
                                   "backoff_cap": backoff_cap, "probe_timeout": probe_timeout}.items() if v is not None}
    config = SoakConfig(duration=duration, clients=clients or SoakConfig.clients, ping_interval=ping_interval,
                        probe_interval=probe_interval, interval=interval, reconnect=not no_reconnect,
                        time_scale=time_scale, **overrides)
    try:
        if schedule is not None:  # fail before starting anything
            check_room(parse_schedule(schedule, time_scale), config.duration, config.recovery_bound)
        hosts = choose_hosts([docker_host] if docker_host else None)
        parse_target(gateway)
    except (ScheduleError, TargetSpecError) as exc:
        raise click.UsageError(str(exc)) from None
    out_dir = make_out_dir(out_base)
    click.echo(f"soak: {duration:g} s against {gateway}, clients {', '.join(config.clients)}; evidence in {out_dir}",
               err=True)
    status, evidence = asyncio.run(_main(gateway, config, out_dir, schedule, allow_live_account,
                                         hosts[0] if hosts else None))
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
                allow_live_account: bool, docker_host: str | None = None) -> tuple[int, Evidence | None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted: list[int] = []

    def stop(signum: int) -> None:
        interrupted.append(128 + signum)
        task.cancel()

    on_stop_signals(loop, stop)
    with SoakProgress(config.duration) as progress:
        try:
            evidence = await run_soak_against(gateway, config, out_dir, schedule_text=schedule, progress=progress,
                                              allow_live_account=allow_live_account, docker_host=docker_host)
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


__all__ = ["soak"]
