"""The watch's Prometheus endpoint (prometheus_client, the `watch` extra).

Why its own registry: the default one carries process/GC collectors of
whatever imported the harness; a scrape of the watch should show the
Gateway, not the watcher. Imported lazily so `ibgw` without the extra
still runs and `--metrics-port` says what to install in one line.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import HarnessError
from ..mock.healthcheck import EXIT_CODES

INSTALL_HINT = "prometheus_client is not installed: pip install 'ibgw-harness[watch]' (or prometheus_client)"
PHASES = ("connect", "server_version", "next_valid_id", "managed_accounts")


class MetricsUnavailable(HarnessError, RuntimeError):
    """prometheus_client is missing; the message is the install hint."""


class WatchMetrics:
    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge
        except ImportError:
            raise MetricsUnavailable(INSTALL_HINT) from None
        self.registry = CollectorRegistry()
        r = self.registry
        self.state = Gauge("ibgw_gateway_state", "1 for the Gateway's current health state", ["state"], registry=r)
        self.up = Gauge("ibgw_gateway_api_ready", "1 when the last probe saw the API ready", registry=r)
        self.phase = Gauge("ibgw_handshake_phase_seconds", "seconds from connect start to each handshake phase "
                           "in the last probe (NaN: not reached)", ["phase"], registry=r)
        self.close_wait = Gauge("ibgw_gateway_close_wait_sockets", "CLOSE_WAIT sockets on the Gateway's port(s)",
                                registry=r)
        self.recv_q = Gauge("ibgw_gateway_listener_recv_q", "connections waiting in the listener's accept queue "
                            "(never accept()ed)", registry=r)
        self.unread = Gauge("ibgw_gateway_unread_sockets", "accepted sockets holding client bytes never read",
                            registry=r)
        self.restarts = Counter("ibgw_watch_restarts", "RESTART commands IBC acknowledged", registry=r)
        self.probes = Counter("ibgw_watch_probes", "probes by resulting state", ["state"], registry=r)
        for name in EXIT_CODES:
            self.state.labels(name).set(0)
        self._restarts_seen = 0
        self.server: Any = None
        self.thread: Any = None

    def observe(self, record: dict[str, Any]) -> None:
        for name in EXIT_CODES:
            self.state.labels(name).set(1 if name == record["state"] else 0)
        self.up.set(1 if record["state"] == "healthy" else 0)
        for phase in PHASES:
            ms = record["phase_ms"].get(phase)
            self.phase.labels(phase).set(ms / 1000.0 if ms is not None else float("nan"))
        sockets = record["sockets"]
        self.close_wait.set(sockets["close_wait"])
        self.recv_q.set(sockets["accept_backlog"])
        self.unread.set(sockets["unread_sockets"])
        self.probes.labels(record["state"]).inc()
        if record["restarts"] > self._restarts_seen:
            self.restarts.inc(record["restarts"] - self._restarts_seen)
            self._restarts_seen = record["restarts"]

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Start the HTTP endpoint; returns the bound port (0 picks one)."""
        from prometheus_client import start_http_server

        self.server, self.thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self.server.server_port)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


__all__ = ["INSTALL_HINT", "MetricsUnavailable", "WatchMetrics"]
