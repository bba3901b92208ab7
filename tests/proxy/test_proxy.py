"""The fault proxy: each fault's client-visible effect through the raw
client (and ib_async / ibapi where the libraries react differently), the
decoded transcript, the order guard, and control from another process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.clients import make_client
from harness.clients.base import PHASE_MANAGED_ACCOUNTS, PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION, HandshakeError
from harness.clients.raw import RawClient
from harness.core.net import free_port
from harness.mock import MockGateway
from harness.protocol.framing import encode_message
from harness.protocol.handshake import encode_server_hello
from harness.protocol.messages import ORDER_MESSAGES, Out
from harness.proxy import FaultProxy, Frame, ProxyAddressError, ProxyFaultError, order_guard, parse_fault
from tests.support.processes import Spawned

HOST = "127.0.0.1"
ACCOUNT = "DU7654321"
OK_TIMEOUT = 5.0
FAIL_TIMEOUT = 1.5  # connect timeout where the fault must make it fail
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
async def gw() -> AsyncIterator[MockGateway]:
    async with MockGateway(HOST, 0, accounts=[ACCOUNT]) as mock:
        yield mock


@pytest.fixture
async def proxy(gw: MockGateway, tmp_path: Path) -> AsyncIterator[FaultProxy]:
    async with FaultProxy((HOST, gw.port), transcript=tmp_path / "wire.jsonl") as fp:
        yield fp


async def raw_connect(proxy: FaultProxy, client_id: int, timeout: float = OK_TIMEOUT) -> RawClient:
    client = RawClient()
    await client.connect(HOST, proxy.port, client_id, timeout=timeout)
    return client


async def until(predicate: Any, timeout: float = 3.0) -> bool:
    """Bounded wait for socket/engine state that has no event of its own."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)  # polling the other side's state, bounded by the deadline
    return True


# ---------------------------------------------------------------- parsing and addresses


def test_fault_text_parsing_and_errors() -> None:
    assert parse_fault("latency=200,50").values == (200.0, 50.0)
    assert parse_fault("latency=200").direction == "both"
    assert parse_fault("slice=1,2/up").direction == "up"
    assert parse_fault("half-close").direction == "down"
    for bad, words in [("nope", "unknown proxy fault"), ("latency", "needs"), ("blackhole=1", "takes no value"),
                       ("slice=0", "below the minimum"), ("latency=x", "not a number"),
                       ("coalesce=5/sideways", "direction")]:
        with pytest.raises(ProxyFaultError, match=words):
            parse_fault(bad)


def test_loopback_only() -> None:
    # A documentation address (RFC 5737 TEST-NET-1): refused in the constructor,
    # before any socket exists, so no packet ever leaves for it.
    with pytest.raises(ProxyAddressError, match="loopback"):
        FaultProxy(("192.0.2.10", 4002))
    with pytest.raises(ProxyAddressError, match="loopback"):
        FaultProxy((HOST, 4002), host="0.0.0.0")


# ---------------------------------------------------------------- transcript


async def test_transcript_decodes_both_directions_and_redacts(proxy: FaultProxy, tmp_path: Path) -> None:
    client = await raw_connect(proxy, 11)
    await client.ping()
    await client.disconnect()
    assert await until(lambda: not proxy.links)
    names = [(e.direction, e.name) for e in proxy.entries]
    assert any(d == "up" and n.startswith("hello v100..") for d, n in names)
    for expected in [("down", "server hello v178"), ("up", "startApi"),
                     ("down", "nextValidId"), ("down", "managedAccounts"), ("up", "reqCurrentTime"),
                     ("down", "currentTime")]:
        assert expected in names, f"{expected} missing from {names[:12]}"
    assert proxy.history[-1]["server_version"] == 178  # learned from the server hello
    text = proxy.transcript_text()
    written = (tmp_path / "wire.jsonl").read_text()
    assert "DU…321" in text and ACCOUNT not in text
    assert "DU…321" in written and ACCOUNT not in written
    assert all(json.loads(line)["conn_id"] == 1 for line in written.splitlines())


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("library", ["raw", "ib_async"])
async def test_latency_delays_every_round_trip(proxy: FaultProxy, library: str) -> None:
    client = make_client(library)
    await client.connect(HOST, proxy.port, 12, timeout=OK_TIMEOUT)
    try:
        baseline = min([await client.ping() for _ in range(3)])
        proxy.set_fault("latency=150,20")
        slowed = [await client.ping() for _ in range(3)]
        proxy.clear_fault("latency")
        after = await client.ping()
    finally:
        await client.disconnect()
    # 150 +- 20 ms each way: every round trip takes at least ~260 ms, and far longer than without.
    assert min(slowed) >= 0.26, slowed
    assert min(slowed) > 10 * baseline
    assert after < 0.26


async def test_blackhole_accepts_and_goes_silent(proxy: FaultProxy, gw: MockGateway) -> None:
    client = await raw_connect(proxy, 13)
    proxy.set_fault("blackhole")
    with pytest.raises(TimeoutError):
        await client.ping(timeout=0.5)  # the socket stays up; nothing comes back
    for name in ("raw", "ib_async"):  # a new connection is accepted and hears nothing: the 'not logged in' look
        fresh = make_client(name)
        with pytest.raises(HandshakeError) as failed:
            await fresh.connect(HOST, proxy.port, 14, timeout=FAIL_TIMEOUT)
        assert failed.value.phase == PHASE_SERVER_VERSION, (name, failed.value)
    assert gw.record_for_client(14) is None  # the Gateway never saw it
    await client.disconnect()
    proxy.clear_fault("blackhole")
    again = await raw_connect(proxy, 14)
    await again.disconnect()


@pytest.mark.parametrize("library", ["raw", "ib_async"])
async def test_reset_drops_open_connections_and_new_ones(proxy: FaultProxy, library: str) -> None:
    client = make_client(library)
    await client.connect(HOST, proxy.port, 15, timeout=OK_TIMEOUT)
    proxy.set_fault("reset")  # every open connection RST now, new ones at accept
    with pytest.raises(ConnectionError):
        await asyncio.sleep(0.1)  # let the RST arrive: the next call must see a dead connection
        await client.ping(timeout=1.0)
    await client.disconnect()
    with pytest.raises(HandshakeError):
        await make_client(library).connect(HOST, proxy.port, 16, timeout=FAIL_TIMEOUT)
    assert any("reset" in h["close_cause"] for h in proxy.history)
    proxy.clear_fault("reset")
    client = make_client(library)
    await client.connect(HOST, proxy.port, 16, timeout=OK_TIMEOUT)
    assert await proxy.reset_all() == 1  # the one-shot form
    with pytest.raises(ConnectionError):
        await asyncio.sleep(0.1)
        await client.ping(timeout=1.0)
    await client.disconnect()


async def test_half_close_client_sees_eof_while_gateway_keeps_the_id(proxy: FaultProxy, gw: MockGateway) -> None:
    client = await raw_connect(proxy, 17)
    proxy.set_fault("half-close")  # FIN to the client only
    assert await until(lambda: client._closed.is_set())
    assert "closed" in client._close_cause
    # The Gateway side was never told: its session still holds client id 17.
    assert 17 in gw.client_ids_in_use
    await client.disconnect()  # the client's own close travels on and frees the id
    assert await gw.wait_client_id_free(17, timeout=3.0)


async def test_bandwidth_cap_slows_the_download(proxy: FaultProxy) -> None:
    # A first connection pays one-off costs (imports, the first accept): timed, it made the uncapped
    # baseline look as slow as the capped run on a loaded machine. So the baseline is a second one.
    await (await raw_connect(proxy, 20)).disconnect()
    started = time.monotonic()
    fast = await raw_connect(proxy, 18)
    fast_s = time.monotonic() - started
    await fast.disconnect()
    proxy.set_fault("bandwidth=0.5/down")  # 512 B/s; the bytes up to the first account value are ~400
    started = time.monotonic()
    slow = await raw_connect(proxy, 19)
    slow_s = time.monotonic() - started
    await slow.disconnect()
    assert await until(lambda: len(proxy.history) == 3)
    # At 512 B/s the bytes the client needed take (bytes / 512) seconds; the cap, not the mock, set the pace.
    down_bytes = proxy.history[-1]["forwarded"]["down"]
    assert slow_s >= 0.6 * down_bytes / 512 >= 0.3, (fast_s, slow_s, down_bytes)
    assert slow_s > 2 * fast_s


async def test_limit_data_closes_after_n_bytes(proxy: FaultProxy) -> None:
    proxy.set_fault("limit-data=60/down")  # the server hello (~30 bytes) passes, the start-up replies do not
    with pytest.raises(HandshakeError) as failed:
        await RawClient().connect(HOST, proxy.port, 20, timeout=FAIL_TIMEOUT)
    assert failed.value.phase in (PHASE_NEXT_VALID_ID, PHASE_MANAGED_ACCOUNTS)  # cut inside the start-up replies
    assert "closed" in failed.value.cause
    assert await until(lambda: bool(proxy.history))
    assert proxy.history[-1]["forwarded"]["down"] == 60
    assert "limit-data" in proxy.history[-1]["close_cause"]


# ---------------------------------------------------------------- slicer: split or coalesce writes


async def _early_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Gateway stand-in that sends the version reply and, 50 ms later in a
    separate write, nextValidId + managedAccounts without waiting for
    startApi; then answers reqAccountUpdates. Unlike a real Gateway (which
    waits for startApi) it makes the timing of the reply's neighbours
    something the proxy can change."""
    received = b""
    while len(received) < 8 or len(received) < 8 + int.from_bytes(received[4:8], "big"):  # API\0 + framed range
        chunk = await reader.read(1024)
        if not chunk:
            return
        received += chunk
    writer.write(encode_server_hello(178, "20260101 00:00:00 UTC"))
    await writer.drain()
    await asyncio.sleep(0.05)  # two separate writes, as a server would send them
    writer.write(encode_message([9, 1, 1]) + encode_message([15, 1, ACCOUNT]))
    await writer.drain()
    try:
        while data := await reader.read(4096):
            if b"6\x002\x001\x00" in data:  # reqAccountUpdates(subscribe)
                writer.write(encode_message([6, 2, "NetLiquidation", "1000", "USD", ACCOUNT])
                             + encode_message([54, 1, ACCOUNT]))
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def early_gateway() -> AsyncIterator[int]:
    server = await asyncio.start_server(_early_gateway, HOST, 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def _connect_outcome(name: str, port: int, timeout: float) -> str:
    client = make_client(name)
    try:
        await client.connect(HOST, port, 21, timeout=timeout)
        return "ready"
    except HandshakeError as exc:
        return f"failed at {exc.phase}"
    finally:
        await client.disconnect()


async def test_coalescing_the_version_reply_breaks_ibapi_only(early_gateway: int) -> None:
    async with FaultProxy((HOST, early_gateway)) as plain:
        assert await _connect_outcome("ibapi", plain.port, 3.0) == "ready"
    async with FaultProxy((HOST, early_gateway), faults=["coalesce=150"]) as coalescing:
        # The version reply and the next frames arrive in one segment: ibapi throws away
        # everything after the first frame of that read, so nextValidId never reaches it.
        assert await _connect_outcome("ibapi", coalescing.port, 2.0) == f"failed at {PHASE_NEXT_VALID_ID}"
        assert await _connect_outcome("raw", coalescing.port, 3.0) == "ready"


async def test_slicing_keeps_ibapi_working_unless_it_splits_the_version_reply(early_gateway: int) -> None:
    # Writes cut into 100-byte pieces 5 ms apart: the version reply (~30 bytes) stays whole.
    async with FaultProxy((HOST, early_gateway), faults=["slice=100,5"]) as whole:
        assert await _connect_outcome("ibapi", whole.port, 3.0) == "ready"
    # 4-byte pieces 2 ms apart split the version reply itself across reads: ibapi's
    # connect loop drops a partial frame, so it never sees a version reply.
    # The raw client reassembles frames and does not care.
    async with FaultProxy((HOST, early_gateway), faults=["slice=4,2"]) as split:
        assert await _connect_outcome("ibapi", split.port, 2.0) == f"failed at {PHASE_SERVER_VERSION}"
        assert await _connect_outcome("raw", split.port, 3.0) == "ready"


# ---------------------------------------------------------------- request guards


def test_order_guard_refuses_exactly_the_order_messages() -> None:
    def frame(msg_id: int) -> Frame:  # text era: the id as ASCII digits and a NUL
        return Frame(1, "up", "message", f"msg{msg_id}", f"{msg_id}\0".encode(), [str(msg_id)], msg_id, 178)

    def binary(msg_id: int) -> Frame:  # protobuf era: a 4-byte id (+200 for a protobuf body)
        return Frame(1, "up", "message", "x", msg_id.to_bytes(4, "big") + b"\x08\x01", None, msg_id, 223)

    assert {int(m) for m in ORDER_MESSAGES} == {3, 4, 58, 21}
    for msg_id in ORDER_MESSAGES:
        assert order_guard(frame(int(msg_id))) is not None
    for msg_id in (Out.REQ_CURRENT_TIME, Out.REQ_POSITIONS, Out.REQ_ACCT_DATA, Out.START_API):
        assert order_guard(frame(int(msg_id))) is None
    assert order_guard(Frame(1, "down", "message", "openOrder", b"5\0", ["5"], 5, 178)) is None  # replies pass
    # Protobuf era: binary ids, protobuf bodies add 200 to the id.
    for msg_id in (3, 203, 4, 204, 58, 258, 21, 221):
        assert order_guard(binary(msg_id)) is not None, msg_id
    for msg_id in (49, 249, 61, 261):
        assert order_guard(binary(msg_id)) is None, msg_id


async def test_order_guard_closes_the_connection_before_the_gateway_sees_the_order(
        proxy: FaultProxy, gw: MockGateway) -> None:
    client = await raw_connect(proxy, 22)
    # The raw client refuses to send orders itself; write the bytes underneath it to
    # play a client that would. This reaches the proxy, never the mock.
    assert client._writer is not None
    client._writer.write(encode_message([Out.PLACE_ORDER, 1, "SPY", "STK", "BUY", 1]))
    assert await until(lambda: client._closed.is_set())
    assert proxy.denied and proxy.denied[0]["message"] == "placeOrder"
    record = gw.record_for_client(22)
    assert record is not None
    assert not any("placeOrder" in line for line in record.to_text().splitlines())
    await client.disconnect()


async def test_a_custom_guard_is_one_callable(proxy: FaultProxy) -> None:
    proxy.add_request_guard(lambda f: "positions are off limits" if f.name == "reqPositions" else None)
    client = await raw_connect(proxy, 23)
    await client.ping()  # everything else passes
    with pytest.raises((ConnectionError, TimeoutError)):
        await client.account_snapshot(timeout=2.0)
    assert "positions are off limits" in proxy.denied[-1]["cause"]
    await client.disconnect()


# ---------------------------------------------------------------- another process: CLI + control endpoint


def _http(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


_free_port = free_port  # the one helper (harness/core/net.py)


async def test_cli_proxy_steered_from_another_process(gw: MockGateway, tmp_path: Path) -> None:
    listen, control = _free_port(), _free_port()
    transcript = tmp_path / "cli-wire.jsonl"
    proxy = Spawned([sys.executable, "-m", "harness.cli", "proxy", "--listen", f"{HOST}:{listen}",
                     "--upstream", f"{HOST}:{gw.port}", "--control-port", str(control),
                     "--transcript", str(transcript)], stream="stderr",
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # printed once both ports listen
        banner = (await asyncio.to_thread(proxy.wait_for, r".*", 30)).string
        assert f"proxy {HOST}:{listen}" in banner, banner
        client = RawClient()
        await client.connect(HOST, listen, 24, timeout=OK_TIMEOUT)
        status, body = await asyncio.to_thread(_http, control, "POST", "/faults", {"fault": "latency=200"})
        assert status == 200 and body["active"] == ["latency=200"]
        assert await client.ping() >= 0.38
        status, body = await asyncio.to_thread(_http, control, "POST", "/faults", {"fault": "bogus"})
        assert status == 400 and "unknown proxy fault" in body["error"]
        status, body = await asyncio.to_thread(_http, control, "DELETE", "/faults")
        assert status == 200 and body["active"] == []
        assert await client.ping() < 0.38
        status, state = await asyncio.to_thread(_http, control, "GET", "/state")
        assert state["connections"][0]["server_version"] == 178
        status, body = await asyncio.to_thread(_http, control, "GET", "/transcript")
        assert "reqCurrentTime" in body["transcript"] and ACCOUNT not in body["transcript"]
        status, body = await asyncio.to_thread(_http, control, "POST", "/reset")
        assert status == 200 and body["reset"] == 1
        await client.disconnect()
    finally:
        returncode = await proxy.astop(signal.SIGTERM, 10)
    assert returncode == 0
    lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert any(entry["name"] == "managedAccounts" for entry in lines)
    assert ACCOUNT not in transcript.read_text()
