"""Constants that decide safety and decoding, defined once.

Why here: "is this a paper account", "is this a live port", "which client ids
may a live run take" and "what is the protobuf wire-id offset" were each
defined in several modules; two copies that drift apart turn a safety check
or a decoder quietly wrong.
"""

from __future__ import annotations

# Paper-trading account ids start with DU (individual) or DF (advisor); live ones with U or F.
PAPER_PREFIXES: tuple[str, ...] = ("DU", "DF")
# IBKR's default live-trading API ports (paper: Gateway 4002, TWS 7497).
LIVE_PORTS: dict[int, str] = {4001: "IB Gateway live-trading", 7496: "TWS live-trading"}
# Client ids the harness takes against a real Gateway (probe, doctor, watch, live runs):
# far from the ids production clients use (0, 1, small numbers).
LIVE_CLIENT_ID_RANGE: tuple[int, int] = (900, 999)
# TWS API error 326: "Unable to connect as the client id is already in use".
CLIENT_ID_IN_USE = 326
# ibapi common.PROTOBUF_MSG_ID: a protobuf-encoded message's wire id is its message id + 200.
PROTOBUF_MSG_ID = 200

__all__ = ["CLIENT_ID_IN_USE", "LIVE_CLIENT_ID_RANGE", "LIVE_PORTS", "PAPER_PREFIXES", "PROTOBUF_MSG_ID"]
