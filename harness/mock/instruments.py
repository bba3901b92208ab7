"""The mock's instrument book: the contracts a paper account can look up.

Why fixed: a start-up test that qualifies AAPL, pulls bars and takes a
quote must get the same answer on every run and every profile, with no
clock, network or random source.

Contract ids. Where IB's id is stable (a stock, an ETF, a currency pair
keep theirs for years; a corporate action can change one) the book uses
the real one, so an app that hard-codes
`Contract(conId=265598)` qualifies on the mock as on a Gateway:

* AAPL 265598: a live Gateway's position frame in wboayue/rust-ibapi's
  recorded interactions (`tws_interactions.yaml`, server version 173);
* EUR.USD 12087792: nautechsystems/nautilus_trader's IB adapter test
  resources (`contract_details_eurusd.txt`) and public position frames;
* SPY 756733 and MSFT 272093: public client code that hard-codes them
  (SPY: zsalem2023/Backtrader `contracts.py`; MSFT, with AAPL 265598:
  AMPnet/trade-serivce `PredefinedContracts.kt`); no Gateway capture of
  either was found, so these two rest on client code, not a capture.

The ES front month and the option chain have no stable id: IB issues a new
conId for every expiry (rust-ibapi's capture shows ESU5 as 637533641, a
later month gets another), so no real id could stay right. Their ids here
are deterministic and synthetic, drawn from SYNTHETIC_CON_IDS (2.0e9 ..
2.1e9): inside a Java int / protobuf int32, as a conId must be, and far
above every conId in the public captures and client code consulted (all
below 1e9, ESU5's 637533641 among the highest), so they collide neither with the stable ids above nor with a
real expiry a team may have recorded. Test: tests/mock/test_instrument_calendar.py.

Exchanges, trading-hour format, min ticks, size rules and market-rule ids
are representative of what a US paper account sees, not copied from one
capture, except EUR.USD, whose details follow the contract details frame in
nautilus_trader's test resources (min tick 0.00005, market rule 3188, size
rules 0.01, aggGroup 4, its order types). Dates are fixed, never computed
from today. The hours strings are what contractDetails reports (one fixed
week); the bars follow the trading calendar in trading_calendar.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.framing import Field
from ..protocol.messages import Contract

STOCK_ORDER_TYPES = ("ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,DARKONLY,"
                     "DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,IOC,LIT,LMT,"
                     "LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,PEGMID,POSTATS,"
                     "POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,SCALERST,SIZECHK,"
                     "SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF")
STOCK_EXCHANGES = ("SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,FOXRIVER,"
                   "PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX")
EQUITY_HOURS = ("20261207:0400-20261207:2000;20261208:0400-20261208:2000;20261209:0400-20261209:2000;"
                "20261210:0400-20261210:2000;20261211:0400-20261211:2000;20261212:CLOSED;20261213:CLOSED")
EQUITY_LIQUID = ("20261207:0930-20261207:1600;20261208:0930-20261208:1600;20261209:0930-20261209:1600;"
                 "20261210:0930-20261210:1600;20261211:0930-20261211:1600;20261212:CLOSED;20261213:CLOSED")
# ES reports its hours in US/Central: Globex 17:00-16:00 CT (18:00-17:00 ET), RTH 08:30-15:00 CT.
FUT_HOURS = ("20261206:1700-20261207:1600;20261207:1700-20261208:1600;20261208:1700-20261209:1600;"
             "20261209:1700-20261210:1600;20261210:1700-20261211:1600;20261212:CLOSED")
FUT_LIQUID = ("20261207:0830-20261207:1500;20261208:0830-20261208:1500;20261209:0830-20261209:1500;"
              "20261210:0830-20261210:1500;20261211:0830-20261211:1500;20261212:CLOSED")
FX_HOURS = ("20261206:1715-20261207:1700;20261207:1715-20261208:1700;20261208:1715-20261209:1700;"
            "20261209:1715-20261210:1700;20261210:1715-20261211:1700;20261212:CLOSED")

# Synthetic contract ids (ES front month, the option chain): see the module docstring.
SYNTHETIC_CON_IDS = range(2_000_000_000, 2_100_000_000)
ES_FRONT_CON_ID = SYNTHETIC_CON_IDS.start + 1
OPTION_CON_ID_BASE = SYNTHETIC_CON_IDS.start + 100_000

# Market rules (reqMarketRule): id -> (lowEdge, increment) rows.
MARKET_RULES: dict[int, list[tuple[float, float]]] = {
    26: [(0.0, 0.01)],  # US stocks
    67: [(0.0, 0.25)],  # ES
    3188: [(0.0, 0.00005)],  # IDEALPRO EUR.USD
    32: [(0.0, 0.01), (3.0, 0.05)],  # US options (penny pilot)
}


@dataclass(frozen=True)
class Instrument:
    """One tradable contract and its ContractDetails values."""

    contract: Contract
    long_name: str
    exchange: str  # the exchange contractDetails reports (SMART for stocks)
    valid_exchanges: str
    min_tick: float
    market_rule: int
    time_zone: str
    trading_hours: str
    liquid_hours: str
    price: float  # the deterministic reference price bars and ticks start from
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    min_size: str = "1"
    size_increment: str = "1"
    suggested_size_increment: str = "100"
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    order_types: str = STOCK_ORDER_TYPES
    agg_group: int = 1
    head_timestamp: str = "19801212-14:30:00"
    derivative_sec_types: tuple[str, ...] = ()
    bbo_exchange: str = "9c0001"
    hmds: bool = True  # historical data available
    what_to_show: tuple[str, ...] = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST",
                                     "HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY")

    @property
    def symbol(self) -> str:
        return self.contract.symbol

    def details(self) -> dict[str, Field]:
        """The values protocol.market.contract_data lays out."""
        c = self.contract
        expiry = c.last_trade_date
        return {
            "symbol": c.symbol, "sec_type": c.sec_type, "last_trade_date_or_month": expiry,
            "last_trade_date": expiry, "strike": c.strike, "right": c.right, "exchange": self.exchange,
            "currency": c.currency, "local_symbol": c.local_symbol, "market_name": c.trading_class,
            "trading_class": c.trading_class, "con_id": c.con_id, "min_tick": self.min_tick,
            "multiplier": c.multiplier, "order_types": self.order_types, "valid_exchanges": self.valid_exchanges,
            "under_con_id": self.under_con_id, "long_name": self.long_name,
            "primary_exchange": c.primary_exchange, "contract_month": expiry[:6] if expiry else "",
            "industry": self.industry, "category": self.category, "subcategory": self.subcategory,
            "time_zone_id": self.time_zone, "trading_hours": self.trading_hours, "liquid_hours": self.liquid_hours,
            "agg_group": self.agg_group, "under_symbol": self.under_symbol, "under_sec_type": self.under_sec_type,
            "market_rule_ids": ",".join(str(self.market_rule) for _ in self.valid_exchanges.split(",")),
            "real_expiration_date": expiry, "stock_type": self.stock_type, "min_size": self.min_size,
            "size_increment": self.size_increment, "suggested_size_increment": self.suggested_size_increment,
        }


def _stock(con_id: int, symbol: str, primary: str, long_name: str, price: float, industry: str, category: str,
           subcategory: str, stock_type: str = "COMMON", trading_class: str = "NMS") -> Instrument:
    return Instrument(
        Contract(con_id, symbol, "STK", "USD", exchange="SMART", primary_exchange=primary, local_symbol=symbol,
                 trading_class=trading_class),
        long_name, "SMART", STOCK_EXCHANGES, 0.01, 26, "US/Eastern", EQUITY_HOURS, EQUITY_LIQUID, price,
        industry, category, subcategory, stock_type, min_size="0.0001", size_increment="0.0001",
        derivative_sec_types=("BAG", "CFD", "IOPT", "OPT", "WAR"))


AAPL = _stock(265598, "AAPL", "NASDAQ", "APPLE INC", 190.10, "Technology", "Computers", "Computers")
MSFT = _stock(272093, "MSFT", "NASDAQ", "MICROSOFT CORP", 415.20, "Technology", "Software", "Applications Software")
SPY = _stock(756733, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST", 455.30, "Funds", "Equity Fund", "Growth-Large Cap",
             stock_type="ETF", trading_class="SPY")
ES = Instrument(
    Contract(ES_FRONT_CON_ID, "ES", "FUT", "USD", exchange="CME", primary_exchange="", local_symbol="ESZ6",
             trading_class="ES", last_trade_date="20261218", multiplier="50"),
    "E-mini S&P 500", "CME", "CME,QBALGO", 0.25, 67, "US/Central", FUT_HOURS, FUT_LIQUID, 4570.25,
    under_con_id=11004968, under_symbol="ES", under_sec_type="IND", suggested_size_increment="1",
    order_types="ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
                "GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,LTH,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,PEGBENCH,SCALE,SCALERST,"
                "SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF",
    head_timestamp="20250919-13:30:00", derivative_sec_types=("FOP",), bbo_exchange="")
EURUSD = Instrument(
    Contract(12087792, "EUR", "CASH", "USD", exchange="IDEALPRO", local_symbol="EUR.USD", trading_class="EUR.USD"),
    "European Monetary Union Euro", "IDEALPRO", "IDEALPRO", 0.00005, 3188, "US/Eastern", FX_HOURS, FX_HOURS, 1.0910,
    min_size="0.01", size_increment="0.01", suggested_size_increment="0.01", stock_type="", agg_group=4,
    order_types="ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,CASHQTY,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
                "DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,REL,RELPCTOFS,SCALE,SCALERST,STP,"
                "STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF",
    head_timestamp="20050307-22:15:00", what_to_show=("MIDPOINT", "BID", "ASK", "BID_ASK",
                                                      "HISTORICAL_VOLATILITY"), bbo_exchange="")

OPTION_EXPIRATIONS = ("20261218", "20270115", "20270219")
OPTION_STRIKES = (170.0, 175.0, 180.0, 185.0, 190.0, 195.0, 200.0, 205.0, 210.0)


def _aapl_options() -> list[Instrument]:
    rows = []
    for e_index, expiry in enumerate(OPTION_EXPIRATIONS):
        for s_index, strike in enumerate(OPTION_STRIKES):
            for r_index, right in enumerate(("C", "P")):
                con_id = OPTION_CON_ID_BASE + e_index * 1000 + s_index * 10 + r_index
                local = f"AAPL  {expiry[2:]}{right}{int(strike * 1000):08d}"
                intrinsic = max(0.0, AAPL.price - strike) if right == "C" else max(0.0, strike - AAPL.price)
                rows.append(Instrument(
                    Contract(con_id, "AAPL", "OPT", "USD", exchange="SMART", local_symbol=local,
                             trading_class="AAPL", last_trade_date=expiry, strike=strike, right=right,
                             multiplier="100"),
                    "APPLE INC", "SMART", "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,"
                    "GEMINI,EDGX,MERCURY,PEARL,EMERALD,MEMX,IBUSOPT",
                    0.01, 32, "US/Eastern", EQUITY_HOURS, EQUITY_LIQUID, round(intrinsic + 2.5 + e_index, 2),
                    under_con_id=AAPL.contract.con_id, under_symbol="AAPL", under_sec_type="STK",
                    suggested_size_increment="1", stock_type="", head_timestamp="20261101-13:30:00",
                    bbo_exchange="", what_to_show=("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")))
    return rows


@dataclass
class InstrumentBook:
    """Every contract the mock knows, and the lookups a Gateway answers."""

    instruments: list[Instrument] = field(default_factory=list)

    @classmethod
    def default(cls) -> InstrumentBook:
        return cls([AAPL, MSFT, SPY, ES, EURUSD, *_aapl_options()])

    def by_con_id(self, con_id: int) -> Instrument | None:
        for inst in self.instruments:
            if inst.contract.con_id == con_id:
                return inst
        return None

    def match(self, query: dict[str, str]) -> list[Instrument]:
        """reqContractDetails: every instrument the (partial) contract fits,
        as a Gateway matches: conId alone is enough; otherwise symbol and
        secType, with expiry (a prefix: 'YYYYMM' matches a month), strike,
        right, currency, exchange and localSymbol narrowing when given."""
        con_id = _int(query.get("con_id", ""))
        if con_id:
            inst = self.by_con_id(con_id)
            return [inst] if inst is not None else []
        symbol = (query.get("symbol") or "").upper()
        local = query.get("local_symbol") or ""
        sec_type = (query.get("sec_type") or "").upper()
        out = []
        for inst in self.instruments:
            c = inst.contract
            if symbol and c.symbol != symbol:
                continue
            if not symbol and (not local or c.local_symbol != local):
                continue
            if sec_type and c.sec_type != sec_type:
                continue
            if local and c.local_symbol != local:
                continue
            if not _fits(query.get("currency", ""), c.currency):
                continue
            expiry = query.get("last_trade_date") or ""
            if expiry and not c.last_trade_date.startswith(expiry):
                continue
            strike = _float(query.get("strike", ""))
            if strike and abs(strike - c.strike) > 1e-9:
                continue
            right = (query.get("right") or "").upper()[:1]
            if right and right != c.right:
                continue
            exchange = (query.get("exchange") or "").upper()
            if exchange and exchange not in inst.valid_exchanges.split(","):
                continue
            out.append(inst)
        return out

    def underlyings(self) -> list[Instrument]:
        return [i for i in self.instruments if i.contract.sec_type != "OPT"]

    def search(self, pattern: str) -> list[Instrument]:
        """reqMatchingSymbols: symbols starting with the pattern first, then names containing it."""
        p = pattern.strip().upper()
        if not p:
            return []
        pool = self.underlyings()
        first = [i for i in pool if i.symbol.startswith(p)]
        then = [i for i in pool if i not in first and p in i.long_name.upper()]
        return (first + then)[:16]

    def option_chain(self, underlying_con_id: int) -> tuple[list[str], list[float]]:
        opts = [i.contract for i in self.instruments
                if i.contract.sec_type == "OPT" and i.under_con_id == underlying_con_id]
        return sorted({c.last_trade_date for c in opts}), sorted({c.strike for c in opts})


def _fits(wanted: str, actual: str) -> bool:
    return not wanted or wanted.upper() == actual


def _int(text: object) -> int:
    try:
        return int(str(text))
    except ValueError:
        return 0


def _float(text: object) -> float:
    try:
        value = float(str(text))
    except ValueError:
        return 0.0
    return 0.0 if value > 1e300 else value  # UNSET_DOUBLE means "not given"
