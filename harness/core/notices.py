"""Notices library code owes its user: one channel instead of print().

Why: a few things must reach the person running the harness even inside a pytest run, where a
log record emitted outside a test is swallowed by log capture: containers of a dead run removed,
a container still logging in, plots that could not be drawn, a served mock's listening line.
Library code says them here; the sink writes a line to stderr (flushed, so it shows while a long
step runs), and a host that has its own terminal (a CLI, a plugin) may point the sink elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Sink = Callable[[str], None]


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _to_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


_sink: Sink = _to_stderr


def notice(line: str) -> None:
    """Tell the user ``line`` (one line, already redacted by the caller where it carries data)."""
    _sink(line)


def banner(line: str) -> None:
    """A command's own output on stdout (a served mock's listening line, which scripts read)."""
    _to_stdout(line)


def set_sink(sink: Sink | None) -> Sink:
    """Send notices to ``sink`` (None: back to stderr); returns the previous sink so a host can restore it."""
    global _sink
    previous, _sink = _sink, (sink or _to_stderr)
    return previous
