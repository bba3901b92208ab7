"""One atomic write: a temporary sibling renamed into place.

Why: a reader (the report, the summary, a second run) or a run killed
mid-write must see the old file or the new one, never half of one. The
default temporary name `.NAME.PID.tmp` carries the writer's pid, so the
start-up sweep (harness/runstate.py) removes only the leftovers of writers
that are gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

TEMP_SUFFIX = ".tmp"


def temp_sibling(path: Path) -> Path:
    """The hidden, pid-tagged temporary file `atomic_write` uses by default."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def atomic_write(path: Path, write: Callable[[TextIO], object], tmp: Path | None = None) -> Path:
    """Call `write` with a text file opened on `tmp` (default temp_sibling(path)),
    then rename it onto `path`. On any failure the temporary file is removed and
    the error (OSError for an unwritable place) propagates for the caller to report."""
    tmp = tmp if tmp is not None else temp_sibling(path)
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def atomic_write_text(path: Path, text: str, tmp: Path | None = None) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda fh: fh.write(text), tmp)


__all__ = ["TEMP_SUFFIX", "atomic_write", "atomic_write_text", "temp_sibling"]
