"""A read-only Gateway refuses more than orders (fault read-only-api, the
stand-in's READ_ONLY_API=yes default).

Public evidence: a read-only Gateway answers reqOpenOrders /
reqAllOpenOrders / reqAutoOpenOrders with 321 "...The API interface is
currently in Read-Only mode." at reqId -1 (bankroll-py/bankroll#65), and
reqCompletedOrders never answers (erdewit/ib_insync#224). ib_async's
``readonly=True`` skips exactly those requests. Both real clients,
unmodified, must see what they would see for real."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from ib_async import IB
from ibapi.client import EClient
from ibapi.wrapper import EWrapper

from harness.core.net import free_port
from harness.mock.gateway import MockGateway
from harness.mock.standin import StandIn

HOST = "127.0.0.1"
SYNC_TIMEOUT = 2.0  # ib_async's per-request start-up timeout; a refused request waits it out
READ_ONLY_TEXT = "The API interface is currently in Read-Only mode."


def _errors(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *rest: seen.append((req_id, code, text))
    return seen


async def test_ib_async_read_write_sees_the_refusals_and_the_timeouts(caplog: pytest.LogCaptureFixture) -> None:
    async with MockGateway(HOST, 0, faults=["read-only-api"]) as gw:
        ib = IB()
        errors = _errors(ib)
        with caplog.at_level(logging.ERROR, logger="ib_async"):
            await ib.connectAsync(HOST, gw.port, clientId=21, timeout=SYNC_TIMEOUT, readonly=False)
        try:
            assert ib.isConnected()  # the connection stays up
        finally:
            ib.disconnect()
    refusals = [e for e in errors if e[1] == 321]
    assert refusals and all(req_id == -1 and READ_ONLY_TEXT in text for req_id, _, text in refusals), errors
    assert "open orders request timed out" in caplog.text
    assert "completed orders request timed out" in caplog.text


async def test_ib_async_readonly_connects_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    async with MockGateway(HOST, 0, faults=["read-only-api"]) as gw:
        ib = IB()
        errors = _errors(ib)
        with caplog.at_level(logging.ERROR, logger="ib_async"):
            await ib.connectAsync(HOST, gw.port, clientId=22, timeout=SYNC_TIMEOUT * 5, readonly=True)
        try:
            assert ib.isConnected()
        finally:
            ib.disconnect()
    assert not [e for e in errors if e[1] == 321], errors
    assert "timed out" not in caplog.text


class _App(EWrapper, EClient):
    """The official client as an application writes it: callbacks on ibapi's threads."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.completed_end = threading.Event()
        self.open_end = threading.Event()
        self.errors: list[tuple[int, int, str]] = []
        self.refusals = threading.Semaphore(0)

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def error(self, reqId: int, *args: Any) -> None:  # every ibapi generation's signature
        code, text = (args[0], args[1]) if len(args) >= 2 and isinstance(args[1], str) else (args[1], args[2])
        self.errors.append((int(reqId), int(code), str(text)))
        if int(code) == 321:
            self.refusals.release()

    def openOrderEnd(self) -> None:
        self.open_end.set()

    def completedOrdersEnd(self) -> None:
        self.completed_end.set()


async def test_ibapi_sees_the_refusals_and_no_completed_orders() -> None:
    async with MockGateway(HOST, 0, faults=["read-only-api"]) as gw:
        app = _App()
        await asyncio.to_thread(app.connect, HOST, gw.port, 0)  # client id 0: reqAutoOpenOrders is its request
        runner = threading.Thread(target=app.run, name="ibapi-run", daemon=True)
        runner.start()
        try:
            assert await asyncio.to_thread(app.ready.wait, 10)
            for request in (app.reqOpenOrders, app.reqAllOpenOrders, lambda: app.reqAutoOpenOrders(True)):
                await asyncio.to_thread(request)
                assert await asyncio.to_thread(app.refusals.acquire, True, 10), app.errors
            await asyncio.to_thread(app.reqCompletedOrders, False)
            assert not await asyncio.to_thread(app.completed_end.wait, SYNC_TIMEOUT)  # never answered
            assert not app.open_end.is_set()
        finally:
            await asyncio.to_thread(app.disconnect)
            await asyncio.to_thread(runner.join, 10)
    refusals = [e for e in app.errors if e[1] == 321]
    assert len(refusals) == 3 and all(r[0] == -1 and READ_ONLY_TEXT in r[2] for r in refusals), app.errors


async def test_the_stand_in_defaults_to_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gnzsnz-shaped stand-in defaults READ_ONLY_API=yes, as gnzsnz's compose does: its Gateway
    refuses a read-write client's order requests as a real read-only one does."""
    api_port = free_port(HOST)
    for name, value in {"TWS_USERID": "standin", "TWS_PASSWORD": "standin", "IBGW_LOGIN_DELAY": "0",
                        "IBGW_STANDIN_API_PORT": str(api_port)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("READ_ONLY_API", raising=False)
    standin = StandIn()
    await standin.login()
    assert standin.gateway is not None
    try:
        assert "read-only-api" in standin.gateway.faults
        ib = IB()
        errors = _errors(ib)
        await ib.connectAsync(HOST, api_port, clientId=23, timeout=SYNC_TIMEOUT, readonly=False)
        ib.disconnect()
        assert any(code == 321 and req_id == -1 for req_id, code, _ in errors), errors
    finally:
        await standin.gateway.stop()
