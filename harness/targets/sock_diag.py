"""This host's TCP sockets on given ports, from the kernel's sock_diag netlink dump.

Why not /proc/net/tcp alone: the kernel formats every socket of the namespace
into that text, TIME_WAIT included, and a host that has just run a benchmark
or a test suite holds tens of thousands of TIME_WAIT sockets (20,000 measured
on a shared CI box: ~0.1 s per read when quiet, ~0.6 s under load). The zombie
scenario reads the table several times per connect/disconnect cycle, so the
read was its whole cost. The netlink dump asks the kernel for the live states
only (no socket of any caller's interest is in TIME_WAIT), unformatted, so the
cost no longer grows with the host's history.

Rows come back as proc_net.TcpRow, with the addresses in /proc's own hex form,
so every reader parses one shape; None where netlink is unavailable (not Linux,
a sandbox that forbids it): the caller falls back to the /proc text.
Standard library only.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Collection

from .proc_net import TCP_STATES, TcpRow

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_TIME_WAIT = 6
# Every state but TIME_WAIT: nobody counts it, and it is what makes a busy host's table large.
LIVE_STATES = 0xFFF & ~(1 << TCP_TIME_WAIT)
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_REQUEST = struct.Struct("=BBBBI48s")  # inet_diag_req_v2: family, protocol, ext, pad, states, sockid
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg
READ_TIMEOUT_S = 2.0


def _hex(raw: bytes, port: bytes) -> str:
    """/proc/net/tcp's form: each 32-bit word in host (little-endian) order, then the port."""
    words = "".join(raw[i:i + 4][::-1].hex().upper() for i in range(0, len(raw), 4))
    return f"{words}:{int.from_bytes(port, 'big'):04X}"


def _dump(family: int, sport: int = 0) -> list[TcpRow]:
    """One family's live sockets; with `sport`, only those whose local port it is (the kernel filters)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(READ_TIMEOUT_S)
        body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, LIVE_STATES,
                             sport.to_bytes(2, "big") + bytes(46))
        sock.send(_HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                  + body)
        rows: list[TcpRow] = []
        width = 4 if family == socket.AF_INET else 16
        while True:
            data = sock.recv(1 << 16)
            if not data:
                raise OSError("sock_diag: empty reply")
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind = _HEADER.unpack_from(data, offset)[:2]
                if length < _HEADER.size:
                    raise OSError("sock_diag: malformed reply")
                if kind == NLMSG_DONE:
                    return rows
                if kind == NLMSG_ERROR:
                    raise OSError("sock_diag: the kernel refused the dump")
                (_, state, _, _, local, remote, src, dst, _, _, _, rqueue, _, _, _) = _MESSAGE.unpack_from(
                    data, offset + _HEADER.size)
                rows.append(TcpRow(int.from_bytes(local, "big"), int.from_bytes(remote, "big"),
                                   TCP_STATES.get(state, f"0x{state:02X}"), _hex(src[:width], local),
                                   _hex(dst[:width], remote), rqueue))
                offset += (length + 3) & ~3  # NLMSG_ALIGN


def port_rows(ports: Collection[int], *, either_end: bool = False) -> list[TcpRow] | None:
    """Live (not TIME_WAIT) TCP sockets whose local port is in `ports` (either_end: or remote port),
    IPv4 and IPv6; None when the kernel's netlink dump is unavailable here."""
    if not hasattr(socket, "AF_NETLINK"):
        return None
    wanted = set(ports)
    sport = next(iter(wanted)) if len(wanted) == 1 and not either_end else 0  # else filtered here
    try:
        rows = _dump(socket.AF_INET, sport) + _dump(socket.AF_INET6, sport)
    except OSError:
        return None
    return [row for row in rows if row.local_port in wanted or (either_end and row.remote_port in wanted)]
