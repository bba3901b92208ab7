"""Name the protocol a peer speaks from the first bytes it sent.

Why: a client pointed at the wrong port (a web UI, noVNC/VNC, SSH, a TLS
endpoint) used to be reported as "not logged in / 2FA" or "closed right
after accept", because a TWS client only knows that the bytes are not a
version reply. The first bytes of those services are fixed by their
specifications, so they can be named instead of guessed:

- HTTP: a status line `HTTP/1.x NNN` (RFC 9112 section 4), sent in answer to
  anything, including the TWS API hello (`400 Bad Request`).
- SSH: the server's identification string `SSH-2.0-...` (RFC 4253 4.2).
- VNC: the ProtocolVersion greeting `RFB 003.008\\n` (RFC 6143 7.1.1).
- TLS: a record header, content type 21 (alert) or 22 (handshake) then
  major version 3 (RFC 8446 section 5.1).

A TWS version reply is a 4-byte big-endian length (small) followed by
`<digits>\\0<time>\\0`; anything that is neither that nor one of the above
is "an unknown protocol". Standard library only, like the rest of the codec.
"""

from __future__ import annotations

from .framing import HEADER

SNIFF_BYTES = 64  # how many first bytes a client keeps for this
_MAX_VERSION_REPLY = 256  # a version reply is ~30 bytes; a larger first frame is not one


def identify_peer(first: bytes) -> str | None:
    """The protocol the first bytes belong to ("HTTP", "SSH", "VNC (RFB)",
    "TLS", "an unknown protocol"), or None when they may still be a TWS
    version reply (or are too few to tell)."""
    if not first:
        return None
    if first.startswith(b"HTTP/"):
        return "HTTP"
    if first.startswith(b"SSH-"):
        return "SSH"
    if first.startswith(b"RFB "):
        return "VNC (RFB)"
    if len(first) >= 2 and first[0] in (0x15, 0x16) and first[1] == 0x03:
        return "TLS"
    if len(first) < 4:
        return None  # too few bytes to judge a length prefix
    (length,) = HEADER.unpack_from(first)  # the length prefix framing.py reads
    if length == 0 or length > _MAX_VERSION_REPLY:
        return "an unknown protocol"
    body = first[4:4 + length]
    if body and not body[:1].isdigit():
        return "an unknown protocol"
    return None


def describe_first_bytes(first: bytes, limit: int = 24) -> str:
    """The first bytes, printable: b'SSH-2.0-OpenSSH_9.2' style, shortened."""
    shown = first[:limit]
    return repr(shown) + ("..." if len(first) > limit else "")


def non_tws_cause(protocol: str, first: bytes) -> str:
    """One line for a HandshakeError cause; doctor and probe match its start."""
    return f"the port speaks {protocol}, not the TWS API (first bytes {describe_first_bytes(first)})"


NON_TWS_PREFIX = "the port speaks "

__all__ = ["NON_TWS_PREFIX", "SNIFF_BYTES", "describe_first_bytes", "identify_peer", "non_tws_cause"]
