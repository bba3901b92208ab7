"""Safety interlocks: the request guard every proxy path runs (no order or
configuration change reaches a Gateway through the harness unless a run
allows it; a stream it cannot frame is closed), and the paper-account check
(a run stops before its first scenario against a live account)."""

from .accounts import LIVE_PORTS, PAPER_PREFIXES, live_port_warning, non_paper_accounts
from .order_guard import ORDER_MESSAGE_IDS, BlockedOrder, OrderGuard, classify_order
from .stream_guard import CONFIG_MESSAGE_IDS, ClientStreamGuard, RequestPolicy, refusal_frame

__all__ = ["CONFIG_MESSAGE_IDS", "LIVE_PORTS", "ORDER_MESSAGE_IDS", "PAPER_PREFIXES", "BlockedOrder",
           "ClientStreamGuard", "OrderGuard", "RequestPolicy", "classify_order", "live_port_warning",
           "non_paper_accounts", "refusal_frame"]
