"""The one place that knows the recording proxy's API (harness/proxy): start
it in front of a Gateway with its request guard on, find a client id's
connection in its transcript, stop it.

The guard is the proxy's own (harness/safety/stream_guard.py), the same on
every path: every form of every order message and configuration change is
refused, the client is sent the error, and a stream the guard cannot frame
is closed (fail closed). Refusals are also kept in the run's OrderGuard
(``guard.blocked``) as evidence.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.errors import HarnessError
from ..safety.order_guard import OrderGuard
from ..scenarios.gateway_or_code import WireView
from ..targets.base import Endpoint

UNDECODABLE = ("the proxy could not decode the client's stream, so it cannot vouch that no order message passes: "
               "refused (fail closed)")


class ProxyUnavailable(HarnessError):
    pass


def frame_guard(guard: OrderGuard) -> Any:
    """The OrderGuard as a proxy RequestGuard (Frame -> refusal text or None),
    for callers that add guards of their own; the proxies the harness starts
    no longer need it (their request guard frames the stream itself)."""
    from ..protocol.frame import UP

    def complete_order_guard(frame: Any) -> str | None:
        if frame.direction != UP or frame.kind != "message":
            return None  # the hello (version range) carries no message id
        if frame.name == "undecodable":
            return UNDECODABLE
        return guard(frame.payload)

    return complete_order_guard


def proxied(endpoint: Endpoint, host: str, port: int) -> Endpoint:
    """The upstream's endpoint with the proxy's address: evidence still names the Gateway."""
    return replace(endpoint, host=host, port=port,
                   details={**endpoint.details, "via_proxy": f"{host}:{port}", "upstream": endpoint.label})


async def start_recording_proxy(upstream: Endpoint, guard: OrderGuard, transcript: Path | None = None
                                ) -> tuple[Any, Endpoint]:
    """A started FaultProxy in front of upstream, and the endpoint clients use
    (transcript: also write its decoded wire record there as it runs)."""
    try:
        from ..proxy import FaultProxy, ProxyAddressError
    except ImportError:
        raise ProxyUnavailable("harness.proxy is not available") from None
    try:
        proxy = FaultProxy((upstream.host, upstream.port), transcript=transcript)  # default: refuse, fail closed
    except ProxyAddressError as exc:
        raise ProxyUnavailable(str(exc)) from None
    proxy.add_block_observer(guard.blocked.append)
    await proxy.start()
    return proxy, proxied(upstream, proxy.host, proxy.port)


async def stop_recording_proxy(proxy: Any) -> None:
    await proxy.stop()


def conn_for_client(proxy: Any, client_id: int, since: float | None = None) -> int | None:
    """The newest proxied connection whose startApi carried client_id (sent
    after `since`, a time.monotonic value, when given)."""
    found = None
    after = -1.0 if since is None else since - proxy.origin
    for entry in proxy.entries:
        if entry.name == "startApi" and entry.direction == "up" and len(entry.fields) > 2 \
                and entry.fields[2] == str(client_id) and entry.t >= after:
            found = entry.conn_id
    return found


def transcript_for_client(proxy: Any, client_id: int) -> str | None:
    conn_id = conn_for_client(proxy, client_id)
    return None if conn_id is None else proxy.transcript_text(conn_id)


def wire_for_client(proxy: Any, client_id: int, since: float | None = None) -> WireView | None:
    """The proxy's record of a client id's newest connection as a WireView
    (times relative to the proxy's accept of that connection)."""
    conn_id = conn_for_client(proxy, client_id, since)
    if conn_id is None:
        return None
    entries = [e for e in proxy.entries if e.conn_id == conn_id]
    opened = next((e.t for e in entries if e.name == "(proxy)" and e.note.startswith("accepted")), entries[0].t)
    origin = getattr(proxy, "origin", None)  # the proxy's entry times count from its time.monotonic() origin
    view = WireView(text=proxy.transcript_text(conn_id),
                    accepted_mono=None if origin is None else origin + opened)
    for e in entries:
        if e.name == "(proxy)":
            if e.note.startswith("closed:") and view.closed_at is None:
                view.closed_at, view.close_cause = round(e.t - opened, 6), e.note[len("closed: "):]
            continue
        view.frames.append((round(e.t - opened, 6), "c2g" if e.from_client else "g2c", e.name))
    return view


__all__ = ["ProxyUnavailable", "conn_for_client", "frame_guard", "start_recording_proxy", "stop_recording_proxy",
           "transcript_for_client", "wire_for_client"]
