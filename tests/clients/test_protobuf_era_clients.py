"""Every Gateway version profile, 10.19 to 10.50, through the real clients, unmodified.

Why: the builds users run today negotiate past 200 with the modern
official client (binary message ids, protobuf families switching at their
own versions) and 178 with ib_async. For each profile x client this proves
the client completes the handshake, the account sync (positions, account
values, portfolio, executions), current time and the account summary, at
the version a real Gateway of that build would give it, and that the mock
spoke the form the profile's reply model says (protocol/era.py).

Every wait is an event, future or bounded thread join; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness.clients import make_client
from harness.mock import MockGateway
from harness.mock.profiles import PROFILES
from harness.protocol.era import Form
from harness.scenarios import run_account_sync, run_handshake
from harness.targets.base import Endpoint

HOST = "127.0.0.1"
TIMEOUT = 8.0
ERA_PROFILES = ["10.19", "10.30", "10.37", "10.40", "10.41", "10.45", "10.50"]
IB_ASYNC_MAX = 178  # ib_async 2.1.0 offers v157..178
IBAPI_MAX = 226  # ibapi-stable 10.50 offers v100..226


def expected_version(profile: str, lib: str) -> int:
    return min(PROFILES[profile].max_server_version, IB_ASYNC_MAX if lib == "ib_async" else IBAPI_MAX)


@pytest.fixture(params=ERA_PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["ibapi", "ib_async"])
def lib(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def gw(profile: str) -> AsyncIterator[MockGateway]:
    async with MockGateway(host=HOST, port=0, profile=profile) as gateway:
        # The profile's wire facts, not its regression fixture (the version matrix catches that): 10.30's
        # bare close after startApi (ib-api-reloaded/ib_async#143) would end the second scenario here.
        gateway.clear_fault()
        yield gateway


def endpoint(gw: MockGateway, profile: str) -> Endpoint:
    return Endpoint("mock", HOST, gw.port, f"mock:{profile}", build=PROFILES[profile].build, profile=profile)


def _transcript(gw: MockGateway):  # noqa: ANN202 - scenarios.common.TranscriptSource
    def source(client_id: int) -> str | None:
        record = gw.record_for_client(client_id)
        return record.to_text() if record else None

    return source


async def test_handshake_and_account_sync(gw: MockGateway, profile: str, lib: str) -> None:
    ep = endpoint(gw, profile)
    handshake = await run_handshake(ep, make_client(lib), 101, timeout=TIMEOUT, transcript=_transcript(gw))
    assert handshake.ok, handshake.cause
    assert handshake.connect["server_version"] == expected_version(profile, lib)
    assert handshake.measurements["ping_ms"] >= 0  # currentTime answered

    sync = await run_account_sync(ep, make_client(lib), 102, timeout=TIMEOUT, expect_positions=True)
    assert sync.ok, (sync.cause, sync.checks)
    assert all(sync.checks.values()) and sync.measurements["positions_count"] == 3
    assert sync.measurements["portfolio_items_count"] >= 3

    record = gw.record_for_client(102)
    assert record is not None and record.server_version == expected_version(profile, lib)
    _assert_forms(record, record.server_version)


def _assert_forms(record: Any, version: int) -> None:
    """The frames took the form the default reply model and the official
    client's gates give at this version (protocol/era.py)."""
    forms: dict[tuple[str, str], set[str]] = {}
    for entry in record.entries:
        forms.setdefault((entry.direction, entry.name), set()).add(entry.form)

    def form(direction: str, name: str) -> str:
        got = forms.get((direction, name), set())
        assert len(got) == 1, f"{direction} {name}: {got}"
        return next(iter(got))

    text_or_bin = Form.TEXT.value if version < 201 else Form.TEXT_BINARY_ID.value
    pb_from = lambda gate: Form.PROTOBUF.value if version >= gate else text_or_bin  # noqa: E731
    assert form("recv", "startApi") == pb_from(213)
    assert form("send", "nextValidId") == pb_from(213)
    assert form("send", "managedAccounts") == pb_from(213)
    assert form("send", "error") == pb_from(201)
    assert form("recv", "reqPositions") == pb_from(207)
    assert form("send", "position") == pb_from(207)
    assert form("send", "updateAccountValue") == pb_from(207)
    assert form("send", "accountDownloadEnd") == pb_from(207)
    assert form("send", "execDetailsEnd") == pb_from(201)


# ---------------------------------------------------------------- current time, account summary, executions


async def test_current_time_account_summary_and_executions(gw: MockGateway, profile: str, lib: str) -> None:
    expected_execs = sum(len(a.executions) for a in gw.model.accounts)
    expected_rows = sum(len(a.summary(["NetLiquidation", "TotalCashValue"])) for a in gw.model.accounts)
    if lib == "ib_async":
        got = await _ib_async_extras(gw.port)
    else:
        got = await asyncio.to_thread(_ibapi_extras, gw.port)
    assert got["server_version"] == expected_version(profile, lib)
    assert got["current_time"] > 1_600_000_000
    assert got["summary_rows"] == expected_rows and got["summary_end"]
    assert got["executions"] == expected_execs and got["executions_end"]


async def _ib_async_extras(port: int) -> dict[str, Any]:
    adapter = make_client("ib_async")
    try:
        result = await adapter.connect(HOST, port, 103, timeout=TIMEOUT)
        ib = adapter.ib  # type: ignore[attr-defined]
        now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), TIMEOUT)
        summary = await asyncio.wait_for(ib.accountSummaryAsync(), TIMEOUT)
        fills = await asyncio.wait_for(ib.reqExecutionsAsync(), TIMEOUT)
        wanted = {"NetLiquidation", "TotalCashValue"}
        return {"server_version": result.server_version, "current_time": int(now.timestamp()),
                "summary_rows": sum(1 for v in summary if v.tag in wanted), "summary_end": True,
                "executions": len(fills), "executions_end": True}
    finally:
        await adapter.disconnect()


def _ibapi_extras(port: int) -> dict[str, Any]:
    """A minimal program on the official client, written as its users write
    one (an EWrapper subclass): what the adapter does not cover."""
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    class App(EWrapper, EClient):
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.ready, self.time_event, self.summary_done, self.execs_done = (threading.Event() for _ in range(4))
            self.now = 0
            self.rows = 0
            self.execs = 0

        def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803 - ibapi's names
            self.ready.set()

        def currentTime(self, time: int) -> None:  # noqa: N802, A002
            self.now = time
            self.time_event.set()

        def accountSummary(self, reqId: int, account: str, tag: str, value: str, currency: str) -> None:  # noqa: N802, N803
            self.rows += 1

        def accountSummaryEnd(self, reqId: int) -> None:  # noqa: N802, N803
            self.summary_done.set()

        def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:  # noqa: N802, N803
            assert execution.execId and contract.symbol
            self.execs += 1

        def execDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803
            self.execs_done.set()

        def error(self, *args: Any) -> None:  # farm notices; failures show as missing events
            pass

    from ibapi.execution import ExecutionFilter

    app = App()
    app.connect(HOST, port, 104)
    runner = threading.Thread(target=app.run, name="ibapi-era-test", daemon=True)
    runner.start()
    try:
        assert app.ready.wait(TIMEOUT), "nextValidId never arrived"
        app.reqCurrentTime()
        assert app.time_event.wait(TIMEOUT), "currentTime never arrived"
        app.reqAccountSummary(9001, "All", "NetLiquidation,TotalCashValue")
        app.reqExecutions(9002, ExecutionFilter())
        summary_end = app.summary_done.wait(TIMEOUT)
        executions_end = app.execs_done.wait(TIMEOUT)
        return {"server_version": app.serverVersion(), "current_time": app.now, "summary_rows": app.rows,
                "summary_end": summary_end, "executions": app.execs, "executions_end": executions_end}
    finally:
        app.disconnect()
        runner.join(5.0)  # run() returns within its 0.2 s queue timeout once disconnected
        assert not runner.is_alive(), "ibapi's run thread did not end"
