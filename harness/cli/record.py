"""`ibgw record`: the recording proxy as a command.

    ibgw record --upstream 127.0.0.1:4002 --listen 127.0.0.1:4012 --out gw-10.45.jsonl \
                --gateway-build 10.45.1j
    # point a client (your own, or: pytest suites --gateway 127.0.0.1:4012) at 4012, then Ctrl-C

Why a command: a team carries the behaviour of the exact Gateway build it
runs into CI by recording it once; the file (harness/recording/FORMAT.md)
then replays in CI (`ibgw mock serve --replay`, `--gateway replay:FILE`).
The proxy forwards unchanged, the complete order guard stays on the path,
and identifying values are replaced before anything is kept. The file is
written when recording stops: Ctrl-C, SIGTERM or --duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from ..live.proxy_glue import frame_guard
from ..proxy import FaultProxy, ProxyAddressError, order_guard
from ..recording.recorder import Recorder
from ..safety.order_guard import OrderGuard
from .signals import CancelOnSignal

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1
EXIT_USAGE = 2


def _address(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:4002)", param_hint=option)
    return host.strip("[]"), int(port)


@click.command("record")
@click.option("--upstream", required=True, metavar="HOST:PORT", help="The Gateway to record (loopback).")
@click.option("--listen", default="127.0.0.1:4012", show_default=True, metavar="HOST:PORT",
              help="Where clients connect instead of the Gateway (loopback; port 0 picks one, printed).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The recording to write (JSON Lines, harness/recording/FORMAT.md).")
@click.option("--gateway-build", default=None, metavar="BUILD",
              help="The Gateway build you are recording (e.g. 10.45.1j); a Gateway does not say it on the wire.")
@click.option("--redact", "redact_texts", multiple=True, metavar="TEXT",
              help="A further identifying text (a name, an FA group) to replace everywhere; repeatable. "
                   "Account ids, order/perm/execution ids and environment credentials are always replaced.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
              help="Stop by itself after this long (default: until Ctrl-C or SIGTERM).")
def record(upstream: str, listen: str, out: Path, gateway_build: str | None, redact_texts: tuple[str, ...],
           duration: float | None) -> None:
    """Record every frame between clients and a Gateway, both directions, with timing.

    \b
    Exit 0 once the recording is written; 1 when --listen cannot be bound;
    2 for bad options (a non-loopback address, an unwritable --out).
    """
    host, port = _address(listen, "--listen")
    up = _address(upstream, "--upstream")
    if out.exists() and out.is_dir():
        raise click.BadParameter(f"{out} is a directory", param_hint="--out")
    if not out.parent.exists():
        raise click.BadParameter(f"directory {out.parent} does not exist", param_hint="--out")
    try:
        proxy = FaultProxy(up, host, port, order_guard_on=False)
    except ProxyAddressError as exc:
        raise click.UsageError(str(exc)) from None
    proxy.add_request_guard(frame_guard(OrderGuard()))  # every form of every order message, fail closed
    proxy.add_request_guard(order_guard)
    recorder = Recorder(gateway_build=gateway_build, redact_texts=redact_texts).attach(proxy)
    sys.exit(asyncio.run(_record(proxy, recorder, out, duration)))


async def _record(proxy: FaultProxy, recorder: Recorder, out: Path, duration: float | None) -> int:
    try:
        await proxy.start()
    except OSError as exc:
        click.echo(f"cannot listen on {proxy.host}:{proxy.requested_port}: {exc.strerror or exc}; "
                   "hint: choose another --listen port or stop the other process", err=True)
        return EXIT_CANNOT_LISTEN
    click.echo(f"recording {proxy.host}:{proxy.port} -> {proxy.upstream[0]}:{proxy.upstream[1]} into {out}; "
               "Ctrl-C stops and writes the file", err=True)
    stopped_by = f"--duration {duration:g} s" if duration else ""
    try:
        with CancelOnSignal() as signals:
            try:
                if duration:
                    await asyncio.sleep(duration)  # the requested recording length
                else:
                    await asyncio.Event().wait()  # until a signal
            except asyncio.CancelledError:
                if not signals.absorb():
                    raise
                stopped_by = signals.name
    finally:
        with contextlib.suppress(Exception):
            await proxy.stop()
        rec = recorder.save(out)
    h = rec.header
    versions = ", ".join(map(str, h.server_versions)) or "none negotiated"
    click.echo(f"{stopped_by}: recorded {h.connections} connection(s), {h.frames} frames, server version(s) "
               f"{versions}, {h.redaction.get('accounts', 0)} account id(s) replaced -> {out}", err=True)
    return EXIT_OK


__all__ = ["record"]
