"""`ibgw record`: the recording proxy as a command.

    ibgw record --upstream 127.0.0.1:4002 --listen 127.0.0.1:4012 --out gw-10.45.jsonl \
                --gateway-build 10.45.1j
    # point a client (your own, or: pytest suites --gateway 127.0.0.1:4012) at 4012, then Ctrl-C

Why a command: a team carries the behaviour of the exact Gateway build it
runs into CI by recording it once; the file (harness/recording/FORMAT.md)
then replays in CI (`ibgw mock serve --replay`, `--gateway replay:FILE`).
The proxy forwards unchanged, its request guard stays on the path (no
order or configuration change reaches the Gateway; fail closed),
and identifying values are replaced before anything is kept. The file is
written when recording stops: Ctrl-C, SIGTERM or --duration. Because the
capture lives in memory until then, --out is proved writable before the
proxy listens, and a write that still fails at the end puts the capture in
a fallback file (named on stderr) rather than losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click

from ..core.signals import CancelOnSignal
from ..proxy import FaultProxy, ProxyAddressError
from ..recording.format import Recording, temp_path
from ..recording.recorder import Recorder
from .paths import check_writable_file

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1
EXIT_NOT_WRITTEN = 1  # --out failed at the end: the capture is in a fallback file, or (said so) lost
EXIT_USAGE = 2
EXIT_NOTHING_RECORDED = 3  # no API session in the file: upstream refused or silent, or no client came


def _save(recorder: Recorder, out: Path) -> tuple[Recording, Path | None]:
    """Write the recording to --out; if that fails now (the directory went
    away, the disk filled), to a fallback file in the temporary directory,
    saying so: the capture cannot be made again. Returns the recording and
    where it went (None: nowhere, and the causes were printed)."""
    rec = recorder.recording()
    try:
        return rec, rec.save(out)
    except OSError as exc:
        cause = f"cannot write {out}: {exc.strerror or exc}"
    try:
        fd, name = tempfile.mkstemp(prefix=f"{out.stem}-", suffix=out.suffix or ".jsonl")  # a fresh, unique name
        os.close(fd)
        fallback = rec.save(Path(name))
    except OSError as exc:
        click.echo(f"{cause}, nor a fallback file: {exc.strerror or exc}; the recording is lost; "
                   "hint: check the disk space and permissions of --out and of $TMPDIR", err=True)
        return rec, None
    click.echo(f"{cause}; the recording was written to {fallback} instead; hint: move it where it belongs "
               f"(mv {fallback} {out})", err=True)
    return rec, fallback


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
    Exit 0 once the recording is written; 1 when --listen cannot be bound,
    or when --out could not be written at the end (the recording then goes
    to a fallback file, named on stderr); 2 for bad options (a non-loopback
    address, an unwritable --out or a missing directory: checked before
    recording starts); 3 when the file holds no API session a replay could
    serve: the upstream refused or never answered the handshake, or no
    client connected (the file is still written, and the cause said).
    """
    host, port = _address(listen, "--listen")
    up = _address(upstream, "--upstream")
    # The capture lives in memory until it stops: prove --out writable before anything is recorded.
    check_writable_file(out, "--out", probe=temp_path(out), create_parents=False)
    try:
        # The proxy's request guard (default: no orders, no config changes, fail closed) stays on the path.
        proxy = FaultProxy(up, host, port)
    except ProxyAddressError as exc:
        raise click.UsageError(str(exc)) from None
    recorder = Recorder(gateway_build=gateway_build, redact_texts=redact_texts).attach(proxy)
    sys.exit(asyncio.run(_record(proxy, recorder, out, duration)))


async def _record(proxy: FaultProxy, recorder: Recorder, out: Path, duration: float | None) -> int:
    try:
        await proxy.start()
    except OSError as exc:
        click.echo(f"cannot listen on {proxy.host}:{proxy.requested_port}: {exc.strerror or exc}; "
                   "hint: choose another --listen port or stop the other process", err=True)
        return EXIT_CANNOT_LISTEN
    stopped_by = f"--duration {duration:g} s" if duration else ""
    listened = f"{proxy.host}:{proxy.port}"  # said again at the end, after the proxy stopped
    try:
        with CancelOnSignal() as signals:
            # The banner after the handler is set: a Ctrl-C right after it still writes the file.
            click.echo(f"recording {proxy.host}:{proxy.port} -> {proxy.upstream[0]}:{proxy.upstream[1]} into {out}; "
                       "Ctrl-C stops and writes the file", err=True)
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
        rec, written = _save(recorder, out)  # in finally: whatever stopped the recording, the capture is kept
    h = rec.header
    versions = ", ".join(map(str, h.server_versions)) or "none negotiated"
    click.echo(f"{stopped_by}: recorded {h.connections} connection(s), {h.frames} frames, server version(s) "
               f"{versions}, {h.redaction.get('accounts', 0)} account id(s) replaced -> {written or 'not written'}",
               err=True)
    if written != out:
        return EXIT_NOT_WRITTEN
    empty = _nothing_recorded(proxy, listened, h.connections, bool(h.server_versions))
    if empty:
        click.echo(empty, err=True)
        return EXIT_NOTHING_RECORDED
    return EXIT_OK


def _nothing_recorded(proxy: FaultProxy, listened: str, connections: int, negotiated: bool) -> str | None:
    """Why the recording holds no API session, or None when it holds one."""
    if negotiated:
        return None
    where = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
    if proxy.upstream_unreachable:
        return (f"nothing recorded: {proxy.upstream_unreachable}; hint: start the Gateway (API enabled, "
                f"port {proxy.upstream[1]}) or fix --upstream, then record again")
    if connections:
        return (f"nothing recorded: the upstream {where} accepted {connections} connection(s) but never answered "
                "the API handshake (not logged in, 2FA pending, API layer stalled); hint: check with "
                f"`ibgw probe --host {proxy.upstream[0]} --port {proxy.upstream[1]}`, then record again")
    return (f"nothing recorded: no client connected to {listened}; hint: point a client "
            f"(e.g. pytest suites --gateway {listened}) at it while recording")


__all__ = ["record"]
