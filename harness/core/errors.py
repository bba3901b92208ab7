"""The base class of the harness's own errors: a one-line cause and a hint.

Why: an expected failure (bad input, an unreachable Gateway, a missing
engine) is shown as one line and a "Hint:" line, never a traceback. With one
base class a command or the plugin catches `HarnessError` and prints
`str(exc)` and `exc.hint`, whatever layer raised it (testcontainers-python's
convention).
"""

from __future__ import annotations


class HarnessError(Exception):
    """An expected failure with a one-line cause; `.hint` says what to do ("" when nothing useful)."""

    hint: str = ""

    def __init__(self, *args: object, hint: str = "") -> None:
        super().__init__(*args)
        if hint:
            self.hint = hint

    def with_hint(self) -> str:
        """The cause and, when there is one, the hint on its own line."""
        text = str(self)
        return f"{text}\nHint: {self.hint}" if self.hint else text


__all__ = ["HarnessError"]
