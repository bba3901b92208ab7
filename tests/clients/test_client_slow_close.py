"""ibapi's own slow close: the official client closes its socket while its
reader thread sits in recv() with a 1 s timeout (ibapi connection.py
settimeout(1)), so the FIN leaves up to 1 s after EClient.disconnect()
returns; a same-id reconnect inside that second gets 326 from a real
Gateway too. The zombie scenario names this as the client's behaviour,
with the linger it measured, and not as a stuck id on the Gateway."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from harness.clients.ibapi_client import IbapiClient
from harness.clients.raw import RawClient
from harness.mock.gateway import MockGateway
from harness.scenarios.zombie import CAUSE_CLIENT_SLOW_CLOSE, CAUSE_STUCK_ID, run_zombie
from harness.targets.base import Endpoint

HOST = "127.0.0.1"
BACKGROUND: list[asyncio.Task[None]] = []
HELD: list[socket.socket] = []  # the previous connection, kept open until the next connect was answered


class ReturnsAtOnceIbapi(IbapiClient):
    """The official client as an application uses it: EClient.disconnect() and go on, without waiting for
    ibapi's reader thread (the harness's own adapter waits; a team's code usually does not). The
    threads are still drained, in the background, so the test leaks nothing."""

    async def disconnect(self) -> None:
        app = self._app
        if app is None:  # not connected (connect() starts by clearing old state)
            await super().disconnect()
            return
        await asyncio.to_thread(app.disconnect)  # what the application calls; the FIN leaves later
        BACKGROUND.append(asyncio.create_task(super().disconnect()))


class SlowClosingIbapi(ReturnsAtOnceIbapi):
    """ReturnsAtOnceIbapi whose linger is forced to cover the next connect. ibapi's own linger is up to
    1 s (its reader thread's recv timeout) and a loaded machine can take longer than that to start the
    next connect, which then finds the id free: the condition this test needs would depend on timing.
    So the FIN is held by event order instead: a duplicate of the socket's descriptor keeps the
    connection open after ibapi closes its own, until the next instance's connect has been answered
    (326 or not). What the scenario sees is the same: the previous connection still ESTABLISHED at
    the Gateway after disconnect() returned, and a same-id reconnect inside that window."""

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().connect(*args, **kwargs)
        finally:
            _release_held()

    async def disconnect(self) -> None:
        app = self._app
        if app is not None and app.conn is not None and app.conn.socket is not None:
            HELD.append(app.conn.socket.dup())  # the FIN waits for this descriptor too
        await super().disconnect()


def _release_held() -> None:
    while HELD:
        HELD.pop().close()


@pytest.mark.timeout(120)
async def test_a_same_id_reconnect_inside_the_linger_is_named_as_the_clients_behaviour() -> None:
    try:
        async with MockGateway(HOST, 0) as gw:
            endpoint = Endpoint("mock", HOST, gw.port, "mock:test")
            evidence = await run_zombie(endpoint, "ibapi", SlowClosingIbapi, runs=4, client_id=44, timeout=5.0,
                                        settle_timeout=0.5, stop_at_first_failure=True)
            await asyncio.gather(*BACKGROUND)
    finally:
        _release_held()
        BACKGROUND.clear()
    assert not evidence.ok
    assert evidence.cause.startswith(CAUSE_CLIENT_SLOW_CLOSE), evidence.cause
    assert "326" in evidence.cause and "the client's behaviour" in evidence.hint
    runs = evidence.details["runs"]
    assert [r["ok"] for r in runs] == [True, False], runs  # the first same-id reconnect is the one refused
    linger = evidence.details["close_linger_ms"]
    # The measured linger is the first run's, and it covered the second run's start (an event order,
    # not a duration: the FIN was held until that connect had its answer).
    assert linger == runs[0]["close_linger_ms"] and linger > 0, runs
    assert runs[1]["prev_open_at_start"] is True, runs
    assert f"{linger:g} ms" in evidence.cause


async def test_a_prompt_close_with_a_stuck_id_is_still_the_gateway() -> None:
    """The control: the raw client's FIN leaves at once; the 326 comes from the Gateway keeping the id."""
    async with MockGateway(HOST, 0, faults=["client-id-stuck=30"]) as gw:
        evidence = await run_zombie(Endpoint("mock", HOST, gw.port, "mock:test"), "raw",
                                    lambda: RawClient(await_account_value=False), runs=2, client_id=45,
                                    timeout=2.0, settle_timeout=0.5, stop_at_first_failure=True)
    assert not evidence.ok
    assert evidence.cause.startswith(CAUSE_STUCK_ID), evidence.cause
    assert evidence.details["runs"][1].get("prev_open_at_start") is False


async def test_doctor_client_names_the_linger_as_the_clients_behaviour() -> None:
    """`ibgw doctor --client` (run_gateway_or_code): the Gateway side's close time against the moment the
    user's disconnect() returned gives the linger; it is reported as the client's own behaviour."""
    from harness.clients import make_client
    from harness.scenarios.gateway_or_code import run_gateway_or_code, wire_from_mock

    try:
        async with MockGateway(HOST, 0) as gw:
            evidence = await run_gateway_or_code(Endpoint("mock", HOST, gw.port, "mock:test"), ReturnsAtOnceIbapi,
                                                 lambda: make_client("raw"), client_id=46, timeout=5.0,
                                                 wire=wire_from_mock(gw))
            await asyncio.gather(*BACKGROUND)
    finally:
        BACKGROUND.clear()
    linger = evidence.measurements["user_close_linger_ms"]
    assert 50 < linger <= 1500, linger
    note = evidence.details["client_close"]
    assert "the client's own slow close" in note and "326" in note and f"{linger:g} ms" in note
    assert note in evidence.details["explanation"]


async def test_doctor_client_says_nothing_about_a_prompt_close() -> None:
    from harness.clients import make_client
    from harness.scenarios.gateway_or_code import run_gateway_or_code, wire_from_mock

    async with MockGateway(HOST, 0) as gw:
        evidence = await run_gateway_or_code(Endpoint("mock", HOST, gw.port, "mock:test"),
                                             lambda: make_client("raw"), lambda: make_client("raw"), client_id=47,
                                             timeout=5.0, wire=wire_from_mock(gw))
    assert evidence.ok and "client_close" not in evidence.details
    assert evidence.measurements["user_close_linger_ms"] <= 50
