"""A replay that cannot bring a connection to API-ready says why and closes
it at once, instead of leaving the client to time out as "API not ready"."""

from __future__ import annotations

import time
from pathlib import Path

from harness.clients import make_client
from harness.clients.base import HandshakeError
from harness.mock import MockGateway
from harness.proxy import FaultProxy
from harness.recording import load
from harness.recording.recorder import Recorder
from harness.recording.replay import replay_gateway
from tests.proxy.test_recording import HOST, wait_closed

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
