"""The floor `make bench` measures the mock against: a bare asyncio server,
standard library only (no harness import, not even its framing).

    python benchmarks/bare_server.py [--host 127.0.0.1] [--port 0] [--uvloop]

Why its own file with no harness code: a baseline that shares the mock's
framing hides that framing's cost. It does what a client needs for the same
round trips and nothing else: reads `API\\0`, then length-prefixed frames;
answers the version range with a precomputed hello (version 178, a fixed
connection time); answers startApi (id 71) with nextValidId and
managedAccounts in one write; answers reqCurrentTime (id 49) with the time;
ignores everything else. Prints `PORT <n>` once listening; exits on SIGTERM,
SIGINT or EOF on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import struct
import sys
import time

LENGTH = struct.Struct(">I")
VERSION = 178


def frame(*fields: object) -> bytes:
    payload = b"".join(str(f).encode("ascii") + b"\0" for f in fields)
    return LENGTH.pack(len(payload)) + payload


HELLO = frame(VERSION, time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime()))
STARTUP = frame(9, 1, 1) + frame(15, 1, "DU0000001")


class BareProtocol(asyncio.Protocol):
    """One connection: a buffer, a state, precomputed replies."""

    def __init__(self) -> None:
        self.buf = b""
        self.prefix_done = False
        self.said_hello = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.prefix_done:
            if len(buf) < 4:
                self.buf = buf
                return
            if buf[:4] != b"API\0":
                assert self.transport is not None
                self.transport.close()
                return
            self.prefix_done = True
            buf = buf[4:]
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = LENGTH.unpack_from(buf, pos)
            if len(buf) - pos - 4 < size:
                break
            payload = buf[pos + 4:pos + 4 + size]
            pos += 4 + size
            if not self.said_hello:
                self.said_hello = True
                out.append(HELLO)
            elif payload.startswith(b"49\0"):
                out.append(frame(49, 1, int(time.time())))
            elif payload.startswith(b"71\0"):
                out.append(STARTUP)
        self.buf = buf[pos:]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def eof_received(self) -> bool:
        return False  # close our side too


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
    server = await loop.create_server(BareProtocol, host, port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    args = parser.parse_args(argv)
    if args.uvloop:
        import uvloop  # noqa: PLC0415 - optional, only when asked

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
