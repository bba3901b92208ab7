"""The host's socket table for the Gateway's port (CLOSE_WAIT, listeners, forwarders).

Why before connecting: doctor's own sockets must not be counted, and a CLOSE_WAIT counts only
if it outlives a short settle (a healthy Gateway closes its side in milliseconds)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import psutil

from ...targets.sockets import SocketRow, SocketTableUnavailable, port_sockets, served_by_listener
from ..zombie import settled_close_wait
from .vocabulary import FORWARDERS


@dataclass
class SocketSurvey:
    visible: bool
    reason: str = ""  # why the table could not be read
    close_wait: list[SocketRow] = field(default_factory=list)
    transient: int = 0  # CLOSE_WAIT sockets the Gateway closed while we watched
    listeners: list[SocketRow] = field(default_factory=list)
    established: int = 0

    @property
    def count(self) -> int:
        return len(self.close_wait)

    @property
    def forwarder(self) -> str | None:
        for row in self.listeners:
            if row.process and row.process.lower() in FORWARDERS:
                return row.process
        return None

    @property
    def conclusive_zero(self) -> bool:
        """0 CLOSE_WAIT here really means the Gateway has none: we see its
        listening socket and no forwarder stands in front of it."""
        return self.visible and self.count == 0 and bool(self.listeners) and self.forwarder is None


async def _is_local(host: str, port: int) -> bool:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    try:
        own = {a.address.split("%")[0] for nic in psutil.net_if_addrs().values() for a in nic}
    except Exception:  # noqa: BLE001 - a missing interface list only makes us conservative
        own = set()
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
            if ip.is_loopback or ip.is_unspecified or address in own:
                return True
        except ValueError:
            continue
    return False


async def survey_sockets(host: str, port: int, settle: float) -> SocketSurvey:
    """The host's view of the Gateway port, taken before doctor connects so
    its own sockets are not counted. A CLOSE_WAIT socket only counts if it
    is still there after `settle` seconds: a healthy Gateway closes its side
    within milliseconds, a zombie never does."""
    if not await _is_local(host, port):
        return SocketSurvey(False, f"{host} is not this host: its socket table is not visible here")
    try:
        first = served_by_listener(await asyncio.to_thread(port_sockets, port))
        before = sum(1 for row in first if row.status == psutil.CONN_CLOSE_WAIT)
        if before:
            await settled_close_wait(port, 0, settle)
        rows = served_by_listener(await asyncio.to_thread(port_sockets, port)) if before else first
    except (SocketTableUnavailable, OSError, psutil.Error) as exc:
        return SocketSurvey(False, f"socket table unavailable: {exc}")
    close_wait = [row for row in rows if row.status == psutil.CONN_CLOSE_WAIT]
    return SocketSurvey(True, "", close_wait, max(0, before - len(close_wait)),
                        [row for row in rows if row.status == psutil.CONN_LISTEN],
                        sum(1 for row in rows if row.status == psutil.CONN_ESTABLISHED))


def socket_row(row: SocketRow) -> dict[str, Any]:
    return {"local": row.local, "remote": row.remote, "status": row.status, "pid": row.pid, "process": row.process}


def socket_owner(row: SocketRow) -> str:
    if row.pid is None:
        return "pid not visible"
    return f"{row.process or '?'} (pid {row.pid})"
