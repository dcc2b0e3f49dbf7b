"""Fault injection, IB's limits and order validation, seen by the real ib_async client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from ib_async import IB, Contract, LimitOrder, MarketOrder, Stock

from ibkr_trader.sim import FaultInjector, SimConfig, SimulatedGateway

from .conftest import Connector, IbLog


async def _aapl(ib: IB) -> Contract:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return aapl


def _codes(ib: IB) -> list[int]:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    return codes


# --------------------------------------------------------------------------- connection faults


async def test_delayed_request_answers_after_later_ones(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.delay(49, 0.2)
    slow = asyncio.ensure_future(ib.reqCurrentTimeAsync())
    await ib.accountSummaryAsync()
    assert not slow.done()
    assert isinstance(await asyncio.wait_for(slow, 5), datetime)
    iblog.assert_clean()


async def test_a_delayed_order_is_not_overtaken_by_its_cancel(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    """TWS handles one connection's orders and cancels in the order sent: a slow placeOrder
    holds the cancel behind it, which then finds the order (not 10147 "not found")."""
    codes = _codes(ib)
    aapl = await _aapl(ib)
    gateway.faults.delay(3, 0.3)  # placeOrder
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.0))
    await asyncio.sleep(0.05)
    ib.cancelOrder(trade.order)
    listing = asyncio.ensure_future(ib.reqAllOpenOrdersAsync())  # held behind the two
    await asyncio.sleep(0.1)
    assert not listing.done()
    assert not gateway.received_orders  # still held
    await asyncio.wait_for(listing, 5)
    for _ in range(100):
        if trade.orderStatus.status == "Cancelled":
            break
        await asyncio.sleep(0.02)
    assert [e.status for e in trade.log][-2:] == ["Submitted", "Cancelled"]
    assert 10147 not in codes
    [received] = gateway.received_orders
    assert received.is_done
    iblog.assert_clean(allow=["Order Canceled"])


async def test_drop_after_n_messages_closes_the_socket(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.drop_after(1)
    await ib.reqCurrentTimeAsync()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    assert not ib.isConnected()
    iblog.assert_clean(allow=["Peer closed connection"])


async def test_drop_on_a_request_closes_the_socket(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.drop_on(62)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(ib.accountSummaryAsync(), 5)
    assert gateway.connection_count == 0
    iblog.assert_clean(allow=["Peer closed connection"])


async def test_refused_handshake_fails_the_connect(gateway: SimulatedGateway, iblog: IbLog) -> None:
    gateway.faults.refuse_handshake()
    ib = IB()
    try:
        with pytest.raises((TimeoutError, ConnectionError)):
            await ib.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=0.5)
    finally:
        ib.disconnect()
    assert not iblog.decode_errors()


async def test_error_next_answers_the_next_request_with_an_error(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    codes = _codes(ib)
    gateway.faults.error_next(9, 200, "No security definition has been found for the request")
    [first] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    [second] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    assert first is None and second is not None
    assert codes == [200]
    iblog.assert_clean(allowed_codes={200})


async def test_restart_drops_clients_and_keeps_state(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    async with connect(gateway, client_id=2) as ib:
        aapl = await _aapl(ib)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 7))
        await asyncio.wait_for(trade.filledEvent, 5)
        lost = asyncio.Event()
        ib.disconnectedEvent += lost.set
        await gateway.restart()
        await asyncio.wait_for(lost.wait(), 5)
    async with connect(gateway, client_id=2) as ib:
        assert [p.position for p in ib.positions()] == [7]
        assert len(ib.fills()) == 1
    iblog.assert_clean(allow=["Peer closed connection"])


async def test_connectivity_notices_reach_every_client_and_1102_resyncs_summary(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    async with connect(gateway, client_id=1) as ib1, connect(gateway, client_id=2) as ib2:
        codes1, codes2 = _codes(ib1), _codes(ib2)
        await ib1.accountSummaryAsync()
        before = sum(gateway.message_counts(1).values())
        for code in (1100, 1101, 1102):
            await gateway.broadcast_error(code)
        await asyncio.sleep(0.1)
        assert codes1 == codes2 == [1100, 1101, 1102]
        assert sum(gateway.message_counts(1).values()) > before  # ib_async re-requested
    iblog.assert_clean(allowed_codes={1100, 1101, 1102})


# --------------------------------------------------------------------------- order faults


async def test_rejected_orders_get_201_and_cancelled(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.reject_orders("no trading today")
    trade = ib.placeOrder(await _aapl(ib), MarketOrder("BUY", 1))
    await asyncio.wait_for(trade.cancelledEvent, 5)
    assert trade.orderStatus.status == "Cancelled"
    assert any("no trading today" in e.message for e in trade.log)
    assert gateway.received_orders[-1].status == "Cancelled"
    iblog.assert_clean(allowed_codes={201})


async def test_never_fill_leaves_the_order_working(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.never_fill()
    trade = ib.placeOrder(await _aapl(ib), MarketOrder("BUY", 1))
    await asyncio.sleep(0.1)
    assert trade.orderStatus.status == "Submitted"
    assert trade.fills == []
    gateway.faults.clear()
    await asyncio.wait_for(trade.filledEvent, 5)
    iblog.assert_clean()


async def test_stale_quotes_carry_old_timestamps(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.stale_quotes(600)
    [ticker] = await ib.reqTickersAsync(await _aapl(ib))
    assert ticker.lastTimestamp is not None
    age = (gateway.clock.now() - ticker.lastTimestamp).total_seconds()
    assert 590 <= age <= 700
    iblog.assert_clean()


async def test_missing_bid_ask_quotes_minus_one(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    gateway.faults.missing_bid_ask()
    [ticker] = await ib.reqTickersAsync(await _aapl(ib))
    assert (ticker.bid, ticker.ask) == (-1, -1)
    assert not ticker.hasBidAsk()
    assert ticker.last > 0
    iblog.assert_clean()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (MarketOrder("BUY", 1, account="DU9999999"), 321),
        (MarketOrder("BUY", 0), 434),
        (LimitOrder("BUY", 1, 100.003), 110),
    ],
)
async def test_invalid_orders_are_refused_as_ib_does(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog, order: LimitOrder, code: int
) -> None:
    codes = _codes(ib)
    trade = ib.placeOrder(await _aapl(ib), order)
    for _ in range(100):
        if trade.isDone():
            break
        await asyncio.sleep(0.01)
    assert trade.isDone() and not trade.fills
    assert trade.orderStatus.status in ("Cancelled", "Inactive")
    assert codes == [code]
    iblog.assert_clean(allowed_codes={code})


async def test_order_for_an_unknown_contract_is_refused(ib: IB, iblog: IbLog) -> None:
    trade = ib.placeOrder(Stock("NOPE", "SMART", "USD"), MarketOrder("BUY", 1))
    await asyncio.wait_for(trade.cancelledEvent, 5)
    iblog.assert_clean(allowed_codes={200})


async def test_duplicate_order_id_gives_103(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    codes = _codes(ib)
    aapl = await _aapl(ib)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await asyncio.wait_for(trade.filledEvent, 5)
    ib.client.placeOrder(trade.order.orderId, aapl, MarketOrder("BUY", 1))
    await asyncio.sleep(0.1)
    assert codes == [103]
    iblog.assert_clean(allowed_codes={103})


# --------------------------------------------------------------------------- limits


async def test_more_than_50_messages_a_second_gives_error_100(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    codes = _codes(ib)
    ib.client.MaxRequests = 0  # switch off ib_async's own throttle
    for _ in range(60):
        ib.client.reqCurrentTime()
    await asyncio.sleep(0.2)
    assert 100 in codes
    assert gateway.rate_violations(1) >= 1
    assert gateway.max_messages_per_second(1) >= 51
    iblog.assert_clean(allowed_codes={100})


async def test_market_data_lines_beyond_the_limit_give_101(
    connect: Connector, iblog: IbLog
) -> None:
    async with SimulatedGateway(SimConfig(max_market_data_lines=2)) as gw, connect(gw) as ib:
        codes = _codes(ib)
        contracts = await ib.qualifyContractsAsync(
            *(Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM"))
        )
        for c in contracts:
            ib.reqMktData(c)
        await asyncio.sleep(0.1)
        assert codes == [101]
        assert gw.standing_subscriptions() == 2
        for c in contracts:
            ib.cancelMktData(c)
        await asyncio.sleep(0.05)
        assert gw.standing_subscriptions() == 0
    iblog.assert_clean(allowed_codes={101})


async def test_a_client_id_in_use_gets_its_socket_closed(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    async with connect(gateway, client_id=4):
        second = IB()
        try:
            with pytest.raises((TimeoutError, ConnectionError)):
                await second.connectAsync("127.0.0.1", gateway.port, clientId=4, timeout=0.5)
        finally:
            second.disconnect()
    assert not iblog.decode_errors()


async def test_non_loopback_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatedGateway(SimConfig(host="0.0.0.0"))
    SimulatedGateway(SimConfig(host="0.0.0.0", allow_non_loopback=True))


async def test_gateway_close_is_idempotent_and_message_counts_survive(connect: Connector) -> None:
    gw = SimulatedGateway(SimConfig(start=datetime(2025, 1, 2, 15, 0, tzinfo=UTC)))
    await gw.start()
    async with connect(gw, client_id=8) as ib:
        await ib.reqCurrentTimeAsync()
    await asyncio.sleep(0.05)
    assert sum(gw.message_counts(8).values()) >= 7
    await gw.close()
    await gw.close()


# --------------------------------------------------------------------------- warnings, corrections


async def test_an_order_warning_leaves_the_order_working_and_filling(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    codes = _codes(ib)
    gateway.faults.warn_orders(10349)
    aapl = await _aapl(ib)
    resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.00))
    filled = ib.placeOrder(aapl, MarketOrder("BUY", 2))
    await asyncio.wait_for(filled.fillEvent, 5)
    await asyncio.sleep(0.05)
    assert codes == [10349, 10349]
    assert any("TIF was set to DAY" in e.message for e in resting.log)
    # the gateway's word: one order still working, the other filled; ib_async 2.1 says
    # Cancelled for the working one (10349 is outside its warning set)
    by_id = {o.order_id: o for o in gateway.received_orders}
    assert by_id[resting.order.orderId].status == "Submitted"
    assert by_id[filled.order.orderId].status == "Filled"
    assert resting.orderStatus.status == "Cancelled"
    assert sum(f.execution.shares for f in filled.fills) == 2
    gateway.faults.warn_orders(None)
    later = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    await asyncio.wait_for(later.filledEvent, 5)
    assert codes == [10349, 10349]
    iblog.assert_clean(allowed_codes={10349})


async def test_a_warning_on_a_live_order_keeps_it_working_until_cancelled(
    ib: IB, gateway: SimulatedGateway, iblog: IbLog
) -> None:
    codes = _codes(ib)
    trade = ib.placeOrder(await _aapl(ib), LimitOrder("BUY", 1, 1.00))
    await asyncio.wait_for(trade.statusEvent, 5)
    gateway.warn_order(trade.order.orderId, 399)
    await asyncio.sleep(0.05)
    assert codes == [399]
    assert trade.orderStatus.status == "ValidationError"  # ib_async's own word, not IB's
    assert gateway.received_orders[-1].status == "Submitted"
    ib.cancelOrder(trade.order)
    await asyncio.wait_for(trade.cancelledEvent, 5)
    assert gateway.received_orders[-1].status == "Cancelled"
    with pytest.raises(KeyError):
        gateway.warn_order(99_999, 404)
    iblog.assert_clean(allowed_codes={399, 202})


async def test_an_execution_correction_replaces_the_first_revision(
    gateway: SimulatedGateway, connect: Connector, iblog: IbLog
) -> None:
    gateway.faults.correct_executions()
    async with connect(gateway, client_id=3) as ib:
        trade = ib.placeOrder(await _aapl(ib), MarketOrder("BUY", 5))
        await asyncio.wait_for(trade.filledEvent, 5)
        await asyncio.sleep(0.05)
        ids = sorted(f.execution.execId for f in ib.fills())
        assert len(ids) == 2 and ids[0].endswith(".01") and ids[1].endswith(".02")
        assert ids[0][:-3] == ids[1][:-3]
        assert [p.position for p in ib.positions()] == [5]  # one fill on the book
    gateway.faults.clear()
    async with connect(gateway, client_id=3) as ib:
        [fill] = ib.fills()  # the gateway's record keeps only the latest revision
        assert fill.execution.execId == ids[1]
        assert fill.execution.shares == 5
    assert [e.exec_id for e in gateway.state.executions] == [ids[1]]
    iblog.assert_clean()


def test_fault_specs_for_warnings_and_corrections() -> None:
    faults = FaultInjector()
    faults.apply("warn_orders:2109")
    faults.apply("correct_executions")
    assert faults.order_warning is not None and faults.order_warning[0] == 2109
    assert "Outside Regular Trading Hours" in faults.order_warning[1]
    assert faults.correct_fills
    faults.warn_orders(777, "custom")
    assert faults.order_warning == (777, "custom")
    faults.clear()
    assert faults.order_warning is None and not faults.correct_fills
    with pytest.raises(ValueError):
        faults.apply("warn_orders:x")


async def test_a_host_that_only_starts_with_127_is_not_loopback() -> None:
    from ibkr_trader.sim.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("127.9.9.9") and is_loopback("::1")
    assert not is_loopback("127.0.0.1.attacker.example")
    with pytest.raises(ValueError, match="loopback"):
        SimulatedGateway(SimConfig(host="127.0.0.1.attacker.example"))
