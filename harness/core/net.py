"""A free loopback port, for tests and for targets that must name a port before binding it.

Why one helper: bind port 0, read the port, close. The port may be taken
again before the caller binds it; prefer port=0 on the server itself
(`MockGateway(port=0)`) wherever the server can report its own port.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now on `host` (bound, then closed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


__all__ = ["free_port"]
