"""Garbage-collector settings for a long-running mock Gateway process.

Why: with thousands of sessions open, CPython's default thresholds
(700, 10, 10) run a collection every few hundred allocations and a full one
every hundred of those; a full collection walks every live object (every
session's streams, task, record) and stalls every ping for tens of
milliseconds. Measured with 3,000 sessions pinging once a second
(out-of-process `ibgw mock serve`, benchmarks/run_all.py's session row, two
interleaved rounds on a shared 2-core machine): ping p99 56 and 49 ms with
the defaults, 13 and 9 ms with the settings below; either one alone did not
help (p99 50-180 ms). Applied only by the serve entry points (`ibgw mock
serve`, `python3 -m harness.mock.serve`), never on import: an in-process
MockGateway in a team's tests leaves their interpreter as it was.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 allocations (not 700), and a full one after
# 100 middle ones (not 10): fewer pauses, and the full ones rarer still.
SERVE_THRESHOLDS = (50_000, 20, 100)


def tune_for_serving() -> None:
    """Call once the server is listening: what start-up allocated (modules,
    profiles, the account model) moves to the permanent generation, which no
    collection walks again, and the thresholds become SERVE_THRESHOLDS."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVE_THRESHOLDS)
