"""A replay that cannot bring a connection to API-ready says why and closes
it at once, instead of leaving the client to time out as "API not ready"."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.clients import make_client
from harness.clients.base import HandshakeError
from harness.core.wait import poll_until
from harness.mock import MockGateway
from harness.proxy import FaultProxy
from harness.recording import load
from harness.recording.recorder import Recorder
from harness.recording.replay import replay_gateway
from tests.proxy.test_recording import ALL_CLIENTS, HOST, RAW_SINGLE_DOWNLOAD, record, wait_closed
from tests.support.processes import Spawned

TIMEOUT = 8.0


async def test_a_recording_without_an_api_session_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "silent.jsonl"
    async with MockGateway(HOST, 0, faults=["silent-handshake"]) as upstream:
        async with FaultProxy((HOST, upstream.port)) as proxy:
            recorder = Recorder(gateway_build="10.30.1").attach(proxy)
            client = make_client("raw")
            try:  # the recorded Gateway never answers: that is the recording this test needs
                await client.connect(HOST, proxy.port, 700, timeout=1.0)
            except HandshakeError:
                pass
            finally:
                await client.disconnect()
            await wait_closed(proxy)
    recorder.save(path)
    gw, replayer = replay_gateway(load(path), speed=0)
    async with gw:
        client = make_client("raw")
        started = time.monotonic()
        try:
            result = await client.connect(HOST, gw.port, 701, timeout=TIMEOUT)
        except HandshakeError as exc:
            result = exc.result
            cause = str(exc)
        else:
            cause = ""
        finally:
            await client.disconnect()
        elapsed = time.monotonic() - started
    said = cause + " ".join(msg.message for msg in (result.messages if result is not None else []))
    assert elapsed < TIMEOUT / 2, f"waited {elapsed:.1f} s: {said}"
    assert "replay cannot serve this connection" in said and "no connection that reached startApi" in said, said
    assert [d.kind for d in replayer.divergences] == ["no-connection"]


# ---------------------------------------------------------------- version, read-only, and a control
#
# Real clients, unmodified: ib_async (v157..178), the official ibapi
# (v100..226) and the raw client, against recordings the mock made through
# the recording proxy. ibapi cannot meet a version a recording lacks: it
# accepts every version from 100 up, and a replay never offers more than the
# recorded session's; so its cases are read-only and the control.

PROTOBUF_ERA = "10.50"  # 226: start-up and account messages recorded as protobuf


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A protobuf-era session (ibapi at 226), a session at 150 (raw offering
    v100..150), and read-only sessions of all three clients at 178."""
    base = tmp_path_factory.mktemp("cannot-serve")
    paths = {"226": base / "ibapi-226.jsonl", "150": base / "raw-150.jsonl", "178": base / "read-only-178.jsonl"}
    await record(paths["226"], ("ibapi",), profile=PROTOBUF_ERA)
    await record(paths["150"], ("raw",), max_version=150)
    await record(paths["178"], ALL_CLIENTS, **RAW_SINGLE_DOWNLOAD)
    return paths


def _said(exc: HandshakeError) -> str:
    messages = exc.result.messages if exc.result is not None else []
    return str(exc) + " | " + " | ".join(f"{msg.code} {msg.message}" for msg in messages)


async def _refused(name: str, port: int, client_id: int, *, readonly: bool = True,
                   **options: Any) -> tuple[str, float]:
    """Connect; the refusal's text as the client surfaced it, and how long it took."""
    client = make_client(name, **options)
    started = time.monotonic()
    try:
        result = await client.connect(HOST, port, client_id, timeout=TIMEOUT, readonly=readonly)
    except HandshakeError as exc:
        return _said(exc), time.monotonic() - started
    finally:
        await client.disconnect()
    raise AssertionError(f"{name} connected to a replay that cannot serve it: {result}")


async def test_a_version_the_recording_lacks_is_named_to_the_raw_client(recordings: dict[str, Path]) -> None:
    gw, replayer = replay_gateway(load(recordings["226"]), speed=0)
    async with gw:
        said, elapsed = await _refused("raw", gw.port, 710, max_version=178)  # text era: cannot take protobuf
    assert elapsed < TIMEOUT / 2, f"waited {elapsed:.1f} s: {said}"
    assert "the recording holds no session at server version 178 for this client (recorded: 226" in said, said
    assert [d.kind for d in replayer.divergences if d.kind != "client-range"] == ["server-version"]


async def test_a_version_the_recording_lacks_reaches_ib_async_at_once(recordings: dict[str, Path]) -> None:
    """ib_async's connectAsync waits on apiStart alone (client.py), so after
    any close before API-ready it returns at its own timeout; what the replay
    owes it is the named error and the close, at once: errorEvent and apiError."""
    from ib_async import IB

    gw, replayer = replay_gateway(load(recordings["226"]), speed=0)
    async with gw:
        ib = IB()
        errors: list[str] = []
        api_errors: list[str] = []
        named = asyncio.Event()

        def on_error(req_id: int, code: int, message: str, contract: Any) -> None:
            errors.append(f"{code} {message}")
            named.set()

        def on_api_error(message: str) -> None:
            api_errors.append(message)

        ib.errorEvent += on_error
        ib.client.apiError += on_api_error
        started = time.monotonic()
        connecting = asyncio.create_task(ib.connectAsync(HOST, gw.port, clientId=711, timeout=TIMEOUT))
        try:
            await asyncio.wait_for(named.wait(), TIMEOUT / 2)
            elapsed = time.monotonic() - started
            await gw.wait_client_id_free(711)  # the replay closed the connection
        finally:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            ib.disconnect()
    assert elapsed < TIMEOUT / 2
    assert any("321 replay cannot serve this connection: the recording holds no session at server version 178 "
               "for this client (recorded: 226" in e for e in errors), errors
    assert [d.kind for d in replayer.divergences if d.kind != "client-range"] == ["server-version"]


async def test_a_client_range_above_every_recorded_version_is_named_on_the_replay_s_stderr(
        recordings: dict[str, Path], tmp_path: Path) -> None:
    """`ibgw mock serve --replay`: the banner says what the recording holds;
    a client whose range starts above it closes by itself (each client names
    the version) and the replay's log names the recorded versions."""
    ibgw_bin = str(Path(sys.executable).with_name("ibgw"))
    serve = Spawned([ibgw_bin, "mock", "serve", "--port", "0", "--replay", str(recordings["150"]),
                     "--replay-speed", "0"], other=tmp_path / "serve.err")  # its log: read once it has exited
    try:
        line = (await asyncio.to_thread(serve.wait_for, r".*", 15)).string  # the first line
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        said, elapsed = await _refused("raw", port, 712, min_version=157)  # ib_async's floor
        code = await serve.astop(signal.SIGTERM, 15)
        stderr = (tmp_path / "serve.err").read_text()
        assert code == 0, stderr
    finally:
        await serve.astop()  # a no-op once it has exited
    assert elapsed < TIMEOUT / 2 and "150" in said, said
    assert "replaying 1 recorded API session(s) at server version 150" in stderr, stderr
    assert ("the recording holds no session at server version 157 or above for this client "
            "(it offers v157..226; recorded: 150)") in stderr, stderr
    assert "Traceback" not in stderr


async def test_ib_async_below_the_recorded_version_is_named_to_the_user(recordings: dict[str, Path]) -> None:
    gw, replayer = replay_gateway(load(recordings["150"]), speed=0)
    async with gw:
        said, _ = await _refused("ib_async", gw.port, 713)
    assert "150" in said and "157" in said, said  # ib_async's own check, named by its adapter
    assert [d.detail for d in replayer.divergences] == [
        "the recording holds no session at server version 157 or above for this client (it offers v157..178; "
        "recorded: 150); hint: record with this client (`ibgw record`)"]


async def test_a_read_write_ib_async_against_a_read_only_recording_is_refused_by_name(
        recordings: dict[str, Path]) -> None:
    gw, replayer = replay_gateway(load(recordings["178"]), speed=0)
    assert replayer.read_only and "recorded read-only" in replayer.describe()
    async with gw:
        said, elapsed = await _refused("ib_async", gw.port, 714, readonly=False)
    assert elapsed < TIMEOUT / 2, f"waited {elapsed:.1f} s: {said}"
    assert ("replay cannot serve this connection: the recording was made read-only: no recorded session asked "
            "for orders, and this client sends reqOpenOrders") in said, said
    assert "readonly=True" in said
    assert [d.kind for d in replayer.divergences] == ["read-only"]


async def test_ibapi_order_and_order_query_against_a_read_only_recording_are_refused_by_name(
        recordings: dict[str, Path]) -> None:
    """ibapi sends order requests only when asked: an order gets error 201
    naming the read-only recording (the connection stays), reqOpenOrders the
    named refusal and a close."""
    from ibapi.contract import Contract
    from ibapi.order import Order

    gw, replayer = replay_gateway(load(recordings["178"]), speed=0)
    async with gw:
        client = make_client("ibapi")
        try:
            result = await client.connect(HOST, gw.port, 715, timeout=TIMEOUT)
            app = client._app  # the real ibapi EClient the adapter runs
            assert app is not None and result.next_valid_id is not None
            contract = Contract()
            contract.symbol, contract.secType, contract.exchange, contract.currency = "AAPL", "STK", "SMART", "USD"
            order = Order()
            order.action, order.orderType, order.totalQuantity, order.lmtPrice = "BUY", "LMT", 1, 1.0
            order_id = result.next_valid_id
            app.placeOrder(order_id, contract, order)
            await poll_until(lambda: any(msg.code == 201 for msg in result.messages), timeout=TIMEOUT / 2,
                             what="error 201 for the order")
            app.reqOpenOrders()
            await asyncio.wait_for(client.events.closed.wait(), TIMEOUT / 2)
        finally:
            await client.disconnect()
    texts = {msg.code: msg.message for msg in result.messages}
    assert texts[201].startswith("Order rejected - reason:replay cannot serve this order: the recording was made "
                                 "read-only"), texts
    assert f"placeOrder id {order_id} has no recorded answer" in texts[201]
    assert "the recording was made read-only" in texts[321] and "reqOpenOrders" in texts[321], texts
    assert [d.kind for d in replayer.divergences] == ["read-only", "read-only"]


@pytest.mark.parametrize("name", ALL_CLIENTS)
async def test_control_a_read_only_client_at_a_recorded_version_is_served(name: str,
                                                                          recordings: dict[str, Path]) -> None:
    gw, replayer = replay_gateway(load(recordings["178"]), speed=0)
    async with gw:
        client = make_client(name, **(RAW_SINGLE_DOWNLOAD if name == "raw" else {}))
        try:
            result = await client.connect(HOST, gw.port, 716, timeout=TIMEOUT, readonly=True)
            snap = await client.account_snapshot(TIMEOUT)
        finally:
            await client.disconnect()
    assert result.ok and result.server_version == 178 and result.accounts
    assert snap.positions_end and snap.account_values
    assert replayer.divergences == []


@pytest.mark.parametrize("name,options", [("raw", {"max_version": 178}), ("ib_async", {})])
async def test_a_scenario_against_a_replay_that_cannot_serve_names_the_replay_s_reason(
        name: str, options: dict[str, Any], recordings: dict[str, Path]) -> None:
    """What `pytest --gateway replay:FILE` shows: the replay's reason leads
    the cause and its hint replaces the 'client id in use' guess a bare close
    invites, at once: ib_async's connectAsync would wait out its timeout after the close,
    so its adapter ends the attempt on ib_async's own "Peer closed connection" event."""
    from harness.scenarios.handshake import run_handshake
    from harness.targets.base import Endpoint

    gw, _ = replay_gateway(load(recordings["226"]), speed=0)
    async with gw:
        endpoint = Endpoint("replay", HOST, gw.port, "replay:ibapi-226.jsonl")
        started = time.monotonic()
        evidence = await run_handshake(endpoint, make_client(name, **options), 717, timeout=TIMEOUT)
        elapsed = time.monotonic() - started
    assert evidence.outcome == "failed"
    assert elapsed < TIMEOUT / 2, f"the refusal took {elapsed:.1f} s of the {TIMEOUT:g} s timeout: {evidence.cause}"
    assert evidence.cause.startswith("replay cannot serve this connection: the recording holds no session at "
                                     "server version 178 for this client (recorded: 226"), evidence.cause
    assert "the client then reported: " in evidence.cause
    assert evidence.hint.startswith("record with this client (`ibgw record`)"), evidence.hint
    assert "client id in use" not in evidence.hint


async def test_raw_client_order_query_against_a_read_only_recording_is_refused_by_name(
        recordings: dict[str, Path]) -> None:
    """The raw client never sends an order; an order query it can send, and
    a read-only recording has no answer to it: refused by name and closed."""
    from harness.protocol import messages as m

    gw, replayer = replay_gateway(load(recordings["178"]), speed=0)
    async with gw:
        client = make_client("raw", **RAW_SINGLE_DOWNLOAD)
        try:
            result = await client.connect(HOST, gw.port, 718, timeout=TIMEOUT)
            client.send(m.req_completed_orders())
            await asyncio.wait_for(client.events.closed.wait(), TIMEOUT / 2)
        finally:
            await client.disconnect()
    refusals = [msg.message for msg in result.messages if msg.code == 321]
    assert refusals and refusals[0].startswith("replay cannot serve this connection: the recording was made "
                                               "read-only"), refusals
    assert "reqCompletedOrders" in refusals[0]
    assert [d.kind for d in replayer.divergences] == ["read-only"]


async def test_ib_async_order_against_a_read_only_recording_is_rejected_by_name(recordings: dict[str, Path]) -> None:
    """ib_async read-only connects, then places an order (a real IB.placeOrder,
    to the replay on loopback): error 201 names the read-only recording, and
    ib_async closes the Trade as it does for any rejected order."""
    from ib_async import LimitOrder, Stock

    gw, replayer = replay_gateway(load(recordings["178"]), speed=0)
    async with gw:
        client = make_client("ib_async")
        try:
            await client.connect(HOST, gw.port, 719, timeout=TIMEOUT, readonly=True)
            ib = client.ib  # the real IB instance the adapter runs
            assert ib is not None
            trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
            await poll_until(trade.isDone, timeout=TIMEOUT / 2, what="the rejected order's Trade to close")
        finally:
            await client.disconnect()
    said = " | ".join(entry.message for entry in trade.log)
    assert trade.orderStatus.status == "Cancelled", said
    assert "Error 201" in said and "replay cannot serve this order: the recording was made read-only" in said, said
    assert [d.kind for d in replayer.divergences] == ["read-only"]


async def test_a_recorded_read_only_api_gateway_is_replayed_as_it_refused_and_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A Gateway recorded with the Read-Only API setting: its refusals are
    the recording's answers (321 '...Read-Only mode.' to reqOpenOrders, no
    answer to reqCompletedOrders: bankroll-py/bankroll#65, erdewit/ib_insync#224),
    replayed as they were, and the silence is named in the replay's log."""
    from harness.protocol import messages as m

    path = tmp_path / "read-only-api.jsonl"
    async with MockGateway(HOST, 0, faults=["read-only-api"]) as upstream:
        async with FaultProxy((HOST, upstream.port)) as proxy:
            recorder = Recorder(gateway_build=upstream.profile.build).attach(proxy)
            client = make_client("raw", **RAW_SINGLE_DOWNLOAD)
            try:
                result = await client.connect(HOST, proxy.port, 720, timeout=TIMEOUT)
                client.send(m.req_open_orders())
                client.send(m.req_completed_orders())
                await poll_until(lambda: any(msg.code == 321 for msg in result.messages), timeout=TIMEOUT / 2,
                                 what="the recorded Gateway's read-only refusal")
            finally:
                await client.disconnect()
            await wait_closed(proxy)
    recorder.save(path)
    gw, replayer = replay_gateway(load(path), speed=0)
    assert not replayer.read_only and replayer.read_only_api
    assert "the recorded Gateway had the Read-Only API setting" in replayer.describe()
    async with gw:
        client = make_client("raw", **RAW_SINGLE_DOWNLOAD)
        try:
            replayed = await client.connect(HOST, gw.port, 721, timeout=TIMEOUT)
            client.send(m.req_open_orders())
            client.send(m.req_completed_orders())
            await poll_until(lambda: any(msg.code == 321 for msg in replayed.messages), timeout=TIMEOUT / 2,
                             what="the replayed read-only refusal")
            await poll_until(lambda: "reqCompletedOrders was never answered by the recorded Gateway" in caplog.text,
                             timeout=TIMEOUT / 2, what="the replay naming the unanswered request")
        finally:
            await client.disconnect()
    assert any("Read-Only mode" in msg.message for msg in replayed.messages if msg.code == 321)
    assert "(Read-Only API setting): the client waits for it as it did" in caplog.text
    assert replayer.divergences == []
