"""Moved to harness.core.record (the leaf layer every other layer may use); this name is the same module."""
import sys

from harness.core import record as _core
from harness.core.record import *  # noqa: F403  (the names, for type checkers and readers)

sys.modules[__name__] = _core
