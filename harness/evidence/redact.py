"""The single place where account ids are redacted.

Why: probe output, evidence files and reports are pasted into tickets and
chats. An account id is personal data, so nothing the harness prints or
writes may carry one in full. A redacted id still tells the reader which
kind of account it was (the prefix: DU/DF paper, U/F live) and lets them
tell two accounts apart (the last three characters), e.g. ``DU…567``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ELLIPSIS = "\u2026"

# What an IBKR account id looks like inside free text: paper (DU, DF) and
# live/advisor (U, F) prefixes followed by digits.
ACCOUNT_ID_RE = re.compile(r"\b(?:DU|DF|U|F)\d{5,}\b")

_KEEP_TAIL = 3


def redact_account(account: str) -> str:
    """``DU1234567`` -> ``DU…567``.

    Keeps the letter prefix and the last three characters; ids too short to
    hide anything that way keep only their prefix.
    """
    account = account.strip()
    if not account:
        return account
    prefix_len = len(account) - len(account.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    prefix = account[: min(prefix_len, 2)]
    hidden = len(account) - len(prefix) - _KEEP_TAIL
    if hidden < 3:  # revealing the tail would reveal most of the id
        return f"{prefix}{ELLIPSIS}"
    return f"{prefix}{ELLIPSIS}{account[-_KEEP_TAIL:]}"


def redact_accounts(accounts: Iterable[str]) -> list[str]:
    return [redact_account(a) for a in accounts]


def redact_text(text: str, accounts: Iterable[str] = ()) -> str:
    """Redact the given account ids and anything shaped like one in text."""
    known = sorted({a for a in accounts if a}, key=len, reverse=True)
    if known:
        text = re.sub("|".join(re.escape(a) for a in known), lambda m: redact_account(m.group(0)), text)
    return ACCOUNT_ID_RE.sub(lambda m: redact_account(m.group(0)), text)


def redact_tree(data: Any, accounts: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like structure (dicts, lists, tuples, strings) with
    every account id in every string value redacted. Keys are kept."""
    known = tuple(accounts)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, known)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(data)


__all__ = ["ACCOUNT_ID_RE", "redact_account", "redact_accounts", "redact_text", "redact_tree"]
