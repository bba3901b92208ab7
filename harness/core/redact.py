"""The single place where account ids are redacted.

Why: probe output, evidence files and reports are pasted into tickets and
chats. An account id is personal data, so nothing the harness prints or
writes may carry one in full. A redacted id still tells the reader which
kind of account it was (the prefix: DU/DF paper, U/F live) and lets them
tell two accounts apart (the last three characters), e.g. ``DU…567``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

ELLIPSIS = "\u2026"

# What an IBKR account id looks like inside free text: paper (DU, DF) and
# live/advisor (U, F) prefixes followed by five or more digits, and no digit
# after (so "DU1234567_x" and "DU1234567abc" match; \b would miss them).
# Upper case: any character before, because logged wire bytes put anything
# there: ibapi's protobuf-era lines carry b'...\x12\tDU1234567' ("t" before
# the id), text-era ones b'...\x00DU1234567\x00', and a name may run into it
# ("acctDU1234567"). Only a backslash is excluded, so the escapes \U0001F600
# and \u2026 (a redacted id in JSON) are never taken for ids.
# Lower case (a user typing "du1234567"): any character but a backslash or a
# lower-case hex digit before it, so hex (digests, uuids: "...0f12345...")
# stays intact. Ids the process has seen are also matched exactly, in any
# case, with anything around them (remember_accounts below).
ACCOUNT_ID_RE = re.compile(r"(?<!\\)(?:DU|DF|U|F)\d{5,}(?!\d)"
                           r"|(?<![\\0-9a-f])(?i:du|df|u|f)\d{5,}(?!\d)")

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


# ---------------------------------------------------------------- ids seen

# Managed-account ids this process has seen (the mock's model, a proxy
# decoding managedAccounts, a client adapter's managedAccounts, `--accounts`).
# Process-wide on purpose: the writers that must hide them (log records,
# pytest's captured logs and failure text, allure attachments, JUnit, the
# terminal) have no handle on the session or connection that saw the ids,
# and an id once seen must stay hidden everywhere for the rest of the run.
# Only ever grows; holds ids, never writes them anywhere.
_MIN_KNOWN_LEN = 6  # shorter strings ("DU111", a test fixture) would mask ordinary text
_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_known_lock = threading.Lock()


def remember_accounts(accounts: Iterable[str]) -> None:
    """Add account ids to those every later redaction in this process hides
    exactly (any case, any byte before or after), beyond the pattern."""
    global _known_re
    new = {a.strip().upper() for a in accounts if isinstance(a, str) and len(a.strip()) >= _MIN_KNOWN_LEN}
    with _known_lock:
        if new - _known:
            _known.update(new)
            _known_re = None


def known_accounts() -> frozenset[str]:
    return frozenset(_known)


def _known_pattern() -> re.Pattern[str] | None:
    global _known_re
    with _known_lock:
        if _known_re is None and _known:
            alternatives = "|".join(re.escape(a) for a in sorted(_known, key=len, reverse=True))
            # Digits right after a known id belong to the match: a longer id
            # ("U12345678" when "U1234567" is known) is masked as a whole.
            _known_re = re.compile(f"(?:{alternatives})\\d*", re.IGNORECASE)
        return _known_re


def redact_text(text: str, accounts: Iterable[str] = ()) -> str:
    """Redact credentials from the environment, the given account ids and
    the ids this process has seen (exactly, any case, anywhere), and
    anything shaped like an account id in text."""
    text = redact_secrets(text)
    known = sorted({a for a in accounts if a}, key=len, reverse=True)
    if known:
        text = re.sub(f"(?:{'|'.join(re.escape(a) for a in known)})\\d*", lambda m: redact_account(m.group(0)),
                      text, flags=re.IGNORECASE)
    seen = _known_pattern()
    if seen is not None:
        text = seen.sub(lambda m: redact_account(m.group(0)), text)
    return ACCOUNT_ID_RE.sub(lambda m: redact_account(m.group(0)), text)


# ---------------------------------------------------------------- log records

_redacting_classes: dict[type, type] = {}


def _redacting_class(base: type[logging.LogRecord]) -> type[logging.LogRecord]:
    cls = _redacting_classes.get(base)
    if cls is None:
        def get_message(self: logging.LogRecord) -> str:
            return redact_text(base.getMessage(self))

        cls = type(f"Redacting{base.__name__}", (base,), {"getMessage": get_message, "__module__": __name__})
        _redacting_classes[base] = cls
    return cls


class RedactingLogRecord(logging.LogRecord):
    """A log record whose message, traceback and stack come out redacted,
    whichever handler formats it (pytest's caplog and report capture, live
    logging, a file, stderr). msg and args stay as logged, so code that
    matches records by their template still can."""

    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return redact_text(super().getMessage())


def unredacted_message(record: logging.LogRecord) -> str:
    """A record's message as logged, for code that reads a library's log as
    data (the ib_async adapter reads frames from it) and writes none of it."""
    return logging.LogRecord.getMessage(record)


def _redact_record_extras(record: logging.LogRecord) -> None:
    """Tracebacks and stacks are formatted outside getMessage: format them
    now, redacted; Formatter.format keeps a preset exc_text."""
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_log_redaction() -> None:
    """Make every log record created from now on redact itself (idempotent).

    A record factory rather than a handler filter: a filter sees only the
    handlers it is attached to, while pytest adds and removes its capture
    handlers per test phase; the factory covers them all, and whatever a
    team's own logging config adds."""
    previous = logging.getLogRecordFactory()
    if previous is RedactingLogRecord or getattr(previous, "_ibgw_redacting", False):
        return
    if previous is logging.LogRecord:
        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = RedactingLogRecord(*args, **kwargs)
            _redact_record_extras(record)
            return record
    else:  # someone else's factory: keep it, redact what it builds
        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not isinstance(record, RedactingLogRecord):
                record.__class__ = _redacting_class(type(record))
            _redact_record_extras(record)
            return record
    factory._ibgw_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# Environment variables that hold credentials (TWS_PASSWORD, TWS_USERID,
# IB_API_TOKEN, VNC_SERVER_PASSWORD, ...): their values never reach an
# artifact, whichever library or log line carried them there.
SECRET_ENV_RE = re.compile(r"PASS(?:WORD|WD)?|SECRET|TOKEN|API_?KEY|CREDENTIAL|USER_?ID|LOGIN", re.IGNORECASE)
SECRET_MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values ("1", "yes") would mask ordinary text


# The process environment's answer, kept with a copy of the environment it
# came from: every emitted log line asks, and scanning ~150 variables costs
# ~150 us a line; comparing the copy (mostly identical objects) costs ~2 us.
_secrets_cache: tuple[dict[Any, Any], list[str]] | None = None


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-named environment variables, longest first."""
    global _secrets_cache
    data = getattr(os.environ, "_data", None) if environ is None else None
    if isinstance(data, dict):
        cached = _secrets_cache
        if cached is not None and cached[0] == data:
            return list(cached[1])
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_ENV_RE.search(k) and len(v.strip()) >= _MIN_SECRET_LEN}
    result = sorted(values, key=len, reverse=True)
    if isinstance(data, dict):
        _secrets_cache = (dict(data), result)
    return list(result)


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


__all__ = ["ACCOUNT_ID_RE", "Pseudonymizer", "RedactingLogRecord", "SECRET_ENV_RE", "install_log_redaction",
           "known_accounts", "redact_account", "redact_accounts", "redact_secrets", "redact_text", "redact_tree",
           "remember_accounts", "secret_values", "unredacted_message"]
