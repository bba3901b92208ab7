"""Naming the protocol behind a port from its first bytes (protocol/peer.py)."""

from __future__ import annotations

import pytest

from harness.protocol.framing import encode_frame
from harness.protocol.peer import identify_peer, non_tws_cause


@pytest.mark.parametrize("first, protocol", [
    (b"HTTP/1.1 400 Bad Request\r\n", "HTTP"),
    (b"HTTP/1.0 200 OK\r\n", "HTTP"),
    (b"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH"),
    (b"RFB 003.008\n", "VNC (RFB)"),
    (b"\x15\x03\x03\x00\x02\x02\x32", "TLS"),
    (b"\x16\x03\x01\x00\x5a", "TLS"),
    (b"hello there\n", "an unknown protocol"),
    (b"\x00\x00\x00\x05abcde", "an unknown protocol"),  # a frame, but not a version reply
    (b"\x00\x00\x00\x00", "an unknown protocol"),
])
def test_other_protocols_are_named(first: bytes, protocol: str) -> None:
    assert identify_peer(first) == protocol


@pytest.mark.parametrize("first", [
    b"",
    b"\x00\x00",  # too few bytes to judge
    b"\x00\x00\x00\x1e178\x0020261206 01:29:02 US/Eastern\x00",
])
def test_a_tws_version_reply_or_too_little_is_not_named(first: bytes) -> None:
    assert identify_peer(first) is None


def test_a_real_version_reply_frame_passes() -> None:
    frame = encode_frame(b"226\x0020261206 01:29:02 US/Eastern\x00")
    assert identify_peer(frame) is None
    assert identify_peer(frame[:3]) is None  # half a header: read on


def test_cause_names_the_protocol_and_the_bytes() -> None:
    text = non_tws_cause("SSH", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    assert text.startswith("the port speaks SSH, not the TWS API (first bytes b'SSH-2.0-")
    assert text.endswith("...)")
