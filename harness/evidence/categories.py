"""Moved to harness.core.categories (the Evidence record needs it and lives there); this name is the same module."""
import sys

from harness.core import categories as _core
from harness.core.categories import *  # noqa: F403  (the names, for type checkers and readers)

sys.modules[__name__] = _core
