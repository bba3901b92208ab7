"""The real client libraries, unmodified, against the mock Gateway.

Why these tests exist: the mock is only worth something if the clients
people actually use (ib_async and IBKR's official ibapi) complete their
real start-up against it, and the adapters are only worth something if
the failures they report (refused port, silent Gateway, client id in use)
name the right phase and leave nothing behind: no thread, no socket.

Every wait here is on an event, a future or a socket state with a bound;
nothing sleeps to give data time to arrive.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import psutil
import pytest

from harness.clients.base import (
    PHASE_API_READY,
    PHASE_FIRST_ACCOUNT_VALUE,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    PHASE_SERVER_VERSION,
    PHASE_TCP,
    PHASES,
    ClientAdapter,
    HandshakeError,
)
from harness.clients.ib_async_client import IbAsyncClient
from harness.clients.ibapi_client import IbapiClient
from harness.mock import PROFILES, MockGateway

HOST = "127.0.0.1"
ADAPTERS: dict[str, type[IbAsyncClient] | type[IbapiClient]] = {
    "ib_async": IbAsyncClient,
    "ibapi": IbapiClient,
}
# The library loggers whose level the adapters lower while connecting.
LIBRARY_LOGGER = {"ib_async": "ib_async.client", "ibapi": "ibapi.client"}
# ibapi notices a closed socket only when its 1 s recv timeout expires.
IBAPI_RECV_TIMEOUT = 1.0


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def mock_gw() -> AsyncIterator[MockGateway]:
    async with MockGateway(host=HOST, port=0) as gw:
        yield gw


@pytest.fixture(params=sorted(ADAPTERS))
def lib(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def adapter(lib: str) -> AsyncIterator[ClientAdapter]:
    adapter = ADAPTERS[lib]()
    try:
        yield adapter
    finally:
        await adapter.disconnect()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connects are refused (RST), and no
    other process can take the port while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


class SilentServer:
    """Accepts TCP and never answers, like a Gateway that is not logged in.

    It keeps what each client sent and signals when the client's socket
    reached EOF, which is how a test proves the client closed its socket.
    """

    def __init__(self) -> None:
        self.received = b""
        self.accepted = asyncio.Event()
        self.client_closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.accepted.set()
        try:
            while chunk := await reader.read(4096):
                self.received += chunk
        except ConnectionError:
            pass
        self.client_closed.set()
        writer.close()

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    async with SilentServer() as server:
        yield server


def client_sockets_to(port: int) -> list[object]:
    """This process's TCP sockets whose peer is `port` (client side only)."""
    return [c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port]


# ---------------------------------------------------------------- healthy start-up


async def test_connect_reports_every_phase(mock_gw: MockGateway, adapter: ClientAdapter) -> None:
    first_order_id = mock_gw.model.next_order_id
    result = await adapter.connect(HOST, mock_gw.port, 11, timeout=5.0)

    assert result.ok and result.failed_phase is None and result.error is None
    assert result.server_version == min(mock_gw.profile.max_server_version, adapter.info.max_version)
    assert result.connection_time
    assert result.accounts == mock_gw.model.account_ids
    assert result.next_valid_id == first_order_id
    assert list(result.phases) == list(PHASES), result.phases
    p = result.phases
    assert 0 <= p[PHASE_TCP] <= p[PHASE_SERVER_VERSION]
    assert p[PHASE_SERVER_VERSION] <= min(p[PHASE_NEXT_VALID_ID], p[PHASE_MANAGED_ACCOUNTS])
    assert p[PHASE_API_READY] >= max(p[PHASE_NEXT_VALID_ID], p[PHASE_MANAGED_ACCOUNTS])
    assert p[PHASE_FIRST_ACCOUNT_VALUE] >= p[PHASE_SERVER_VERSION]
    farm_codes = {code for code, _ in mock_gw.profile.farm_notices}
    assert farm_codes <= {m.code for m in result.messages}
    assert all(m.req_id == -1 for m in result.messages)


async def test_ping_is_a_current_time_round_trip(mock_gw: MockGateway, adapter: ClientAdapter) -> None:
    await adapter.connect(HOST, mock_gw.port, 12, timeout=5.0)
    rtts = [await adapter.ping(timeout=5.0) for _ in range(3)]
    assert all(0 < rtt < 5.0 for rtt in rtts)
    # Each ping was a real reqCurrentTime (49) answered by currentTime (49).
    record = mock_gw.record_for_client(12)
    assert record is not None
    asked = [e for e in record.entries if e.direction == "recv" and e.fields[:1] == ["49"]]
    answered = [e for e in record.entries if e.direction == "send" and e.fields[:1] == ["49"]]
    assert len(asked) == len(answered) == 3, record.to_text()


async def test_account_snapshot_matches_the_model(mock_gw: MockGateway, adapter: ClientAdapter) -> None:
    await adapter.connect(HOST, mock_gw.port, 13, timeout=5.0)
    snap = await adapter.account_snapshot(timeout=5.0)
    account = mock_gw.model.accounts[0]

    assert snap.accounts == mock_gw.model.account_ids
    assert snap.positions_end is True
    assert snap.account_download_end == mock_gw.model.account_ids
    assert snap.executions_end is True
    got_positions = {(p.account, p.con_id): (p.symbol, p.position, p.avg_cost) for p in snap.positions}
    want_positions = {
        (account.account_id, h.contract.con_id): (h.contract.symbol, h.quantity, h.avg_cost)
        for h in account.holdings
    }
    assert got_positions == want_positions
    got_values = {(v.key, v.value, v.currency) for v in snap.account_values if v.account == account.account_id}
    assert got_values == set(account.account_values())
    assert snap.portfolio_items == len(account.holdings)


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_every_mock_profile_serves_the_real_client(
    profile: str, adapter: ClientAdapter, lib: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each Gateway profile (server version 157 to 200, either startup order)
    must be accepted by the real client without a single library warning:
    a decoder that drops a frame only says so in its log."""
    async with MockGateway(host=HOST, port=0, profile=profile) as gw:
        result = await adapter.connect(HOST, gw.port, 14, timeout=5.0)
        snap = await adapter.account_snapshot(timeout=5.0)
        rtt = await adapter.ping(timeout=5.0)
        await adapter.disconnect()
    assert result.server_version == min(gw.profile.max_server_version, adapter.info.max_version)
    assert list(result.phases) == list(PHASES)
    assert snap.positions_end and snap.executions_end
    assert snap.account_download_end == gw.model.account_ids
    assert len(snap.positions) == sum(len(a.holdings) for a in gw.model.accounts)
    assert rtt > 0
    complaints = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.split(".")[0] == lib and r.levelno >= logging.WARNING
    ]
    assert complaints == []


# ---------------------------------------------------------------- failures


async def test_closed_port_fails_fast_in_tcp_phase(adapter: ClientAdapter, closed_port: int) -> None:
    threads_before = threading.active_count()
    start = time.monotonic()
    with pytest.raises(HandshakeError) as caught:
        await adapter.connect(HOST, closed_port, 21, timeout=5.0)
    elapsed = time.monotonic() - start

    assert caught.value.phase == PHASE_TCP
    assert caught.value.hint  # the on-call meaning is attached
    result = caught.value.result
    assert result is not None and not result.ok and result.failed_phase == PHASE_TCP
    assert PHASE_TCP not in result.phases
    assert elapsed < 5.0 / 2  # refused at once: the 5 s connect timeout was not waited out
    assert threading.active_count() == threads_before
    assert client_sockets_to(closed_port) == []
    await adapter.disconnect()  # after a failed connect: must not raise


async def test_silent_gateway_fails_in_server_version_phase(
    adapter: ClientAdapter, lib: str, silent_server: SilentServer
) -> None:
    threads_before = threading.active_count()
    timeout = 1.0
    start = time.monotonic()
    with pytest.raises(HandshakeError) as caught:
        await adapter.connect(HOST, silent_server.port, 22, timeout=timeout)
    elapsed = time.monotonic() - start

    assert caught.value.phase == PHASE_SERVER_VERSION
    result = caught.value.result
    assert result is not None and result.failed_phase == PHASE_SERVER_VERSION
    assert PHASE_TCP in result.phases and PHASE_SERVER_VERSION not in result.phases
    # The client really sent its hello: the stall is the Gateway's silence.
    assert silent_server.received.startswith(b"API\0")
    assert f"v{adapter.info.min_version}..{adapter.info.max_version}".encode() in silent_server.received
    # Bounded: ib_async by its own timeout; ibapi (which would wait forever)
    # by the adapter's deadline plus its 1 s recv timeout to notice the close.
    # The slack is generous (a loaded machine): what it rules out is waiting forever, not milliseconds.
    slack = 2.0 + (IBAPI_RECV_TIMEOUT if lib == "ibapi" else 0.0)
    assert timeout - 0.05 <= elapsed < timeout + slack
    # Nothing leaks: the peer saw EOF, no socket of ours points at it any
    # more, and ibapi's connect / reader threads are gone.
    await asyncio.wait_for(silent_server.client_closed.wait(), 2.0)
    assert client_sockets_to(silent_server.port) == []
    assert threading.active_count() == threads_before


async def test_cancelled_connect_leaves_nothing_behind(
    adapter: ClientAdapter, silent_server: SilentServer
) -> None:
    """A caller's own deadline (task cancellation) must clean up as well as
    the adapter's timeout does; for ibapi that means breaking a connect()
    that would otherwise block forever."""
    threads_before = threading.active_count()
    task = asyncio.create_task(adapter.connect(HOST, silent_server.port, 23, timeout=60.0))
    await asyncio.wait_for(silent_server.accepted.wait(), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(silent_server.client_closed.wait(), 2.0)
    assert client_sockets_to(silent_server.port) == []
    assert threading.active_count() == threads_before


async def test_client_id_in_use_fails_in_next_valid_id_phase(
    mock_gw: MockGateway, adapter: ClientAdapter
) -> None:
    holder = IbAsyncClient()
    await holder.connect(HOST, mock_gw.port, 31, timeout=5.0)
    try:
        with pytest.raises(HandshakeError) as caught:
            await adapter.connect(HOST, mock_gw.port, 31, timeout=1.0)
    finally:
        await holder.disconnect()
    assert caught.value.phase == PHASE_NEXT_VALID_ID
    assert "326" in caught.value.cause
    result = caught.value.result
    assert result is not None
    assert 326 in {m.code for m in result.messages}
    assert PHASE_SERVER_VERSION in result.phases and PHASE_NEXT_VALID_ID not in result.phases


# ---------------------------------------------------------------- hygiene


async def test_ibapi_threads_do_not_accumulate(mock_gw: MockGateway, silent_server: SilentServer) -> None:
    baseline = threading.active_count()
    adapter = IbapiClient()
    for round_no in range(3):
        result = await adapter.connect(HOST, mock_gw.port, 41, timeout=5.0)
        assert result.ok
        assert threading.active_count() == baseline + 3  # call thread, EClient.run, EReader
        await adapter.disconnect()
        assert adapter.lingering_threads == []
        assert threading.active_count() == baseline, (round_no, threading.enumerate())
    for _ in range(2):
        with pytest.raises(HandshakeError):
            await adapter.connect(HOST, silent_server.port, 42, timeout=0.3)
        assert adapter.lingering_threads == []
        assert threading.active_count() == baseline, threading.enumerate()
    assert client_sockets_to(mock_gw.port) == []
    assert client_sockets_to(silent_server.port) == []


async def test_disconnect_and_requests_when_never_connected(adapter: ClientAdapter) -> None:
    await adapter.disconnect()
    await adapter.disconnect()
    with pytest.raises(ConnectionError):
        await adapter.ping(timeout=0.5)
    with pytest.raises(ConnectionError):
        await adapter.account_snapshot(timeout=0.5)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_log_configuration_is_left_as_found(
    mock_gw: MockGateway, adapter: ClientAdapter, lib: str
) -> None:
    """The adapters lower the library logger to DEBUG while connecting (to
    see frame / connState records); nobody else may notice."""
    logger = logging.getLogger(LIBRARY_LOGGER[lib])
    original_level = logger.level
    logger.setLevel(logging.INFO)  # what an application typically configures
    filters_before = list(logger.filters)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        result = await adapter.connect(HOST, mock_gw.port, 51, timeout=5.0)
        level_after, filters_after = logger.level, list(logger.filters)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(original_level)
    # The DEBUG-only records were still seen by the adapter: ib_async's
    # nextValidId value exists only in its "<<< 9,1,N" frame record, and
    # ibapi's TCP time comes from its "connState" record (the fallback,
    # connectAck, would make it equal to the server_version time).
    assert result.ok
    if lib == "ib_async":
        assert result.next_valid_id == mock_gw.model.next_order_id
    else:
        assert result.phases[PHASE_TCP] < result.phases[PHASE_SERVER_VERSION]
    assert level_after == logging.INFO and filters_after == filters_before
    assert collect.records, "the library logged nothing at all"
    assert [r.getMessage() for r in collect.records if r.levelno < logging.INFO] == []


async def test_a_silenced_ib_async_does_not_blind_the_adapter(mock_gw: MockGateway) -> None:
    """`ibgw soak` sets the ``ib_async`` logger to CRITICAL (its refused
    reconnects are ERRORs it records elsewhere). The adapter must still see
    ib_async's start-up "... request timed out" (an ERROR on ib_async.ib),
    the application must still see none of it, and the levels must come
    back as they were: a CLI run in-process once left later runs blind."""
    parent = logging.getLogger("ib_async")
    saved = parent.level
    parent.setLevel(logging.CRITICAL)
    collect = _Collect()
    parent.addHandler(collect)
    mock_gw.set_fault("missing-end=positions")
    client = IbAsyncClient()
    try:
        result = await client.connect(HOST, mock_gw.port, 52, timeout=1.0)
        levels_after = {name: logging.getLogger(name).level for name in ("ib_async.client", "ib_async.ib")}
    finally:
        await client.disconnect()
        parent.removeHandler(collect)
        parent.setLevel(saved)
    assert result.ok, result.error
    assert "positions request timed out" in client.sync_timeouts
    assert levels_after == {"ib_async.client": logging.NOTSET, "ib_async.ib": logging.NOTSET}
    assert [r.getMessage() for r in collect.records if r.levelno < logging.CRITICAL] == []
