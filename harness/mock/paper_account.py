"""The full account dump and account summary of a paper account, as real Gateways send them.

Why: an app that reads, say, `LookAheadExcessLiquidity-S` or asks
reqAccountSummary for `$LEDGER:ALL` must find it in the mock, or its start-up
fails on the mock for a reason a real Gateway never gives. Keys, suffixes,
currencies and formats follow the paper accounts in public captures
(ib_insync#93, #655, nautilus_trader's account_values.json, quanttrader#1):
keys without a currency (AccountCode, Cushion, DayTradesRemainingT+1..4,
LookAheadNextChange, NLVAndMarginInReview...), segment keys in the base
currency with their -C (commodities) and -S (securities) variants, and the
ledger keys once per currency plus BASE. Values derive from the account
model (cash, holdings), never from a clock or a random source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Account

# ibapi account_summary_tags.AccountSummaryTags.AllTags, in its order.
SUMMARY_TAGS = (
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash", "BuyingPower",
    "EquityWithLoanValue", "PreviousDayEquityWithLoanValue", "GrossPositionValue", "ReqTEquity", "ReqTMargin",
    "SMA", "InitMarginReq", "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "Cushion", "FullInitMarginReq",
    "FullMaintMarginReq", "FullAvailableFunds", "FullExcessLiquidity", "LookAheadNextChange",
    "LookAheadInitMarginReq", "LookAheadMaintMarginReq", "LookAheadAvailableFunds", "LookAheadExcessLiquidity",
    "HighestSeverity", "DayTradesRemaining", "Leverage",
)
# Tags of the official list a real Gateway never answers (a documentation typo for RegTEquity and
# RegTMargin: erdewit/ib_insync#589); requesting them yields no row.
UNANSWERED_TAGS = ("ReqTEquity", "ReqTMargin")
# The ledger keys $LEDGER relays, in the order message-73 blocks carry them.
LEDGER_KEYS = (
    "Currency", "CashBalance", "TotalCashBalance", "AccruedCash", "StockMarketValue", "OptionMarketValue",
    "FutureOptionValue", "FuturesPNL", "NetLiquidationByCurrency", "UnrealizedPnL", "RealizedPnL", "ExchangeRate",
    "FundValue", "NetDividend", "MutualFundValue", "MoneyMarketFundValue", "CorporateBondValue", "TBondValue",
    "TBillValue", "WarrantValue", "FxCashBalance", "AccountOrGroup", "RealCurrency", "IssuerOptionValue",
    "Cryptocurrency",
)
# Segment keys sent in the base currency, each also as -C and -S.
SEGMENT_KEYS = (
    "AccruedCash", "AccruedDividend", "AvailableFunds", "Billable", "EquityWithLoanValue", "ExcessLiquidity",
    "FullAvailableFunds", "FullExcessLiquidity", "FullInitMarginReq", "FullMaintMarginReq", "GrossPositionValue",
    "Guarantee", "IndianStockHaircut", "InitMarginReq", "LookAheadAvailableFunds", "LookAheadExcessLiquidity",
    "LookAheadInitMarginReq", "LookAheadMaintMarginReq", "MaintMarginReq", "NetLiquidation", "PASharesValue",
    "PostExpirationExcess", "PostExpirationMargin", "PreviousDayEquityWithLoanValue", "TotalCashValue",
)
# Sent once, in the base currency, without variants.
PLAIN_KEYS = ("BuyingPower", "NetLiquidationUncertainty", "RegTEquity", "RegTMargin", "SMA", "SettledCash")


def _money(value: float) -> str:
    return f"{value:.2f}"


def _figures(account: Account) -> dict[str, float]:
    stock = account.stock_value
    nlv = account.net_liquidation
    margin = round(stock * 0.25, 2)
    return {
        "cash": account.cash, "stock": stock, "nlv": nlv, "margin": margin, "avail": round(nlv - margin, 2),
        "unrealized": round(sum(h.unrealized_pnl for h in account.holdings), 2),
    }


def _segment_value(key: str, f: dict[str, float]) -> float:
    return {
        "AvailableFunds": f["avail"], "ExcessLiquidity": f["avail"], "FullAvailableFunds": f["avail"],
        "FullExcessLiquidity": f["avail"], "LookAheadAvailableFunds": f["avail"],
        "LookAheadExcessLiquidity": f["avail"], "EquityWithLoanValue": f["nlv"],
        "PreviousDayEquityWithLoanValue": f["nlv"], "NetLiquidation": f["nlv"], "TotalCashValue": f["cash"],
        "GrossPositionValue": f["stock"], "FullInitMarginReq": f["margin"], "FullMaintMarginReq": f["margin"],
        "InitMarginReq": f["margin"], "MaintMarginReq": f["margin"], "LookAheadInitMarginReq": f["margin"],
        "LookAheadMaintMarginReq": f["margin"],
    }.get(key, 0.0)


def _ledger_value(key: str, currency: str, account: Account, f: dict[str, float]) -> str:
    return {
        "Currency": currency, "RealCurrency": currency, "AccountOrGroup": account.account_id,
        "ExchangeRate": "1.00", "CashBalance": _money(f["cash"]), "TotalCashBalance": _money(f["cash"]),
        "StockMarketValue": _money(f["stock"]), "NetLiquidationByCurrency": _money(f["nlv"]),
        "UnrealizedPnL": _money(f["unrealized"]),
    }.get(key, "0.00")


def full_account_values(account: Account) -> list[tuple[str, str, str]]:
    """The initial reqAccountUpdates dump: (key, value, currency), keys
    alphabetical, then BASE before the real currency."""
    cur = account.base_currency
    f = _figures(account)
    rows: list[tuple[str, str, str]] = [
        ("AccountCode", account.account_id, ""), ("AccountReady", "true", ""), ("AccountType", account.account_type, ""),
        ("Cushion", "0.950000", ""), ("DayTradesRemaining", "-1", ""), ("LookAheadNextChange", "0", ""),
        ("NLVAndMarginInReview", "false", ""), ("Leverage-S", "0.00", ""), ("HighestSeverity", "0", ""),
        *[(f"DayTradesRemainingT+{n}", "-1", "") for n in range(1, 5)],
    ]
    for key in SEGMENT_KEYS:
        value = _money(_segment_value(key, f))
        rows += [(key, value, cur), (f"{key}-C", "0.00", cur), (f"{key}-S", value, cur)]
    rows += [("BuyingPower", _money(f["avail"] * 4), cur), ("NetLiquidationUncertainty", "0.00", cur),
             ("RegTEquity", _money(f["nlv"]), cur), ("RegTMargin", _money(f["stock"] * 0.5), cur),
             ("SMA", _money(f["avail"]), cur), ("SettledCash", _money(f["cash"]), cur)]
    for key in LEDGER_KEYS:
        rows += [(key, _ledger_value(key, "BASE", account, f), "BASE"), (key, _ledger_value(key, cur, account, f), cur)]
    order = {"": 0, "BASE": 1}
    unique = {(key, currency): (key, value, currency) for key, value, currency in rows}  # AccruedCash is both
    return sorted(unique.values(), key=lambda r: (r[0], order.get(r[2], 2), r[2]))


def summary_rows(account: Account, tags: list[str]) -> list[tuple[str, str, str]]:
    """reqAccountSummary's rows for the requested tags: the official tags
    (currency-less ones with an empty currency, money in the base
    currency) and the $LEDGER forms: base currency only, `$LEDGER:XXX` one
    currency, `$LEDGER:ALL` every currency with BASE first.

    Order: by tag (ordinal, as Java's String.compareTo sorts), then BASE
    before the real currency, whatever order the request named them in;
    one row per (tag, currency). Evidence: the one public capture of a real
    Gateway's accountSummary, wboayue/rust-ibapi's `tws_interactions.yaml`
    (server version 173), asks `NetLiquidation,TotalCashValue,
    GrossPositionValue` and gets GrossPositionValue, NetLiquidation,
    TotalCashValue: alphabetical, not request order. The evidence is thin
    (three tags, one account, one currency, no $LEDGER), so how ledger
    rows and currency-less tags interleave is not shown by any capture;
    the mock applies the same rule as the initial account dump (keys
    alphabetical, BASE before the real currency), which is the order
    documented for that dump in this module. IBKR's API documentation does
    not specify an order."""
    values = {key: (value, currency) for key, value, currency in full_account_values(account)
              if currency != "BASE"}
    values["Leverage"] = values["Leverage-S"]
    # The official list's "ReqTEquity"/"ReqTMargin" are a typo in IBKR's documentation that the
    # clients copied: a real Gateway sends no row for them, only for "RegTEquity"/"RegTMargin"
    # (regulation T), as reported in erdewit/ib_insync#589. So the typo gets nothing here either.
    for typo in UNANSWERED_TAGS:
        values.pop(typo, None)
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    for tag in tags:
        if tag.startswith("$LEDGER"):
            wanted = tag.partition(":")[2].upper()
            currencies = (["BASE", account.base_currency] if wanted == "ALL"
                          else [wanted] if wanted else [account.base_currency])
            f = _figures(account)
            for currency in currencies:
                if currency not in ("BASE", account.base_currency):
                    continue  # the account holds no ledger in that currency
                for key in LEDGER_KEYS:
                    rows[(key, currency)] = (key, _ledger_value(key, currency, account, f), currency)
        elif tag in values:
            value, currency = values[tag]
            rows[(tag, currency)] = (tag, value, currency)
    order = {"": 0, "BASE": 1}
    return sorted(rows.values(), key=lambda r: (r[0], order.get(r[2], 2), r[2]))
