"""Scenario: what is this build's own maximum server version?

A version-only probe: offer a wide range (v100..v300, past any build), read
the version reply, close without starting the API. A Gateway answers with
min(its maximum, the client's maximum), so the reply is the build's own
maximum, which no real client reveals (each caps the range at its own).
It then checks the probe left no zombie: a build that keeps a CLOSE_WAIT
socket even for a connection that never started the API is recorded so.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from .. import __version__
from ..clients.base import ClientInfo
from ..core.record import FAILED, PASSED, Evidence
from ..protocol.handshake import ClosedBeforeVersion, exchange_versions
from ..targets.base import Endpoint
from ..targets.sockets import close_wait_count
from .zombie import settled_close_wait

SCENARIO = "version_probe"
WIDE_LOW, WIDE_HIGH = 100, 300


async def run_version_probe(endpoint: Endpoint, *, timeout: float = 5.0, settle_timeout: float = 2.0,
                            zombie_port: int | None = None, low: int = WIDE_LOW, high: int = WIDE_HIGH) -> Evidence:
    """zombie_port: where the Gateway's own sockets live (behind a forwarder
    it differs from the port clients use); the host's socket table must see
    it (in-process mock, or a container with host networking)."""
    info = ClientInfo("version-probe", "ibgw-harness", __version__, low, high)
    evidence = Evidence(scenario=SCENARIO, target=endpoint.to_dict(), client=asdict(info),
                        parameters={"range": f"v{low}..{high}", "timeout_s": timeout})
    port = zombie_port or endpoint.port
    baseline = close_wait_count(port)
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            evidence.server_version = (await exchange_versions(reader, writer, low, high)).server_version
            evidence.measurements["version_reply_ms"] = round((time.monotonic() - started) * 1000, 3)
    except (TimeoutError, OSError, ValueError) as exc:
        evidence.outcome, evidence.failed_phase = FAILED, "server_version"
        said = "closed before the version reply" if isinstance(exc, ClosedBeforeVersion) else str(exc)
        evidence.cause = f"no version reply: {said or type(exc).__name__}"
        evidence.hint = "the API layer is not answering; the build's maximum is unknown"
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    if evidence.server_version is not None:
        after = await settled_close_wait(port, baseline, settle_timeout)
        evidence.measurements.update(build_max_server_version=evidence.server_version,
                                     close_wait_baseline_count=baseline, close_wait_after_count=after)
        evidence.checks = {"version_reply": True, "no_zombie_left": after <= baseline}
        if after <= baseline:
            evidence.outcome = PASSED
        else:
            evidence.outcome, evidence.failed_phase = FAILED, "close_wait"
            evidence.cause = f"zombie sockets: the version-only probe left CLOSE_WAIT at {after} (baseline {baseline})"
            evidence.hint = "the Gateway does not close its side even of connections that never started the API"
    return evidence.finish()
