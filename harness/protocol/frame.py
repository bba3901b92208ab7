"""The frame types every layer shares: Frame, one complete frame of one
direction of one connection as it passes (the proxy's decoder, its guards,
the recorder, live runs), and FrameRecord, one decoded frame as evidence
shows it (the mock's transcript, the proxy's transcript, the
gateway-or-code verdict's view of either).

Why in the codec: each layer used to define its own (the proxy's Frame and
WireEntry, the mock transcript's Entry, the recording's direction names),
so a reader of two transcripts needed two conversions. The bytes a
transcript keeps stay where they are kept (the mock's byte ring,
mock/transcript.py; the recording's lines, recording/codec.py FrameLine);
what they decode to is a FrameRecord. Standard library only, like the rest
of harness/protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .versions import PROTOBUF
from .wire_id import unwire

UP = "up"  # client -> Gateway (the proxy and recordings: they sit between the two)
DOWN = "down"  # Gateway -> client
RECV = "recv"  # client -> mock (the mock's transcript speaks as the Gateway it is)
SEND = "send"  # mock -> client


@dataclass
class Frame:
    """One complete frame as a guard or the transcript sees it."""

    conn_id: int
    direction: str  # UP | DOWN
    kind: str  # "hello" | "message"
    name: str
    payload: bytes
    fields: list[str] | None  # None when the frame is not text (protobuf era, or undecodable)
    msg_id: int | None  # the id as sent: the text id, or the 4-byte binary id (215: protobuf managedAccounts)
    server_version: int | None
    # managedAccounts from the Gateway: the ids it lists; None for other
    # frames, and for a managedAccounts frame that could not be read.
    accounts: list[str] | None = None

    @property
    def message_id(self) -> int | None:
        """The message id the frame stands for (a protobuf id without its +200; wire_id.py)."""
        if self.msg_id is None or self.kind != "message":
            return None
        if self.server_version is not None and self.server_version >= PROTOBUF:
            return unwire(self.msg_id)[0]
        return self.msg_id


@dataclass
class FrameRecord:
    """One decoded frame as evidence shows it: the one transcript record.

    The mock decodes its byte ring into these (harness/mock/transcript.py),
    the proxy keeps one per frame and per event (harness/proxy/wire.py), and
    a recording's frame line is one with its protobuf values added
    (harness/recording/codec.py FrameLine). Each keeps its own file format
    (the mock's `frames`, the proxy's JSON lines, the recording's lines),
    written from these same fields."""

    conn_id: int
    t: float  # seconds: since the accept (the mock, recordings), since the proxy started (the proxy)
    direction: str  # UP | DOWN (the proxy, recordings), RECV | SEND (the mock)
    name: str
    msg_id: int | None = None  # the message id, where the source keeps it (recordings)
    # "text" (<= 200), "text-binary-id" or "protobuf" (>= 201; protocol/era.py); recordings also
    # "hello" and "undecodable".
    form: str = "text"
    fields: list[str] = field(default_factory=list)  # text fields (id first); name=value for protobuf
    note: str = ""
    wall: float | None = None  # epoch seconds, where the source keeps them (the proxy)
    size: int | None = None  # bytes on the wire with the length prefix, where the source counts them (the proxy)

    @property
    def from_client(self) -> bool:
        return self.direction in (UP, RECV)


__all__ = ["DOWN", "RECV", "SEND", "UP", "Frame", "FrameRecord"]
