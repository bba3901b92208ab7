"""The one logging setup every entry point calls, with one format.

Why one: `ibgw proxy`, `ibgw soak`, `ibgw mock serve`, `ibgw probe` and the
mock's container entry points (`python3 -m harness.mock.serve`, the stand-in)
each configured logging their own way, in four formats, so the same record
read differently depending on the command that wrote it. Library code only
logs (`logging.getLogger("harness....")`); a command decides once, here,
where records go and how loud each logger is. Called again (a command run
twice in one process, as tests do), it replaces its own handler instead of
adding a second. Standard library only: the mock images carry harness/core.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_ibgw_handler"  # set on the handler this module installed


def setup_logging(level: int | str | None = logging.WARNING, *, stream: TextIO | None = None,
                  levels: Mapping[str, int | str] | None = None, handler_level: int | str | None = None,
                  quiet: bool = False, if_unconfigured: bool = False) -> logging.Handler | None:
    """Send records at `level` and above (the root logger's level; None
    leaves it as it is) to
    `stream` (default: stderr) in FORMAT; `levels` sets named loggers'
    levels (e.g. {"harness": "DEBUG"} or {"ib_async": logging.CRITICAL});
    `handler_level` filters at the handler. quiet=True: records go nowhere
    (a NullHandler, so Python's last-resort stderr output stays silent too).
    if_unconfigured=True: as logging.basicConfig, do nothing (None) when the
    root logger already has a handler this module did not install (a
    command run in-process under pytest keeps pytest's log capture)."""
    root = logging.getLogger()
    if if_unconfigured and any(not getattr(h, _MARK, False) for h in root.handlers):
        return None
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler: logging.Handler
    if quiet:
        handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        if handler_level is not None:
            handler.setLevel(handler_level)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    for name, named_level in (levels or {}).items():
        logging.getLogger(name).setLevel(named_level)
    return handler


__all__ = ["FORMAT", "setup_logging"]
