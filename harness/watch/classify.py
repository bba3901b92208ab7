"""The classification seam: one probe (a health-check result plus what the
kernel holds on the port) -> a state, a cause key and whether a restart
fixes it.

Why a seam: doctor and probe name causes from one shared table (key, title,
meaning, fix, source, restart_fixes). `cause_row` is the only place this
package reads cause rows; it reads the shared table, so watch, probe and
doctor name a cause alike. The watchdog acts on the state
(`wedged` and confirmed), never on `restart_fixes` alone: the shared table
marks "down" restart-fixable (restart a Gateway that is down), but the
watch cannot tell a wrong port from a stopped Gateway and must not
restart for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mock.healthcheck import HEALTHY, LOGGED_OUT, STARTING, UNUSABLE, WEDGED, Readiness
from ..scenarios.causes import Cause, cause
from .sockets import SocketEvidence


def cause_row(key: str) -> Cause:
    """The shared table's row for `key` (scenarios/causes.py): the same
    titles, restart_fixes and sources probe and doctor print."""
    return cause(key)


@dataclass(frozen=True)
class Verdict:
    state: str  # healthy | starting | logged_out | wedged | unusable
    cause: str | None  # a cause-table key; None when healthy
    restart_fixes: bool  # the cause table's word: a Gateway restart is a known cure
    confirmed: bool = False  # the evidence is enough to act on (only meaningful for wedged)
    why: str = ""  # one line: what was seen, and why it is (not) enough to restart
    candidates: tuple[str, ...] = field(default_factory=tuple)  # when the signature is ambiguous

    @property
    def title(self) -> str:
        return cause_row(self.cause).title if self.cause else "API ready"

    @property
    def source(self) -> str:
        return cause_row(self.cause).source if self.cause else ""


def _verdict(state: str, key: str, why: str, *, confirmed: bool = False,
             candidates: tuple[str, ...] = ()) -> Verdict:
    return Verdict(state, key, cause_row(key).restart_fixes, confirmed, why, candidates)


def classify(result: Readiness, evidence: SocketEvidence, *, was_healthy: bool, not_serving_s: float,
             login_grace_s: float) -> Verdict:
    """One probe -> Verdict. was_healthy: this watch has seen the API ready
    since it started; not_serving_s: how long the API has not been served
    (for starting -> logged_out)."""
    failure = result.failure
    if result.ready:
        return Verdict(HEALTHY, None, False, why=result.detail)
    if failure in ("silent", "no_next_valid_id"):
        key = "api_not_ready" if failure == "no_next_valid_id" else (
            "wedge" if evidence.close_wait or evidence.stuck else "not_logged_in")
        if evidence.stuck:
            return _verdict(WEDGED, key, f"{result.detail}; the kernel holds {evidence.summary()}", confirmed=True)
        if was_healthy or failure == "no_next_valid_id":
            return _verdict(WEDGED, key, f"{result.detail}; the API answered this watch before, now it accepts "
                            "and stays silent", confirmed=True)
        return _verdict(WEDGED, key, f"{result.detail}; never answered this watch and no socket evidence of a "
                        f"wedge ({evidence.summary()}): not restarting", candidates=(
                            "an accept-incoming-connection dialog is pending (ib-api-reloaded/ib_async#18)",
                            "this address is not in Trusted IPs", "the API layer is stalled"))
    if failure == "no_accounts":
        return _verdict(LOGGED_OUT, "login_incomplete", f"{result.detail}: the login is incomplete; a restart "
                        "does not log in")
    if failure == "version_too_old":
        return _verdict(UNUSABLE, "version_range", result.detail)
    if failure == "not_tws":
        return _verdict(UNUSABLE, "non_tws", f"{result.detail}: wrong port; a restart does not change what "
                        "listens there")
    if failure == "client_id_in_use":
        return _verdict(UNUSABLE, "id_stuck", f"{result.detail}: another client holds the watch's reserved id; "
                        "give the watch its own --client-id")
    if failure == "closed_after_start":
        return _verdict(STARTING, "id_stuck", f"{result.detail}: the Gateway closed the watch after startApi",
                        candidates=("the Gateway still holds the watch's client id after an earlier connection "
                                    "(ib-api-reloaded/ib_async#143): give the watch another --client-id",
                                    "the Gateway restarted in the middle of the handshake"))
    key = {"refused": "down", "unreachable": "unreachable"}.get(failure, "forwarder")
    if not_serving_s < login_grace_s:
        return _verdict(STARTING, key, f"{result.detail} (not serving for {not_serving_s:.0f} s of the "
                        f"{login_grace_s:.0f} s login grace)")
    return _verdict(LOGGED_OUT, key, f"{result.detail} for {not_serving_s:.0f} s: a restart does not fix a login "
                    "that does not complete", candidates=(
                        "2FA pending or a failed login (see IBC's log)", "wrong port or the API disabled",
                        "an untrusted client address (closed at once)", "the Gateway is not running"))


__all__ = ["Verdict", "cause_row", "classify"]
