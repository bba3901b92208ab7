"""Per-connection record of every frame in both directions.

Why: when a handshake stalls, the only question that matters is "who sent
what, when". The transcript answers it with monotonic times relative to
the accept, message names and fields, and is bounded so a flooding client
cannot grow it without limit.

Bounded as the first frames and the last: a connection that lives for hours
(a soak, a trading process) is diagnosed by its start-up and by what came
just before it died, so once the head is full the newest frames replace the
oldest of the tail, and the transcript says how many in between it dropped.

Cheap while serving, decoded only for evidence: a kept frame is one bytes
object (a 11-byte header with its monotonic time, direction and kind, then
the frame's raw bytes), not a dataclass and a list of strings; names and
fields are made from the bytes when a transcript is read (to_dict, to_text,
entries). Bounded in bytes three ways: each connection's head and tail
(MAX_RECORD_BYTES), all records of one gateway together (TranscriptBudget,
DEFAULT_BUDGET_BYTES), and the closed connections' records within that
(CLOSED_BUDGET_BYTES): once over, the oldest closed record's frames go
first, then the oldest of the adding connection's own tail, then (in turn)
the oldest tail frame of the other live connections. Past half the budget a
head stops at HEAD_MIN_ENTRIES, so every connection keeps its start-up and
its newest frames.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol.frame import FrameRecord
from ..protocol.messages import message_name
from ..protocol.wire import decode_client_frame
from ..protocol.wire_id import split_binary_id

MAX_ENTRIES = 5000  # the first HEAD_ENTRIES frames and the last MAX_ENTRIES - HEAD_ENTRIES
HEAD_ENTRIES = MAX_ENTRIES // 2
# Entries are also bounded in bytes: a frame may be up to the mock's 1 MiB
# request limit. A kept frame is cut to MAX_FRAME_BYTES, a shown field to
# MAX_FIELD_CHARS, an entry shows MAX_FIELDS fields, and head and tail each
# hold at most half of MAX_RECORD_BYTES (counted with ENTRY_OVERHEAD, what
# CPython spends on a bytes object and its deque slot beyond the data).
MAX_FIELD_CHARS = 512
MAX_FIELDS = 256
MAX_FRAME_BYTES = 16 * 1024
MAX_RECORD_BYTES = 512 * 1024
MAX_RECORD_CHARS = MAX_RECORD_BYTES  # the name benchmarks/fuzz_mock.py bounds the mock's memory with
_HALF_BYTES = MAX_RECORD_BYTES // 2
ENTRY_OVERHEAD = 33 + 8
# One gateway's transcripts together, and its closed connections' share.
DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024
CLOSED_BUDGET_BYTES = 16 * 1024 * 1024
CLOSED_RECORDS = 1000  # gateway.RECORD_HISTORY: closed records whose frames are kept
# Once the budget is half used, a head stops growing past HEAD_MIN_ENTRIES
# (the start-up and the first requests): 10,000 busy sessions must not spend
# the whole budget on their first frames and keep none of their last.
HEAD_MIN_ENTRIES = 32

_HEADER = struct.Struct("<dBH")  # seconds since accept, kind | SENT, message id (0: unknown)
_HDR = _HEADER.size
SENT = 0x80
_CUT = 0x40
# Kinds (the low bits): how the bytes after the header become fields.
K_HELLO = 1  # the client's version range, one field
K_REQUEST = 2  # a client frame after the hello: decoded as the session decoded it
K_TEXT = 3  # a framed text message (length prefix, NUL-ended fields)
K_BINARY_ID = 4  # a framed text message behind a 4-byte binary id (>= 201)
K_SHOWN = 5  # fields already shown (protobuf's name=value strings), NUL-joined
K_NAMED = 6  # a name, \x01, then NUL-joined fields (add(): any caller's own fields)
K_SERVER_HELLO = 7  # the version reply: framed text, named serverVersion
_FORMS = ("text", "text-binary-id", "protobuf")
_FORM_SHIFT = 3  # kind bits 0-2, form bits 3-4


class TranscriptBudget:
    """The bytes every record of one gateway may hold together.

    Why one budget: a per-connection bound alone lets 10,000 busy sessions
    hold 10,000 bounds. Records count their kept bytes here; once over,
    the oldest closed records give up their frames first (their metadata,
    close cause and counts stay), and a live connection's own tail pays
    for the rest. Closed records are held to closed_limit bytes and
    closed_records records on their own.
    """

    def __init__(self, limit: int = DEFAULT_BUDGET_BYTES, closed_limit: int = CLOSED_BUDGET_BYTES,
                 closed_records: int = CLOSED_RECORDS) -> None:
        self.limit = limit
        self.closed_limit = min(closed_limit, limit)
        self.closed_records = closed_records
        self.used = 0  # bytes kept by every record, open or closed
        self.closed_used = 0
        self.forgotten_records = 0  # closed records whose frames were given up
        self._closed: deque[ConnectionRecord] = deque()
        self._tails: deque[ConnectionRecord] = deque()  # records with a tail, in turn to give up a frame

    def _take_from_others(self, record: ConnectionRecord) -> bool:
        """Drop the oldest tail frame of another live record, in turn (round
        robin: each gives up one, so busy records share the budget fairly).
        False when no other record has a tail frame to give."""
        for _ in range(len(self._tails)):
            other = self._tails.popleft()
            if not other._tail or other.forgotten:
                other._in_tails = False
                continue
            if other is record:
                self._tails.append(other)
                continue
            other._drop_oldest_tail()
            if other._tail:
                self._tails.append(other)
            else:
                other._in_tails = False
            return True
        return False

    def _closed_record(self, record: ConnectionRecord) -> None:
        if record.kept_bytes:
            self._closed.append(record)
            self.closed_used += record.kept_bytes
        self._trim_closed()

    def _trim_closed(self, need: int = 0) -> None:
        while self._closed and (self.closed_used > self.closed_limit or len(self._closed) > self.closed_records
                                or self.used + need > self.limit):
            record = self._closed.popleft()
            self.closed_used -= record.kept_bytes
            record.forget()
            self.forgotten_records += 1


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
    budget: TranscriptBudget = field(default_factory=TranscriptBudget, repr=False)
    _head: list[bytes] = field(default_factory=list, repr=False)  # the first frames, kept for good
    _tail: deque[bytes] = field(default_factory=deque, repr=False)  # the newest frames after the head filled
    dropped_entries: int = 0  # frames between head and tail that were not kept
    head_bytes: int = 0
    tail_bytes: int = 0
    head_closed: bool = False  # once a frame was dropped, later frames go to the tail only
    forgotten: bool = False  # the budget took every frame (a closed record, oldest first)
    _in_tails: bool = field(default=False, repr=False)  # listed in the budget's round robin
    divergences: list[dict[str, Any]] = field(default_factory=list)  # replay: requests the recording never saw
    unmodelled: list[dict[str, Any]] = field(default_factory=list)  # requests answered by a fallback error

    # ------------------------------------------------------------ recording (the hot path)

    def add_hello(self, payload: bytes) -> None:
        """The client's version range, as it came."""
        self._keep(K_HELLO, 0, payload)

    def add_request(self, payload: bytes) -> None:
        """A client frame after the hello, raw; decoded as the session
        decodes it (at this record's server version) only when read."""
        self._keep(K_REQUEST, 0, payload)

    def add_sent(self, data: bytes, form: str = "text", msg_id: int = 0, shown: list[str] | None = None,
                 server_hello: bool = False) -> None:
        """A framed message the mock wrote: text forms are kept as written;
        protobuf as the shown `name=value` fields (the encoder made them);
        sent_entry's forms, inline (every reply passes here)."""
        if server_hello:
            self._keep(K_SERVER_HELLO | SENT, 0, data)
        elif form == "text":
            self._keep(K_TEXT | SENT, msg_id, data)
        else:
            self._keep(*sent_entry(data, form, msg_id, shown))

    def add_entries(self, entries: list[tuple[int, int, bytes]]) -> None:
        """Messages written in one go (sent_entry's forms, e.g. a cached
        start-up burst): kept as add_sent keeps each, with one time."""
        at = time.monotonic()
        budget = self.budget
        if not self.head_closed and len(self._head) + len(entries) <= HEAD_MIN_ENTRIES:
            # The common case, a start-up burst into a young head: the checks _keep makes
            # per frame, made once for all (each would pass, as the sum does).
            blobs = [_HEADER.pack(at - self.accepted_at, code, msg_id & 0xFFFF) + data
                     for code, msg_id, data in entries if len(data) <= MAX_FRAME_BYTES]
            cost = sum(map(len, blobs)) + ENTRY_OVERHEAD * len(blobs)
            if (len(blobs) == len(entries) and self.head_bytes + cost <= _HALF_BYTES
                    and budget.used + cost <= budget.limit):
                self._head.extend(blobs)
                self.head_bytes += cost
                budget.used += cost
                return
        for code, msg_id, data in entries:
            self._keep(code, msg_id, data, at)

    def add(self, direction: str, fields: list[str], name: str | None = None, form: str = "text") -> None:
        """Any caller's own fields (the general form; the session uses the raw ones above)."""
        if name is None:
            name = _name_of(fields, from_client=direction == "recv")
        form_bits = _FORMS.index(form) if form in _FORMS else 0
        body = name.encode("utf-8", "replace") + b"\x01" + "\0".join(fields).encode("utf-8", "replace")
        self._keep(K_NAMED | (SENT if direction == "send" else 0) | form_bits << _FORM_SHIFT, 0, body)

    def _keep(self, code: int, msg_id: int, data: bytes, at: float = 0.0) -> None:
        if len(data) > MAX_FRAME_BYTES:
            data = data[:MAX_FRAME_BYTES] + f"\0...(+{len(data) - MAX_FRAME_BYTES} bytes not kept)".encode()
            code |= _CUT
        blob = _HEADER.pack((at or time.monotonic()) - self.accepted_at, code, msg_id & 0xFFFF) + data
        cost = len(blob) + ENTRY_OVERHEAD
        budget = self.budget
        if budget.used + cost > budget.limit:
            budget._trim_closed(cost)
        if (not self.head_closed and len(self._head) < HEAD_ENTRIES and self.head_bytes + cost <= _HALF_BYTES
                and budget.used + cost <= (budget.limit if len(self._head) < HEAD_MIN_ENTRIES else budget.limit // 2)):
            self._head.append(blob)
            self.head_bytes += cost
            budget.used += cost
            return
        self.head_closed = True
        tail = self._tail
        tail.append(blob)
        self.tail_bytes += cost
        budget.used += cost
        if not self._in_tails:
            self._in_tails = True
            budget._tails.append(self)
        while len(tail) > MAX_ENTRIES - HEAD_ENTRIES or self.tail_bytes > _HALF_BYTES:
            self._drop_oldest_tail()
        while budget.used > budget.limit:
            if len(tail) > 1 or not budget._take_from_others(self):
                self._drop_oldest_tail()  # our own oldest, or (nothing else to give) this frame
            if not tail:
                break

    def _drop_oldest_tail(self) -> None:
        freed = len(self._tail.popleft()) + ENTRY_OVERHEAD
        self.tail_bytes -= freed
        self.budget.used -= freed
        self.dropped_entries += 1

    @property
    def kept_bytes(self) -> int:
        return self.head_bytes + self.tail_bytes

    def forget(self) -> None:
        """Give up every kept frame (the budget's call, for closed records)."""
        self.dropped_entries += len(self._head) + len(self._tail)
        self.budget.used -= self.kept_bytes
        self._head, self._tail = [], deque()
        self.head_bytes = self.tail_bytes = 0
        self.head_closed = self.forgotten = True

    def close(self, cause: str) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_cause = cause
            self.budget._closed_record(self)

    # ------------------------------------------------------------ reading (evidence)

    @property
    def head(self) -> list[FrameRecord]:
        return [self._entry(b) for b in self._head]

    @property
    def tail(self) -> list[FrameRecord]:
        return [self._entry(b) for b in self._tail]

    @property
    def entries(self) -> list[FrameRecord]:
        """Every kept frame in order: the head, then the tail (dropped_entries lie between)."""
        return [self._entry(b) for b in (*self._head, *self._tail)]

    def _entry(self, blob: bytes) -> FrameRecord:
        t, code, msg_id = _HEADER.unpack_from(blob)
        data = blob[_HDR:]
        sent = bool(code & SENT)
        kind = code & 0x07
        name, fields, decoded_form = _decode(kind, data, msg_id, sent, self.server_version, bool(code & _CUT))
        form = decoded_form or _FORMS[(code >> _FORM_SHIFT) & 0x03]
        kept = [_cut(f) for f in fields[:MAX_FIELDS]]
        if len(fields) > MAX_FIELDS:
            kept.append(f"...(+{len(fields) - MAX_FIELDS} fields)")
        return FrameRecord(self.conn_id, round(t, 6), "send" if sent else "recv", name, form=form, fields=kept)

    def to_dict(self) -> dict[str, Any]:
        entries = self.entries
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
            **({"dropped_after_frame": len(self._head)} if self.dropped_entries else {}),
            **({"divergences": self.divergences} if self.divergences else {}),
            **({"unmodelled": self.unmodelled} if self.unmodelled else {}),
            "frames": [{"t": e.t, "dir": e.direction, "name": e.name, "fields": e.fields,
                        **({"form": e.form} if e.form != "text" else {})}
                       for e in entries],
        }

    def to_text(self) -> str:
        """Readable transcript: one line a frame, arrows for direction."""
        lines = [f"# connection {self.conn_id} from {self.peer} client_id={self.client_id} "
                 f"server_version={self.server_version}"]
        lines += [_line(e) for e in self.head]
        if self.dropped_entries:
            lines.append(f"# {self.dropped_entries} further frames not kept (the first {len(self._head)} "
                         f"and the last {len(self._tail)} are)")
        if self.forgotten:
            lines.append("# frames given up to the transcript memory budget (the oldest closed records go first)")
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


def sent_entry(data: bytes, form: str = "text", msg_id: int = 0, shown: list[str] | None = None,
               server_hello: bool = False) -> tuple[int, int, bytes]:
    """How a message the mock wrote is kept: (kind code, message id, bytes);
    text forms as written, protobuf as the shown `name=value` fields."""
    form_bits = _FORMS.index(form) if form in _FORMS else 0
    if server_hello:
        return K_SERVER_HELLO | SENT, 0, data
    if shown is not None and form_bits == 2:
        return K_SHOWN | SENT | form_bits << _FORM_SHIFT, msg_id, "\0".join(shown).encode("utf-8", "replace")
    return (K_BINARY_ID if form_bits == 1 else K_TEXT) | SENT | form_bits << _FORM_SHIFT, msg_id, data


def _decode(kind: int, data: bytes, msg_id: int, sent: bool, server_version: int | None,
            cut: bool) -> tuple[str, list[str], str | None]:
    """A kept frame's bytes -> (name, fields, form when the decode says it)."""
    if kind == K_HELLO:
        return "hello", [data.decode("ascii", "replace")], None
    if kind == K_REQUEST:
        if not cut:
            try:
                request, form, fields = decode_client_frame(server_version or 0, data)
                return request.name, fields, form.value
            except Exception:  # noqa: BLE001 - evidence shows what it can; the session closed on it already
                pass
        fields = _split(data)
        return _name_of(fields, from_client=True), fields, None
    if kind == K_SERVER_HELLO:
        return "serverVersion", _split(data[4:]), None
    if kind == K_TEXT:
        fields = _split(data[4:])
        return (message_name(msg_id, from_client=False) if msg_id else _name_of(fields, from_client=False)), fields, None
    if kind == K_BINARY_ID:
        wire_id, body = split_binary_id(data[4:]) if len(data) >= 8 else (0, b"")
        return message_name(wire_id, from_client=False), [str(wire_id), *_split(body)], None
    if kind == K_SHOWN:
        return message_name(msg_id, from_client=False), _joined(data), None
    if kind == K_NAMED:
        name, _, rest = data.partition(b"\x01")
        return name.decode("utf-8", "replace"), _joined(rest), None
    return "?", [data.decode("ascii", "replace")], None


def _split(payload: bytes) -> list[str]:
    text = payload.decode("ascii", "replace")
    if not text:
        return []
    return text.split("\0")[:-1] if text.endswith("\0") else text.split("\0")


def _joined(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").split("\0") if data else []


def _line(e: FrameRecord) -> str:
    arrow = "->" if e.direction == "recv" else "<-"
    form = {"text": "", "protobuf": "[pb] ", "text-binary-id": "[bin] "}.get(e.form, f"[{e.form}] ")
    return f"{e.t:10.6f} {arrow} {e.name:<24} {form}{'|'.join(e.fields)}"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else f"{text[:MAX_FIELD_CHARS]}...(+{len(text) - MAX_FIELD_CHARS} chars)"


def _name_of(fields: list[str], *, from_client: bool) -> str:
    if fields and fields[0].isdigit():
        return message_name(int(fields[0]), from_client=from_client)
    return "?"
