"""Expiry at the close of the last trading day (calendar mode), in memory and over a socket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from ib_async import MarketOrder, Option

from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.sim.state import Send

from .conftest import Connector, IbLog
from .test_state import ids, make_state, place, start

CLOSE = datetime(2025, 3, 4, 21, 0, tzinfo=UTC)  # 16:00 New York, the day of START
EXPIRY = "20250304"


def _book(state: object) -> dict[int, float]:
    return {row.con_id: row.quantity for row in state.positions.values()}  # type: ignore[attr-defined]


def test_at_the_close_itm_is_exercised_or_assigned_and_otm_expires() -> None:
    state, _ = make_state(calendar=True)
    start(state)
    state.handle(1, ["61", "1"])
    state.handle(1, ["6", "2", "1", "DU1234567"])
    spot = state.market.underlying_price("SPY", CLOSE)
    strikes = state.catalog.strikes("SPY")
    itm_call = max(k for k in strikes if k < spot - 3)
    otm_call = min(k for k in strikes if k > spot + 3)
    itm_put = min(k for k in strikes if k > spot + 3)
    otm_put = max(k for k in strikes if k < spot - 3)
    seed = state.seed_position
    long_call = seed(
        "DU1234567", "SPY", 2, 900.0, sec_type="OPT", expiry=EXPIRY, strike=itm_call, right="C"
    )
    short_call = seed(
        "DU1234567", "SPY", -3, 50.0, sec_type="OPT", expiry=EXPIRY, strike=otm_call, right="C"
    )
    short_put = seed(
        "DU1234567", "SPY", -1, 400.0, sec_type="OPT", expiry=EXPIRY, strike=itm_put, right="P"
    )
    long_put = seed(
        "DU1234567", "SPY", 4, 20.0, sec_type="OPT", expiry=EXPIRY, strike=otm_put, right="P"
    )
    later = seed(
        "DU1234567", "SPY", 1, 500.0, sec_type="OPT", expiry="20250307", strike=itm_call, right="C"
    )
    spy = state.catalog.stock("SPY")
    assert spy is not None
    cash = state.accounts["DU1234567"].cash
    place(state, 9, type="LMT", lmt="0.05")
    assert state.received_orders[-1].status == "Submitted"

    state.clock.set(CLOSE - timedelta(minutes=1))
    assert [i for i in ids(state.poll()) if i == 11] == []  # not yet
    state.clock.set(CLOSE + timedelta(seconds=1))
    out = state.poll()

    outcomes = {s.con_id: (s.outcome, s.shares) for s in state.settlements}
    assert outcomes == {
        long_call.con_id: ("exercised", 200.0),
        short_call.con_id: ("expired", 0.0),
        short_put.con_id: ("assigned", 100.0),
        long_put.con_id: ("expired", 0.0),
    }
    assert _book(state) == {later.con_id: 1, spy.con_id: 300.0}
    acct = state.accounts["DU1234567"]
    assert acct.cash == pytest.approx(cash - 200 * itm_call - 100 * itm_put)
    # premiums: long ones lost, short ones kept
    assert acct.realized_pnl == pytest.approx(-2 * 900 + 3 * 50 + 1 * 400 - 4 * 20)
    execs = [a.fields for a in out if isinstance(a, Send) and a.fields[0] == 11]
    assert len(execs) == 6  # four option legs at 0, two share legs at the strike
    legs = sorted((str(f[3]), str(f[18]), float(f[19]), float(f[20])) for f in execs)
    assert (str(spy.con_id), "BOT", 200.0, itm_call) in legs
    assert (str(spy.con_id), "BOT", 100.0, itm_put) in legs
    positions = {
        (f[3], f[14]) for f in (a.fields for a in out if isinstance(a, Send)) if f[0] == 61
    }
    assert (long_call.con_id, 0.0) in positions and (spy.con_id, 300.0) in positions
    assert 7 in ids(out) and 6 in ids(out)  # portfolio and account values pushed
    assert state.received_orders[-1].status == "Submitted"  # the stock order keeps working
    assert state.poll() == [] or 11 not in ids(state.poll())  # settled once


def _option_order(con_id: int, strike: float, order_id: int, kind: str, lmt: str = "") -> list[str]:
    fields = [""] * 114
    fields[:13] = [
        "3",
        str(order_id),
        str(con_id),
        "SPY",
        "OPT",
        EXPIRY,
        str(strike),
        "C",
        "100",
        "SMART",
        "",
        "USD",
        "",
    ]
    fields[16], fields[17], fields[18], fields[19] = "BUY", "1", kind, lmt
    fields[21], fields[89] = "DAY", "0"
    return fields


def test_an_expired_option_can_no_longer_be_traded_and_its_orders_are_cancelled() -> None:
    state, _ = make_state(calendar=True)
    start(state)
    strike = state.catalog.strikes("SPY")[10]
    info = state.seed_position(
        "DU1234567", "SPY", 1, 100.0, sec_type="OPT", expiry=EXPIRY, strike=strike, right="C"
    )
    state.handle(1, _option_order(info.con_id, strike, 1, "LMT", "0.05"))  # deep ITM: rests
    assert state.received_orders[-1].status == "Submitted"
    state.clock.set(CLOSE + timedelta(minutes=5))
    out = state.poll()
    assert state.received_orders[-1].status == "Cancelled"
    assert [a.fields[3] for a in out if isinstance(a, Send) and a.fields[0] == 4] == [202]
    out = state.handle(1, _option_order(info.con_id, strike, 2, "MKT"))
    assert out[0].fields[3] == 200  # type: ignore[union-attr]
    assert state.received_orders[-1].status == "Cancelled"


def test_without_the_calendar_nothing_expires() -> None:
    state, _ = make_state()
    start(state)
    strikes = state.catalog.strikes("SPY")
    state.seed_position(
        "DU1234567", "SPY", 1, 100.0, sec_type="OPT", expiry=EXPIRY, strike=strikes[10], right="C"
    )
    state.clock.set(CLOSE + timedelta(minutes=5))
    state.poll()
    assert state.settlements == [] and len(state.positions) == 1


async def test_ib_async_sees_the_exercise_in_positions_portfolio_and_fills(
    connect: Connector, iblog: IbLog
) -> None:
    config = SimConfig(calendar=True, start=CLOSE - timedelta(minutes=2), portfolio_interval=0.1)
    async with SimulatedGateway(config) as gw:
        spot = gw.market.underlying_price("SPY", CLOSE)
        strike = max(k for k in gw.catalog.strikes("SPY") if k < spot - 3)
        async with connect(gw) as ib:
            [call] = await ib.qualifyContractsAsync(Option("SPY", EXPIRY, strike, "C", "SMART"))
            trade = ib.placeOrder(call, MarketOrder("BUY", 1))
            await asyncio.wait_for(trade.filledEvent, 5)
            gw.clock.set(CLOSE + timedelta(seconds=1))
            for _ in range(200):
                if any(p.contract.secType == "STK" for p in ib.positions()):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            assert [(p.contract.secType, p.position) for p in ib.positions()] == [("STK", 100.0)]
            assert [(p.contract.secType, p.position) for p in ib.portfolio()] == [("STK", 100.0)]
            shares = [f for f in ib.fills() if f.contract.secType == "STK"]
            assert [(f.execution.side, f.execution.shares, f.execution.price) for f in shares] == [
                ("BOT", 100.0, strike)
            ]
            late = ib.placeOrder(call, MarketOrder("SELL", 1))
            await asyncio.wait_for(late.cancelledEvent, 5)
    iblog.assert_clean(allowed_codes={200})
