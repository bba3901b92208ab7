"""The full paper account: the initial dump's size and keys, and account summary's every tag.

Why: an app that reads a `-S` segment value, a LookAhead* margin figure or
the `$LEDGER:ALL` block must find it on the mock as on a real paper account
(keys from public captures: ib_insync#93, #655, nautilus_trader's
account_values.json), or its start-up fails on the mock for a reason a real
Gateway never gives.
"""

from __future__ import annotations

from ibapi.account_summary_tags import AccountSummaryTags

from harness.clients.raw import RawClient
from harness.mock import MockGateway
from harness.mock.model import AccountModel
from harness.mock.paper_account import LEDGER_KEYS, SUMMARY_TAGS, UNANSWERED_TAGS
from harness.protocol import messages as m
from harness.protocol.messages import In

WAIT = 15.0


def test_initial_dump_is_as_large_as_a_paper_accounts() -> None:
    rows = AccountModel.default().accounts[0].account_values()
    keys = {key for key, _, _ in rows}
    assert 100 <= len(rows) <= 150
    assert len({(k, c) for k, _, c in rows}) == len(rows)
    for needed in ("NetLiquidation-S", "NetLiquidation-C", "LookAheadExcessLiquidity-S", "NLVAndMarginInReview",
                   *[f"DayTradesRemainingT+{n}" for n in range(1, 5)], "Leverage-S", "BuyingPower"):
        assert needed in keys, needed
    for key in LEDGER_KEYS:
        assert {c for k, _, c in rows if k == key} >= {"BASE", "USD"}, key
    order = [(k, {"": 0, "BASE": 1}.get(c, 2)) for k, _, c in rows]
    assert order == sorted(order)  # alphabetical, then BASE before the real currency


def test_official_tag_list_matches_ibapi() -> None:
    assert tuple(AccountSummaryTags.AllTags.split(",")) == SUMMARY_TAGS


async def test_account_summary_answers_every_tag_and_the_ledger() -> None:
    async with MockGateway(port=0) as gw:
        client = RawClient(100, 178)
        await client.connect("127.0.0.1", gw.port, 41, timeout=WAIT)
        try:
            tags = AccountSummaryTags.AllTags + ",$LEDGER:ALL"
            rows = await client.collect(m.req_account_summary(9, "All", tags),
                                        keep=lambda msg: msg.msg_id == In.ACCOUNT_SUMMARY,
                                        until=lambda msg: msg.msg_id == In.ACCOUNT_SUMMARY_END, timeout=WAIT)
        finally:
            await client.disconnect()
    got = {(r.fields["tag"], r.fields["currency"]) for r in rows}
    # Every tag a real Gateway answers; the list's RegT typo gets no row there (erdewit/ib_insync#589).
    assert set(SUMMARY_TAGS) - set(UNANSWERED_TAGS) <= {tag for tag, _ in got}
    assert not set(UNANSWERED_TAGS) & {tag for tag, _ in got}
    for key in LEDGER_KEYS:
        assert (key, "BASE") in got and (key, "USD") in got, key
    currency_less = {tag: cur for tag, cur in got if tag in ("Cushion", "AccountType", "DayTradesRemaining",
                                                           "LookAheadNextChange")}
    assert set(currency_less.values()) == {""}  # as real captures show


async def test_ib_async_account_summary_gets_every_tag_it_asks_for() -> None:
    """ib_async's accountSummaryAsync asks for its own tag list plus $LEDGER:ALL."""
    from ib_async import IB

    async with MockGateway(port=0) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=42, timeout=WAIT)
        try:
            values = await ib.accountSummaryAsync()
        finally:
            ib.disconnect()
    tags = {v.tag for v in values}
    assert set(SUMMARY_TAGS) - set(UNANSWERED_TAGS) <= tags  # ib_async asks the RegT* spelling
    assert {"RegTEquity", "RegTMargin", "DayTradesRemainingT+4", "CashBalance", "ExchangeRate"} <= tags
