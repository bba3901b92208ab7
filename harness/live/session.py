"""Setting up a live run's Gateway session safely.

In order: warn about a live-trading port; put the recording proxy (with
the order guard) in front of the Gateway so every connection is recorded
and no order message can pass, whatever client sends it; then read the
managed accounts once through it and refuse to go on when any is not a
paper account. Raises LiveRunRefused for the caller to stop the run.

Why the proxy also guards every managedAccounts reply: the one-off check
can fail (a Gateway still logging in, a slow account list) and a run must
not then go on unchecked. The proxy withholds a managedAccounts frame that
lists a non-paper account, closes that connection, and the session's
`refusal()` tells the caller to stop. Without the proxy nothing can check
later connections, so a check that cannot run stops the run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clients.base import PHASE_TCP, HandshakeError
from ..clients.raw import RawClient
from ..core.errors import HarnessError
from ..core.redact import redact_accounts
from ..protocol.frame import DOWN, Frame
from ..protocol.messages import In
from ..safety.accounts import (
    live_account_stop_message,
    live_port_warning,
    non_paper_accounts,
)
from ..safety.order_guard import OrderGuard
from ..targets.base import Endpoint
from .policy import ClientIdAllocator, LivePolicy

log = logging.getLogger("harness.live")


LIVE_REFUSED_EXIT = 3  # the exit status of a live run stopped before its first scenario or connection
UNREACHABLE_EXIT = 1  # a live run stopped because nothing accepts connections: the run failed


class LiveRunRefused(HarnessError):
    """A live run that must not start; the message says why and what to pass."""


class LiveAccountRefused(LiveRunRefused):
    """The Gateway manages a non-paper account and --allow-live-account was not given."""


class GatewayUnreachable(LiveRunRefused):
    """Nothing accepts connections at the Gateway's address: every scenario
    would fail the same way after its own timeout, so the run stops once."""


@dataclass
class LiveSession:
    upstream: Endpoint  # the Gateway itself
    endpoint: Endpoint  # where clients connect: the proxy, or the Gateway when the proxy is off
    guard: OrderGuard = field(default_factory=OrderGuard)
    proxy: Any = None
    accounts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run should say at its start
    live_accounts_seen: list[str] = field(default_factory=list)  # a managedAccounts the proxy withheld

    def refusal(self) -> str | None:
        """The stop message once the proxy withheld a non-paper managedAccounts, else None."""
        if not self.live_accounts_seen:
            return None
        return live_account_stop_message(self.live_accounts_seen, self.upstream.label,
                                         when="(the proxy withheld a managedAccounts reply and closed its connection)")

    def paper_only(self, frame: Frame) -> str | None:
        """The proxy's reply guard: withhold any managedAccounts that lists a
        non-paper account, or that cannot be read (failing closed)."""
        if frame.direction != DOWN or frame.message_id != In.MANAGED_ACCTS:
            return None
        if frame.accounts is None:
            return "managedAccounts could not be read, so its accounts cannot be confirmed paper"
        live = non_paper_accounts(frame.accounts)
        if not live:
            return None
        self.live_accounts_seen = list(frame.accounts)
        return (f"managedAccounts lists non-paper account(s) {', '.join(redact_accounts(live))}; withheld from "
                "the client (--allow-live-account to allow)")

    def transcript(self, client_id: int) -> str | None:
        """The proxy's Gateway-side transcript of a client id's newest connection."""
        if self.proxy is None:
            return None
        from .proxy_glue import transcript_for_client

        return transcript_for_client(self.proxy, client_id)


async def read_managed_accounts(endpoint: Endpoint, client_id: int, timeout: float) -> list[str]:
    """One read-only raw connection: the account ids managedAccounts lists."""
    client = RawClient(await_account_value=False)
    try:
        result = await client.connect(endpoint.host, endpoint.port, client_id, timeout=timeout)
        return list(result.accounts)
    finally:
        await client.disconnect()


@contextlib.asynccontextmanager
async def live_session(upstream: Endpoint, policy: LivePolicy, client_ids: ClientIdAllocator, *, timeout: float,
                       report: Callable[[str], None] = log.warning,
                       transcript: Path | None = None,
                       stop_if_unreachable: bool = False) -> AsyncIterator[LiveSession]:
    session = LiveSession(upstream, upstream)
    warning = live_port_warning(upstream.port)
    if warning:
        report(f"WARNING: {warning}")
    if policy.proxy:
        from .proxy_glue import ProxyUnavailable, start_recording_proxy

        try:
            session.proxy, session.endpoint = await start_recording_proxy(upstream, session.guard, transcript)
            if not policy.allow_live_account:
                session.proxy.add_reply_guard(session.paper_only)
            session.notes.append(f"recording proxy {session.endpoint.host}:{session.endpoint.port} -> "
                                 f"{upstream.label} (order guard on)")
        except ProxyUnavailable as exc:
            # Without the proxy no order guard stands in front of a client the
            # harness did not write: that must be asked for, never a fallback.
            raise LiveRunRefused(f"STOPPED before the first scenario: the recording proxy (and its order guard) "
                                 f"cannot run in front of {upstream.label}: {exc}. Pass --ibgw-no-proxy to run "
                                 "without it (only the harness's own clients are then known to be read-only)") from None
    else:
        session.notes.append("recording proxy off (--ibgw-no-proxy): no Gateway-side transcript, order guard only "
                             "in the harness's own raw client")
    for note in session.notes:
        report(note)
    reported = len(session.notes)
    try:
        try:
            session.accounts = await read_managed_accounts(session.endpoint, client_ids.take(0), timeout)
        except HandshakeError as exc:
            if session.live_accounts_seen:  # the proxy withheld this very check's managedAccounts
                raise LiveAccountRefused(live_account_stop_message(session.live_accounts_seen,
                                                                   upstream.label)) from None
            unreachable = (getattr(session.proxy, "upstream_unreachable", None) if session.proxy is not None
                           else (exc.cause if exc.phase == PHASE_TCP else None))
            if unreachable and stop_if_unreachable:
                raise GatewayUnreachable(
                    f"STOPPED before the first scenario: nothing accepts connections at {upstream.label} "
                    f"({unreachable}); hint: is the Gateway (or its container) running, logged in, with the API "
                    f"enabled on that port? `ibgw probe --host {upstream.host} --port {upstream.port}` checks in "
                    "one step") from None
            why = unreachable or f"{exc.phase}: {exc.cause}"
            if session.proxy is None and not policy.allow_live_account:
                raise LiveRunRefused(
                    f"STOPPED before the first scenario: the paper-account check could not run ({why}), and "
                    "without the recording proxy (--ibgw-no-proxy) nothing checks the accounts later; check the "
                    "Gateway with `ibgw probe`, or run with the proxy") from None
            guarded = ("every managedAccounts is checked by the proxy instead (a non-paper one stops the run)"
                       if not policy.allow_live_account else "--allow-live-account given")
            session.notes.append(f"account check could not run ({why}); {guarded}. The scenarios will "
                                 "show why. Order messages stay blocked by the proxy")
        else:
            live = non_paper_accounts(session.accounts)
            if live and not policy.allow_live_account:
                raise LiveAccountRefused(live_account_stop_message(session.accounts, upstream.label))
            kind = "LIVE (allowed by --allow-live-account)" if live else "paper"
            session.notes.append(f"accounts: {', '.join(redact_accounts(session.accounts))} ({kind})")
        for note in session.notes[reported:]:
            report(note)
        yield session
    finally:
        if session.proxy is not None:
            from .proxy_glue import stop_recording_proxy

            await stop_recording_proxy(session.proxy)


__all__ = ["LIVE_REFUSED_EXIT", "UNREACHABLE_EXIT", "GatewayUnreachable", "LiveAccountRefused", "LiveRunRefused",
           "LiveSession", "live_session", "read_managed_accounts"]
