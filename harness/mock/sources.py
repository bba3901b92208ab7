"""Where a fault model comes from: the public report it reproduces, or an
honest "field reports only".

Why a module of its own: every cause the harness names (a mock fault, a
proxy fault, a profile's regression fixture, a doctor verdict) must say
what it rests on, and one checker decides whether a source text is a real
citation, so the tests that fail on an unsourced fault all apply the same
rule. Standard library only (the mock imports it).
"""

from __future__ import annotations

import re

# The words a fault carries when no public report shows the behaviour.
FIELD_REPORTS_ONLY = "field reports only"
# A fault that is a test knob (a delay, a cap the harness chooses) and
# claims no particular Gateway behaviour.
NO_GATEWAY_CLAIM = "a test knob: no Gateway behaviour claimed"

# owner/repo#123, owner/repo PR #123, owner/repo PR#123
_ISSUE = re.compile(r"\b[\w.-]+/[\w.-]+ ?(?:PR ?)?#\d+\b")
# owner/repo path/to/file.ext (public code read as the source)
_CODE = re.compile(r"\b[\w.-]+/[\w.-]+ [\w./-]+\.\w+\b")


def public_citations(source: str) -> list[str]:
    """The repo#issue (or repo PR #N) references in a source text."""
    return _ISSUE.findall(source)


def is_sourced(source: str) -> bool:
    """True when `source` cites a public report or code, or says plainly
    that only field reports (or nothing: a test knob) stand behind it."""
    text = (source or "").strip()
    if not text:
        return False
    return bool(_ISSUE.search(text) or _CODE.search(text) or FIELD_REPORTS_ONLY in text
                or text.startswith(NO_GATEWAY_CLAIM))


__all__ = ["FIELD_REPORTS_ONLY", "NO_GATEWAY_CLAIM", "is_sourced", "public_citations"]
