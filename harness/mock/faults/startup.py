"""Faults of the API start-up and the account flow: late or missing
start-up messages, end messages that never come, slow replies, a read-only
API. The session and a recording's replayer ask the same hooks, so a replay
shows these faults exactly as the account model does."""

from __future__ import annotations

import random

from ...protocol.messages import In
from ..sources import FIELD_REPORTS_ONLY, NO_GATEWAY_CLAIM
from .base import Fault, FaultError, FaultSpec, flag, ms, pair
from .registry import register

# missing-end kinds -> the end message each swallows (an incoming message id).
END_MESSAGES: dict[str, int] = {"positions": In.POSITION_END, "account": In.ACCT_DOWNLOAD_END,
                                "executions": In.EXECUTION_DATA_END, "open-orders": In.OPEN_ORDER_END,
                                "completed-orders": In.COMPLETED_ORDERS_END,
                                "account-multi": In.ACCOUNT_UPDATE_MULTI_END,
                                "account-summary": In.ACCOUNT_SUMMARY_END}
END_KINDS = tuple(END_MESSAGES)


@register
class DelayedAccounts(Fault):
    spec = FaultSpec("delayed-accounts", "MS", "managedAccounts arrives MS after startApi (the 'accounts empty' "
                     "race)", ms("delayed-accounts"), source=FIELD_REPORTS_ONLY)

    def startup_delay(self, msg_id: int) -> float:
        return float(self.value) if msg_id == In.MANAGED_ACCTS else 0.0


@register
class DelayedNextId(Fault):
    spec = FaultSpec("delayed-next-id", "MS", "nextValidId arrives MS after startApi", ms("delayed-next-id"),
                     source=FIELD_REPORTS_ONLY)

    def startup_delay(self, msg_id: int) -> float:
        return float(self.value) if msg_id == In.NEXT_VALID_ID else 0.0


@register
class NoNextValidId(Fault):
    spec = FaultSpec("no-next-valid-id", "", "managedAccounts arrives, nextValidId never does",
                     flag("no-next-valid-id"), source="heshiming/ibga#24 (10.41: no nextValidId)")

    def withholds(self, msg_id: int) -> bool:
        return msg_id == In.NEXT_VALID_ID


def _missing_end(value: str | None) -> frozenset[str]:
    kinds = [k.strip() for k in (value or "").split(",") if k.strip()]
    bad = [k for k in kinds if k not in END_KINDS]
    if not kinds or bad:
        raise FaultError(f"fault missing-end: {', '.join(bad) or 'no kind'} is not one of {', '.join(END_KINDS)}")
    return frozenset(kinds)


@register
class MissingEnd(Fault):
    spec = FaultSpec("missing-end", "KIND[,KIND]", f"a start-up request never gets its end message "
                     f"({', '.join(END_KINDS)})", _missing_end,
                     source="ib-api-reloaded/ib_async#82, erdewit/ib_insync#638 (execDetailsEnd); "
                            "erdewit/ib_insync#303 (accountDownloadEnd); ib-api-reloaded/ib_async#84 (positions); "
                            "erdewit/ib_insync#224 (completed orders)")

    def withholds(self, msg_id: int) -> bool:
        return any(END_MESSAGES[kind] == msg_id for kind in self.value)


def _latency(value: str | None) -> tuple[float, float]:
    delay, jitter = pair("latency", "latency=MS[,JITTER]", value, 0.0)
    return delay / 1000.0, jitter / 1000.0


@register
class Latency(Fault):
    spec = FaultSpec("latency", "MS[,JITTER]", "every reply delayed by MS (+ up to JITTER) milliseconds", _latency,
                     source=NO_GATEWAY_CLAIM)

    def reply_delay(self, rng: random.Random) -> float | None:
        delay, jitter = self.value
        return float(delay + rng.uniform(0, jitter))


@register
class ReadOnlyApi(Fault):
    spec = FaultSpec("read-only-api", "", "the Read-Only API setting: order messages and reqOpenOrders / "
                     "reqAllOpenOrders / reqAutoOpenOrders get error 321 '...Read-Only mode.' (reqId -1 for the "
                     "requests), reqCompletedOrders gets no answer; the connection stays up", flag("read-only-api"),
                     source="bankroll-py/bankroll#65, erdewit/ib_insync#224")

    def read_only(self) -> bool:
        return True
