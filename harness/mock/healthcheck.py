"""An API-level readiness check with the standard library only.

Why not a port check: a socket forwarder (socat in the gnzsnz image) accepts
TCP long before the Gateway behind it is logged in, so "port open" says
nothing. Ready means: a version reply, then `nextValidId` and a non-empty
`managedAccounts` after startApi. Why stdlib only: it runs as the mock
images' HEALTHCHECK inside a bare python3 image, and the container target
uses the same function from the host, so both judge readiness the same way.

    python3 -m harness.mock.healthcheck [--host H] [--port P] [--timeout S] [--min-version V] [--states]

Without --states: `ready: ...` / `not ready: ...`, exit 0 / 1 (the mock
images' HEALTHCHECK). With --states (or IBGW_HEALTH_STATES=1):
one line `STATE: detail` and an exit code per state, so a Docker
HEALTHCHECK (any non-zero is unhealthy), a Kubernetes probe and a human
all read the same answer:

    0 healthy      version reply, nextValidId and a non-empty managedAccounts
    1 wedged       TCP accepted, then silence (no version reply, or no
                   nextValidId after it): the API layer is stuck; a restart fixes it
    3 starting     nothing serves the API yet: refused, or a forwarder (socat)
                   accepted and dropped it (starting, restarting, logging in, 2FA)
    4 logged_out   the API answers but lists no account: the login is incomplete
    5 unusable     it answers, but a restart will not help: not the TWS API
                   (wrong port), a server version below --min-version, a client id in use

(2 is skipped: Docker reserves it.) Account ids are never printed (only how
many arrived). Close: a clean client's (half-close, read to the end); when
the Gateway does not close its side in time, a reset, so the check never
leaves a CLOSE_WAIT socket on the Gateway, wedged or not.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..core.config import env
from ..core.constants import CLIENT_ID_IN_USE  # noqa: F401  (re-exported: defined once, in core)
from ..core.constants import LIVE_CLIENT_ID_RANGE as HEALTH_ID_RANGE
from ..protocol.errors import ProtocolError
from ..protocol.framing import message_id, split_fields
from ..protocol.handshake import ClosedBeforeVersion, exchange_versions, start_api_frame
from ..protocol.versions import TEXT_PROTOCOL_MAX, TEXT_PROTOCOL_MIN

MSG_ERROR, MSG_NEXT_VALID_ID, MSG_MANAGED_ACCOUNTS = 4, 9, 15
QUIET_S, DRAIN_MAX_S = 0.2, 2.0  # graceful close: the Gateway sends its start-up burst within milliseconds
CLOSE_WAIT_FOR_PEER_S = 1.0  # clean close: how long the Gateway may take to close its side after our FIN

# The health states and their exit codes (2 skipped: Docker reserves it).
HEALTHY, WEDGED, STARTING, LOGGED_OUT, UNUSABLE = "healthy", "wedged", "starting", "logged_out", "unusable"
EXIT_CODES = {HEALTHY: 0, WEDGED: 1, STARTING: 3, LOGGED_OUT: 4, UNUSABLE: 5}


@dataclass
class Readiness:
    ready: bool
    phase: str  # the last phase reached: tcp | server_version | next_valid_id | managed_accounts | ready
    detail: str
    server_version: int | None = None
    accounts_count: int = 0
    # What went wrong, for classification: "" when ready, else one of refused,
    # unreachable, closed_before_version, silent, no_next_valid_id,
    # no_accounts, closed_after_start, client_id_in_use, not_tws, version_too_old
    failure: str = ""
    phase_ms: dict[str, float] = field(default_factory=dict)  # connect / server_version / next_valid_id / managed_accounts
    close: str = ""  # how the check closed: fin (clean, the Gateway closed too), reset, or "" (never connected)

    def line(self) -> str:
        return f"{'ready' if self.ready else 'not ready'}: {self.detail}"

    @property
    def state(self) -> str:
        return health_state(self)

    def state_line(self) -> str:
        return f"{self.state}: {self.detail}"


def health_state(result: Readiness) -> str:
    """One handshake's state. Why these buckets: they are what an operator
    does next (wait, log in, restart, fix the configuration), and only
    `wedged` is one a restart fixes (see `ibgw watch` for the confirmed,
    bounded restart)."""
    if result.ready:
        return HEALTHY
    if result.failure in ("silent", "no_next_valid_id"):
        return WEDGED
    if result.failure == "no_accounts":
        return LOGGED_OUT
    if result.failure in ("not_tws", "version_too_old", "client_id_in_use"):
        return UNUSABLE
    return STARTING  # refused, unreachable, closed before the version reply or right after startApi


async def check_api_ready(host: str, port: int, *, timeout: float = 5.0, client_id: int | None = None,
                          min_version: int = TEXT_PROTOCOL_MIN, max_version: int = TEXT_PROTOCOL_MAX,
                          graceful: bool = False, clean_close: bool = False, required_version: int = 0,
                          before_close: Callable[[Readiness], Awaitable[None]] | None = None,
                          peer_close_timeout: float = CLOSE_WAIT_FOR_PEER_S) -> Readiness:
    """One handshake up to a non-empty managedAccounts; never raises for a Gateway failure.

    graceful: read what the Gateway still sends (until it is quiet for
    QUIET_S) before closing, so the close is a FIN like a real client's
    disconnect. Closing with unread data makes the kernel send a reset, which
    a Gateway never keeps in CLOSE_WAIT: a health check should (default),
    a churn that reproduces zombies must not.

    clean_close: what a health check run every few seconds must do. Send
    our FIN first, read until the Gateway closes too (so nothing is left
    unread and nothing stays in CLOSE_WAIT on its side); if it does not
    close within CLOSE_WAIT_FOR_PEER_S, or the handshake stalled, reset
    the connection, which removes the Gateway's socket instead of leaving
    it in CLOSE_WAIT (a wedged Gateway never closes it).
    required_version: a reply below it is `version_too_old` (the team's
    client minimum; the hello still offers the full range so the reply names
    the Gateway's version). before_close: awaited with the result before a
    failed check closes (the watchdog reads the socket table there, while
    the stalled connection still shows in it). peer_close_timeout: the
    clean close's wait for the Gateway's own close (a leaking Gateway never
    closes, so against a mock fault a test may set it lower; the default is
    for real Gateways).
    """
    reader: asyncio.StreamReader | None = None
    client_id = client_id if client_id is not None else random.randint(*HEALTH_ID_RANGE)
    state = Readiness(False, "tcp", "")
    writer: asyncio.StreamWriter | None = None
    started = time.monotonic()

    def mark(phase: str) -> None:
        state.phase_ms[phase] = round((time.monotonic() - started) * 1000, 2)

    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            mark("connect")
            state.phase = "server_version"
            try:
                reply = await exchange_versions(reader, writer, min_version, max_version)
            except (ClosedBeforeVersion, ConnectionResetError) as exc:
                # One close: a forwarder that drops the connection while our hello is still unread
                # gets a reset from the kernel instead of a FIN; which one arrives is timing alone.
                state.failure = "closed_before_version"
                reset = "; it came as a reset" if isinstance(exc, ConnectionResetError) else ""
                state.detail = f"TCP accepted, then closed before the version reply (forwarder up, Gateway not){reset}"
                return state
            state.server_version, frames, pending = reply.server_version, reply.frames, reply.pending
            mark("server_version")
            if required_version and state.server_version < required_version:
                state.failure = "version_too_old"
                state.detail = (f"server version {state.server_version} is below {required_version}, the clients' "
                                "minimum: upgrade the Gateway (a restart will not help)")
                return state
            state.phase = "next_valid_id"
            writer.write(start_api_frame(client_id, state.server_version))
            next_id = False
            while True:
                for payload in pending:
                    fields = split_fields(payload)
                    code = message_id(fields)
                    if code == MSG_NEXT_VALID_ID:
                        next_id = True
                        state.phase_ms.setdefault("next_valid_id", round((time.monotonic() - started) * 1000, 2))
                    elif code == MSG_MANAGED_ACCOUNTS:
                        state.accounts_count = len([a for a in fields[2].split(",") if a.strip()]) if len(
                            fields) > 2 else 0
                    elif code == MSG_ERROR and str(CLIENT_ID_IN_USE) in fields[2:5]:
                        state.failure = "client_id_in_use"
                        state.detail = f"error 326: client id {client_id} in use"
                        return state
                if next_id and state.accounts_count:
                    mark("managed_accounts")
                    state.ready, state.phase = True, "ready"
                    state.detail = (f"server version {state.server_version}, nextValidId, "
                                    f"{state.accounts_count} account(s)")
                    return state
                if next_id:
                    state.phase = "managed_accounts"
                data = await reader.read(65536)
                if not data:
                    state.failure = "closed_after_start"
                    state.detail = f"closed by the Gateway while waiting for {state.phase}"
                    return state
                pending = frames.feed(data)
    except TimeoutError:
        state.failure = {"tcp": "unreachable", "server_version": "silent", "next_valid_id": "no_next_valid_id",
                         "managed_accounts": "no_accounts"}.get(state.phase, "silent")
        state.detail = f"no answer within {timeout:g} s at {state.phase}"
    except OSError as exc:
        state.failure = {"tcp": "refused", "server_version": "closed_before_version"}.get(state.phase,
                                                                                          "closed_after_start")
        state.detail = f"{state.phase}: {exc.strerror or exc}"
    except (ValueError, ProtocolError) as exc:  # bytes that are not the TWS API
        state.failure = "not_tws"
        state.detail = f"{state.phase}: not a TWS API reply ({exc})"
    finally:
        if not state.ready and before_close is not None:
            await before_close(state)
        if writer is not None and reader is not None and clean_close:
            state.close = await _close_cleanly(reader, writer, stalled=not state.ready and state.failure in (
                "silent", "no_next_valid_id", "no_accounts", "not_tws"), peer_close_timeout=peer_close_timeout)
        else:
            if graceful and reader is not None and writer is not None:
                await _drain(reader)
            if writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
    return state


async def _close_cleanly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, stalled: bool,
                         peer_close_timeout: float = CLOSE_WAIT_FOR_PEER_S) -> str:
    """FIN, read to the Gateway's own close; reset when it does not close
    (or never answered). Returns "fin" or "reset"."""
    if not stalled:
        try:
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(peer_close_timeout):
                while await reader.read(65536):
                    pass
            writer.close()
            await writer.wait_closed()
            return "fin"
        except (TimeoutError, OSError):
            pass
    _reset(writer)
    return "reset"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the Gateway's socket is removed, not left half-open."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def _drain(reader: asyncio.StreamReader) -> None:
    """Read until the peer is quiet for QUIET_S (bounded by DRAIN_MAX_S) or closes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_MAX_S
    try:
        while loop.time() < deadline:
            if not await asyncio.wait_for(reader.read(65536), QUIET_S):
                return
    except (TimeoutError, OSError):
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m harness.mock.healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=env("IBGW_HEALTH_HOST"))
    parser.add_argument("--port", type=int, default=int(env("IBGW_HEALTH_PORT") or env("IBGW_MOCK_PORT")))
    parser.add_argument("--timeout", type=float, default=float(env("IBGW_HEALTH_TIMEOUT")))
    parser.add_argument("--client-id", type=int, default=int(env("IBGW_HEALTH_CLIENT_ID") or 0) or None,
                        help=f"the reserved read-only client id (default: random in {HEALTH_ID_RANGE[0]}-"
                             f"{HEALTH_ID_RANGE[1]})")
    parser.add_argument("--min-version", type=int, default=int(env("IBGW_HEALTH_MIN_VERSION") or 0),
                        help="the lowest server version your clients accept (unusable below it)")
    parser.add_argument("--states", action="store_true", default=bool(env("IBGW_HEALTH_STATES")),
                        help="print 'STATE: detail' and exit with the state's code (without it: 'ready' / "
                             "'not ready' and 0 / 1, the mock images' original contract)")
    args = parser.parse_args(argv)
    result = asyncio.run(check_api_ready(args.host, args.port, timeout=args.timeout, client_id=args.client_id,
                                         required_version=args.min_version, clean_close=True))
    if not args.states:
        print(result.line(), flush=True)
        return 0 if result.ready else 1
    print(result.state_line(), flush=True)
    return EXIT_CODES[result.state]


if __name__ == "__main__":
    sys.exit(main())
