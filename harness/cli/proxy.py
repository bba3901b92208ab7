"""`ibgw proxy`: the fault proxy in the foreground, steerable from another
process through its control endpoint.

    ibgw proxy --listen 127.0.0.1:4012 --upstream 127.0.0.1:4002 --fault latency=200,50 \
               --control-port 4013 --transcript reports/proxy-transcript.jsonl
    curl -s -X POST 127.0.0.1:4013/faults -d '{"fault": "blackhole"}'

Errors name their cause: an unwritable --transcript is a usage error found
before any port is opened (it used to surface as a "cannot listen" on the
proxy port), and a port that cannot be bound is named by its option.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import click

from ..core.errors import HarnessError
from ..core.log_setup import setup_logging
from ..core.signals import on_stop_signals
from ..proxy import FaultProxy, ProxyAddressError, ProxyFaultError
from ..proxy.control import ProxyControlServer
from ..proxy.faults import valid_faults_text
from .paths import check_writable_file


class CannotListen(HarnessError):
    """A port of this command could not be bound; says which option named it."""

    def __init__(self, option: str, address: str, exc: OSError) -> None:
        super().__init__(f"cannot listen on {address} ({option}): {exc.strerror or exc}; "
                         f"hint: is the port in use? choose another {option} or stop the other process")


def _address(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:4002)", param_hint=option)
    return host.strip("[]"), int(port)


@click.command("proxy")
@click.option("--listen", required=True, help="HOST:PORT to accept clients on (loopback)")
@click.option("--upstream", required=True, help="HOST:PORT of the Gateway (mock, container or real; loopback)")
@click.option("--fault", "faults", multiple=True,
              help=f"NAME[=VALUE][/up|down|both], repeatable: {valid_faults_text()}")
@click.option("--control-port", type=click.IntRange(0, 65535), default=None,
              help="serve the JSON control endpoint on 127.0.0.1:N")
@click.option("--transcript", type=click.Path(path_type=Path), default=None,
              help="append every frame, decoded, as JSON Lines (account ids redacted)")
@click.option("--allow-orders", is_flag=True,
              help="forward placeOrder/cancelOrder/exerciseOptions/reqGlobalCancel (default: refused, "
                   "the client gets error 201 and the connection is closed)")
@click.option("--allow-config-changes", is_flag=True,
              help="forward updateConfig/replaceFA/setServerLogLevel/updateDisplayGroup (default: refused)")
@click.option("--no-order-guard", is_flag=True, hidden=True, help="the older spelling of --allow-orders")
@click.option("-v", "--verbose", is_flag=True)
def proxy(listen: str, upstream: str, faults: tuple[str, ...], control_port: int | None, transcript: Path | None,
          allow_orders: bool, allow_config_changes: bool, no_order_guard: bool, verbose: bool) -> None:
    """Forward a Gateway port with injectable faults and a decoded transcript.

    Read-only by default: orders and configuration changes are refused (the
    client is sent the Gateway's error, then the connection is closed), and
    a client stream the guard cannot frame is closed, never forwarded."""
    setup_logging(logging.INFO if verbose else logging.WARNING, if_unconfigured=True)
    host, port = _address(listen, "--listen")
    up = _address(upstream, "--upstream")
    if transcript is not None:
        check_writable_file(transcript, "--transcript")  # before any port is opened, blamed on the right option
    try:
        fp = FaultProxy(up, host, port, faults=list(faults), transcript=transcript,
                        allow_orders=allow_orders or no_order_guard, allow_config_changes=allow_config_changes)
    except (ProxyFaultError, ProxyAddressError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        asyncio.run(_serve(fp, control_port))
    except CannotListen as exc:
        raise click.ClickException(str(exc)) from None


async def _serve(fp: FaultProxy, control_port: int | None) -> None:
    try:
        await fp.start()
    except OSError as exc:
        with contextlib.suppress(Exception):
            await fp.stop()  # closes the transcript it opened
        raise CannotListen("--listen", f"{fp.host}:{fp.requested_port}", exc) from None
    control = None
    if control_port is not None:
        try:
            control = await ProxyControlServer(fp, "127.0.0.1", control_port).start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                await fp.stop()
            raise CannotListen("--control-port", f"127.0.0.1:{control_port}", exc) from None
    click.echo(f"proxy {fp.host}:{fp.port} -> {fp.upstream[0]}:{fp.upstream[1]}"
               + (f", control on 127.0.0.1:{control.port}" if control else "")
               + f", faults: {', '.join(fp.faults.describe()) or 'none'}; {fp.policy.describe()}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_stop_signals(loop, lambda _signum: stop.set())
    try:
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
        with contextlib.suppress(Exception):
            await fp.stop()
        click.echo("proxy stopped", err=True)
