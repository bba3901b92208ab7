"""Turn what the recording proxy sees into a recording.

Why an observer of the proxy rather than a proxy of its own: the proxy
(harness/proxy) already splits both directions into frames with their
arrival times and the negotiated version, and keeps its faults and order
guard on the path. The recorder only listens (FaultProxy.add_observer),
decodes each frame in its era, replaces identifying values before anything
is kept, and writes the file when recording stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..core.redact import Pseudonymizer
from ..protocol.errors import ProtocolError
from ..protocol.handshake import parse_hello
from ..protocol.messages import Out
from .codec import DOWN, HELLO, UNDECODABLE, UP, FrameLine, decode, named, pseudonymise
from .format import Connection, Header, Recording

if TYPE_CHECKING:
    from ..protocol.frame import Frame, FrameRecord
    from ..proxy import FaultProxy

# A recording is made by a person driving a client for minutes; beyond this
# many frames the rest are counted, not kept, so memory stays bounded.
MAX_FRAMES = 500_000


class Recorder:
    """Collects one recording from a FaultProxy's frames (in memory)."""

    def __init__(self, *, gateway_build: str | None = None, redact_texts: Iterable[str] = ()) -> None:
        self.gateway_build = gateway_build
        self.pseudo = Pseudonymizer(redact_texts)
        self.started_wall = time.time()
        self.started_t: float | None = None  # proxy time of the first event seen
        self.connections: dict[int, Connection] = {}
        self._origin: dict[int, float] = {}  # conn -> proxy time of its accept
        self._gateway_fin: set[int] = set()
        self.frames = 0
        self.dropped = 0

    def attach(self, proxy: FaultProxy) -> Recorder:
        proxy.add_observer(self.observe)
        return self

    # ------------------------------------------------------------ observing

    def _conn(self, entry: FrameRecord) -> Connection:
        conn = self.connections.get(entry.conn_id)
        if conn is None:
            if self.started_t is None:
                self.started_t = entry.t
            conn = Connection(entry.conn_id, round(entry.t - self.started_t, 6), round(entry.wall or 0.0, 6))  # always set by the proxy
            self.connections[entry.conn_id] = conn
            self._origin[entry.conn_id] = entry.t
        return conn

    def observe(self, entry: FrameRecord, frame: Frame | None) -> None:
        conn = self._conn(entry)
        t = round(entry.t - self._origin[conn.conn], 6)
        if frame is None:
            self._note(conn, t, entry.note)
            return
        if self.frames >= MAX_FRAMES:
            self.dropped += 1
            return
        self.frames += 1
        if frame.kind == "hello":
            conn.frames.append(self._hello(conn, t, frame))
            return
        if frame.name == UNDECODABLE or (frame.fields is None and frame.msg_id is None):
            conn.frames.append(FrameLine(conn.conn, t, frame.direction, UNDECODABLE, None, UNDECODABLE, [],
                                         note=self.pseudo.text(entry.note)))
            return
        try:
            line = decode(conn.conn, t, frame.direction, conn.server_version, frame.payload)
        except ProtocolError as exc:
            line = FrameLine(conn.conn, t, frame.direction, UNDECODABLE, None, UNDECODABLE, [], note=str(exc))
        if entry.note:
            line.note = entry.note
        pseudonymise(line, self.pseudo, conn.server_version or 0)
        if line.direction == UP and line.msg_id == Out.START_API:
            conn.started_api = True
            try:
                conn.client_id = named(line, conn.server_version or 0).int("client_id")
            except ProtocolError:
                conn.client_id = None
        conn.frames.append(line)

    def _hello(self, conn: Connection, t: float, frame: Frame) -> FrameLine:
        if frame.direction == UP:
            hello = parse_hello(frame.payload)
            conn.client_range = [hello.min_version, hello.max_version]
            text = self.pseudo.text(frame.payload.rstrip(b"\0").decode("ascii", "replace"))
            return FrameLine(conn.conn, t, UP, "hello", None, HELLO, [text])
        fields = [self.pseudo.text(f) for f in frame.fields or []]
        conn.server_version = frame.server_version
        conn.connection_time = fields[1] if len(fields) > 1 else None
        return FrameLine(conn.conn, t, DOWN, "serverVersion", None, HELLO, fields)

    def _note(self, conn: Connection, t: float, note: str) -> None:
        if note.startswith("accepted from"):
            return  # the conn line carries the accept; the peer's port is noise
        if note.startswith("Gateway closed its side"):
            self._gateway_fin.add(conn.conn)
            conn.events.append({"type": "event", "conn": conn.conn, "t": t, "event": "gateway-fin", "note": note})
            return
        if note.startswith("closed:"):
            cause = note.partition(":")[2].strip()
            if conn.closed_by is None:
                if conn.conn in self._gateway_fin or "Gateway" in cause.split(":")[0]:
                    conn.closed_by = "gateway"
                elif cause.startswith(("both sides closed", "up closed", "client")):
                    conn.closed_by = "client"
                else:
                    conn.closed_by = "proxy"
                conn.closed_t = t
            conn.events.append({"type": "event", "conn": conn.conn, "t": t, "event": "closed",
                                "note": self.pseudo.text(cause)})
            return
        conn.events.append({"type": "event", "conn": conn.conn, "t": t, "event": "note", "note": self.pseudo.text(note)})

    # ------------------------------------------------------------ result

    def recording(self) -> Recording:
        conns = sorted(self.connections.values(), key=lambda c: c.conn)
        versions = list(dict.fromkeys(c.server_version for c in conns if c.server_version is not None))
        ranges = [list(r) for r in dict.fromkeys(tuple(c.client_range) for c in conns if c.client_range)]
        redaction: dict[str, Any] = {"method": "pseudonyms: one fake value per real value; the table is not stored",
                                     **self.pseudo.summary(), "credentials": "environment credential values masked"}
        if self.dropped:
            redaction["frames_not_kept"] = self.dropped
        header = Header(
            recorded_at=datetime.fromtimestamp(self.started_wall, UTC).isoformat(timespec="seconds"),
            recorded_epoch=round(self.started_wall, 3), gateway_build=self.gateway_build,
            server_version=versions[0] if versions else None, client_range=ranges[0] if ranges else None,
            server_versions=versions, client_ranges=ranges, connections=len(conns),
            frames=sum(len(c.frames) for c in conns), tool=f"ibgw-harness {__version__}", redaction=redaction)
        return Recording(header, conns)

    def save(self, path: Path) -> Recording:
        rec = self.recording()
        rec.save(path)
        return rec


__all__ = ["MAX_FRAMES", "Recorder"]
