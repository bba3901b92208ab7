"""Redaction of what pytest itself reports: captured logs, stdout and
stderr, the failure text and the exception message.

Why: the client libraries log what they receive (ib_async logs every
position and execution with its account id; the official client prints
frames), and pytest hands those captures to allure (the "log", "stdout"
and "stderr" attachments), to the JUnit XML and to the terminal. The
evidence record is redacted when written; this covers everything else a
test run produces. Called from the plugin's innermost makereport wrapper,
so allure and JUnit only ever see the redacted text.

Duck-typed on pytest's TestReport and CallInfo, so this module imports no
pytest and the evidence layer stays usable without it.
"""

from __future__ import annotations

from typing import Any

from ..core.redact import redact_text


def redact_report(report: Any, call: Any) -> None:
    """Redact a TestReport's sections and failure text in place, and the
    message of the exception allure reads from the call."""
    sections = getattr(report, "sections", None)
    if sections:
        report.sections = [(title, redact_text(content)) for title, content in sections]
    if getattr(report, "longrepr", None) is not None:
        text = report.longreprtext
        redacted = redact_text(text)
        if redacted != text:
            report.longrepr = redacted  # pytest, JUnit and allure accept a plain-text longrepr
    excinfo = getattr(call, "excinfo", None)
    exc = getattr(excinfo, "value", None)
    if exc is not None and getattr(exc, "args", None):
        args = tuple(redact_text(a) if isinstance(a, str) else a for a in exc.args)
        if args != exc.args:
            try:
                exc.args = args  # allure's status message is exconly(), built from the args
            except (AttributeError, TypeError):  # an exception type that refuses it: its text stays local
                pass


def redact_warning(warning_message: Any) -> None:
    """Redact a recorded warning (a warnings.WarningMessage) in place: its
    text and the source line pytest's warnings summary prints under it.
    Called before the terminal reporter formats it."""
    message = getattr(warning_message, "message", None)
    if isinstance(message, Warning) and message.args:
        args = tuple(redact_text(a) if isinstance(a, str) else a for a in message.args)
        if args != message.args:
            try:
                message.args = args
            except (AttributeError, TypeError):
                pass
    filename, lineno = getattr(warning_message, "filename", None), getattr(warning_message, "lineno", None)
    if getattr(warning_message, "line", None) is None and filename and lineno:
        import linecache

        warning_message.line = redact_text(linecache.getline(filename, lineno))
    elif isinstance(getattr(warning_message, "line", None), str):
        warning_message.line = redact_text(warning_message.line)


__all__ = ["redact_report", "redact_warning"]
