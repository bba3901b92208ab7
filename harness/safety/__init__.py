"""Safety interlocks for live runs: the order guard (no order message ever
reaches a Gateway through the harness's proxy) and the paper-account check
(a run stops before its first scenario against a live account)."""

from .accounts import LIVE_PORTS, PAPER_PREFIXES, live_port_warning, non_paper_accounts
from .order_guard import ORDER_MESSAGE_IDS, BlockedOrder, OrderGuard, classify_order

__all__ = ["LIVE_PORTS", "ORDER_MESSAGE_IDS", "PAPER_PREFIXES", "BlockedOrder", "OrderGuard", "classify_order",
           "live_port_warning", "non_paper_accounts"]
