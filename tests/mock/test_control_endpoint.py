"""The mock's HTTP control endpoint, driven as an outside script would drive
it: plain urllib (in a worker thread, so the in-process mock keeps running
on the event loop), JSON in and out, and the effect checked with a real
connection through the raw client."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.clients.base import PHASE_SERVER_VERSION, PHASE_TCP, HandshakeError
from harness.clients.raw import RawClient
from harness.mock import ControlServer, MockGateway
from harness.mock.faults import SPECS

HOST = "127.0.0.1"
FAIL_TIMEOUT = 1.0  # connect timeout where the fault must make it fail
OK_TIMEOUT = 5.0
# Loopback only and never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Control:
    gw: MockGateway
    server: ControlServer

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.server.port}"

    async def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
                   ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})

        def send() -> tuple[int, dict[str, Any]]:
            try:
                with _OPENER.open(request, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                with exc:
                    return exc.code, json.loads(exc.read())

        return await asyncio.to_thread(send)


@pytest.fixture
async def control() -> AsyncIterator[Control]:
    async with MockGateway(HOST, 0) as gw:
        server = await ControlServer(gw, HOST, 0).start()
        try:
            yield Control(gw, server)
        finally:
            await server.stop()


async def _connect(port: int, client_id: int, timeout: float) -> RawClient:
    client = RawClient()
    await client.connect(HOST, port, client_id, timeout=timeout)
    return client


async def _port_state(port: int, *, accepting: bool, within: float) -> float:
    """Bounded poll of port availability (kernel state, no event to await):
    a TCP connect every 20 ms until the port accepts (or refuses); returns the wait."""
    t0 = time.monotonic()
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
        except ConnectionRefusedError:
            if not accepting:
                return time.monotonic() - t0
        except ConnectionResetError:
            pass  # the listener closed while this connect was in its queue: going down, not yet refusing
        else:
            writer.close()
            if accepting:
                return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError(f"port {port} did not {'accept' if accepting else 'refuse'} within {within:g}s")
        await asyncio.sleep(0.02)  # kernel state: nothing to await


async def test_get_state(control: Control) -> None:
    status, state = await control.call("GET", "/state")
    assert status == 200
    assert state["port"] == control.gw.port and state["listening"] is True
    assert state["faults"] == [] and state["active_connections"] == 0 and state["red"] is False
    assert state["max_server_version"] == control.gw.profile.max_server_version
    assert (await control.call("GET", "/state/"))[0] == 200  # a trailing slash is the same endpoint
    assert (await control.call("GET", "/state?verbose=1"))[0] == 200  # and a query string is ignored


async def test_get_faults_lists_every_valid_fault(control: Control) -> None:
    status, body = await control.call("GET", "/faults")
    assert status == 200 and body["active"] == []
    assert set(body["valid"]) == set(SPECS)
    for name, spec in SPECS.items():
        assert body["valid"][name] == {"usage": spec.usage, "description": spec.description, "source": spec.source}


async def test_post_and_delete_a_fault_changes_the_handshake(control: Control) -> None:
    port = control.gw.port
    status, body = await control.call("POST", "/faults", {"fault": "silent-handshake"})
    assert status == 200 and body["active"] == ["silent-handshake"]
    assert (await control.call("GET", "/state"))[1]["faults"] == ["silent-handshake"]
    with pytest.raises(HandshakeError) as info:
        await _connect(port, 1, FAIL_TIMEOUT)
    assert info.value.phase == PHASE_SERVER_VERSION

    status, body = await control.call("DELETE", "/faults/silent-handshake")
    assert status == 200 and body["active"] == []
    client = await _connect(port, 2, OK_TIMEOUT)
    assert client.accounts
    await client.disconnect()


async def test_post_replaces_and_delete_all_clears(control: Control) -> None:
    for text in ("latency=5", "latency=10,2", "max-clients=7"):
        assert (await control.call("POST", "/faults", {"fault": text}))[0] == 200
    status, body = await control.call("GET", "/faults")
    assert body["active"] == ["latency=10,2", "max-clients=7"]
    assert control.gw.effective_max_clients == 7
    status, body = await control.call("DELETE", "/faults")
    assert status == 200 and body["active"] == [] and control.gw.faults.describe() == []


@pytest.mark.parametrize("body, message", [
    ({"fault": "nope"}, "unknown fault 'nope'; valid: "),
    ({"fault": "latency=soon"}, "is not a number"),
    ({"fault": 5}, 'body must be {"fault": "NAME[=VALUE]"}'),
    ({}, 'body must be {"fault": "NAME[=VALUE]"}'),
], ids=["unknown-name", "bad-value", "not-a-string", "no-fault"])
async def test_bad_fault_is_400_with_a_reason(control: Control, body: dict[str, Any], message: str) -> None:
    status, reply = await control.call("POST", "/faults", body)
    assert status == 400 and message in reply["error"]
    if body.get("fault") == "nope":
        for spec in SPECS.values():
            assert spec.usage in reply["error"]
    assert control.gw.faults.describe() == []  # nothing was set


async def test_delete_unknown_fault_is_400_with_the_valid_list(control: Control) -> None:
    status, reply = await control.call("DELETE", "/faults/nope")
    assert status == 400 and "unknown fault 'nope'; valid: " in reply["error"]
    assert "silent-handshake" in reply["error"]


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("POST", "/"), ("GET", "/faultsx")])
async def test_unknown_path_is_404(control: Control, method: str, path: str) -> None:
    status, reply = await control.call(method, path, {} if method == "POST" else None)
    assert status == 404 and "no such endpoint" in reply["error"]


@pytest.mark.parametrize("method, path", [("POST", "/state"), ("GET", "/restart"), ("PUT", "/faults"),
                                          ("GET", "/drop")])
async def test_wrong_method_is_405(control: Control, method: str, path: str) -> None:
    status, reply = await control.call(method, path, {} if method in ("POST", "PUT") else None)
    assert status == 405 and method in reply["error"]


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "body is not JSON"),
    (b"[1, 2]", "body must be a JSON object"),
], ids=["not-json", "not-an-object"])
async def test_bad_json_is_400(control: Control, raw: bytes, message: str) -> None:
    status, reply = await control.call("POST", "/faults", raw=raw)
    assert status == 400 and message in reply["error"]


@pytest.mark.parametrize("body", [{"down": -1}, {"down": "soon"}], ids=["negative", "not-a-number"])
async def test_bad_restart_is_400(control: Control, body: dict[str, Any]) -> None:
    status, reply = await control.call("POST", "/restart", body)
    assert status == 400 and '"down"' in reply["error"]
    assert control.gw.restarts == 0


async def test_restart_refuses_during_down_then_accepts(control: Control) -> None:
    port, down = control.gw.port, 0.5
    client = await _connect(port, 3, OK_TIMEOUT)
    status, body = await control.call("POST", "/restart", {"down": down})
    assert status == 200 and body == {"restarting": True, "down": down}
    t0 = time.monotonic()
    await _port_state(port, accepting=False, within=2.0)
    with pytest.raises(HandshakeError) as info:  # a client connecting during the outage
        await _connect(port, 4, OK_TIMEOUT)
    assert info.value.phase == PHASE_TCP and "refused" in info.value.cause
    with pytest.raises(ConnectionError):  # the connection from before was dropped
        await client.ping(OK_TIMEOUT)
    await _port_state(port, accepting=True, within=down + 3.0)
    assert time.monotonic() - t0 >= down * 0.8  # stayed down for about `down`, not just a blip
    again = await _connect(port, 3, OK_TIMEOUT)  # same id: the restart freed it
    await again.disconnect()
    await client.disconnect()
    state = (await control.call("GET", "/state"))[1]
    assert state["restarts"] == 1 and state["listening"] is True and state["port"] == port


async def test_drop_disconnects_connected_clients(control: Control) -> None:
    clients = [await _connect(control.gw.port, 10 + i, OK_TIMEOUT) for i in range(2)]
    status, body = await control.call("POST", "/drop")
    assert status == 200 and body["dropped"] == 2
    for client in clients:
        with pytest.raises(ConnectionError):  # the reader saw the Gateway close the socket
            await client.ping(OK_TIMEOUT)
        await client.disconnect()
    state = (await control.call("GET", "/state"))[1]
    assert state["active_connections"] == 0 and state["listening"] is True
    fresh = await _connect(control.gw.port, 10, OK_TIMEOUT)  # the Gateway itself keeps serving
    await fresh.disconnect()


async def test_connections_lists_records_without_frames(control: Control) -> None:
    client = await _connect(control.gw.port, 20, OK_TIMEOUT)
    await client.disconnect()
    assert await control.gw.wait_client_id_free(20)
    status, body = await control.call("GET", "/connections")
    assert status == 200 and body["connections"]
    record = body["connections"][-1]
    assert record["client_id"] == 20 and "frames" not in record
