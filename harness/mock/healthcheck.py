"""An API-level readiness check with the standard library only.

Why not a port check: a socket forwarder (socat in the gnzsnz image) accepts
TCP long before the Gateway behind it is logged in, so "port open" says
nothing. Ready means: a version reply, then `nextValidId` and a non-empty
`managedAccounts` after startApi. Why stdlib only: it runs as the mock
images' HEALTHCHECK inside a bare python3 image, and the container target
uses the same function from the host, so both judge readiness the same way.

    python3 -m harness.mock.healthcheck [--host H] [--port P] [--timeout S]

Exit 0 when ready, 1 otherwise, with one line saying which phase stalled.
Account ids are never printed (only how many arrived).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from dataclasses import dataclass

from ..protocol.framing import FrameReader, message_id, split_fields
from ..protocol.handshake import encode_hello, encode_start_api, parse_server_hello
from ..protocol.versions import TEXT_PROTOCOL_MAX, TEXT_PROTOCOL_MIN

MSG_ERROR, MSG_NEXT_VALID_ID, MSG_MANAGED_ACCOUNTS = 4, 9, 15
CLIENT_ID_IN_USE = 326
HEALTH_ID_RANGE = (900, 999)  # as `ibgw probe`: far from production client ids
QUIET_S, DRAIN_MAX_S = 0.2, 2.0  # graceful close: the Gateway sends its start-up burst within milliseconds


@dataclass
class Readiness:
    ready: bool
    phase: str  # the last phase reached: tcp | server_version | next_valid_id | managed_accounts | ready
    detail: str
    server_version: int | None = None
    accounts_count: int = 0

    def line(self) -> str:
        return f"{'ready' if self.ready else 'not ready'}: {self.detail}"


async def check_api_ready(host: str, port: int, *, timeout: float = 5.0, client_id: int | None = None,
                          min_version: int = TEXT_PROTOCOL_MIN, max_version: int = TEXT_PROTOCOL_MAX,
                          graceful: bool = False) -> Readiness:
    """One handshake up to a non-empty managedAccounts; never raises for a Gateway failure.

    graceful: read what the Gateway still sends (until it is quiet for
    QUIET_S) before closing, so the close is a FIN like a real client's
    disconnect. Closing with unread data makes the kernel send a reset, which
    a Gateway never keeps in CLOSE_WAIT: a health check should (default),
    a churn that reproduces zombies must not.
    """
    reader: asyncio.StreamReader | None = None
    client_id = client_id if client_id is not None else random.randint(*HEALTH_ID_RANGE)
    state = Readiness(False, "tcp", "")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            state.phase = "server_version"
            writer.write(encode_hello(min_version, max_version))
            frames = FrameReader()
            pending: list[bytes] = []
            while not pending:
                data = await reader.read(65536)
                if not data:
                    state.detail = "TCP accepted, then closed before the version reply (forwarder up, Gateway not)"
                    return state
                pending = frames.feed(data)
            state.server_version, _ = parse_server_hello(pending.pop(0))
            state.phase = "next_valid_id"
            writer.write(encode_start_api(client_id, state.server_version))
            next_id = False
            while True:
                for payload in pending:
                    fields = split_fields(payload)
                    code = message_id(fields)
                    if code == MSG_NEXT_VALID_ID:
                        next_id = True
                    elif code == MSG_MANAGED_ACCOUNTS:
                        state.accounts_count = len([a for a in fields[2].split(",") if a.strip()]) if len(
                            fields) > 2 else 0
                    elif code == MSG_ERROR and str(CLIENT_ID_IN_USE) in fields[2:5]:
                        state.detail = f"error 326: client id {client_id} in use"
                        return state
                if next_id and state.accounts_count:
                    state.ready, state.phase = True, "ready"
                    state.detail = (f"server version {state.server_version}, nextValidId, "
                                    f"{state.accounts_count} account(s)")
                    return state
                if next_id:
                    state.phase = "managed_accounts"
                data = await reader.read(65536)
                if not data:
                    state.detail = f"closed by the Gateway while waiting for {state.phase}"
                    return state
                pending = frames.feed(data)
    except TimeoutError:
        state.detail = f"no answer within {timeout:g} s at {state.phase}"
    except OSError as exc:
        state.detail = f"{state.phase}: {exc.strerror or exc}"
    except ValueError as exc:  # ProtocolError: bytes that are not the TWS API
        state.detail = f"{state.phase}: not a TWS API reply ({exc})"
    finally:
        if graceful and reader is not None and writer is not None:
            await _drain(reader)
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    return state


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
    parser.add_argument("--host", default=os.environ.get("IBGW_HEALTH_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("IBGW_HEALTH_PORT") or os.environ.get("IBGW_MOCK_PORT") or 4002))
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = asyncio.run(check_api_ready(args.host, args.port, timeout=args.timeout))
    print(result.line(), flush=True)
    return 0 if result.ready else 1


if __name__ == "__main__":
    sys.exit(main())
