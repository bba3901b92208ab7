"""How a fault suite drives a mock fault and observes its effect, without pytest.

Why a module of its own: suites/test_faults.py is thin pytest glue (parametrize,
assert); the steps it repeats per fault (a timed run, a one-line description
of the evidence, a wait on the port's state or the socket table, watching the
system messages a connected client receives, an order frame against the
read-only fault) are infrastructure that other suites, the soak or a team's
own tests can call the same way. Every wait here is an awaited event with a
timeout, or a bounded poll (harness.core.wait) where the state is the
kernel's and has no event.

Orders: the two order helpers below send an order frame. They take the
MockGateway itself, not an endpoint, and refuse a connection that is not to
that mock's port, so no order reaches a real Gateway through them (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..clients.base import ConnectResult, GatewayMessage, events_of
from ..core.errors import HarnessError
from ..core.record import Evidence
from ..core.wait import poll_until
from ..mock.gateway import MockGateway
from ..protocol import FrameReader, decode_reply, encode_message, split_fields
from ..protocol import messages as m
from ..protocol.handshake import exchange_versions, start_api_frame
from ..protocol.messages import In, Out
from ..targets.sockets import SocketRow, port_states

T = TypeVar("T")
HOST = "127.0.0.1"
POLL_INTERVAL = 0.02  # kernel state (a port's listener, the socket table): nothing to await
ORDER_REFUSALS = (201, 321)  # an order refused as an order / by the read-only API setting

# A truncated placeOrder: the mock refuses order messages by id alone.
PLACE_ORDER: list[Any] = [Out.PLACE_ORDER, 45, 3, 0, "AAPL", "STK"]


class NotTheMock(HarnessError):
    """An order helper was pointed at something other than the mock it was given."""


class NoOrderPath(HarnessError, ValueError):
    """place_order_through() knows no order call for this client."""


# ---------------------------------------------------------------- evidence in one line


def describe(evidence: Evidence, elapsed: float | None = None) -> str:
    """"ok in 0.52s" or "failed at <phase> in 1.50s: <cause>", for a fault-matrix row."""
    took = f" in {elapsed:.2f}s" if elapsed is not None else ""
    if evidence.ok:
        return f"ok{took}"
    return f"failed at {evidence.failed_phase}{took}: {evidence.cause}"


def error_codes(evidence: Evidence) -> list[int]:
    """The Gateway error codes the connect received, in order."""
    return [msg["code"] for msg in evidence.connect.get("messages") or []]


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    """The awaitable's value and the seconds it took (timings are evidence, not assertions)."""
    t0 = time.monotonic()
    value = await awaitable
    return value, time.monotonic() - t0


# ---------------------------------------------------------------- kernel state (bounded polls)


async def wait_port_state(port: int, *, accepting: bool, within: float, host: str = HOST) -> float:
    """Wait until the port accepts (or refuses) TCP connects; returns the wait.

    A bounded poll, not an event wait: whether a listener exists is kernel
    state with no notification, so a TCP connect is tried every 20 ms until
    the port is in the wanted state or the deadline passes (WaitTimeout). An
    accepted probe is closed at once (the mock logs it as a client that never
    sent API\\0).
    """
    t0 = time.monotonic()
    deadline = t0 + within

    async def in_state() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                               max(0.1, deadline - time.monotonic()))
        except ConnectionRefusedError:
            return not accepting
        except (ConnectionResetError, TimeoutError):
            return False  # the listener closed while this connect was queued: going down, not yet refusing
        writer.close()
        return accepting

    await poll_until(in_state, timeout=within, interval=POLL_INTERVAL,
                     what=f"port {port} {'accepting' if accepting else 'refusing'} connections",
                     hint="the mock's restart fault did not take effect in time (see the mock's log)")
    return time.monotonic() - t0


async def wait_close_wait(port: int, count: int, within: float) -> list[SocketRow]:
    """The CLOSE_WAIT sockets whose local port is `port`, once at least
    `count` are there or `within` seconds have passed (whatever is there then:
    the count is the finding). Read through targets/sockets.port_states, the
    one reader of the socket table."""

    def rows() -> list[SocketRow]:
        return [row for row in port_states(port) if row.status == "CLOSE_WAIT"]

    async def enough() -> list[SocketRow] | None:
        found = await asyncio.to_thread(rows)
        return found if len(found) >= count else None

    found = await poll_until(enough, timeout=within, interval=POLL_INTERVAL, raise_on_timeout=False)
    return found if found is not None else await asyncio.to_thread(rows)


async def clean_disconnect(client: Any, timeout: float) -> None:
    """Disconnect with nothing left unread, so the close is a FIN.

    A socket closed while received data is still unread goes out as a RST
    (the kernel's rule, not the Gateway's): the mock then sees "connection
    lost", not an explicit disconnect, and faults that act on an explicit
    disconnect (close-wait-leak, red-after-disconnect) rightly ignore it.
    ibapi's reader thread may still be behind on the start-up burst when
    disconnect() closes the socket; a ping round trip first proves every
    earlier byte has been read.
    """
    await client.ping(timeout)
    await client.disconnect()


# ---------------------------------------------------------------- system messages (event wait)


class MessageWatch(list[GatewayMessage]):
    """The system messages a connected client has received (its connect's,
    then every later one through the adapter's events), waking a waiter on
    each. Adapters emit on the event loop thread (raw and ib_async dispatch
    there; ibapi posts with call_soon_threadsafe), so an asyncio.Event is safe."""

    def __init__(self, client: Any, result: ConnectResult) -> None:
        super().__init__(result.messages)
        self._changed = asyncio.Event()
        self.stop = events_of(client).on_message(self._heard)

    def _heard(self, message: GatewayMessage) -> None:
        self.append(message)
        self._changed.set()

    @property
    def codes(self) -> list[int]:
        return [msg.code for msg in self]

    async def wait_for(self, done: Callable[[list[int]], bool], within: float) -> list[int]:
        """The codes once done(codes) is true; TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while not done(self.codes):
                self._changed.clear()
                await self._changed.wait()
        return self.codes


def in_order(expected: list[int]) -> Callable[[list[int]], bool]:
    """True once `expected` occurs in the codes as a subsequence (in that order)."""
    def check(codes: list[int]) -> bool:
        it = iter(codes)
        return all(code in it for code in expected)
    return check


# ---------------------------------------------------------------- orders against the mock's read-only fault


def _require_mock(mock: object, port: int | None = None) -> None:
    """NotTheMock unless `mock` is a MockGateway (and `port`, when given, is its port)."""
    if not isinstance(mock, MockGateway) or (port is not None and mock.port != port):
        raise NotTheMock(f"an order frame may go only to the mock it names (port {port})",
                         hint="these helpers test the mock's read-only fault; never point them at a Gateway")


class _Wire:
    """One connection on the codec alone: the raw client refuses to send
    order messages, so an order frame needs a socket of its own."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = FrameReader()
        self.inbox: list[bytes] = []
        self.server_version = 0

    @classmethod
    async def connect(cls, host: str, port: int, client_id: int) -> _Wire:
        wire = cls(*await asyncio.open_connection(host, port))
        reply = await exchange_versions(wire.reader, wire.writer, 157, 178)
        wire.frames, wire.inbox, wire.server_version = reply.frames, reply.pending, reply.server_version
        wire.writer.write(start_api_frame(client_id, wire.server_version))
        return wire

    async def payload(self) -> bytes:
        while not self.inbox:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the mock closed the connection")
            self.inbox.extend(self.frames.feed(data))
        return self.inbox.pop(0)

    async def until(self, done: Callable[[m.Message], bool]) -> m.Message:
        while True:
            msg = decode_reply(self.server_version, split_fields(await self.payload()))
            if done(msg):
                return msg

    def send(self, fields: list[Any]) -> None:
        self.writer.write(encode_message(fields))

    def close(self) -> None:
        self.writer.close()


async def wire_order_reply(mock: MockGateway, client_id: int, timeout: float) -> tuple[int, str]:
    """placeOrder on a codec-level connection to the mock: the error code and
    text it gets, after checking the connection still answers a request."""
    _require_mock(mock)
    async with asyncio.timeout(timeout):
        wire = await _Wire.connect(mock.host, mock.port, client_id)
        try:
            await wire.until(lambda msg: msg.msg_id == In.NEXT_VALID_ID)
            wire.send(PLACE_ORDER)
            reply = await wire.until(lambda msg: msg.msg_id == In.ERR_MSG and msg.int("code") in ORDER_REFUSALS)
            wire.send(m.req_current_time())
            await wire.until(lambda msg: msg.msg_id == In.CURRENT_TIME)  # the connection stays up
        finally:
            wire.close()
    return reply.int("code"), reply.fields.get("message", "")


async def place_order_through(mock: MockGateway, client_name: str, client: Any, result: ConnectResult) -> int:
    """Send one order through a real client's own API to the mock it is
    connected to (NotTheMock otherwise); the order id."""
    _require_mock(mock, result.port)
    if client_name == "ib_async":
        from ib_async import LimitOrder, Stock

        trade = client.ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
        return int(trade.order.orderId)
    if client_name == "ibapi":
        from ibapi.contract import Contract
        from ibapi.order import Order

        contract = Contract()
        contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
        order = Order()
        order.action, order.totalQuantity, order.orderType, order.lmtPrice = "BUY", 1, "LMT", 1.0
        # The adapter offers no order call (it is read-only by design); its
        # EClient is driven on its own call thread, as every ibapi call is.
        await client._call(client._app.placeOrder, result.next_valid_id, contract, order)
        return int(result.next_valid_id or 0)
    raise NoOrderPath(f"no order path for {client_name}", hint="valid clients: ib_async, ibapi (the raw client "
                      "never sends an order: use wire_order_reply)")


@dataclass(frozen=True)
class OrderRefusal:
    """How a real client heard its order refused: the code, text and request
    id of the refusal, the order's id, and the client API it came through."""

    code: int
    message: str
    req_id: int
    order_id: int
    via: str


async def order_refusal_through(mock: MockGateway, client_name: str, client: Any, result: ConnectResult,
                                timeout: float) -> OrderRefusal:
    """Place one order through the client's own API (place_order_through) and
    wait, by its events, for the refusal (321 read-only, else 201)."""
    watch = MessageWatch(client, result)
    try:
        order_id = await place_order_through(mock, client_name, client, result)
        codes = await watch.wait_for(lambda c: any(code in c for code in ORDER_REFUSALS), within=timeout)
    finally:
        watch.stop()
    code = 321 if 321 in codes else 201
    refusal = next(msg for msg in watch if msg.code == code)
    via = "errorEvent" if client_name == "ib_async" else "EWrapper.error"
    return OrderRefusal(code, refusal.message, refusal.req_id, order_id, via)
