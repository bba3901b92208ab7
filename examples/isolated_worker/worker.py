"""An isolated IB connection worker: one process owns the ib_async connection
and talks JSON Lines over stdin/stdout. The reference for teams who keep the
connection out of their main process (field reports 000-004).

Written the way the field reports' worker should have been:

* Parameters are nested where the protocol says: every request is
  ``{"id": N, "command": "...", "params": {...}}``. A request whose
  parameters sit at the top level is answered with an error that says so,
  never silently run with defaults (field report 004, bug #1).
* ``connect`` answers only when the API is ready: ``IB.connectAsync``
  returns after nextValidId and a non-empty managedAccounts arrived and its
  start-up sync finished; the reply carries the accounts it saw. No fixed
  sleeps, no "retry once after a second" (field report 003).
* It leaves cleanly: ``disconnect``/``shutdown`` close the socket once with
  ``IB.disconnect()``; when the parent goes away (stdin EOF) it does the same
  and exits, so no socket is left for the Gateway to hold in CLOSE_WAIT.

Replies: ``{"id": N, "status": "success", "data": {...}}`` or
``{"id": N, "status": "error", "error": "...", "phase": "..."}``.

Run by hand (one JSON request per line):

    echo '{"id":1,"command":"connect","params":{"host":"127.0.0.1","port":4002,"client_id":901}}' \\
        | python examples/isolated_worker/worker.py

Depends only on ib_async and the standard library, like a team's own code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from typing import Any

from ib_async import IB, Contract

log = logging.getLogger("isolated_worker")

# What a connect request must carry, nested under "params".
CONNECT_PARAMS = ("host", "port", "client_id")
PARAM_DEFAULTS: dict[str, Any] = {"timeout": 10.0, "readonly": True}


class RequestError(Exception):
    """A request the worker refuses or could not complete; phase says where,
    code is the Gateway's error code when the Gateway refused it."""

    def __init__(self, message: str, phase: str = "request", code: int = 0) -> None:
        super().__init__(message)
        self.phase = phase
        self.code = code


# Codes that accompany data rather than refuse it (farm notices; 10167: delayed data follows).
NOTICE_CODES = frozenset({10167, 2104, 2106, 2107, 2108, 2158, 2119})


class Worker:
    """Owns one IB connection; handles one request at a time, in order."""

    def __init__(self) -> None:
        self.ib: IB | None = None
        self.messages: list[dict[str, Any]] = []  # error/warning messages from the Gateway

    # ------------------------------------------------------------ protocol

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        params = request.get("params", {})
        if not isinstance(params, dict):
            raise RequestError(f"{command}: 'params' must be an object, got {type(params).__name__}")
        handler = getattr(self, f"cmd_{command}", None) if isinstance(command, str) else None
        if handler is None:
            raise RequestError(f"unknown command {command!r}; valid: connect, ping, snapshot, qualify, bars, quote, "
                               "pnl, disconnect, shutdown")
        if command == "connect":
            params = self.connect_params(request)
        return await handler(params)

    @staticmethod
    def connect_params(request: dict[str, Any]) -> dict[str, Any]:
        """The connect parameters, from where the protocol puts them: under "params"."""
        params = request.get("params")
        if not isinstance(params, dict):
            stray = [k for k in CONNECT_PARAMS if k in request]
            where = f" (found {', '.join(stray)} at the top level: they belong under 'params')" if stray else ""
            raise RequestError(f"connect: no 'params' object{where}; expected "
                               '{"command": "connect", "params": {"host": ..., "port": ..., "client_id": ...}}')
        missing = [k for k in CONNECT_PARAMS if k not in params]
        if missing:
            raise RequestError(f"connect: params lacks {', '.join(missing)}")
        return {**PARAM_DEFAULTS, **params}

    # ------------------------------------------------------------ commands

    async def cmd_connect(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.ib is not None and self.ib.isConnected():
            raise RequestError("connect: already connected; send disconnect first")
        ib = self.ib = IB()
        ib.errorEvent += self._on_error
        started = time.monotonic()
        timeout = float(params["timeout"])
        try:
            # connectAsync returns only when the API is ready (nextValidId and
            # a non-empty managedAccounts) and its start-up sync is done.
            await ib.connectAsync(params["host"], int(params["port"]), int(params["client_id"]),
                                  timeout=timeout, readonly=bool(params["readonly"]))
        except BaseException as exc:
            phase = self._failed_phase(ib)
            self._close(ib)
            if isinstance(exc, asyncio.CancelledError):
                raise
            cause = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                cause = f"no answer within {timeout:g} s"
            raise RequestError(f"connect failed: {cause}", phase) from None
        accounts = ib.managedAccounts()
        if not accounts:  # connectAsync guarantees this; checked so a library change cannot slip by
            self._close(ib)
            raise RequestError("connect returned without managed accounts", "managed_accounts")
        return {
            "connected": True,
            "accounts": accounts,
            "server_version": ib.client.serverVersion(),
            "next_valid_id": ib.client.getReqId(),
            "api_ready_s": round(time.monotonic() - started, 6),
        }

    async def cmd_ping(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self._require()
        started = time.monotonic()
        try:
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), float(params.get("timeout", 5.0)))
        except TimeoutError:
            raise RequestError("reqCurrentTime got no answer", "ping") from None
        return {"seconds": round(time.monotonic() - started, 6)}

    async def cmd_snapshot(self, params: dict[str, Any]) -> dict[str, Any]:
        """Positions, account values and whether each end message arrived."""
        ib = self._require()
        timeout = float(params.get("timeout", 10.0))

        async def ended(awaitable: Any) -> bool:
            try:
                await asyncio.wait_for(awaitable, timeout)
                return True
            except TimeoutError:
                return False

        positions_end = await ended(ib.reqPositionsAsync())
        download_end = [acct for acct in ib.managedAccounts() if await ended(ib.reqAccountUpdatesAsync(acct))]
        executions_end = await ended(ib.reqExecutionsAsync())
        return {
            "accounts": ib.managedAccounts(),
            "positions": [{"account": p.account, "con_id": p.contract.conId, "symbol": p.contract.symbol,
                           "sec_type": p.contract.secType, "currency": p.contract.currency,
                           "position": float(p.position), "avg_cost": float(p.avgCost)} for p in ib.positions()],
            "account_values": [{"account": v.account, "key": v.tag, "value": v.value, "currency": v.currency}
                               for v in ib.accountValues()],
            "portfolio_items": len(ib.portfolio()),
            "positions_end": positions_end,
            "account_download_end": download_end,
            "executions_end": executions_end,
        }

    # The app's start-up (the field reports' ./START_TRADER.sh AAPL): qualify
    # the contract, pull bars, take a quote, read PnL. Each ends on the
    # Gateway's answer or its error; a refusal carries the Gateway's code.

    async def cmd_qualify(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self._require()
        seen = len(self.messages)
        details = await asyncio.wait_for(ib.reqContractDetailsAsync(_contract(params)), _timeout(params))
        if len(details) != 1:
            raise self._refusal("qualify", seen, f"{len(details)} contracts match {params.get('symbol')!r}")
        d = details[0]
        c = d.contract
        return {"con_id": c.conId, "symbol": c.symbol, "sec_type": c.secType, "exchange": c.exchange,
                "primary_exchange": c.primaryExchange, "currency": c.currency, "local_symbol": c.localSymbol,
                "trading_class": c.tradingClass, "last_trade_date": c.lastTradeDateOrContractMonth,
                "multiplier": c.multiplier, "min_tick": d.minTick, "long_name": d.longName}

    async def cmd_bars(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self._require()
        seen = len(self.messages)
        bars = await ib.reqHistoricalDataAsync(
            _contract(params), endDateTime="", durationStr=params.get("duration", "1 D"),
            barSizeSetting=params.get("bar_size", "5 mins"), whatToShow=params.get("what_to_show", "TRADES"),
            useRTH=True, formatDate=1, timeout=_timeout(params))
        if not bars:
            raise self._refusal("historical_bars", seen, "no bars")
        return {"bars": [{"date": str(b.date), "open": b.open, "high": b.high, "low": b.low, "close": b.close,
                          "volume": float(b.volume)} for b in bars]}

    async def cmd_quote(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self._require()
        ib.reqMarketDataType(int(params.get("market_data_type", 1)))
        seen = len(self.messages)
        tickers = await asyncio.wait_for(ib.reqTickersAsync(_contract(params)), _timeout(params))
        refused = self._refused(seen)
        if refused or not tickers:
            raise self._refusal("snapshot", seen, "no ticker")
        t = tickers[0]
        return {"market_data_type": t.marketDataType, "bid": _number(t.bid), "ask": _number(t.ask),
                "last": _number(t.last), "close": _number(t.close),
                "notices": [m["code"] for m in self.messages[seen:] if m["code"] in NOTICE_CODES]}

    async def cmd_pnl(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self._require()
        account = params.get("account") or ib.managedAccounts()[0]
        arrived: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_pnl(value: Any) -> None:
            if value.account == account and not arrived.done():
                arrived.set_result(value)

        seen = len(self.messages)
        ib.pnlEvent += on_pnl
        try:
            ib.reqPnL(account)
            value = await asyncio.wait_for(arrived, _timeout(params))
        except TimeoutError:
            raise self._refusal("pnl", seen, "no pnl") from None
        finally:
            ib.pnlEvent -= on_pnl
            ib.cancelPnL(account)
        return {"account": account, "daily": _number(value.dailyPnL, signed=True),
                "unrealized": _number(value.unrealizedPnL, signed=True),
                "realized": _number(value.realizedPnL, signed=True)}

    def _refused(self, seen: int) -> dict[str, Any] | None:
        return next((m for m in self.messages[seen:] if m["code"] not in NOTICE_CODES
                     and not 2100 <= m["code"] < 2200), None)

    def _refusal(self, step: str, seen: int, fallback: str) -> RequestError:
        refused = self._refused(seen)
        if refused is None:
            return RequestError(f"{step}: {fallback}", step)
        return RequestError(f"error {refused['code']}: {refused['message']}", step, int(refused["code"]))

    async def cmd_disconnect(self, params: dict[str, Any]) -> dict[str, Any]:
        ib, self.ib = self.ib, None
        if ib is not None:
            self._close(ib)
        return {"connected": False}

    async def cmd_shutdown(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.cmd_disconnect(params)

    # ------------------------------------------------------------ helpers

    def _require(self) -> IB:
        if self.ib is None or not self.ib.isConnected():
            raise RequestError("not connected", "request")
        return self.ib

    def _on_error(self, req_id: int, code: int, message: str, *args: Any) -> None:
        self.messages.append({"req_id": req_id, "code": code, "message": message})

    @staticmethod
    def _failed_phase(ib: IB) -> str:
        """Where a failed connect stopped, from what ib_async reached."""
        if ib.client.conn.transport is None and not ib.client.serverVersion():
            return "tcp_connect"
        if not ib.client.serverVersion():
            return "server_version"
        return "next_valid_id"

    @staticmethod
    def _close(ib: IB) -> None:
        """One clean close of the socket. IB.disconnect asks for connection
        statistics, which raise when the API never became ready; the
        client's own disconnect closes the socket in that case."""
        try:
            ib.disconnect()
        except ConnectionError:
            ib.client.disconnect()


def _contract(params: dict[str, Any]) -> Contract:
    return Contract(conId=int(params.get("con_id") or 0), symbol=params.get("symbol", ""),
                    secType=params.get("sec_type", "STK"), exchange=params.get("exchange", "SMART"),
                    primaryExchange=params.get("primary_exchange", ""), currency=params.get("currency", "USD"),
                    lastTradeDateOrContractMonth=params.get("last_trade_date", ""),
                    multiplier=params.get("multiplier", ""))


def _timeout(params: dict[str, Any]) -> float:
    return float(params.get("timeout", 10.0))


def _number(value: Any, *, signed: bool = False) -> float | None:
    """None for ib_async's 'no value' markers (nan, -1, Double.MAX_VALUE)."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or abs(number) > 1e300 or (not signed and number <= 0):
        return None
    return number


def reply(request_id: Any, **body: Any) -> None:
    sys.stdout.write(json.dumps({"id": request_id, **body}, default=str) + "\n")
    sys.stdout.flush()


async def serve(worker: Worker) -> None:
    """Read requests until shutdown or stdin EOF (the parent went away)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            try:
                request = json.loads(line)
            except ValueError as exc:
                reply(None, status="error", error=f"not a JSON request: {exc}", phase="request")
                continue
            if not isinstance(request, dict):
                reply(None, status="error", error="not a JSON request: a request is a JSON object", phase="request")
                continue
            request_id = request.get("id")
            try:
                data = await worker.handle(request)
            except RequestError as exc:
                reply(request_id, status="error", error=str(exc), phase=exc.phase, code=exc.code,
                      messages=worker.messages)
                continue
            except Exception as exc:  # a worker bug must cost one request, not the process
                log.exception("request %s failed", request_id)
                reply(request_id, status="error", error=f"worker error: {type(exc).__name__}: {exc}",
                      phase="worker", messages=worker.messages)
                continue
            reply(request_id, status="success", data={**data, "messages": worker.messages})
            if request.get("command") == "shutdown":
                return
    finally:
        await worker.cmd_disconnect({})  # parent gone or shutdown: close the socket once, cleanly


def main(worker: Worker | None = None) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="worker %(levelname)s %(message)s")
    asyncio.run(serve(worker or Worker()))


if __name__ == "__main__":
    main()
