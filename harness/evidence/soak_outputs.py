"""What a soak shows while it runs and writes when it ends: the progress line and evidence.json + the plot.

Why apart from the command: `ibgw soak` and suites/test_soak.py show and
write the same things, and a suite must not import the CLI (the layer order
in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from ..core.record import Evidence


class SoakProgress:
    """A progress bar with the live figures of the last interval on a
    terminal; one plain line per interval otherwise (CI logs)."""

    def __init__(self, duration: float, stream: Any = None) -> None:
        self.duration = duration
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SoakProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.table import Column

            # The figures wrap under a narrow terminal rather than being cut off.
            self._progress = Progress(TextColumn("soak"), BarColumn(bar_width=20), TimeElapsedColumn(),
                                      TextColumn("{task.fields[figures]}",
                                                 table_column=Column(overflow="fold", ratio=1)),
                                      console=Console(file=self.stream), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("soak", total=self.duration, figures="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, figures: dict[str, Any]) -> None:
        parts = []
        for name, c in figures["clients"].items():
            # A data outage (1100 until 1101/1102) keeps the socket up: said while it lasts.
            state = "DOWN" if not c["connected"] else "up, DATA OUTAGE (1100)" if c.get("data_outage") else "up"
            p50 = "-" if c["p50_ms"] is None else f"{c['p50_ms']:.1f}"
            p99 = "-" if c["p99_ms"] is None else f"{c['p99_ms']:.1f}"
            parts.append(f"{name} {state} p50 {p50} p99 {p99} ms missed {c['missed']}")
        parts.append(f"disc {figures['disconnects']} rec {figures['recoveries']} "
                     f"probes {figures['probes_ok']}/{figures['probes']} rss {figures['rss_mb']:.0f}MB "
                     f"fds {figures['fds']} cw {figures['close_wait']}")
        text = " | ".join(parts)
        if self._progress is not None:
            self._progress.update(self._task, completed=figures["t"], figures=text)
        else:
            self.stream.write(f"[soak {figures['t']:7.1f}/{figures['duration']:g} s] {text}\n")
            self.stream.flush()


def write_outputs(evidence: Evidence, out_dir: Path) -> list[Path]:
    """evidence.json and the timeline plot next to soak.jsonl."""
    from .soak_plot import plot_timeline

    written = [evidence.write(out_dir, "evidence")]
    jsonl = out_dir / "soak.jsonl"
    if jsonl.is_file():
        with contextlib.suppress(ImportError):  # matplotlib missing: the JSON Lines are the evidence
            written.append(plot_timeline(jsonl, out_dir / "timeline.png"))
    return written




__all__ = ["SoakProgress", "write_outputs"]
