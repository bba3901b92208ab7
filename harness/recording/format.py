"""The recording file: JSON Lines, versioned, one line per frame (FORMAT.md).

Why JSON Lines: a recording is read by people (in a review, in a ticket),
by `diff`/`git diff`, and by the replayer. One object per line, keys in a
fixed order, frames grouped by connection in time order: a changed message
is a changed line. The header (line 1) says what was recorded, at which
negotiated server version, from which declared Gateway build, by which
client version ranges, and how identifying values were replaced. The last
line (version 2) is an end line: a file without it was cut off (an
interrupted copy, a full disk) and is refused, so a truncated recording
never replays as a Gateway that stopped talking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import HarnessError
from ..core.files import atomic_write
from .codec import FrameLine

FORMAT_NAME = "ibgw-recording"
FORMAT_VERSION = 2  # 2: a trailing end line marks a complete file (1 had none; still read)
END = "end"


def temp_path(path: Path) -> Path:
    """The sibling a recording is written to before it is renamed into
    place: `ibgw record` opens it before recording, so an unwritable --out
    fails before the capture, not after it."""
    return path.with_name(path.name + ".tmp")


class RecordingError(HarnessError, ValueError):
    """A file that is not a readable recording; the message names the line."""


@dataclass
class Header:
    recorded_at: str  # ISO 8601 UTC
    recorded_epoch: float
    gateway_build: str | None
    server_version: int | None  # the first connection's negotiated version
    client_range: list[int] | None  # the first connection's [min, max]
    server_versions: list[int] = field(default_factory=list)
    client_ranges: list[list[int]] = field(default_factory=list)
    connections: int = 0
    frames: int = 0
    tool: str = ""
    redaction: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "version": self.version, "recorded_at": self.recorded_at,
                "recorded_epoch": self.recorded_epoch, "gateway_build": self.gateway_build,
                "server_version": self.server_version, "client_range": self.client_range,
                "server_versions": self.server_versions, "client_ranges": self.client_ranges,
                "connections": self.connections, "frames": self.frames, "tool": self.tool,
                "redaction": self.redaction}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Header:
        return cls(str(data.get("recorded_at", "")), float(data.get("recorded_epoch", 0.0)),
                   data.get("gateway_build"), data.get("server_version"), data.get("client_range"),
                   list(data.get("server_versions", [])), [list(r) for r in data.get("client_ranges", [])],
                   int(data.get("connections", 0)), int(data.get("frames", 0)), str(data.get("tool", "")),
                   dict(data.get("redaction", {})), str(data["format"]), int(data["version"]))


@dataclass
class Connection:
    """A `"type": "conn"` line: one client connection, and its frames."""

    conn: int
    at: float  # seconds since the recording started
    wall: float  # epoch seconds at accept (for remapping recorded timestamps)
    client_range: list[int] | None = None
    server_version: int | None = None
    connection_time: str | None = None
    client_id: int | None = None
    started_api: bool = False
    closed_by: str | None = None  # "client" | "gateway" | "proxy" | None (still open at the end)
    closed_t: float | None = None
    frames: list[FrameLine] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "conn", "conn": self.conn, "at": self.at, "wall": self.wall,
                "client_range": self.client_range, "server_version": self.server_version,
                "connection_time": self.connection_time, "client_id": self.client_id,
                "started_api": self.started_api, "closed_by": self.closed_by, "closed_t": self.closed_t}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        return cls(int(data["conn"]), float(data.get("at", 0.0)), float(data.get("wall", 0.0)),
                   data.get("client_range"), data.get("server_version"), data.get("connection_time"),
                   data.get("client_id"), bool(data.get("started_api", False)), data.get("closed_by"),
                   data.get("closed_t"))

    def messages(self) -> list[FrameLine]:
        return [f for f in self.frames if f.is_message]


@dataclass
class Recording:
    header: Header
    connections: list[Connection]
    path: Path | None = None

    def lines(self) -> list[dict[str, Any]]:
        """The file's lines in the current format version. The header's
        counts are those of what is written (a loaded and edited recording
        saves consistent), and the end line comes last: a reader that does
        not find it knows the file was cut off."""
        frames = sum(len(c.frames) for c in self.connections)
        header = {**self.header.to_dict(), "version": FORMAT_VERSION, "connections": len(self.connections),
                  "frames": frames}
        out: list[dict[str, Any]] = [header]
        for conn in self.connections:
            out.append(conn.to_dict())
            items: list[tuple[float, int, dict[str, Any]]] = [(f.t, i, f.to_dict()) for i, f in enumerate(conn.frames)]
            items += [(float(e["t"]), len(conn.frames) + i, e) for i, e in enumerate(conn.events)]
            out.extend(d for _, _, d in sorted(items, key=lambda x: (x[0], x[1])))
        out.append({"type": END, "connections": len(self.connections), "frames": frames})
        return out

    def save(self, path: Path) -> Path:
        """Write atomically (temp_path(path) renamed into place), so a reader
        never sees half a file under the real name; a failed write removes
        its temporary file and raises OSError for the caller to report."""
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.writelines(json.dumps(line, ensure_ascii=True) + "\n" for line in self.lines()),
                     tmp=temp_path(path))
        self.path = path
        return path

    @property
    def label(self) -> str:
        return self.path.name if self.path else "recording"


TRUNCATED_HINT = ("hint: the file was cut off (an interrupted copy or download, a full disk); copy it again from "
                  "where it was recorded, or record again with `ibgw record`")


def load(path: Path) -> Recording:
    """Read and validate a recording; RecordingError names the bad line.

    A cut-off file is refused ("recording is truncated"): version 2 files
    end with an end line; version 1 files, which have none, must hold at
    least the frames their header declares. Lines removed by hand from the
    middle of a version 2 file keep its end line, so such an edit still loads
    (a replay then reports the missing requests as divergences).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RecordingError(f"{path} is not a recording: not UTF-8 text") from None
    lines = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not lines:
        raise RecordingError(f"{path} is empty; hint: record one with `ibgw record`")
    header: Header | None = None
    declared_frames: int | None = None
    connections: dict[int, Connection] = {}
    frames = 0
    ended = False

    def truncated(detail: str = "") -> RecordingError:
        declared = f"header declares {declared_frames} frames, file has {frames}" if declared_frames is not None \
            else f"file has {frames} frames"
        return RecordingError(f"{path}: recording is truncated: {declared}{detail}; {TRUNCATED_HINT}")

    for index, (number, raw) in enumerate(lines):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            if header is not None and index == len(lines) - 1 and not text.endswith("\n"):
                raise truncated(f" and line {number} stops mid-line") from None
            raise RecordingError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise RecordingError(f"{path}:{number}: expected a JSON object")
        if ended:
            raise RecordingError(f"{path}:{number}: a line after the end line; hint: two recordings joined into one "
                                 "file? keep one per file")
        try:
            if header is None:
                if data.get("format") != FORMAT_NAME:
                    raise RecordingError(f"{path}:{number}: not an {FORMAT_NAME} file (first line has format="
                                         f"{data.get('format')!r}); hint: record one with `ibgw record`")
                if int(data.get("version", 0)) > FORMAT_VERSION:
                    raise RecordingError(f"{path}: format version {data.get('version')} is newer than this "
                                         f"harness reads ({FORMAT_VERSION}); hint: upgrade ibgw-harness")
                header = Header.from_dict(data)
                declared_frames = header.frames if "frames" in data else None
                continue
            kind = data.get("type")
            if kind == "conn":
                conn = Connection.from_dict(data)
                connections[conn.conn] = conn
            elif kind in ("frame", "event"):
                owner = connections.get(int(data["conn"]))
                if owner is None:
                    raise RecordingError(f"{path}:{number}: {kind} of connection {data['conn']} before its conn line")
                if kind == "frame":
                    owner.frames.append(FrameLine.from_dict(data))
                    frames += 1
                else:
                    owner.events.append(data)
            elif kind == END and header.version >= 2:
                ended = True
            else:
                expected = "conn, frame, event or end" if header.version >= 2 else "conn, frame or event"
                raise RecordingError(f"{path}:{number}: unknown line type {kind!r} (expected {expected})")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RecordingError):
                raise
            raise RecordingError(f"{path}:{number}: malformed line ({type(exc).__name__}: {exc})") from None
    assert header is not None
    if header.version >= 2 and not ended:
        raise truncated(", and it has no end line")
    if header.version < 2 and declared_frames is not None and frames < declared_frames:
        raise truncated()  # version 1: the header's count is the only completeness mark
    return Recording(header, list(connections.values()), path)


__all__ = ["END", "FORMAT_NAME", "FORMAT_VERSION", "Connection", "Header", "Recording", "RecordingError", "load",
           "temp_path"]
