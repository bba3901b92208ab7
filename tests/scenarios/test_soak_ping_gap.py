"""The soak's ping gap counts from the first ping, not the first answer.

A client whose pings were never answered (it never connected, or the
Gateway answers nothing after the handshake) used to show no gap at all,
so the ping-gap check passed for it; a slow start counted nothing either.
"""

from __future__ import annotations

from typing import Any, cast

from harness.scenarios.soak import _ClientRun


def _run() -> _ClientRun:
    return _ClientRun("raw", client=cast(Any, None), origin=100.0)  # the client is only read for interval records


def test_pings_never_answered_are_an_open_gap_from_the_first_ping() -> None:
    run = _run()
    assert run.open_gap(100.5) == 0.0  # no ping yet: nothing to measure
    for at in (101.0, 102.0, 103.0):
        run.record_ping(at, None, "not connected")
    assert run.max_gap == 0.0
    assert run.open_gap(130.0) == 29.0


def test_a_late_first_answer_is_a_gap_from_the_first_ping() -> None:
    run = _run()
    run.record_ping(101.0, None, "timeout")
    run.record_ping(102.0, None, "timeout")
    run.record_ping(120.0, 0.5)
    assert run.max_gap == 19.5
    run.record_ping(121.0, 0.1)
    assert run.max_gap == 19.5 and round(run.open_gap(122.1), 3) == 1.0


def test_answered_from_the_start_has_only_small_gaps() -> None:
    run = _run()
    for n in range(5):
        run.record_ping(101.0 + n, 0.01)
    assert round(run.max_gap, 3) == 1.0 and round(run.open_gap(105.51), 3) == 0.5
