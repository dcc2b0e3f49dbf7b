"""Pure conversions: OrderSpec -> ib_async Order, contracts, durations, snapshots."""

from __future__ import annotations

import asyncio
import math

import pytest
from ib_async import Contract as IBContract
from ib_async import Order as IBOrder
from ib_async import OrderStatus as IBOrderStatus
from ib_async import Trade as IBTrade
from ib_async.objects import TradeLogEntry

from ibkr_trader.broker.contracts import from_ib_contract, require_qualified, to_ib_contract
from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    BrokerTimeoutError,
    ContractQualificationError,
    GatewayDisconnectedError,
    OrderRejectedError,
)
from ibkr_trader.broker.market_data import (
    bar_size_seconds,
    check_history_request,
    parse_duration_seconds,
)
from ibkr_trader.broker.orders import OrderSpec, TradeHandle, snapshot_trade, to_ib_order
from ibkr_trader.models import ContractSpec


def test_limit_order_spec_converts_to_an_ib_order_with_our_ids() -> None:
    spec = OrderSpec(
        "buy", 3, "limit", 1.25, order_ref="cid-1", ext_operator="CSATSPRIM", account="DU1"
    )
    order = to_ib_order(spec)
    assert isinstance(order, IBOrder)
    assert (order.action, order.totalQuantity, order.orderType) == ("BUY", 3, "LMT")
    assert order.lmtPrice == 1.25
    assert order.orderRef == "cid-1"
    assert order.extOperator == "CSATSPRIM"
    assert order.account == "DU1"
    assert order.tif == "DAY"
    assert order.transmit is True
    assert order.outsideRth is False


def test_market_order_spec_leaves_the_limit_unset() -> None:
    order = to_ib_order(OrderSpec("SELL", 1, "MKT"))
    assert order.orderType == "MKT"
    assert order.lmtPrice > 1e300  # ib_async's UNSET_DOUBLE, sent as ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": "HOLD", "quantity": 1, "order_type": "MKT"},
        {"action": "BUY", "quantity": 0, "order_type": "MKT"},
        {"action": "BUY", "quantity": 1.5, "order_type": "MKT"},
        {"action": "BUY", "quantity": 1, "order_type": "LMT"},
        {"action": "BUY", "quantity": 1, "order_type": "LMT", "limit_price": math.nan},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "limit_price": 1.0},
        {"action": "BUY", "quantity": 1, "order_type": "STP"},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "tif": "XYZ"},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "ext_operator": "OP\0X"},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "ext_operator": "O" * 33},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "order_ref": "ref\x01"},
        {"action": "BUY", "quantity": 1, "order_type": "MKT", "account": "DU1\t"},
    ],
)
def test_invalid_order_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OrderSpec(**kwargs)  # type: ignore[arg-type]


def test_option_spec_round_trips_through_ib_contract() -> None:
    spec = ContractSpec("SPY", "OPT", "20261218", 600.0, "C", con_id=42, local_symbol="X")
    ib_contract = to_ib_contract(spec)
    assert ib_contract.lastTradeDateOrContractMonth == "20261218"
    assert ib_contract.multiplier == "100"
    assert from_ib_contract(ib_contract) == spec


def test_stock_from_ib_contract_has_multiplier_one() -> None:
    spec = from_ib_contract(IBContract(conId=9, symbol="SPY", secType="STK", exchange="ARCA"))
    assert (spec.sec_type, spec.multiplier, spec.strike, spec.expiry) == ("STK", 1, 0.0, "")


def test_unqualified_contract_is_refused() -> None:
    with pytest.raises(ContractQualificationError):
        require_qualified(ContractSpec("SPY", "STK"), "test")


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [(60, 3600), (30, 1800), ("3600 S", 3600), ("60 mins", 3600), ("1 hour", 3600), ("1 D", 86400)],
)
def test_duration_parsing(duration: str | int, seconds: int) -> None:
    assert parse_duration_seconds(duration) == seconds


@pytest.mark.parametrize("bad", ["", "ten mins", "5 m", "5 fortnights", 0, True])
def test_unparseable_durations_are_value_errors(bad: str | int) -> None:
    with pytest.raises(ValueError):
        parse_duration_seconds(bad)


def test_bar_sizes() -> None:
    assert bar_size_seconds("1 min") == 60
    assert bar_size_seconds("5 secs") == 5
    assert bar_size_seconds("1 hour") == 3600


@pytest.mark.parametrize(
    ("duration", "bar_size"),
    [(61, "1 min"), ("2 hours", "1 min"), ("1 D", "1 hour"), ("1800 S", "15 secs")],
)
def test_more_than_an_hour_or_sixty_bars_violates_alpha_learning(
    duration: str | int, bar_size: str
) -> None:
    with pytest.raises(AlphaLearningViolationError):
        check_history_request(duration, bar_size)


def test_one_hour_of_minute_bars_is_allowed() -> None:
    assert check_history_request("3600 S", "1 min") == (3600, 60)


def _trade(status: str = "Submitted") -> IBTrade:
    order = IBOrder(orderId=7, clientId=3, action="BUY", totalQuantity=2, orderType="LMT")
    return IBTrade(IBContract(conId=1), order, IBOrderStatus(orderId=7, status=status))


def test_snapshot_is_a_frozen_copy() -> None:
    trade = _trade()
    snap = snapshot_trade(trade)
    trade.orderStatus.status = "Filled"
    assert snap.status == "Submitted"
    assert not snap.is_done
    with pytest.raises(AttributeError):
        snap.status = "x"  # type: ignore[misc]


async def test_wait_done_resolves_on_the_status_event_without_polling() -> None:
    trade = _trade()
    handle = TradeHandle(trade, con_id=1)
    waiter = asyncio.ensure_future(handle.wait_done(5.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    trade.orderStatus.status = "Filled"
    trade.orderStatus.filled = 2
    trade.statusEvent.emit(trade)
    snap = await waiter
    assert snap.is_filled and snap.filled == 2


async def test_cancelled_is_done_but_not_filled_and_carries_the_error() -> None:
    trade = _trade()
    handle = TradeHandle(trade, con_id=1)
    waiter = asyncio.ensure_future(handle.wait_done(5.0))
    await asyncio.sleep(0)
    trade.orderStatus.status = "Cancelled"
    trade.log.append(
        TradeLogEntry(None, "Cancelled", "Error 201, reqId 7: Order rejected - reason:x", 201)  # type: ignore[arg-type]
    )
    trade.cancelledEvent.emit(trade)
    snap = await waiter
    assert snap.is_done and not snap.is_filled and snap.is_rejected
    assert snap.last_error_code == 201
    assert snap.last_error_text == "Order rejected - reason:x"
    with pytest.raises(OrderRejectedError) as info:
        handle.raise_if_rejected()
    assert info.value.code == 201


async def test_wait_done_times_out_with_the_broker_timeout_error() -> None:
    handle = TradeHandle(_trade(), con_id=1)
    with pytest.raises(BrokerTimeoutError) as info:
        await handle.wait_done(0.01)
    assert isinstance(info.value, TimeoutError)
    assert info.value.order_id == 7


async def test_pending_wait_fails_when_the_connection_drops() -> None:
    handle = TradeHandle(_trade(), con_id=1)
    waiter = asyncio.ensure_future(handle.wait_done(5.0))
    await asyncio.sleep(0)
    handle.fail_pending(GatewayDisconnectedError("gone", order_id=7))
    with pytest.raises(GatewayDisconnectedError):
        await waiter
