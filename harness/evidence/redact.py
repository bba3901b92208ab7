"""Moved to harness.core.redact (the leaf layer every other layer may use); this name is the same module."""
import sys

from harness.core import redact as _core
from harness.core.redact import *  # noqa: F403  (the names, for type checkers and readers)

sys.modules[__name__] = _core
