"""One line on pytest's terminal from anywhere in the plugin."""

from __future__ import annotations

import contextlib

import pytest

from ..core.redact import redact_text


def say(config: pytest.Config, text: str) -> None:
    """One line on the terminal now, even from inside a test's captured set-up (redacted:
    live-run notes may name an account)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        reporter.write_line(f"\nibgw: {redact_text(text)}")


__all__ = ["say"]
