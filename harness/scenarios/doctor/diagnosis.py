"""Turning rung verdicts into causes: the silent family, and each diagnosis line's table row.

Why its own module: probe asks silent_family too, so the two commands agree, and every line
doctor prints must map to a sourced row of causes.py."""

from __future__ import annotations

from typing import Any

from ..causes import cause_for_text
from .sockets import SocketSurvey
from .vocabulary import CAUSE_NOT_LOGGED_IN, CAUSE_RED, CAUSE_ZOMBIE


def silent_family(survey: SocketSurvey, threshold: int) -> list[str]:
    """Table keys (causes.py) of what remains possible when TCP is accepted
    and nothing answers: probe asks this so it agrees with doctor."""
    rows = [cause_for_text(title) for title in silent_family_titles(survey, threshold)]
    return [row.key for row in rows if row is not None]


def silent_family_titles(survey: SocketSurvey, threshold: int) -> list[str]:
    """What remains possible when TCP is accepted and nothing answers."""
    if survey.visible and survey.count >= threshold:
        return [CAUSE_ZOMBIE, CAUSE_NOT_LOGGED_IN, CAUSE_RED]
    if survey.conclusive_zero:
        return [CAUSE_NOT_LOGGED_IN, CAUSE_RED]
    return [CAUSE_NOT_LOGGED_IN, CAUSE_RED, CAUSE_ZOMBIE]  # few or unknown CLOSE_WAIT: not excluded


def diagnosis_row(text: str) -> dict[str, Any]:
    """The table row a diagnosis line names; a line no row names is a bug
    (tests/scenarios/test_doctor.py checks every line maps to a sourced row)."""
    row = cause_for_text(text)
    if row is None:
        return {"text": text, "key": None, "source": "", "fix": "", "meaning": ""}
    return {"text": text, **row.to_dict()}


def dedupe(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
