"""What changed on the wire between two recordings (two Gateway builds, or
one build before and after a change).

Why these categories: what breaks clients between builds is (1) a message
that appears or disappears after startApi (a farm notice, an end marker),
(2) an order that changes (managedAccounts before nextValidId), (3) a
message that gains or loses a field (the official decoders read by count:
one extra field and a callback silently drops), and (4) timing (a
start-up that got slower). Values themselves (balances, times, ids) are
expected to differ between two recordings and are not reported; only
their *shape* (empty, number, text) is.

Connections are paired in order by their client's version range (a suite
run records one connection per client); within a pair, Gateway messages
are compared as counts, the start-up order (after startApi, up to the
first request) and each request's reply order; errors are named by code
(`<- error 2104`) because the code is the message.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..protocol.messages import In, Out
from .codec import DOWN, UP, FrameLine, get_value
from .format import Connection, Recording
from .replay import build_script

DEFAULT_TIMING_THRESHOLD_MS = 250.0

HEADER, ADDED, MISSING, REORDERED, FIELDS, SHAPE, TIMING, CONNECTION = (
    "header", "added", "missing", "reordered", "fields", "shape", "timing", "connection")


@dataclass
class Change:
    kind: str
    message: str | None
    detail: str
    conn: str | None = None  # "1/1": the connection numbers in A and B
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        where = f"conn {self.conn}: " if self.conn else ""
        what = f"{self.message}: " if self.message else ""
        return f"{self.kind:<10} {where}{what}{self.detail}"


def label(frame: FrameLine, version: int) -> str:
    """Direction arrow and name; errors carry their code."""
    text = ("-> " if frame.direction == UP else "<- ") + frame.name
    if frame.direction == DOWN and frame.msg_id == In.ERR_MSG:
        code = get_value(frame, "code", version)
        if code:
            text += f" {code}"
    return text


def _after_start(conn: Connection) -> list[FrameLine]:
    msgs = conn.messages()
    for i, f in enumerate(msgs):
        if f.direction == UP and f.msg_id == Out.START_API:
            return msgs[i:]
    return []


def _shape(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    text = str(value)
    if text == "":
        return "empty"
    try:
        float(text)
        return "number"
    except ValueError:
        return "text"


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass
class _Profile:
    """Per message label: field counts seen and the shapes seen at each field."""

    counts: dict[str, set[int]] = field(default_factory=dict)
    shapes: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def add(self, name: str, frame: FrameLine) -> None:
        if frame.pb is not None:
            flat = _flatten(frame.pb)
            items = list(flat.items())
        else:
            items = [(str(i), v) for i, v in enumerate(frame.fields)]
        self.counts.setdefault(name, set()).add(len(items))
        slots = self.shapes.setdefault(name, {})
        for key, value in items:
            slots.setdefault(key, set()).add(_shape(value))


def _profile(rec: Recording) -> _Profile:
    prof = _Profile()
    for conn in rec.connections:
        version = conn.server_version or 0
        for frame in _after_start(conn):
            prof.add(label(frame, version), frame)
    return prof


def _pair(a: list[Connection], b: list[Connection]) -> tuple[list[tuple[Connection, Connection]], list[Connection],
                                                             list[Connection]]:
    a = [c for c in a if c.started_api]
    left = [c for c in b if c.started_api]
    pairs = []
    unpaired_a = []
    for conn in a:
        same = next((c for c in left if c.client_range == conn.client_range), None)
        if same is None:
            unpaired_a.append(conn)
            continue
        left.remove(same)
        pairs.append((conn, same))
    for conn in list(unpaired_a):  # no range match: pair in order with what is left
        if left:
            pairs.append((conn, left.pop(0)))
            unpaired_a.remove(conn)
    return pairs, unpaired_a, left


def _rng(conn: Connection) -> str:
    return f"v{conn.client_range[0]}..{conn.client_range[1]}" if conn.client_range else "v?"


def _order_changes(seq_a: list[str], seq_b: list[str], context: str, where: str) -> list[Change]:
    """First occurrences of the labels both sides have, compared in order."""
    common = set(seq_a) & set(seq_b)
    first_a = list(dict.fromkeys(x for x in seq_a if x in common))
    first_b = list(dict.fromkeys(x for x in seq_b if x in common))
    if first_a == first_b:
        return []
    matcher = difflib.SequenceMatcher(a=first_a, b=first_b, autojunk=False)
    kept = {first_a[i] for block in matcher.get_matching_blocks() for i in range(block.a, block.a + block.size)}
    moved = [x for x in first_a if x not in kept]
    return [Change(REORDERED, name, f"{context}: position {first_a.index(name) + 1} in A, "
                   f"{first_b.index(name) + 1} in B (A: {', '.join(first_a)} | B: {', '.join(first_b)})",
                   where, {"context": context, "a": first_a, "b": first_b}) for name in moved]


def _startup(conn: Connection) -> list[FrameLine]:
    frames = _after_start(conn)[1:]
    out = []
    for f in frames:
        if f.direction == UP:
            break
        out.append(f)
    return out


def _conn_changes(a: Connection, b: Connection, threshold_ms: float) -> list[Change]:
    where = f"{a.conn}/{b.conn}"
    va, vb = a.server_version or 0, b.server_version or 0
    changes: list[Change] = []
    seq_a = [label(f, va) for f in _after_start(a)]
    seq_b = [label(f, vb) for f in _after_start(b)]
    ca, cb = Counter(seq_a), Counter(seq_b)
    for name in sorted(set(ca) | set(cb)):
        if ca[name] == cb[name]:
            continue
        if ca[name] == 0:
            changes.append(Change(ADDED, name, f"{cb[name]}x in B, never in A", where, {"a": 0, "b": cb[name]}))
        elif cb[name] == 0:
            changes.append(Change(MISSING, name, f"{ca[name]}x in A, never in B", where, {"a": ca[name], "b": 0}))
        else:
            kind = ADDED if cb[name] > ca[name] else MISSING
            changes.append(Change(kind, name, f"{ca[name]}x in A, {cb[name]}x in B", where,
                                  {"a": ca[name], "b": cb[name]}))
    changes += _order_changes([label(f, va) for f in _startup(a)], [label(f, vb) for f in _startup(b)],
                              "start-up after startApi", where)
    script_a, script_b = build_script(a), build_script(b)
    seen: Counter[str] = Counter()
    b_exchanges: dict[tuple[str, int], Any] = {}
    for ex in script_b.exchanges:
        seen[ex.request.name] += 1
        b_exchanges[(ex.request.name, seen[ex.request.name])] = ex
    seen.clear()
    for ex in script_a.exchanges:
        seen[ex.request.name] += 1
        other = b_exchanges.get((ex.request.name, seen[ex.request.name]))
        if other is None:
            continue
        context = f"replies to {ex.request.name}" + (f" #{seen[ex.request.name]}" if seen[ex.request.name] > 1 else "")
        changes += _order_changes([label(f, va) for _, f in ex.responses], [label(f, vb) for _, f in other.responses],
                                  context, where)
        if ex.responses and other.responses:
            for which, da, db in (("first reply", ex.responses[0][0], other.responses[0][0]),
                                  ("last reply", ex.responses[-1][0], other.responses[-1][0])):
                if abs(db - da) * 1000 > threshold_ms:
                    changes.append(Change(TIMING, f"-> {ex.request.name}",
                                          f"{which} after {da * 1000:.0f} ms in A, {db * 1000:.0f} ms in B",
                                          where, {"a_ms": round(da * 1000, 1), "b_ms": round(db * 1000, 1)}))
    if script_a.start is not None and script_b.start is not None:
        for name in ("nextValidId", "managedAccounts"):
            ta = next((d for d, f in script_a.start.responses if f.name == name), None)
            tb = next((d for d, f in script_b.start.responses if f.name == name), None)
            if ta is not None and tb is not None and abs(tb - ta) * 1000 > threshold_ms:
                changes.append(Change(TIMING, f"<- {name}", f"after startApi: {ta * 1000:.0f} ms in A, "
                                      f"{tb * 1000:.0f} ms in B", where,
                                      {"a_ms": round(ta * 1000, 1), "b_ms": round(tb * 1000, 1)}))
    return changes


def diff_recordings(a: Recording, b: Recording, *, timing_threshold_ms: float = DEFAULT_TIMING_THRESHOLD_MS
                    ) -> list[Change]:
    changes: list[Change] = []
    ha, hb = a.header, b.header
    for key in ("gateway_build", "server_version", "server_versions", "client_ranges"):
        va, vb = getattr(ha, key), getattr(hb, key)
        if va != vb:
            changes.append(Change(HEADER, None, f"{key}: {va} -> {vb}", None, {"key": key, "a": va, "b": vb}))
    pairs, only_a, only_b = _pair(a.connections, b.connections)
    for conn in only_a:
        changes.append(Change(CONNECTION, None, f"A's connection {conn.conn} ({_rng(conn)}) has no counterpart in B",
                              f"{conn.conn}/-"))
    for conn in only_b:
        changes.append(Change(CONNECTION, None, f"B's connection {conn.conn} ({_rng(conn)}) has no counterpart in A",
                              f"-/{conn.conn}"))
    for ca, cb in pairs:
        changes += _conn_changes(ca, cb, timing_threshold_ms)
    pa, pb = _profile(a), _profile(b)
    for name in sorted(set(pa.counts) & set(pb.counts)):
        if pa.counts[name] != pb.counts[name]:
            changes.append(Change(FIELDS, name, f"field count {_counts(pa.counts[name])} in A, "
                                  f"{_counts(pb.counts[name])} in B", None,
                                  {"a": sorted(pa.counts[name]), "b": sorted(pb.counts[name])}))
        sa, sb = pa.shapes[name], pb.shapes[name]
        for slot in sorted(set(sa) | set(sb), key=lambda s: (len(s), s)):
            if slot in sa and slot in sb and sa[slot] != sb[slot]:
                changes.append(Change(SHAPE, name, f"field {slot}: {'/'.join(sorted(sa[slot]))} in A, "
                                      f"{'/'.join(sorted(sb[slot]))} in B", None,
                                      {"field": slot, "a": sorted(sa[slot]), "b": sorted(sb[slot])}))
            elif (slot in sa) != (slot in sb) and not slot.isdigit():  # a protobuf field that came or went
                side = "B only" if slot in sb else "A only"
                changes.append(Change(FIELDS, name, f"protobuf field {slot}: {side}", None, {"field": slot}))
    return changes


def _counts(values: set[int]) -> str:
    return "/".join(str(v) for v in sorted(values))


def summary(rec: Recording) -> dict[str, Any]:
    h = rec.header
    return {"file": str(rec.path) if rec.path else None, "gateway_build": h.gateway_build,
            "server_version": h.server_version, "connections": h.connections, "frames": h.frames,
            "recorded_at": h.recorded_at}


__all__ = ["DEFAULT_TIMING_THRESHOLD_MS", "Change", "diff_recordings", "label", "summary"]
