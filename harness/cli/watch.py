"""`ibgw watch` and `ibgw healthcheck`: the health check and the wedge
watchdog for a team's own Gateway (a sidecar of the gnzsnz image).

healthcheck: one API-level check (harness.mock.healthcheck, stdlib only: the
same code runs as `python3 -m harness.mock.healthcheck --states` where only
the standard library exists), state line and exit code per state.
watch: the loop; see harness/watch/.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from ..core.signals import CancelOnSignal
from ..mock.healthcheck import EXIT_CODES, check_api_ready
from ..watch.metrics import MetricsUnavailable, WatchMetrics
from ..watch.policy import PolicyError, RestartPolicy, TradingWindow
from ..watch.watchdog import WATCH_CLIENT_ID, WatchConfig, Watchdog, open_evidence
from .paths import check_writable_file
from .proxy import _address


@click.command("healthcheck")
@click.option("--gateway", default="127.0.0.1:4002", show_default=True, help="HOST:PORT of the Gateway's API")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=5.0, show_default=True)
@click.option("--client-id", type=int, default=None, help="reserved read-only client id (default: random 900-999)")
@click.option("--min-version", type=int, default=0, help="the lowest server version your clients accept")
def healthcheck(gateway: str, timeout: float, client_id: int | None, min_version: int) -> None:
    """One API-level health check: healthy (0), wedged (1), starting (3), logged_out (4), unusable (5)."""
    host, port = _address(gateway, "--gateway")
    result = asyncio.run(check_api_ready(host, port, timeout=timeout, client_id=client_id,
                                         required_version=min_version, clean_close=True))
    click.echo(result.state_line())
    sys.exit(EXIT_CODES[result.state])


@click.command("watch")
@click.option("--gateway", required=True, help="HOST:PORT of the Gateway's API (socat's port in the gnzsnz image)")
@click.option("--ibc-command", default=None, help="HOST:PORT of IBC's command server (CommandServerPort); without "
              "it the watch only reports what it would do")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="seconds between probes")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="seconds one handshake may take")
@click.option("--client-id", type=int, default=WATCH_CLIENT_ID, show_default=True,
              help="the watch's reserved read-only client id")
@click.option("--min-version", type=int, default=0, help="the lowest server version your clients accept")
@click.option("--socket-port", "socket_ports", type=click.IntRange(1, 65535), multiple=True,
              help="another local port whose sockets are wedge evidence (the Gateway's own port behind socat: "
                   "4002 paper / 4001 live in the gnzsnz image); repeatable")
@click.option("--confirm", type=click.IntRange(1, 100), default=2, show_default=True,
              help="consecutive wedged probes before a restart")
@click.option("--max-restarts-per-hour", type=click.IntRange(0, 60), default=3, show_default=True)
@click.option("--backoff", type=click.FloatRange(0), default=60.0, show_default=True,
              help="seconds after a restart before another; doubles while restarts do not heal")
@click.option("--restart-grace", type=click.FloatRange(0), default=300.0, show_default=True,
              help="seconds the Gateway has to come back after RESTART (IBC restarts within ~2 minutes)")
@click.option("--login-grace", type=click.FloatRange(0), default=600.0, show_default=True,
              help="seconds 'not serving the API' counts as starting before it is called logged_out")
@click.option("--trading-window", default=None, help="HH:MM-HH:MM (Mon-Fri): no restart inside it")
@click.option("--trading-tz", default="UTC", show_default=True, help="time zone of --trading-window")
@click.option("--restart-in-window", is_flag=True, help="allow restarts inside the trading window")
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="append every probe and action as JSON Lines to this file")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="serve Prometheus metrics on --metrics-addr:N (needs the 'watch' extra)")
@click.option("--metrics-addr", default="127.0.0.1", show_default=True)
@click.option("--count", type=click.IntRange(1), default=None, help="stop after N probes (default: run until "
              "Ctrl-C / SIGTERM)")
@click.option("--json", "as_json", is_flag=True, help="print each probe as JSON (default on a pipe: one line)")
def watch(gateway: str, ibc_command: str | None, interval: float, timeout: float, client_id: int, min_version: int,
          socket_ports: tuple[int, ...], confirm: int, max_restarts_per_hour: int, backoff: float,
          restart_grace: float, login_grace: float, trading_window: str | None, trading_tz: str,
          restart_in_window: bool, evidence_path: Path | None, metrics_port: int | None, metrics_addr: str,
          count: int | None, as_json: bool) -> None:
    """Probe the Gateway's API on an interval; restart it through IBC's command
    server only for a confirmed wedge; never for a wrong port, a version
    mismatch, an untrusted address or a pending login/2FA (it says so)."""
    host, port = _address(gateway, "--gateway")
    ibc = _address(ibc_command, "--ibc-command") if ibc_command else None
    try:
        window = TradingWindow.parse(trading_window, trading_tz) if trading_window else None
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--trading-window'") from None
    if evidence_path is not None:
        check_writable_file(evidence_path, "--evidence")
    metrics = None
    if metrics_port is not None:
        try:
            metrics = WatchMetrics()
            bound = metrics.serve(metrics_port, metrics_addr)
        except MetricsUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {metrics_addr}:{metrics_port} (--metrics-port): "
                                       f"{exc.strerror or exc}; hint: choose another --metrics-port") from None
        click.echo(f"ibgw watch: metrics on http://{metrics_addr}:{bound}/metrics", err=True)
    config = WatchConfig(host, port, ibc, interval, timeout, client_id, min_version, login_grace, set(socket_ports))
    policy = RestartPolicy(confirm=confirm, max_per_hour=max_restarts_per_hour, backoff_s=backoff,
                           restart_grace_s=restart_grace, window=window, restart_in_window=restart_in_window,
                           can_restart=ibc is not None)
    evidence = open_evidence(evidence_path)
    try:
        code = asyncio.run(_run(config, policy, evidence, metrics, count, as_json))
    finally:
        if evidence is not None:
            evidence.close()
        if metrics is not None:
            metrics.close()
    sys.exit(code)


async def _run(config: WatchConfig, policy: RestartPolicy, evidence: Any, metrics: WatchMetrics | None,
               count: int | None, as_json: bool) -> int:
    import json

    live = None
    if sys.stdout.isatty() and not as_json:
        from ..watch.live import LiveView

        live = LiveView(f"{config.host}:{config.port}")

    def on_probe(record: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.observe(record)
        if live is not None:
            live.update(record)
        elif as_json:
            click.echo(json.dumps(record))
        else:
            cause = f" [{record['cause']}]" if record["cause"] else ""
            click.echo(f"{record['ts']} {record['state']}{cause}: {record['detail']} -> {record['decision']}")

    dog = Watchdog(config, policy, evidence=evidence, on_probe=on_probe)
    with CancelOnSignal(on_signal=dog.stop) as guard:  # SIGTERM/Ctrl-C: a sidecar's normal stop, exit 0
        try:
            if live is not None:
                with live:
                    await dog.run(count=count)
            else:
                await dog.run(count=count)
        except asyncio.CancelledError:
            if not guard.absorb():
                raise
    return 0


__all__ = ["healthcheck", "watch"]
