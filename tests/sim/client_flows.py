"""One whole trading flow, driven by each TWS API client against the simulated gateway.

The same steps for ib_async 2.1 (negotiates 178), ib_insync 0.9.86 (176 at most) and IB's own
ibapi 10.50.2 (178 against us): connect, contract details, option chain, option contract
details, snapshot with greeks, one hour of 1-min bars, a MKT fill, a LMT cancel, positions,
account summary and updates, open and completed orders, executions.

Each flow runs on its own thread (ib_insync and ibapi want their own loop / reader thread) and
returns a :class:`FlowResult`; every log record of the client library at WARNING and above is
kept, with the number of messages the client received, so a test can assert that nothing was
dropped or failed to decode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

TIMEOUT = 30.0  # generous: the machine may be busy


@dataclass
class FlowResult:
    client: str
    server_version: int = 0
    received: int = 0  # messages received after the handshake reply
    log: list[str] = field(default_factory=list)  # client log records >= WARNING
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (reqId, code, text)
    checks: dict[str, Any] = field(default_factory=dict)


class _Collect(logging.Handler):
    def __init__(self, prefix: str, level: int = logging.WARNING) -> None:
        super().__init__(logging.DEBUG)
        self.prefix = prefix
        self.min_level = level
        self.records: list[str] = []
        self.debug_lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(self.prefix):
            return
        # logging.Handler.handle holds this handler's own lock around emit
        if record.levelno >= self.min_level:
            self.records.append(f"{record.levelname} {record.getMessage()}")
        elif record.levelno == logging.DEBUG:
            self.debug_lines.append(record.getMessage())


def _capture(prefix: str, debug: str = "") -> _Collect:
    """Collect ``prefix``'s records (>= WARNING); ``debug``: the one child logger whose DEBUG
    lines are kept too (ibapi's reader logs one per message; its decoder logs every field,
    far too many to keep up with on a busy machine)."""
    handler = _Collect(prefix)
    logger = logging.getLogger(prefix)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if not debug else logging.WARNING)
    if debug:
        logging.getLogger(debug).setLevel(logging.DEBUG)
    return handler


def _release(handler: _Collect, debug: str = "") -> None:
    logger = logging.getLogger(handler.prefix)
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    if debug:
        logging.getLogger(debug).setLevel(logging.NOTSET)


# --------------------------------------------------------------------------- ib_async / ib_insync


def insync_flow(lib: ModuleType, port: int, client_id: int) -> FlowResult:
    """The flow with ib_async or ib_insync (the same API), on this thread's own loop."""
    name = lib.__name__
    handler = _capture(name)
    result = FlowResult(name)
    try:
        asyncio.run(_insync_flow(lib, port, client_id, result))
    finally:
        _release(handler)
    result.log = list(handler.records)
    return result


async def _insync_flow(lib: Any, port: int, client_id: int, r: FlowResult) -> None:
    ib = lib.IB()
    ib.errorEvent += lambda req_id, code, text, contract: r.errors.append((req_id, code, text))
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=TIMEOUT)
    try:
        r.server_version = ib.client.serverVersion()
        c = r.checks

        async def wait(coro: Any) -> Any:
            return await asyncio.wait_for(coro, TIMEOUT)

        [spy] = await wait(ib.qualifyContractsAsync(lib.Stock("SPY", "SMART", "USD")))
        c["stock_con_id"] = spy.conId
        [chain] = await wait(ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId))
        c["chain"] = (len(chain.expirations), len(chain.strikes), chain.multiplier)
        [stock_ticker] = await wait(ib.reqTickersAsync(spy))
        price = stock_ticker.marketPrice()
        strike = min(chain.strikes, key=lambda k: abs(k - price))
        expiry = sorted(chain.expirations)[1]
        [call] = await wait(
            ib.qualifyContractsAsync(lib.Option("SPY", expiry, strike, "C", "SMART"))
        )
        c["option"] = (call.conId, call.multiplier, call.localSymbol)
        [option_ticker] = await wait(ib.reqTickersAsync(call))
        greeks = option_ticker.modelGreeks
        c["option_quote"] = (option_ticker.bid, option_ticker.ask)
        c["greeks"] = None if greeks is None else (greeks.delta, greeks.impliedVol, greeks.undPrice)
        c["bid_greeks"] = (
            option_ticker.bidGreeks is not None and option_ticker.askGreeks is not None
        )
        bars = await wait(ib.reqHistoricalDataAsync(spy, "", "3600 S", "1 min", "TRADES", True, 1))
        c["bars"] = len(bars)

        fill = ib.placeOrder(call, lib.MarketOrder("BUY", 1))
        await wait(fill.filledEvent)
        c["mkt"] = (fill.orderStatus.status, fill.orderStatus.filled, fill.orderStatus.avgFillPrice)
        resting = ib.placeOrder(spy, lib.LimitOrder("BUY", 1, 1.00))
        while resting.orderStatus.status != "Submitted":
            await wait(resting.statusEvent)
        open_trades = await wait(ib.reqOpenOrdersAsync())
        c["open_orders"] = sorted(t.order.orderId for t in open_trades)
        c["resting_id"] = resting.order.orderId
        ib.cancelOrder(resting.order)
        await wait(resting.cancelledEvent)
        c["lmt"] = resting.orderStatus.status
        await asyncio.sleep(0.3)  # the position / portfolio / account pushes after the fill

        positions = await wait(ib.reqPositionsAsync())
        c["positions"] = sorted(
            (p.contract.conId, p.position, round(p.avgCost, 2)) for p in positions
        )
        c["portfolio"] = sorted((p.contract.conId, p.position) for p in ib.portfolio())
        summary = await wait(ib.accountSummaryAsync())
        c["summary_tags"] = len({v.tag for v in summary})
        c["net_liq"] = next(float(v.value) for v in summary if v.tag == "NetLiquidation")
        c["account_values"] = len(ib.accountValues())
        completed = await wait(ib.reqCompletedOrdersAsync(False))
        c["completed"] = sorted((t.orderStatus.status, t.order.permId > 0) for t in completed)
        fills = await wait(ib.reqExecutionsAsync())
        c["executions"] = [(f.execution.side, f.execution.shares, f.contract.conId) for f in fills]
        c["commission"] = [f.commissionReport.commission for f in ib.fills()]
        # stop the pushes, then a round trip: everything sent before it has arrived
        ib.client.reqAccountUpdates(False, ib.managedAccounts()[0])
        ib.client.cancelPositions()
        await wait(ib.reqCurrentTimeAsync())
        r.received = ib.client._numMsgRecv - 1  # the handshake reply is not a message
    finally:
        ib.disconnect()


# --------------------------------------------------------------------------- ibapi


def under_libfaketime() -> bool:
    """True when the suite runs under libfaketime (``faketime '2027-07-04 23:58'``)."""
    return "faketime" in os.environ.get("LD_PRELOAD", "")


#: Why the ibapi flows cannot run under libfaketime: it fakes Python's monotonic clock reads
#: but not the waits behind thread timeouts, so ``queue.get(timeout=0.2)`` (ibapi's reader
#: loop) and ``Condition.wait(timeout)`` never return. Nothing here reads the wall clock.
LIBFAKETIME_SKIP = (
    "libfaketime breaks Python's timed thread waits (queue.get(timeout) never returns), "
    "which ibapi's reader thread runs on"
)


def ibapi_flow(port: int, client_id: int) -> FlowResult:
    """The flow with IB's own client: callbacks on its reader thread, waits on this one."""
    if under_libfaketime():
        import pytest

        pytest.skip(LIBFAKETIME_SKIP)
    handler = _capture("ibapi", debug="ibapi.client")
    try:
        result = _IbapiApp(port, client_id).run()
    finally:
        _release(handler, debug="ibapi.client")
    result.log = [r for r in handler.records if not r.startswith("WARNING ")] + [
        r for r in handler.records if r.startswith("WARNING ") and "ERROR" in r
    ]
    # messages up to the final currentTime (49) reply; later lines belong to the disconnect
    lines = [line for line in handler.debug_lines if line.startswith("msgId: ")]
    last = max(i for i, line in enumerate(lines) if line.startswith("msgId: 49,"))
    result.received = last + 1
    return result


def _ibapi_app_class() -> type:
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    class App(EWrapper, EClient):  # type: ignore[misc]
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.cond = threading.Condition()
            self.data: dict[str, Any] = {}
            self.ended: set[str] = set()
            self.errs: list[tuple[int, int, str]] = []
            self._disconnecting = threading.Lock()

        def disconnect(self) -> None:
            # ibapi's EClient.disconnect checks self.conn, then uses it; its run() loop calls it
            # too when the socket closes, and the other caller may reset conn to None between
            # the check and the use (AttributeError, seen under load): one at a time.
            with self._disconnecting:
                EClient.disconnect(self)

        # bookkeeping
        def put(self, key: str, value: Any) -> None:
            with self.cond:
                self.data.setdefault(key, []).append(value)
                self.cond.notify_all()

        def end(self, key: str) -> None:
            with self.cond:
                self.ended.add(key)
                self.cond.notify_all()

        def wait_for(self, pred: Any) -> None:
            with self.cond:
                if not self.cond.wait_for(pred, TIMEOUT):
                    raise TimeoutError("ibapi flow: no answer")

        def wait_end(self, key: str) -> list[Any]:
            self.wait_for(lambda: key in self.ended)
            self.ended.discard(key)
            return list(self.data.pop(key, []))

        # EWrapper
        def error(self, reqId: int, *args: Any) -> None:
            # 10.50: error(reqId, errorTime, errorCode, errorString, advancedOrderRejectJson)
            code, text = (args[1], args[2]) if len(args) >= 3 else (args[0], args[1])
            self.errs.append((reqId, int(code), str(text)))
            if int(code) == 202:
                self.end(f"cancelled{reqId}")

        def nextValidId(self, orderId: int) -> None:
            self.put("next_id", orderId)
            self.end("next_id")

        def managedAccounts(self, accountsList: str) -> None:
            self.put("accounts", accountsList)

        def contractDetails(self, reqId: int, contractDetails: Any) -> None:
            self.put(f"cd{reqId}", contractDetails)

        def contractDetailsEnd(self, reqId: int) -> None:
            self.end(f"cd{reqId}")

        def securityDefinitionOptionParameter(self, reqId: int, *args: Any) -> None:
            self.put(f"sd{reqId}", args)

        def securityDefinitionOptionParameterEnd(self, reqId: int) -> None:
            self.end(f"sd{reqId}")

        def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
            self.put(f"tp{reqId}", (tickType, price))

        def tickOptionComputation(self, reqId: int, tickType: int, *args: Any) -> None:
            self.put(f"toc{reqId}", (tickType, *args))

        def tickSnapshotEnd(self, reqId: int) -> None:
            self.end(f"tp{reqId}")

        def historicalData(self, reqId: int, bar: Any) -> None:
            self.put(f"hd{reqId}", bar)

        def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
            self.end(f"hd{reqId}")

        def orderStatus(self, orderId: int, status: str, filled: Any, *args: Any) -> None:
            self.put(f"os{orderId}", (status, float(filled)))

        def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
            self.put("open", (orderId, orderState.status, order.permId))

        def openOrderEnd(self) -> None:
            self.end("open")

        def completedOrder(self, contract: Any, order: Any, orderState: Any) -> None:
            self.put("completed", (orderState.status, order.permId))

        def completedOrdersEnd(self) -> None:
            self.end("completed")

        def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
            key = "live_exec" if reqId == -1 else f"ex{reqId}"
            self.put(key, (execution.side, float(execution.shares), contract.conId))

        def execDetailsEnd(self, reqId: int) -> None:
            self.end(f"ex{reqId}")

        def commissionReport(self, commissionReport: Any) -> None:
            self.put("commission", commissionReport.commission)

        def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:
            self.put("commission", commissionAndFeesReport.commissionAndFees)

        def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:
            self.put("positions", (contract.conId, float(position), round(avgCost, 2)))

        def positionEnd(self) -> None:
            self.end("positions")

        def accountSummary(
            self, reqId: int, account: str, tag: str, value: str, currency: str
        ) -> None:
            self.put(f"as{reqId}", (tag, value))

        def accountSummaryEnd(self, reqId: int) -> None:
            self.end(f"as{reqId}")

        def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:
            self.put("account_values", key)

        def updatePortfolio(self, contract: Any, position: Any, *args: Any) -> None:
            self.put("portfolio", (contract.conId, float(position)))

        def currentTime(self, time: int) -> None:
            self.put("time", time)

        def accountDownloadEnd(self, accountName: str) -> None:
            self.end("account_values")

    return App


class _IbapiApp:
    def __init__(self, port: int, client_id: int) -> None:
        self.port = port
        self.client_id = client_id

    def run(self) -> FlowResult:
        from ibapi.contract import Contract
        from ibapi.order import Order

        app: Any = _ibapi_app_class()()
        r = FlowResult("ibapi")
        app.connect("127.0.0.1", self.port, self.client_id)
        reader = threading.Thread(target=app.run, daemon=True)
        reader.start()
        try:
            next_id = app.wait_end("next_id")[0]
            r.server_version = app.serverVersion()
            c = r.checks
            ids = iter(range(next_id, next_id + 1000))

            def stock() -> Any:
                k = Contract()
                k.symbol, k.secType, k.exchange, k.currency = "SPY", "STK", "SMART", "USD"
                return k

            rid = next(ids)
            app.reqContractDetails(rid, stock())
            [spy_details] = app.wait_end(f"cd{rid}")
            spy = spy_details.contract
            c["stock_con_id"] = spy.conId
            rid = next(ids)
            app.reqSecDefOptParams(rid, "SPY", "", "STK", spy.conId)
            [params] = app.wait_end(f"sd{rid}")
            _exchange, _under, _tclass, multiplier, expirations, strikes = params
            c["chain"] = (len(expirations), len(strikes), multiplier)
            rid = next(ids)
            app.reqMktData(rid, spy, "", True, False, [])
            ticks = dict(app.wait_end(f"tp{rid}"))
            price = (ticks[1] + ticks[2]) / 2
            opt = Contract()
            opt.symbol, opt.secType, opt.exchange, opt.currency = "SPY", "OPT", "SMART", "USD"
            opt.lastTradeDateOrContractMonth = sorted(expirations)[1]
            opt.strike = min(strikes, key=lambda k: abs(k - price))
            opt.right = "C"
            rid = next(ids)
            app.reqContractDetails(rid, opt)
            [call_details] = app.wait_end(f"cd{rid}")
            call = call_details.contract
            c["option"] = (call.conId, call.multiplier, call.localSymbol)
            rid = next(ids)
            app.reqMktData(rid, call, "", True, False, [])
            oticks = dict(app.wait_end(f"tp{rid}"))
            comps = {t[0]: t for t in app.data.pop(f"toc{rid}", [])}
            c["option_quote"] = (oticks.get(1), oticks.get(2))
            model = comps.get(13)
            # (tickType, tickAttrib, impliedVol, delta, optPrice, pvDividend, gamma, vega, theta, und)
            c["greeks"] = None if model is None else (model[3], model[2], model[9])
            c["bid_greeks"] = 10 in comps and 11 in comps
            rid = next(ids)
            app.reqHistoricalData(rid, spy, "", "3600 S", "1 min", "TRADES", 1, 1, False, [])
            c["bars"] = len(app.wait_end(f"hd{rid}"))

            mkt = Order()
            mkt.action, mkt.orderType, mkt.totalQuantity = "BUY", "MKT", 1
            mkt.eTradeOnly = mkt.firmQuoteOnly = False
            oid = next(ids)
            app.placeOrder(oid, call, mkt)
            app.wait_for(lambda: ("Filled", 1.0) in app.data.get(f"os{oid}", []))
            app.wait_for(lambda: len(app.data.get("commission", [])) >= 1)
            c["mkt"] = ("Filled", 1.0)
            lmt = Order()
            lmt.action, lmt.orderType, lmt.totalQuantity, lmt.lmtPrice = "BUY", "LMT", 1, 1.0
            lmt.eTradeOnly = lmt.firmQuoteOnly = False
            lid = next(ids)
            app.placeOrder(lid, spy, lmt)
            app.wait_for(lambda: any(s == "Submitted" for s, _ in app.data.get(f"os{lid}", [])))
            app.data.pop("open", None)
            app.reqOpenOrders()
            c["open_orders"] = sorted(o for o, _s, _p in app.wait_end("open"))
            c["resting_id"] = lid
            app.cancelOrder(lid, _cancel_arg())
            app.wait_for(lambda: any(s == "Cancelled" for s, _ in app.data.get(f"os{lid}", [])))
            c["lmt"] = "Cancelled"
            time.sleep(0.3)

            app.data.pop("positions", None)
            app.reqPositions()
            c["positions"] = sorted(app.wait_end("positions"))
            app.reqAccountUpdates(True, "")
            values = app.wait_end("account_values")
            app.reqAccountUpdates(False, "")  # the pushes would keep coming
            c["account_values"] = len(values)
            c["portfolio"] = sorted(set(app.data.pop("portfolio", [])))
            rid = next(ids)
            app.reqAccountSummary(rid, "All", "NetLiquidation,TotalCashValue,BuyingPower")
            summary = dict(app.wait_end(f"as{rid}"))
            c["summary_tags"] = len(summary)
            c["net_liq"] = float(summary["NetLiquidation"])
            app.reqCompletedOrders(False)
            c["completed"] = sorted((s, p > 0) for s, p in app.wait_end("completed"))
            rid = next(ids)
            from ibapi.execution import ExecutionFilter

            app.data.pop("commission", None)
            app.reqExecutions(rid, ExecutionFilter())
            execs = app.wait_end(f"ex{rid}")
            c["executions"] = execs
            app.wait_for(lambda: len(app.data.get("commission", [])) >= len(execs))
            c["commission"] = list(app.data.pop("commission", []))
            # stop the pushes, then a round trip: everything sent before it has arrived
            app.reqAccountUpdates(False, "")
            app.cancelPositions()
            app.reqCurrentTime()
            app.wait_for(lambda: "time" in app.data)
            r.errors = list(app.errs)
            while not app.msg_queue.empty():  # nothing left for the reader after disconnect
                app.msg_queue.get_nowait()
        finally:
            app.disconnect()
            reader.join(5)
        return r


def _cancel_arg() -> Any:
    """ibapi 10.50's cancelOrder takes an OrderCancel (older ones a manual-cancel time)."""
    try:
        from ibapi.order_cancel import OrderCancel
    except ImportError:  # pragma: no cover - older ibapi
        return ""
    return OrderCancel()
