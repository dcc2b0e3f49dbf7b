"""PositionManager: handoff 8.4 (position management edge cases), P&L against the absolute cost
basis (signs right for shorts), the Strategy C flags, and closes through the RiskManager."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from ibkr_trader.clock import ny_date
from ibkr_trader.integrations.exceptions import (
    BrokerTimeoutError,
    GatewayError,
    PositionNotFoundError,
)
from ibkr_trader.integrations.position_manager import build_position, determine_closure_trigger
from ibkr_trader.models import ContractSpec, ExecutionMode, OrderStatus, Position
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import open_sim

from .conftest import CONTEXT, Rig, RigFactory, atm_strike, make_signal, select_expiry

MSG_PLACE_ORDER = 3
MSG_REQ_ACCOUNT_UPDATES = 6
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday, 11:00 in New York


def _option(expiry: str = "20260320", strike: float = 600.0) -> ContractSpec:
    return ContractSpec(symbol="SPY", expiry=expiry, strike=strike, right="C", con_id=7)


def _seed_option(
    sim: SimulatedGateway, quantity: int, *, expiry: str, strike: float, premium: float | None
) -> int:
    found = sim.catalog.find(symbol="SPY", sec_type="OPT", expiry=expiry, strike=strike, right="C")
    con_id = found[0].con_id
    price = premium if premium is not None else sim.market.price(con_id)
    sim.seed_position(sim.accounts[0], "SPY", quantity, price * 100, con_id=con_id)
    return con_id


# ------------------------------------------------------------------ pure: P&L and flags


def test_long_option_gain_is_positive_with_the_multiplier() -> None:
    p = build_position(_option(), 2, 5.0, 6.0, NOW, price_source="portfolio")
    assert p.unrealized_pnl == pytest.approx(200.0)  # (6 - 5) x 2 x 100
    assert p.unrealized_pnl_pct == pytest.approx(0.2)
    assert p.cost_basis == pytest.approx(1000.0)
    assert p.closure_trigger is None and p.position_id == "SPY_7"


def test_short_option_whose_price_rises_is_a_loss() -> None:
    p = build_position(_option(), -1, 5.0, 7.5, NOW, price_source="portfolio")
    assert p.unrealized_pnl == pytest.approx(-250.0)
    assert p.unrealized_pnl_pct == pytest.approx(-0.5)
    assert p.should_close_emergency and p.closure_trigger == "EMERGENCY_STOP"


def test_short_option_whose_price_falls_is_a_gain() -> None:
    p = build_position(_option(), -1, 5.0, 2.0, NOW, price_source="portfolio")
    assert p.unrealized_pnl == pytest.approx(300.0)
    assert not p.should_close_emergency


def test_forty_percent_loss_triggers_the_emergency_stop_exactly_at_the_threshold() -> None:
    at = build_position(_option(), 1, 5.0, 3.0, NOW, price_source="snapshot")
    above = build_position(_option(), 1, 5.0, 3.01, NOW, price_source="snapshot")
    assert at.unrealized_pnl_pct == pytest.approx(-0.4) and at.should_close_emergency
    assert not above.should_close_emergency


def test_unknown_price_never_reads_as_a_loss() -> None:
    for price in (0.0, math.nan, -1.0):
        p = build_position(_option(), 1, 5.0, price, NOW, price_source="unavailable")
        assert math.isnan(p.unrealized_pnl) and not p.should_close_emergency


def test_zero_dte_option_triggers_the_3_dte_rule() -> None:
    today = ny_date(NOW).strftime("%Y%m%d")
    p = build_position(_option(expiry=today), 1, 5.0, 5.0, NOW, price_source="portfolio")
    assert p.days_to_expiry == 0 and p.should_close_3_dte
    assert p.closure_trigger == "3_DTE_RULE"


def test_dte_counts_new_york_dates_not_utc() -> None:
    late_evening_ny = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)  # still March 10 in New York
    p = build_position(_option(expiry="20260313"), 1, 5.0, 5.0, late_evening_ny, price_source="x")
    assert p.days_to_expiry == 3 and p.closure_trigger == "3_DTE_RULE"
    four = build_position(
        _option(expiry="20260314"), 1, 5.0, 5.0, late_evening_ny, price_source="x"
    )
    assert four.days_to_expiry == 4 and four.closure_trigger is None


def test_emergency_stop_takes_precedence_over_3_dte() -> None:
    today = ny_date(NOW).strftime("%Y%m%d")
    p = build_position(_option(expiry=today), 1, 5.0, 1.0, NOW, price_source="portfolio")
    assert p.should_close_3_dte and p.should_close_emergency
    assert p.closure_trigger == "EMERGENCY_STOP"
    assert determine_closure_trigger(True, True) == "EMERGENCY_STOP"
    assert determine_closure_trigger(True, False) == "3_DTE_RULE"
    assert determine_closure_trigger(False, False) is None


def test_stock_positions_have_no_multiplier_and_no_expiry() -> None:
    stock = ContractSpec(symbol="SPY", sec_type="STK", multiplier=1, con_id=756733)
    p = build_position(stock, 10, 500.0, 450.0, NOW, price_source="portfolio")
    assert p.unrealized_pnl == pytest.approx(-500.0)
    assert p.days_to_expiry is None and not p.should_close_3_dte


# ------------------------------------------------------------------ 8.4 against the simulator


async def test_no_open_positions_is_an_empty_list(paper: Rig, dry: Rig) -> None:
    assert await paper.gateway.get_positions(timeout=5.0) == []
    assert await dry.gateway.get_positions(timeout=5.0) == []
    assert paper.gateway.positions.last_sync is not None


async def test_close_of_an_unknown_position_raises_position_not_found(paper: Rig) -> None:
    with pytest.raises(PositionNotFoundError, match="SPY_999"):
        await paper.gateway.close_position("SPY_999", "MANUAL", timeout=5.0)
    assert paper.orders == []


async def test_close_with_an_unknown_reason_is_refused(paper: Rig) -> None:
    with pytest.raises(GatewayError, match="unknown closure reason"):
        await paper.gateway.close_position("SPY_1", "BECAUSE", timeout=5.0)
    with pytest.raises(GatewayError, match="unknown closure reason"):
        await paper.gateway.close_all_positions("BECAUSE", timeout=5.0)


async def test_portfolio_positions_carry_pnl_and_the_ib_mark(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    strike = atm_strike(paper.sim)
    _seed_option(paper.sim, 2, expiry=expiry, strike=strike, premium=None)
    positions = await paper.gateway.get_positions(timeout=5.0)
    assert len(positions) == 1
    p = positions[0]
    assert p.quantity == 2 and p.price_source == "portfolio"
    assert p.current_price > 0 and math.isfinite(p.unrealized_pnl)
    assert p.entry_price == pytest.approx(p.cost_basis / 200)  # avgCost per contract / 100
    assert abs(p.unrealized_pnl_pct) < 0.4 and p.closure_trigger is None


async def test_close_failure_reports_failed_and_can_be_retried(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    position = (await paper.gateway.get_positions(timeout=5.0))[0]
    paper.sim.faults.reject_orders("No trading permissions")
    failed = await paper.gateway.close_position(position.position_id, "MANUAL", timeout=5.0)
    assert failed.status is OrderStatus.FAILED and failed.error_code == 201
    assert failed.closure_reason == "MANUAL"
    assert paper.journal.events(kind="close_not_done")
    assert paper.journal.closures() == []
    paper.sim.faults.clear()
    retried = await paper.gateway.close_position(position.position_id, "MANUAL", timeout=5.0)
    assert retried.status is OrderStatus.FILLED and not retried.duplicate
    assert retried.order_id != failed.order_id
    closures = paper.journal.closures()
    assert len(closures) == 1 and closures[0].reason == "MANUAL"
    assert await paper.gateway.get_positions(timeout=5.0) == []


async def test_close_all_attempts_every_position_and_one_failure_stops_none(
    paper: Rig,
) -> None:
    expiry = select_expiry(paper.sim)
    strike = atm_strike(paper.sim)
    for offset in (0, 1, 2):
        _seed_option(paper.sim, 1, expiry=expiry, strike=strike + offset, premium=None)
    paper.sim.faults.error_next(MSG_PLACE_ORDER, 201, "Order rejected - reason: one fails")
    results = await paper.gateway.close_all_positions("DAILY_LOSS_LIMIT", timeout=5.0)
    assert len(results) == 3
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["failed", "filled", "filled"]
    assert all(r.closure_reason == "DAILY_LOSS_LIMIT" for r in results)
    assert len(paper.orders) == 3  # every close was sent
    assert len(paper.journal.closures()) == 2
    remaining = await paper.gateway.get_positions(timeout=5.0)
    assert len(remaining) == 1


async def test_close_all_with_nothing_open_returns_no_results(paper: Rig) -> None:
    assert await paper.gateway.close_all_positions("MANUAL", timeout=5.0) == []


async def test_near_expiry_position_is_flagged_and_closed_with_the_rule(paper: Rig) -> None:
    today = ny_date(paper.sim.clock.now())
    near = [
        e
        for e in paper.sim.catalog.expirations("SPY")
        if (datetime.strptime(e, "%Y%m%d").date() - today).days <= 3
    ]
    expiry = near[0]
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    flagged = await paper.gateway.positions.check_strategy_c_closures(timeout=5.0)
    assert len(flagged) == 1 and flagged[0].closure_trigger == "3_DTE_RULE"
    assert flagged[0].days_to_expiry is not None and flagged[0].days_to_expiry <= 3
    grouped = paper.gateway.positions.positions_by_trigger(flagged)
    assert list(grouped) == ["3_DTE_RULE"]
    result = await paper.gateway.close_position(flagged[0].position_id, "3_DTE_RULE", 5.0)
    assert result.status is OrderStatus.FILLED
    assert paper.journal.closures()[0].reason == "3_DTE_RULE"


async def test_close_goes_through_the_risk_manager(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    position = (await paper.gateway.get_positions(timeout=5.0))[0]
    result = await paper.gateway.close_position(position.position_id, "MANUAL", timeout=5.0)
    assert result.risk_validation is not None and result.risk_validation.approved
    decision = paper.journal.decisions()[-1]
    assert decision.approved and decision.client_order_id == result.order_id
    assert paper.orders[0].action == "SELL" and paper.orders[0].order_type == "MKT"


async def test_halted_state_still_allows_closes_but_not_entries(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    position = (await paper.gateway.get_positions(timeout=5.0))[0]
    paper.risk.halt("test")
    entry = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert entry.status is OrderStatus.REJECTED
    close = await paper.gateway.close_position(position.position_id, "EMERGENCY_STOP", 5.0)
    # whatever the halt policy, the result is reported and journaled, never raised
    assert close.status in (OrderStatus.FILLED, OrderStatus.REJECTED)
    assert close.closure_reason == "EMERGENCY_STOP"


async def test_partially_filled_close_keeps_the_rest_open(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 2, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    position = (await paper.gateway.get_positions(timeout=5.0))[0]
    paper.sim.faults.partial_fill(0.5)
    result = await paper.gateway.close_position(position.position_id, "MANUAL", timeout=1.0)
    assert result.status is OrderStatus.PARTIAL and result.fill_quantity == 1
    cached = {p.position_id: p for p in paper.gateway.positions.cached()}
    assert cached[position.position_id].quantity == 1
    assert paper.journal.closures()[0].quantity == 1


async def test_positions_timeout_returns_the_cached_positions(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    first = await paper.gateway.get_positions(timeout=5.0)
    paper.sim.faults.delay(MSG_REQ_ACCOUNT_UPDATES, 2.0)
    again = await paper.gateway.get_positions(timeout=0.3)
    assert [p.position_id for p in again] == [p.position_id for p in first]
    paper.gateway.positions.clear_cache()
    with pytest.raises(BrokerTimeoutError):
        await paper.gateway.get_positions(timeout=0.3)


async def test_close_all_falls_back_to_the_cache_when_the_refresh_fails(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    await paper.gateway.get_positions(timeout=5.0)
    paper.sim.faults.delay(MSG_REQ_ACCOUNT_UPDATES, 3.0)
    results = await paper.gateway.close_all_positions("MANUAL", timeout=1.5)
    assert len(results) == 1 and results[0].status is OrderStatus.FILLED


# ------------------------------------------------------------------ dry run book


async def test_dry_run_positions_come_from_the_simulated_book(dry: Rig) -> None:
    result = await dry.gateway.submit_order(make_signal(dry.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.SIMULATED
    positions = await dry.gateway.get_positions(timeout=5.0)
    assert len(positions) == 1
    p: Position = positions[0]
    assert p.price_source == "snapshot" and p.current_price > 0
    # IB's convention, as a paper position shows it: the entry carries the commission
    assert result.fill_price is not None and result.commission is not None
    assert p.entry_price == pytest.approx(result.fill_price + result.commission / 100)
    assert p.opened_on == ny_date(dry.sim.clock.now())
    closed = await dry.gateway.close_all_positions("MANUAL", timeout=5.0)
    assert [r.status for r in closed] == [OrderStatus.SIMULATED]
    assert await dry.gateway.get_positions(timeout=5.0) == []
    assert dry.sim.received_orders == []


async def test_dry_run_price_unavailable_is_nan_not_zero(dry: Rig) -> None:
    result = await dry.gateway.submit_order(make_signal(dry.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.SIMULATED
    dry.sim.faults.missing_bid_ask()
    dry.sim.faults.error_next(1, 354, "Requested market data is not subscribed")
    positions = await dry.gateway.get_positions(timeout=5.0)
    assert len(positions) == 1
    assert positions[0].current_price != 0.0
    assert not positions[0].should_close_emergency


async def test_long_option_after_a_crash_is_an_emergency_stop(
    rig_factory: RigFactory,
) -> None:
    async with open_sim() as sim:
        rig = await rig_factory(sim)
        expiry = select_expiry(sim)
        _seed_option(sim, 1, expiry=expiry, strike=atm_strike(sim), premium=None)
        sim.market.shock("SPY", 0.9)
        positions = await rig.gateway.get_positions(timeout=5.0)
        assert positions[0].unrealized_pnl < 0
        assert positions[0].closure_trigger == "EMERGENCY_STOP"
        assert positions[0].unrealized_pnl_pct <= -0.4
        await rig.gateway.aclose()
        assert rig.gateway.execution_mode is ExecutionMode.PAPER


async def test_paper_close_priced_by_the_portfolio_mark_sends_only_the_order(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    _seed_option(paper.sim, 1, expiry=expiry, strike=atm_strike(paper.sim), premium=None)
    position = (await paper.gateway.get_positions(timeout=5.0))[0]
    assert position.price_source == "portfolio"
    client_id = paper.gateway.config.client_id
    before = sum(paper.sim.message_counts(client_id).values())
    result = await paper.gateway.close_position(position.position_id, "MANUAL", timeout=5.0)
    assert result.status is OrderStatus.FILLED
    assert sum(paper.sim.message_counts(client_id).values()) - before == 1  # placeOrder only
    decision = paper.journal.decisions()[-1]
    assert decision.approved
