"""A client in its own process that connects and then exits without
disconnecting: the "worker process died" case of the zombie scenario
(field reports: an isolated subprocess worker per connection).

    python -m harness.scenarios.exit_worker --client raw --host H --port P --client-id N

Prints the ConnectResult as one JSON line, then leaves with os._exit so no
library clean-up runs: the kernel closes the socket, as on a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from ..clients import make_client
from ..clients.base import HandshakeError


async def _connect_and_die(args: argparse.Namespace) -> None:
    client = make_client(args.client)
    try:
        data = (await client.connect(args.host, args.port, args.client_id, timeout=args.timeout)).to_dict()
    except HandshakeError as exc:
        data = exc.result.to_dict() if exc.result else {}
        data.update(ok=False, failed_phase=exc.phase, error=exc.cause)
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
    # Exit from inside the running loop: asyncio.run's clean-up would close
    # the socket politely first, which is not what a dying worker does.
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="exit_worker")
    parser.add_argument("--client", default="raw")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    asyncio.run(_connect_and_die(parser.parse_args()))


if __name__ == "__main__":
    main()
