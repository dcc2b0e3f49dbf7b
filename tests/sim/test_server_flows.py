"""The simulated gateway driven by the real, unmodified ib_async client over loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Stock

from ibkr_trader.sim import SimConfig, SimulatedGateway

from .conftest import Connector, IbLog


async def _spy_and_call(ib: IB) -> tuple[Stock, Option]:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    [chain] = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
    [ticker] = await ib.reqTickersAsync(spy)
    strike = min(chain.strikes, key=lambda k: abs(k - ticker.marketPrice()))
    expiry = sorted(chain.expirations)[1]
    [call] = await ib.qualifyContractsAsync(Option("SPY", expiry, strike, "C", "SMART"))
    return spy, call


async def test_acceptance_script_runs_without_one_ib_async_error(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    async with connect(gateway) as ib:
        spy, call = await _spy_and_call(ib)
        assert spy.conId and call.conId and call.multiplier == "100"
        stock_ticker, option_ticker = await ib.reqTickersAsync(spy, call)
        for t in (stock_ticker, option_ticker):
            assert 0 < t.bid <= t.ask
            assert t.last > 0 and t.volume > 0 and t.close > 0
            assert t.lastTimestamp is not None
        bars = await ib.reqHistoricalDataAsync(spy, "", "3600 S", "1 min", "TRADES", True, 1)
        assert len(bars) == 60
        assert all(b.volume > 0 for b in bars)
        trade = ib.placeOrder(call, MarketOrder("BUY", 1))
        await asyncio.wait_for(trade.filledEvent, 5)
        assert trade.orderStatus.status == "Filled"
        assert trade.orderStatus.avgFillPrice == option_ticker.ask
        await asyncio.sleep(0.05)
        [position] = ib.positions()
        assert position.contract.conId == call.conId
        assert position.position == 1
        assert position.avgCost == pytest.approx(
            trade.orderStatus.avgFillPrice * 100 + 1.0
        )  # commission in
        assert gateway.standing_subscriptions() == 0
    iblog.assert_clean()


async def test_connect_answers_every_startup_request_at_once(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    started = time.perf_counter()
    async with connect(gateway, client_id=3) as ib:
        elapsed = time.perf_counter() - started
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.client.serverVersion() == 178
        values = {v.tag: v.value for v in ib.accountValues()}
        for tag in (
            "NetLiquidation",
            "TotalCashValue",
            "AvailableFunds",
            "BuyingPower",
            "DayTradesRemaining",
        ):
            assert tag in values
        assert float(values["NetLiquidation"]) == 1_000_000.0
    assert elapsed < 4  # the startup sync did not wait for any timeout (5 s each)
    iblog.assert_clean()


async def test_current_time_and_account_summary(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    server_time = await ib.reqCurrentTimeAsync()
    assert abs(server_time.timestamp() - gateway.clock.now().timestamp()) < 5
    summary = await ib.accountSummaryAsync()
    tags = {v.tag: v.value for v in summary}
    assert tags["AccountType"] == "INDIVIDUAL"
    assert float(tags["BuyingPower"]) > 0
    assert tags["DayTradesRemaining"] == "-1"
    iblog.assert_clean()


async def test_unknown_contract_gives_error_200_and_none(ib: IB, iblog: IbLog) -> None:
    [result] = await ib.qualifyContractsAsync(Stock("NOPE", "SMART", "USD"))
    assert result is None
    assert iblog.error_codes() == [200]
    iblog.assert_clean(allowed_codes={200})


async def test_streaming_market_data_ticks_and_cancel_leaves_no_subscription(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy)
    updates = 0

    def on_update(_: object) -> None:
        nonlocal updates
        updates += 1

    ticker.updateEvent += on_update
    for _ in range(100):
        if updates >= 3:
            break
        await asyncio.sleep(0.02)
    assert updates >= 3
    assert gateway.standing_subscriptions() == 1
    assert ticker.bid > 0 and ticker.marketDataType == 1
    ib.cancelMktData(spy)
    await asyncio.sleep(0.05)
    assert gateway.standing_subscriptions() == 0
    iblog.assert_clean()


async def test_delayed_market_data_uses_delayed_ticks(ib: IB, iblog: IbLog) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ib.reqMarketDataType(3)
    [ticker] = await ib.reqTickersAsync(spy)
    assert ticker.marketDataType == 3
    assert ticker.bid > 0 and ticker.ask > 0 and ticker.last > 0 and ticker.volume > 0
    iblog.assert_clean()


async def test_historical_bars_end_at_the_requested_time_in_both_date_formats(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    end = gateway.clock.now().replace(second=0, microsecond=0) - __import__("datetime").timedelta(
        hours=2
    )
    bars = await ib.reqHistoricalDataAsync(spy, end, "1800 S", "1 min", "TRADES", False, 2)
    assert len(bars) == 30
    assert bars[-1].date.timestamp() == end.timestamp() - 60
    assert bars[-1].date.tzinfo is not None
    bars5 = await ib.reqHistoricalDataAsync(spy, "", "3600 S", "5 mins", "MIDPOINT", True, 1)
    assert 12 <= len(bars5) <= 13
    assert all(b.volume == -1 for b in bars5)
    assert str(bars5[0].date.tzinfo) == "US/Eastern"
    iblog.assert_clean()


async def test_identical_historical_request_within_15s_is_a_pacing_violation(
    ib: IB, iblog: IbLog
) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    first = await ib.reqHistoricalDataAsync(spy, "", "600 S", "1 min", "TRADES", True, 1)
    second = await ib.reqHistoricalDataAsync(spy, "", "600 S", "1 min", "TRADES", True, 1)
    assert len(first) == 10 and len(second) == 0
    assert iblog.error_codes() == [162]
    iblog.assert_clean(allowed_codes={162})


async def test_pacing_can_be_switched_off(connect: Connector, iblog: IbLog) -> None:
    async with SimulatedGateway(SimConfig(pacing=False)) as gw, connect(gw) as ib:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        for _ in range(7):
            bars = await ib.reqHistoricalDataAsync(spy, "", "600 S", "1 min", "TRADES", True, 2)
            assert len(bars) == 10
    iblog.assert_clean()


async def test_limit_order_rests_until_marketable_then_fills(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    [ticker] = await ib.reqTickersAsync(aapl)
    limit = round(ticker.bid * 0.9, 2)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, limit, orderRef="ref-1", extOperator="op-1"))
    await asyncio.sleep(0.1)
    assert trade.orderStatus.status == "Submitted"
    assert trade.order.permId > 0
    gateway.market.set_override("AAPL", limit - 1.0)
    await asyncio.wait_for(trade.filledEvent, 5)
    assert trade.orderStatus.avgFillPrice <= limit
    received = gateway.received_orders[-1]
    assert (received.order_ref, received.ext_operator, received.status) == (
        "ref-1",
        "op-1",
        "Filled",
    )
    fills = await ib.reqExecutionsAsync()
    assert fills[-1].execution.orderRef == "ref-1"
    iblog.assert_clean()


async def test_cancel_order_goes_pending_cancel_then_cancelled_with_202(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, 1.0))
    await asyncio.sleep(0.05)
    ib.cancelOrder(trade.order)
    assert trade.orderStatus.status == "PendingCancel"
    await asyncio.wait_for(trade.cancelledEvent, 5)
    assert trade.orderStatus.status == "Cancelled"
    assert gateway.received_orders[-1].status == "Cancelled"
    iblog.assert_clean(allowed_codes={202})


async def test_orders_and_fills_from_an_earlier_connection_are_reported(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    async with connect(gateway, client_id=5) as ib:
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 1.0, orderRef="resting"))
        filled = ib.placeOrder(aapl, MarketOrder("BUY", 3, orderRef="filled"))
        await asyncio.wait_for(filled.filledEvent, 5)
        await asyncio.sleep(0.05)
    async with connect(gateway, client_id=5) as ib:
        open_refs = {t.order.orderRef for t in ib.openTrades()}
        assert open_refs == {"resting"}
        assert [f.execution.orderRef for f in ib.fills()] == ["filled"]
        completed = await ib.reqCompletedOrdersAsync(False)
        assert [t.order.orderRef for t in completed] == ["filled"]
        all_open = await ib.reqAllOpenOrdersAsync()
        assert [t.order.orderRef for t in all_open] == ["resting"]
        assert ib.client.getReqId() > resting.order.orderId
        [position] = ib.positions()
        assert position.position == 3
    iblog.assert_clean()


async def test_positions_portfolio_and_account_follow_fills(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    buy = ib.placeOrder(msft, MarketOrder("BUY", 10))
    await asyncio.wait_for(buy.filledEvent, 5)
    await asyncio.sleep(0.05)
    [item] = ib.portfolio()
    assert item.position == 10
    assert item.marketValue == round(10 * item.marketPrice, 2)
    assert abs(item.unrealizedPNL - (item.marketValue - 10 * item.averageCost)) < 0.02
    cash = float(next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue"))
    assert cash < 1_000_000
    sell = ib.placeOrder(msft, MarketOrder("SELL", 10))
    await asyncio.wait_for(sell.filledEvent, 5)
    await asyncio.sleep(0.05)
    assert ib.positions() == []
    report = sell.fills[-1].commissionReport
    assert report.realizedPNL != 0
    iblog.assert_clean()


async def test_partial_fill_through_a_fill_latency(connect: Connector, iblog: IbLog) -> None:
    async with SimulatedGateway(SimConfig(fill_latency=0.05)) as gw, connect(gw) as ib:
        gw.faults.partial_fill(0.5)
        [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        await asyncio.wait_for(trade.fillEvent, 5)
        await asyncio.sleep(0.05)
        assert trade.orderStatus.status == "Submitted"
        assert (trade.orderStatus.filled, trade.orderStatus.remaining) == (5, 5)
        gw.faults.partial_fill(None)
        await asyncio.wait_for(trade.filledEvent, 5)
        assert [f.execution.cumQty for f in trade.fills] == [5, 10]
    iblog.assert_clean()


async def test_stock_and_option_seeded_positions_show_ib_avg_cost(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    expiry = gateway.catalog.expirations("SPY")[1]
    strike = gateway.catalog.strikes("SPY")[len(gateway.catalog.strikes("SPY")) // 2]
    gateway.seed_position(
        "DU1234567", "SPY", 2, 312.5, sec_type="OPT", expiry=expiry, strike=strike, right="P"
    )
    gateway.seed_position("DU1234567", "AAPL", 100, 150.5)
    async with connect(gateway) as ib:
        costs = sorted((p.contract.secType, p.avgCost) for p in ib.positions())
        assert costs == [("OPT", 312.5), ("STK", 150.5)]
        opt = next(i for i in ib.portfolio() if i.contract.secType == "OPT")
        assert opt.marketValue == round(2 * opt.marketPrice * 100, 2)
    iblog.assert_clean()


async def test_option_snapshots_carry_greeks_live_and_delayed(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    _, call = await _spy_and_call(ib)
    [live] = await ib.reqTickersAsync(call)
    for greeks in (live.bidGreeks, live.askGreeks, live.lastGreeks, live.modelGreeks):
        assert greeks is not None and greeks.delta is not None and 0 < greeks.delta < 1
    assert live.modelGreeks is not None and live.modelGreeks.impliedVol is not None
    assert live.bidGreeks is not None and live.askGreeks is not None
    assert live.bidGreeks.impliedVol is not None and live.askGreeks.impliedVol is not None
    assert live.bidGreeks.impliedVol < live.askGreeks.impliedVol  # the spread in vol terms
    model = live.modelGreeks
    assert model.gamma is not None and model.gamma > 0
    assert model.vega is not None and model.vega > 0
    assert model.theta is not None and model.theta < 0
    assert model.undPrice is not None and model.undPrice > 100
    ib.reqMarketDataType(3)
    gateway.faults.missing_bid_ask()
    [delayed] = await ib.reqTickersAsync(call)
    assert delayed.marketDataType == 3
    assert delayed.modelGreeks is not None and delayed.modelGreeks.delta is not None
    iblog.assert_clean()
