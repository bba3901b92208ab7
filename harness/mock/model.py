"""A deterministic paper-account model the mock serves.

Why deterministic: evidence from two runs (or two Gateway profiles) is only
comparable when the account behind them is the same. Values are derived
from the holdings with fixed prices, never from a clock or a random source.
Keys and formats follow what real paper accounts send in public captures:
erdewit/ib_insync#93 (a paper Gateway's reqAccountUpdates, server version 118)
and #655 (TWS 10.25), nautilus_trader's Interactive Brokers adapter test
resources (`account_values.json`), and letianzj/quanttrader#1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.constants import PAPER_PREFIXES  # noqa: F401  (re-exported: defined once, in core)
from ..protocol.messages import Contract, Execution
from .paper_account import full_account_values, summary_rows


@dataclass(frozen=True)
class Holding:
    contract: Contract
    quantity: float
    avg_cost: float
    market_price: float

    @property
    def market_value(self) -> float:
        return round(self.quantity * self.market_price * _multiplier(self.contract), 2)

    @property
    def unrealized_pnl(self) -> float:
        return round(self.market_value - self.quantity * self.avg_cost, 2)


def _multiplier(contract: Contract) -> float:
    return float(contract.multiplier) if contract.multiplier else 1.0


@dataclass
class Account:
    """One managed account: id, base currency, cash and holdings."""

    account_id: str
    cash: float = 1_000_000.00
    base_currency: str = "USD"
    account_type: str = "INDIVIDUAL"
    holdings: list[Holding] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)

    @property
    def stock_value(self) -> float:
        return round(sum(h.market_value for h in self.holdings), 2)

    @property
    def net_liquidation(self) -> float:
        return round(self.cash + self.stock_value, 2)

    def account_values(self) -> list[tuple[str, str, str]]:
        """(key, value, currency) in the order a real initial dump uses:
        keys alphabetical, then by currency (BASE before the real one);
        the full paper-account key set (paper_account.py)."""
        return full_account_values(self)

    def summary(self, tags: list[str]) -> list[tuple[str, str, str]]:
        """(tag, value, currency) for reqAccountSummary: every official tag
        and the $LEDGER forms; tags without a currency get an empty
        currency field, as real captures show."""
        return summary_rows(self, tags)


def _money(value: float) -> str:
    return f"{value:.2f}"


def default_contracts() -> list[tuple[Contract, float, float, float]]:
    """Stock, ETF and FX holdings: (contract, quantity, avg cost, price).

    A position's contract carries the primary exchange in its exchange
    field, as a real Gateway reports it: a live Gateway's position frame
    in wboayue/rust-ibapi's recorded interactions (`tws_interactions.yaml`,
    server version 173) reads `265598|AAPL|STK|...|NASDAQ|USD|AAPL|NMS`
    (and an empty exchange for its ES future); public EUR.USD position
    frames carry an empty exchange too. So reqPositions and
    reqPositionsMulti say AAPL NASDAQ, SPY ARCA, EUR.USD '' (the portfolio
    updates carry primaryExchange, which is the same value)."""
    return [
        (Contract(265598, "AAPL", "STK", "USD", exchange="NASDAQ", primary_exchange="NASDAQ", local_symbol="AAPL",
                  trading_class="NMS"), 100.0, 150.25, 190.10),
        (Contract(756733, "SPY", "STK", "USD", exchange="ARCA", primary_exchange="ARCA", local_symbol="SPY",
                  trading_class="SPY"), 20.0, 420.50, 455.30),
        (Contract(12087792, "EUR", "CASH", "USD", local_symbol="EUR.USD", trading_class="EUR.USD"),
         10000.0, 1.0825, 1.0910),
    ]


@dataclass
class AccountModel:
    """Every account the mock's login manages, plus the order-id sequence."""

    accounts: list[Account]
    next_order_id: int = 1

    @classmethod
    def default(cls, account_ids: list[str] | None = None) -> AccountModel:
        """One account per id, each holding the same deterministic positions;
        the first account also carries two executions from today."""
        ids = account_ids or ["DU1234567"]
        accounts = []
        for index, account_id in enumerate(ids):
            holdings = [Holding(c, qty, cost, price) for c, qty, cost, price in default_contracts()]
            executions = []
            if index == 0:
                aapl = replace(holdings[0].contract, exchange="")  # executions keep their own layout
                executions = [
                    Execution("0000e0d5.6601a2b3.01.01", 11, aapl, "20261125 09:31:02", account_id,
                              "BOT", 50, 150.10, 1_900_000_001, client_id=1),
                    Execution("0000e0d5.6601a2b4.01.01", 12, aapl, "20261125 10:02:47", account_id,
                              "BOT", 50, 150.40, 1_900_000_002, client_id=1),
                ]
            accounts.append(Account(account_id, cash=1_000_000.00 - 100_000 * index,
                                    holdings=holdings, executions=executions))
        return cls(accounts)

    @property
    def account_ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    def get(self, account_id: str) -> Account | None:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        return None

    def allocate_ids(self, count: int, limit: int | None = None) -> int:
        """Reserve order ids; returns the first id still free after the call
        so reqIds answers with an id nobody has used. With a limit (a Java
        int's maximum) a count that would carry the sequence past it raises
        ValueError and leaves the sequence as it was."""
        count = max(1, count)
        first = self.next_order_id
        if limit is not None and first + count > limit:
            raise ValueError(f"{count} more ids would carry the next order id past {limit}")
        self.next_order_id += count
        return first
