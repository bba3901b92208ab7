"""What the host's socket table says about a Gateway port.

CLOSE_WAIT sockets on the Gateway's port are the zombie signature: the
client closed, the Gateway never did. Counting them is the only evidence
that separates a saturated Gateway from one that is merely not logged in,
so scenarios and `ibgw doctor` share this one implementation.
psutil first; `lsof` where psutil lacks the privilege (macOS).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..core.errors import HarnessError


@dataclass(frozen=True)
class SocketRow:
    local: str
    remote: str
    status: str
    pid: int | None
    process: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SocketTableUnavailable(HarnessError, RuntimeError):
    """Neither psutil nor lsof could read the socket table."""


def close_wait_sockets(port: int) -> list[SocketRow]:
    """Server-side CLOSE_WAIT sockets on `port` (IPv4 and IPv6-mapped)."""
    return [row for row in port_sockets(port) if row.status == psutil.CONN_CLOSE_WAIT]


def close_wait_count(port: int) -> int:
    return len(close_wait_sockets(port))


def port_sockets(port: int) -> list[SocketRow]:
    """Every TCP socket whose local port is `port` (the Gateway's side)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return _lsof_rows(port)
    rows = []
    for conn in conns:
        if not conn.laddr or conn.laddr.port != port:
            continue
        rows.append(SocketRow(_addr(conn.laddr), _addr(conn.raddr) if conn.raddr else "", conn.status,
                              conn.pid, _process_name(conn.pid)))
    return rows


def _addr(addr: Any) -> str:
    host = addr.ip.removeprefix("::ffff:")
    return f"{host}:{addr.port}"


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _lsof_rows(port: int) -> list[SocketRow]:
    lsof = shutil.which("lsof")
    if lsof is None:
        raise SocketTableUnavailable("psutil may not read the socket table here and lsof is not installed; "
                                     "hint: run as root, or install lsof")
    out = subprocess.run([lsof, "-nP", f"-iTCP:{port}"], capture_output=True, text=True, timeout=10).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 9:
            continue
        name, state = parts[8], parts[9].strip("()") if len(parts) > 9 else ""
        local, _, remote = name.partition("->")
        if not local.endswith(f":{port}"):
            continue
        status = {"CLOSE_WAIT": psutil.CONN_CLOSE_WAIT, "ESTABLISHED": psutil.CONN_ESTABLISHED,
                  "LISTEN": psutil.CONN_LISTEN}.get(state, state)
        rows.append(SocketRow(local, remote, status, int(parts[1]), parts[0]))
    return rows
