"""Per-connection record of every frame in both directions.

Why: when a handshake stalls, the only question that matters is "who sent
what, when". The transcript answers it with monotonic times relative to
the accept, message names and fields, and is bounded so a flooding client
cannot grow it without limit.

Bounded as the first frames and the last: a connection that lives for hours
(a soak, a trading process) is diagnosed by its start-up and by what came
just before it died, so once the head is full the newest frames replace the
oldest of the tail, and the transcript says how many in between it dropped.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol.messages import message_name

MAX_ENTRIES = 5000  # the first HEAD_ENTRIES frames and the last MAX_ENTRIES - HEAD_ENTRIES
HEAD_ENTRIES = MAX_ENTRIES // 2
# Entries are also bounded in bytes: a frame may be up to the mock's 1 MiB
# request limit, and 5000 of those per connection (times the records kept)
# would let a client grow the mock by gigabytes. A kept field is cut to
# MAX_FIELD_CHARS, an entry keeps MAX_FIELDS fields, and head and tail each
# hold at most half of MAX_RECORD_CHARS characters.
MAX_FIELD_CHARS = 512
MAX_FIELDS = 256
MAX_RECORD_CHARS = 256 * 1024
_HALF_CHARS = MAX_RECORD_CHARS // 2


@dataclass
class Entry:
    t: float  # seconds since the connection was accepted
    direction: str  # "recv" (client -> mock) or "send" (mock -> client)
    name: str
    fields: list[str]
    # "text" (<= 200), "text-binary-id" or "protobuf" (>= 201; protocol/era.py).
    # Protobuf fields are `name=value` strings, so both eras read alike.
    form: str = "text"


@dataclass
class ConnectionRecord:
    """Everything the mock knows about one connection, kept after it closes."""

    conn_id: int
    peer: str
    accepted_at: float = field(default_factory=time.monotonic)
    client_id: int | None = None
    client_range: tuple[int, int] | None = None
    server_version: int | None = None
    started_api: bool = False
    closed_at: float | None = None
    close_cause: str | None = None
    head: list[Entry] = field(default_factory=list)  # the first frames, kept for good
    tail: deque[Entry] = field(default_factory=deque)  # the newest frames after the head filled
    dropped_entries: int = 0  # frames between head and tail that were not kept
    head_chars: int = 0
    tail_chars: int = 0
    divergences: list[dict[str, Any]] = field(default_factory=list)  # replay: requests the recording never saw
    unmodelled: list[dict[str, Any]] = field(default_factory=list)  # requests answered by a fallback error

    def _rel(self) -> float:
        return round(time.monotonic() - self.accepted_at, 6)

    @property
    def entries(self) -> list[Entry]:
        """Every kept frame in order: the head, then the tail (dropped_entries lie between)."""
        return [*self.head, *self.tail]

    def add(self, direction: str, fields: list[str], name: str | None = None, form: str = "text") -> None:
        if name is None:
            name = _name_of(fields, from_client=direction == "recv")
        kept = [_cut(f) for f in fields[:MAX_FIELDS]]
        if len(fields) > MAX_FIELDS:
            kept.append(f"...(+{len(fields) - MAX_FIELDS} fields)")
        size = _size(kept)
        entry = Entry(self._rel(), direction, name, kept, form)
        if not self.tail and len(self.head) < HEAD_ENTRIES and self.head_chars + size <= _HALF_CHARS:
            self.head.append(entry)
            self.head_chars += size
            return
        self.tail.append(entry)
        self.tail_chars += size
        while self.tail and (len(self.tail) > MAX_ENTRIES - HEAD_ENTRIES or self.tail_chars > _HALF_CHARS):
            self.tail_chars -= _size(self.tail.popleft().fields)
            self.dropped_entries += 1

    def close(self, cause: str) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_cause = cause

    def to_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "peer": self.peer,
            "client_id": self.client_id,
            "client_range": list(self.client_range) if self.client_range else None,
            "server_version": self.server_version,
            "started_api": self.started_api,
            "duration_s": round((self.closed_at or time.monotonic()) - self.accepted_at, 6),
            "close_cause": self.close_cause,
            "dropped_entries": self.dropped_entries,
            **({"dropped_after_frame": len(self.head)} if self.dropped_entries else {}),
            **({"divergences": self.divergences} if self.divergences else {}),
            **({"unmodelled": self.unmodelled} if self.unmodelled else {}),
            "frames": [{"t": e.t, "dir": e.direction, "name": e.name, "fields": e.fields,
                        **({"form": e.form} if e.form != "text" else {})}
                       for e in self.entries],
        }

    def to_text(self) -> str:
        """Readable transcript: one line a frame, arrows for direction."""
        lines = [f"# connection {self.conn_id} from {self.peer} client_id={self.client_id} "
                 f"server_version={self.server_version}"]
        lines += [_line(e) for e in self.head]
        if self.dropped_entries:
            lines.append(f"# {self.dropped_entries} further frames not kept (the first {len(self.head)} "
                         f"and the last {len(self.tail)} are)")
        lines += [_line(e) for e in self.tail]
        for d in self.divergences:
            lines.append(f"# replay divergence ({d.get('kind')}): {d.get('detail')}"
                         + (f": {d.get('request')} {'|'.join(d.get('fields') or [])}" if d.get("request") else ""))
        for u in self.unmodelled:
            lines.append(f"# {'FAILURE (strict)' if u.get('strict') else 'unmodelled'}: {u.get('request')} "
                         f"req id {u.get('req_id')} answered with error {u.get('fallback_code')}")
        if self.close_cause:
            lines.append(f"# closed: {self.close_cause}")
        return "\n".join(lines)


def _line(e: Entry) -> str:
    arrow = "->" if e.direction == "recv" else "<-"
    form = {"text": "", "protobuf": "[pb] ", "text-binary-id": "[bin] "}.get(e.form, f"[{e.form}] ")
    return f"{e.t:10.6f} {arrow} {e.name:<24} {form}{'|'.join(e.fields)}"


def _size(fields: list[str]) -> int:
    return sum(len(f) for f in fields) + len(fields)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else f"{text[:MAX_FIELD_CHARS]}...(+{len(text) - MAX_FIELD_CHARS} chars)"


def _name_of(fields: list[str], *, from_client: bool) -> str:
    if fields and fields[0].isdigit():
        return message_name(int(fields[0]), from_client=from_client)
    return "?"
