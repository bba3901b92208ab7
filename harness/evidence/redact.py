"""The single place where account ids are redacted.

Why: probe output, evidence files and reports are pasted into tickets and
chats. An account id is personal data, so nothing the harness prints or
writes may carry one in full. A redacted id still tells the reader which
kind of account it was (the prefix: DU/DF paper, U/F live) and lets them
tell two accounts apart (the last three characters), e.g. ``DU…567``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

ELLIPSIS = "\u2026"

# What an IBKR account id looks like inside free text: paper (DU, DF) and
# live/advisor (U, F) prefixes followed by digits.
# A word boundary before it, or the escaped NUL of a logged wire frame
# (ibapi logs b'...\x00DU1234567\x00', where "0DU" has no boundary).
ACCOUNT_ID_RE = re.compile(r"(?:\b|(?<=\\x00))(?:DU|DF|U|F)\d{5,}\b")

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
    """Redact credentials from the environment, the given account ids and
    anything shaped like an account id in text."""
    text = redact_secrets(text)
    known = sorted({a for a in accounts if a}, key=len, reverse=True)
    if known:
        text = re.sub("|".join(re.escape(a) for a in known), lambda m: redact_account(m.group(0)), text)
    return ACCOUNT_ID_RE.sub(lambda m: redact_account(m.group(0)), text)


# Environment variables that hold credentials (TWS_PASSWORD, TWS_USERID,
# IB_API_TOKEN, VNC_SERVER_PASSWORD, ...): their values never reach an
# artifact, whichever library or log line carried them there.
SECRET_ENV_RE = re.compile(r"PASS(?:WORD|WD)?|SECRET|TOKEN|API_?KEY|CREDENTIAL|USER_?ID|LOGIN", re.IGNORECASE)
SECRET_MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values ("1", "yes") would mask ordinary text


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-named environment variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_RE.search(k) and len(v.strip()) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask every credential value from the environment found in text."""
    for value in secret_values(environ):
        text = text.replace(value, SECRET_MASK)
    return text


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


class Pseudonymizer:
    """Consistent stand-ins for identifying values, for artifacts that must
    stay usable (a recording a mock replays to real clients), where
    ``DU…567`` would not do: one fake value per real value, everywhere.

    Accounts keep their letter prefix (paper/live stays visible) and their
    length (so a fake fits wherever the real one did, even inside protobuf
    bytes): ``DU7654321`` -> ``DU0000001``. Order, perm and execution ids
    are numbered the same way; texts the caller names (a holder's name, an
    FA group) become ``REDACTED-1``; environment credentials become ``***``.
    The real -> fake table lives only in memory, never in the artifact.
    """

    def __init__(self, extra_texts: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> None:
        self.accounts: dict[str, str] = {}
        self.ids: dict[tuple[str, str], str] = {}
        self.texts = {t: f"REDACTED-{i}" for i, t in enumerate(sorted({t for t in extra_texts if t}), 1)}
        self.secrets = secret_values(environ)
        self._pattern: re.Pattern[str] | None = None

    def learn_accounts(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            if account.strip():
                self.account(account.strip())

    def account(self, real: str) -> str:
        fake = self.accounts.get(real)
        if fake is None:
            prefix = real[: len(real) - len(real.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))]
            fake = prefix + str(len(self.accounts) + 1).zfill(max(1, len(real) - len(prefix)))
            self.accounts[real] = fake
            self._pattern = None
        return fake

    def text(self, value: str) -> str:
        """Every account id (known or shaped like one), named text and
        credential in value replaced, in one pass (a fake is never re-mapped)."""
        for secret in self.secrets:
            value = value.replace(secret, SECRET_MASK)
        if self._pattern is None:
            known = sorted({*self.accounts, *self.texts}, key=len, reverse=True)
            alternatives = [re.escape(k) for k in known] + [ACCOUNT_ID_RE.pattern]
            self._pattern = re.compile("|".join(alternatives))
        return self._pattern.sub(self._replace, value)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        return self.texts.get(found) or self.account(found)

    def number(self, kind: str, real: str) -> str:
        """An order or perm id: one fake number per (kind, real value); empty
        and zero ("not set") stay as they are."""
        if real in ("", "0", "-1"):
            return real
        key = (kind, real)
        if key not in self.ids:
            self.ids[key] = str(1_000_001 + sum(k == kind for k, _ in self.ids))
        return self.ids[key]

    def exec_id(self, real: str) -> str:
        """``0000e0d5.6601a2b3.01.01`` -> ``00000000.00000001.01.01``: the
        shape (part count and widths) kept, the identifying parts numbered."""
        if not real:
            return real
        key = ("exec", real)
        if key not in self.ids:
            n = len([k for k, _ in self.ids if k == "exec"]) + 1
            parts = real.split(".")
            if len(parts) >= 2:
                parts[0] = "0" * len(parts[0])
                parts[1] = format(n, "x").zfill(len(parts[1]))
                self.ids[key] = ".".join(parts)
            else:
                self.ids[key] = f"exec-{n}"
        return self.ids[key]

    def walk(self, data: Any) -> Any:
        """A copy of a JSON-like tree with text() applied to every string."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {k: self.walk(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.walk(v) for v in data]
        return data

    def summary(self) -> dict[str, int]:
        """How many values of each kind were replaced (counts only)."""
        counts: dict[str, int] = {"accounts": len(self.accounts), "texts": len(self.texts)}
        for kind, _ in self.ids:
            counts[f"{kind}_ids"] = counts.get(f"{kind}_ids", 0) + 1
        return counts


__all__ = ["ACCOUNT_ID_RE", "Pseudonymizer", "SECRET_ENV_RE", "redact_account", "redact_accounts", "redact_secrets", "redact_text",
           "redact_tree", "secret_values"]
