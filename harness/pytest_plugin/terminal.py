"""One line on pytest's terminal from anywhere in the plugin."""

from __future__ import annotations

import contextlib

import pytest


def say(config: pytest.Config, text: str) -> None:
    """One line on the terminal now, even from inside a test's captured set-up."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        reporter.write_line(f"\nibgw: {text}")


__all__ = ["say"]
