"""A stand-in for the gnzsnz/ib-gateway image, built from the mock (stdlib only).

Why: the failures of real deployments live in the image's shape, not in the
Gateway alone, and no IB login exists in CI. So this process reproduces the
shape: socat on the published port accepting (and immediately dropping)
connections before the Gateway is up; the Gateway on its internal port only
after a login delay; IBC's log lines; IBC's command server answering
RESTART (the daily restart, the Java process only: the container stays up)
apart from a cold `docker restart` (everything, login delay included).

Environment, as gnzsnz reads it: TWS_USERID, TWS_PASSWORD or
TWS_PASSWORD_FILE, TRADING_MODE (paper|live), READ_ONLY_API (yes|no),
IB_GATEWAY_VERSION. Stand-in knobs: IBGW_LOGIN_DELAY (seconds, default 20),
IBGW_RESTART_DOWN (seconds the API is down on RESTART, default 2),
IBGW_PROFILE (mock profile), IBGW_FAULTS (mock faults, ';'-separated as for
the mock image, e.g. "close-wait-leak=3": set on the Gateway at every
login, so a RESTART clears a fault's state, not the fault), IBGW_STANDIN_BIND (default 127.0.0.1: under
host networking nothing may listen beyond loopback; 0.0.0.0 in a bridge),
IBGW_STANDIN_PORT / IBGW_STANDIN_API_PORT / IBGW_STANDIN_COMMAND_PORT
(default 4004 / 4002 / 7462 for paper, 4003 / 4001 for live), so parallel
runs under host networking do not collide. Credentials are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ..core.config import env, foreign_env
from ..core.log_setup import setup_logging
from ..core.signals import on_stop_signals
from .faults import parse_fault
from .gateway import MockGateway
from .profiles import get_profile

log = logging.getLogger("ibc")
PORTS = {"paper": (4004, 4002), "live": (4003, 4001)}  # (socat publishes, Gateway listens)
IBC_VERSION = "3.24.1"


def _password() -> str:
    path = foreign_env("TWS_PASSWORD_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            return ""
    return foreign_env("TWS_PASSWORD")


class StandIn:
    def __init__(self) -> None:
        self.mode = foreign_env("TRADING_MODE", "paper").lower()
        published, internal = PORTS.get(self.mode, PORTS["paper"])
        self.bind = env("IBGW_STANDIN_BIND")
        self.port = int(env("IBGW_STANDIN_PORT") or published)
        self.api_port = int(env("IBGW_STANDIN_API_PORT") or internal)
        self.command_port = int(env("IBGW_STANDIN_COMMAND_PORT"))
        self.login_delay = float(env("IBGW_LOGIN_DELAY"))
        self.restart_down = float(env("IBGW_RESTART_DOWN"))
        self.read_only = foreign_env("READ_ONLY_API", "yes").lower() in ("yes", "true", "1")
        self.build = foreign_env("IB_GATEWAY_VERSION", "10.45.1j")
        self.profile = get_profile(env("IBGW_PROFILE"))
        self.faults = [f for f in env("IBGW_FAULTS").split(";") if f.strip()]
        for text in self.faults:
            parse_fault(text)  # a bad fault stops the container at start, in one line
        self.gateway: MockGateway | None = None
        self.stop = asyncio.Event()
        self.restarts = 0

    # ------------------------------------------------------------ IBC

    async def login(self) -> None:
        """What IBC does after start and after a RESTART: wait, log in, open the API."""
        log.info("IBC: Starting Gateway version %s in %s mode", self.build.replace(".", "")[:4], self.mode)
        log.info("IBC: Login dialog WINDOW_OPENED")
        if not foreign_env("TWS_USERID") or not _password():
            log.error("IBC: Login failed: no credentials (set TWS_USERID and TWS_PASSWORD or TWS_PASSWORD_FILE)")
            return
        await asyncio.sleep(self.login_delay)  # the simulated login itself, not a wait for an event
        faults = (["read-only-api"] if self.read_only else []) + self.faults
        self.gateway = MockGateway("127.0.0.1", self.api_port, profile=self.profile, faults=faults)
        await self.gateway.start()
        log.info("IBC: Login has completed")
        log.info("IBC: Performing port configuration")
        log.info("IBC: TWS API socket port is already set to %d", self.api_port)
        log.info("IBC: Configuration tasks completed")

    async def restart(self) -> None:
        """IBC's RESTART: the Gateway process restarts (every API client
        dropped, the port refused), the container and socat stay up."""
        self.restarts += 1
        log.info("IBC: Restart requested via command server")
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
        log.info("IBC returned exit status 0")
        log.info("autorestart file found: IBC will restart shortly")
        await asyncio.sleep(self.restart_down)  # the simulated outage
        saved, self.login_delay = self.login_delay, 0.0  # an auto-restart reuses the session: no new login wait
        try:
            await self.login()
        finally:
            self.login_delay = saved

    async def command(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """IBC's command channel (CommandDispatcher / CommandChannel in
        IbcAlpha/IBC): one command per line, case-insensitive, blank lines
        skipped; replies `OK <info>` / `ERROR <info>`; RESTART and EXIT
        answer and close the channel, others keep it open."""
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), 10)
                if not raw:
                    break
                line = raw.decode("ascii", "replace").strip().upper()
                if not line:
                    continue
                log.info("IBC: CommandServer received command: %s", line[:20])
                if line == "RESTART":
                    writer.write(b"OK Restart in progress\n")
                    asyncio.get_running_loop().create_task(self.restart())
                    break
                if line == "EXIT":
                    writer.write(b"OK Goodbye\n")
                    break
                if line == "STOP":
                    writer.write(b"OK Shutting down\n")
                    self.stop.set()
                    break
                writer.write(b"ERROR Command invalid\n")
                await writer.drain()
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        writer.close()

    # ------------------------------------------------------------ socat

    async def forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """socat TCP-LISTEN:4004,fork TCP:127.0.0.1:4002: accept first, then try the Gateway."""
        try:
            gw_r, gw_w = await asyncio.open_connection("127.0.0.1", self.api_port)
        except OSError as exc:
            log.warning("socat E connect(5, AF=2 127.0.0.1:%d, 16): %s", self.api_port, exc.strerror or exc)
            client_w.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()  # pass the half-close on, as socat does
            except OSError:
                dst.close()

        await asyncio.gather(pipe(client_r, gw_w), pipe(gw_r, client_w), return_exceptions=True)
        gw_w.close()
        client_w.close()

    # ------------------------------------------------------------ main

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        on_stop_signals(loop, lambda _signum: self.stop.set())
        log.info("Starting IBC %s (stand-in built from the ibgw-harness mock, profile %s)", IBC_VERSION,
                 self.profile.name)
        forwarder = await asyncio.start_server(self.forward, self.bind, self.port)
        log.info("Forking :::%d onto 127.0.0.1:%d", self.port, self.api_port)
        commands = await asyncio.start_server(self.command, self.bind, self.command_port)
        log.info("IBC: Command server listening on %s:%d", self.bind, self.command_port)
        login = loop.create_task(self.login())
        await self.stop.wait()
        login.cancel()
        forwarder.close()
        commands.close()
        if self.gateway is not None:
            await self.gateway.stop()
        log.info("IBC: Gateway stopped")
        return 0


def main() -> int:
    setup_logging(logging.INFO, stream=sys.stdout, if_unconfigured=True)
    logging.getLogger("harness.mock").setLevel(logging.WARNING)
    try:
        return asyncio.run(StandIn().run())
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
