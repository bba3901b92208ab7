"""Every environment variable the harness reads: the table lives in
`harness.core.config` (the stdlib-only mock reads it too); this name is
kept so `harness.config.markdown_table()`, `env()` and SETTINGS stay where
the README says they are."""

from __future__ import annotations

from .core.config import (
    FOREIGN,
    OLD_NAMES,
    PREFIX,
    SETTINGS,
    Foreign,
    Setting,
    UnknownSetting,
    env,
    foreign_env,
    markdown_table,
    source,
)

__all__ = ["FOREIGN", "OLD_NAMES", "PREFIX", "SETTINGS", "Foreign", "Setting", "UnknownSetting", "env", "foreign_env",
           "markdown_table", "source"]
