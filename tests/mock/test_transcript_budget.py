"""The mock's transcripts are bounded in bytes: per connection, for one
gateway's records together, and for its closed records (issue 20 item 1).

Deterministic: records are fed frames directly, no server and no timing.
"""

from __future__ import annotations

from harness.mock.transcript import (
    ENTRY_OVERHEAD,
    HEAD_ENTRIES,
    MAX_ENTRIES,
    MAX_FRAME_BYTES,
    MAX_RECORD_BYTES,
    ConnectionRecord,
    TranscriptBudget,
)
from harness.protocol.framing import encode_message

BIG = 1 << 40  # a budget that never binds


def _frame(i: int, size: int) -> bytes:
    """A reqCurrentTime-shaped reply carrying i and padding up to size bytes."""
    return encode_message([49, 1, f"{i}:" + "x" * max(0, size - 16)])


def _record(conn_id: int, budget: TranscriptBudget) -> ConnectionRecord:
    record = ConnectionRecord(conn_id, "127.0.0.1:1", budget=budget)
    record.server_version = 178
    return record


def _accounted(budget: TranscriptBudget, records: list[ConnectionRecord]) -> None:
    assert budget.used == sum(r.kept_bytes for r in records)
    assert budget.used <= budget.limit
    assert budget.closed_used <= budget.closed_limit


def test_one_connection_is_bounded_in_bytes_and_keeps_its_first_and_last_frames() -> None:
    budget = TranscriptBudget(limit=BIG, closed_limit=BIG)
    record = _record(1, budget)
    total = 3000  # ~1 KiB each: the byte bound binds long before the count bound
    for i in range(total):
        record.add_sent(_frame(i, 1000), msg_id=49)
        assert record.head_bytes <= MAX_RECORD_BYTES // 2 and record.tail_bytes <= MAX_RECORD_BYTES // 2
    assert record.kept_bytes <= MAX_RECORD_BYTES
    entries = record.entries
    assert len(entries) < total and len(entries) + record.dropped_entries == total
    assert entries[0].fields[2].startswith("0:") and entries[-1].fields[2].startswith(f"{total - 1}:")
    assert entries[0].name == "currentTime" and entries[0].direction == "send"
    assert f"# {record.dropped_entries} further frames not kept (the first {len(record.head)}" in record.to_text()
    assert budget.used == record.kept_bytes


def test_the_count_bound_still_holds_for_tiny_frames() -> None:
    record = _record(1, TranscriptBudget(limit=BIG, closed_limit=BIG))
    for _ in range(MAX_ENTRIES + 500):
        record.add_request(b"49\x001\x00")
    assert len(record.head) == HEAD_ENTRIES and len(record.entries) == MAX_ENTRIES
    assert record.dropped_entries == 500
    assert record.entries[-1].name == "reqCurrentTime" and record.entries[-1].fields == ["49", "1"]


def test_a_huge_frame_is_cut_not_kept_whole() -> None:
    record = _record(1, TranscriptBudget(limit=BIG, closed_limit=BIG))
    record.add_request(b"49\x00" + b"9" * (1 << 20) + b"\x00")
    assert record.kept_bytes < MAX_FRAME_BYTES + 100 + ENTRY_OVERHEAD
    (entry,) = record.entries
    assert entry.fields[-1].endswith("bytes not kept)")


def test_all_records_together_stay_within_the_budget() -> None:
    budget = TranscriptBudget(limit=256 * 1024, closed_limit=16 * 1024)
    records = [_record(i, budget) for i in range(8)]
    for i in range(400):  # round-robin, ~250 B a frame kept: 800 KiB in all
        for record in records:
            record.add_sent(_frame(i, 200), msg_id=49)
        _accounted(budget, records)
    assert budget.used > 0.9 * budget.limit  # the budget is used, not starved
    for record in records:
        kept = record.entries
        assert kept and len(kept) + record.dropped_entries == 400
        assert kept[-1].fields[2].startswith("399:")  # every live connection keeps its newest frame
        assert kept[0].fields[2].startswith("0:")  # and its first
    tails = [len(r.tail) for r in records]
    assert max(tails) - min(tails) <= 2  # busy records share the budget in turn


def test_closed_records_are_bounded_and_the_oldest_give_up_their_frames_first() -> None:
    budget = TranscriptBudget(limit=1 << 20, closed_limit=20 * 1024, closed_records=100)
    records: list[ConnectionRecord] = []
    for i in range(10):  # each ~5 KiB: only the newest few closed records fit in 20 KiB
        record = _record(i, budget)
        for j in range(20):
            record.add_sent(_frame(j, 200), msg_id=49)
        record.close("client closed the connection")
        records.append(record)
        _accounted(budget, records)
    assert records[0].forgotten and not records[-1].forgotten
    forgotten = [r.forgotten for r in records]
    assert forgotten == sorted(forgotten, reverse=True)  # oldest first
    old = records[0]
    assert old.entries == [] and old.dropped_entries == 20 and old.close_cause == "client closed the connection"
    assert "transcript memory budget" in old.to_text() and old.to_dict()["frames"] == []
    assert budget.forgotten_records == sum(forgotten)


def test_closed_records_are_bounded_in_count_too() -> None:
    budget = TranscriptBudget(limit=1 << 30, closed_limit=1 << 30, closed_records=3)
    records = []
    for i in range(5):
        record = _record(i, budget)
        record.add_request(b"49\x001\x00")
        record.close("done")
        records.append(record)
    assert [r.forgotten for r in records] == [True, True, False, False, False]
    _accounted(budget, records)


def test_a_live_connection_takes_room_from_closed_records_before_its_own_frames() -> None:
    budget = TranscriptBudget(limit=16 * 1024, closed_limit=16 * 1024)
    closed = _record(1, budget)
    for j in range(40):
        closed.add_sent(_frame(j, 200), msg_id=49)
    closed.close("done")
    live = _record(2, budget)
    for j in range(40):
        live.add_sent(_frame(j, 200), msg_id=49)
    assert closed.forgotten
    assert live.dropped_entries == 0 and len(live.entries) == 40
    _accounted(budget, [closed, live])
