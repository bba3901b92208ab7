"""`ibgw diff A B`: what changed on the wire between two recordings.

    ibgw diff gw-10.30.jsonl gw-10.45.jsonl            # a short list for people
    ibgw diff gw-10.30.jsonl gw-10.45.jsonl --json     # for tools (and `ibgw pin` evidence)

Exit codes follow diff(1): 0 no change, 1 changes found, 2 a file is not a
readable recording.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..recording import RecordingError, load
from ..recording.diff import DEFAULT_TIMING_THRESHOLD_MS, diff_recordings, summary

EXIT_SAME, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2


@click.command("diff")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@click.option("--timing-threshold", type=click.FloatRange(0), default=DEFAULT_TIMING_THRESHOLD_MS, show_default=True,
              metavar="MS", help="Report a reply delay that moved by more than this many milliseconds.")
def diff(a: Path, b: Path, as_json: bool, timing_threshold: float) -> None:
    """Messages added, missing or reordered after startApi, field-count and
    value-shape changes per message type, and timing shifts, from recording
    A (before) to recording B (after)."""
    try:
        rec_a, rec_b = load(a), load(b)
    except RecordingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    changes = diff_recordings(rec_a, rec_b, timing_threshold_ms=timing_threshold)
    if as_json:
        click.echo(json.dumps({"a": summary(rec_a), "b": summary(rec_b), "timing_threshold_ms": timing_threshold,
                               "changes": [c.to_dict() for c in changes], "count": len(changes)}, indent=2))
    else:
        for name, rec in (("A", rec_a), ("B", rec_b)):
            h = rec.header
            click.echo(f"{name}: {rec.path} (build {h.gateway_build or 'unknown'}, server version "
                       f"{h.server_version}, {h.connections} connection(s))")
        for change in changes:
            click.echo(change.to_text())
        click.echo(f"{len(changes)} change(s)" if changes else "no change on the wire")
    sys.exit(EXIT_CHANGED if changes else EXIT_SAME)


__all__ = ["diff"]
