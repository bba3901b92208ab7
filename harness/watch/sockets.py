"""What the kernel holds on the Gateway's port: CLOSE_WAIT sockets, the
listener's accept queue (Recv-Q) and accepted sockets with unread bytes.

Why: a silent handshake alone does not say "wedged" (a pending dialog or
an untrusted address are silent too); a listener that stops accept()ing
(Recv-Q grows, nautechsystems/nautilus_trader#4796) or sockets piling up in
CLOSE_WAIT (gnzsnz/ib-gateway-docker#336, erdewit/ib_insync#386) do. Read
from /proc/net/tcp{,6} of this network namespace: a sidecar sharing the
Gateway's namespace (compose `network_mode: service:...`, a k8s pod) sees
the Gateway's sockets without privileges. The table is parsed by
harness/targets/proc_net.py, the project's one reader of it (the wedge
detector, scenarios/listener.py, reads the same rows); this module keeps
the watch's view (one reading, no settle sleep: the watch samples every
probe).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..targets.proc_net import PROC_TABLES, parse_proc_net_tcp, read_tables


@dataclass(frozen=True)
class SocketEvidence:
    visible: bool  # False: no socket table here (not Linux), nothing below is known
    close_wait: int = 0  # the Gateway's sockets in CLOSE_WAIT on the port(s)
    accept_backlog: int = 0  # connections the listener never accept()ed (LISTEN Recv-Q)
    unread_sockets: int = 0  # accepted sockets holding client bytes never read (Recv-Q > 0)

    @property
    def stuck(self) -> bool:
        """Anything the kernel holds that a healthy Gateway would have taken or closed."""
        return self.visible and bool(self.close_wait or self.accept_backlog or self.unread_sockets)

    def summary(self) -> str:
        if not self.visible:
            return "socket table not readable here"
        return (f"{self.close_wait} CLOSE_WAIT, listener Recv-Q {self.accept_backlog}, "
                f"{self.unread_sockets} socket(s) with unread bytes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_tables(text: str, ports: set[int]) -> SocketEvidence:
    """Pure: the evidence for the local `ports` in /proc/net/tcp{,6} text."""
    close_wait = backlog = unread = 0
    for row in parse_proc_net_tcp(text):
        if row.local_port not in ports:
            continue
        if row.state == "LISTEN":
            backlog += row.rx_queue
        else:
            close_wait += row.state == "CLOSE_WAIT"
            unread += row.rx_queue > 0
    return SocketEvidence(True, close_wait, backlog, unread)


def is_local(host: str) -> bool:
    """The Gateway's sockets are in this namespace's table only when its
    address is one of ours (loopback, or an interface address here)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        return False
    if any(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        return True
    here = {a.address.split("%")[0] for nics in psutil.net_if_addrs().values() for a in nics}
    return bool(addresses & here)


def port_evidence(ports: set[int]) -> SocketEvidence:
    """Read this namespace's tables now (blocking but fast: a file read)."""
    text = read_tables(PROC_TABLES)
    return SocketEvidence(False) if text is None else parse_tables(text, ports)


__all__ = ["SocketEvidence", "is_local", "parse_tables", "port_evidence"]
