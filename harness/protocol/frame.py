"""One complete frame of one direction of one connection: the frame type
the proxy's decoder, its guards, the recorder and live runs share.

Why in the codec: the proxy decodes frames, the recorder turns them into
recording lines and a live run's reply guard reads their accounts; each
used to import the proxy's own type (and the recording defined its own
direction names). Standard library only, like the rest of harness/protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from .versions import PROTOBUF
from .wire_id import unwire

UP = "up"  # client -> Gateway
DOWN = "down"  # Gateway -> client


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


__all__ = ["DOWN", "UP", "Frame"]
