"""A tiny raw-socket TWS API client for the mock Gateway tests.

Raw control is the point: the tests decide exactly which bytes go out and
when (half a frame, garbage before `API\\0`, a frame flood), and read what
comes back frame by frame with the harness codec. Every wait is an awaited
read with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from harness.protocol import FrameReader, encode_hello, encode_message, split_fields
from harness.protocol.framing import Field
from harness.protocol.handshake import exchange_versions, parse_server_hello, start_api_frame
from harness.protocol.messages import In, Out

# Generous for loopback; a healthy reply arrives in well under a millisecond.
TIMEOUT = 3.0
# How long "nothing arrives" is watched for. Short: it bounds test time.
QUIET = 0.15

Predicate = Callable[[list[str]], bool]


def is_msg(msg_id: int) -> Predicate:
    return lambda fields: fields[0] == str(msg_id)


def is_error(code: int) -> Predicate:
    """An error frame with this code, at any server version's layout."""
    return lambda fields: fields[0] == str(int(In.ERR_MSG)) and str(code) in fields[1:4]


class MockClient:
    """One raw connection: handshake helpers, framed send, framed receive."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader()
        self.inbox: list[bytes] = []
        self.server_version = 0
        self.connection_time = ""
        self.eof = False

    # ------------------------------------------------------------ connecting

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> MockClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        return cls(reader, writer)

    @classmethod
    async def connect(cls, port: int, client_id: int = 0, *, min_version: int = 157, max_version: int = 178,
                      options: str = "", start: bool = True) -> MockClient:
        """Open, send the hello, read the version reply and (by default)
        send startApi and wait for the startup messages to finish (the
        last farm notice)."""
        client = await cls.open(port)
        reply = await asyncio.wait_for(exchange_versions(client.reader, client.writer, min_version, max_version,
                                                         options), TIMEOUT)
        client.frames, client.inbox = reply.frames, reply.pending
        client.server_version, client.connection_time = reply.server_version, reply.connection_time
        if start:
            await client.start_api(client_id)
        return client

    async def hello(self, min_version: int, max_version: int, options: str = "") -> None:
        await self.send_raw(encode_hello(min_version, max_version, options))

    async def read_server_hello(self) -> tuple[int, str]:
        version, conn_time = parse_server_hello(await self.read_payload())
        self.server_version = version
        self.connection_time = conn_time
        return version, conn_time

    async def start_api(self, client_id: int, *, wait: bool = True) -> list[list[str]]:
        """Send startApi; with wait, collect the startup burst up to the
        last farm notice (2158 in every profile)."""
        await self.send_raw(start_api_frame(client_id, self.server_version))
        if not wait:
            return []
        return await self.read_until(is_error(2158))

    # ------------------------------------------------------------ sending

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, fields: Sequence[Field]) -> None:
        await self.send_raw(encode_message(fields))

    async def close_write(self) -> None:
        """Half-close: the mock sees end of stream, and its reaction (close
        with a cause) becomes an EOF we can await."""
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            pass

    # ------------------------------------------------------------ receiving

    async def _fill(self, timeout: float) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            self.eof = True
            raise ConnectionResetError("mock closed the connection")
        self.inbox.extend(self.frames.feed(data))

    async def read_payload(self, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            await self._fill(max(0.0, deadline - time.monotonic()))
        return self.inbox.pop(0)

    async def read_frame(self, timeout: float = TIMEOUT) -> list[str]:
        return split_fields(await self.read_payload(timeout))

    async def read_until(self, predicate: Predicate, timeout: float = TIMEOUT) -> list[list[str]]:
        """Frames up to and including the first that matches."""
        deadline = time.monotonic() + timeout
        got: list[list[str]] = []
        while True:
            fields = await self.read_frame(max(0.0, deadline - time.monotonic()))
            got.append(fields)
            if predicate(fields):
                return got

    async def expect_quiet(self, timeout: float = QUIET) -> None:
        """Assert nothing at all arrives within timeout (an awaited read that
        must time out, not a sleep)."""
        assert not self.inbox and self.frames.pending == 0, "unexpected buffered bytes"
        try:
            data = await asyncio.wait_for(self.reader.read(1), timeout)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"expected silence, got {data!r}")

    async def read_to_eof(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the mock closes; fails if it does not close."""
        deadline = time.monotonic() + timeout
        rest = bytearray()
        while True:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), max(0.0, deadline - time.monotonic()))
            except ConnectionResetError:
                break  # closed with unread data on either side: still closed
            if not data:
                break
            rest += data
        self.eof = True
        return bytes(rest)

    # ------------------------------------------------------------ requests

    async def request(self, fields: Sequence[Field], until: Predicate, timeout: float = TIMEOUT) -> list[list[str]]:
        await self.send(fields)
        return await self.read_until(until, timeout)

    async def ping(self, timeout: float = TIMEOUT) -> int:
        """reqCurrentTime; returns the server's epoch seconds."""
        frames = await self.request([Out.REQ_CURRENT_TIME, 1], is_msg(In.CURRENT_TIME), timeout)
        return int(frames[-1][2])


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Yield to the event loop until a mock-side condition holds (for state
    the mock updates just after the client already saw EOF)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0)

