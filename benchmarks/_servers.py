"""The two servers bench_mock.py measures, each run in its own process.

    python benchmarks/_servers.py mock [--max-clients N]
    python benchmarks/_servers.py echo

Each binds 127.0.0.1 on an ephemeral port, prints `PORT <n>` on stdout and
serves until its stdin reaches EOF (the benchmark holds the pipe; if the
benchmark dies the pipe closes and the server exits with it) or it gets
SIGTERM. A `cpu` line on stdin is answered with `CPU <seconds>` (the
process's CPU time), which the benchmark reads around each measurement.

`mock` is harness.mock.MockGateway with the default profile (server version
178, transcript, account model, client-id registry, farm notices).

`echo` is the baseline: the bare minimum a server must send for the raw
client to complete the same handshake through the same round trips, on the
same asyncio streams and the same framing code, with nothing else:

* reads the 4-byte `API\\0` prefix, then length-prefixed frames;
* first frame (the version range): replies with a precomputed 2-field
  server hello (`178`, connection time fixed at start-up);
* a startApi frame (id 71): replies with the precomputed frames
  `9|1|1` (nextValidId) and `15|1|DU0000001` (managedAccounts) in one write;
  no farm notices, no version negotiation, no client-id registry, no
  transcript, no account model;
* reqCurrentTime (id 49): replies `49|1|<epoch seconds>` (one frame);
* any other frame: echoed back unchanged (one frame).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.protocol.framing import FrameReader, encode_frame, encode_message  # noqa: E402
from harness.protocol.handshake import API_PREFIX, encode_server_hello, format_connection_time  # noqa: E402

HOST = "127.0.0.1"
BASELINE_SERVER_VERSION = 178  # the mock's default profile negotiates the same version
BASELINE_ACCOUNT = "DU0000001"
READ_CHUNK = 65536


def _serve_control() -> None:
    """The benchmark owns our stdin. A `cpu` line is answered with `CPU <s>`,
    this process's CPU time (user + system, all threads) at clock_gettime
    resolution rather than the 10 ms ticks /proc offers; EOF (or the
    benchmark's death) ends the process."""

    def watch() -> None:
        with contextlib.suppress(Exception):
            for line in sys.stdin.buffer:
                if line.strip() == b"cpu":
                    sys.stdout.write(f"CPU {time.process_time():.9f}\n")
                    sys.stdout.flush()
        os._exit(0)

    threading.Thread(target=watch, name="control", daemon=True).start()


def _announce(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- mock


async def run_mock(max_clients: int) -> None:
    from harness.mock.gateway import MockGateway

    async with MockGateway(HOST, 0, max_clients=max_clients) as gw:
        _announce(gw.port)
        await asyncio.Event().wait()


# ---------------------------------------------------------------- bare baseline


HELLO_REPLY = encode_server_hello(BASELINE_SERVER_VERSION, format_connection_time(zone_name="UTC"))
STARTUP_REPLY = encode_message([9, 1, 1]) + encode_message([15, 1, BASELINE_ACCOUNT])


async def _echo_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
            return
        frames = FrameReader()
        said_hello = False
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            for payload in frames.feed(data):
                if not said_hello:
                    writer.write(HELLO_REPLY)
                    said_hello = True
                elif payload.startswith(b"71\0"):
                    writer.write(STARTUP_REPLY)
                elif payload.startswith(b"49\0"):
                    writer.write(encode_message([49, 1, int(time.time())]))
                else:
                    writer.write(encode_frame(payload))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    except Exception as exc:  # bad bytes end this connection only
        print(f"echo: connection dropped: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def run_echo() -> None:
    server = await asyncio.start_server(_echo_session, HOST, 0)
    async with server:
        _announce(int(server.sockets[0].getsockname()[1]))
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("mock", "echo"))
    parser.add_argument("--max-clients", type=int, default=600,
                        help="the mock's connection cap (its default is 32, a real Gateway's)")
    args = parser.parse_args(argv)
    _serve_control()
    try:
        asyncio.run(run_mock(args.max_clients) if args.kind == "mock" else run_echo())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
