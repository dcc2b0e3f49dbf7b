"""Each check as a pure function over a request and a RiskSnapshot."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest

from ibkr_trader.models import CheckResult, QuoteCheck, TradingState
from ibkr_trader.risk import checks as c
from ibkr_trader.risk.config import RiskLimits

from .builders import TODAY, closing, entry, fresh_quote, snapshot


def failed(result: CheckResult) -> str:
    assert not result.passed, result
    assert result.reason
    return result.reason


def test_default_entry_passes_every_check() -> None:
    results = c.run_checks(entry(), snapshot())
    assert [r for r in results if not r.passed] == []
    assert {r.name for r in results} == {f.__name__.removeprefix("check_") for f in c.ALL_CHECKS}


@pytest.mark.parametrize(
    ("state", "entry_ok", "close_ok"),
    [
        (TradingState.ACTIVE, True, True),
        (TradingState.REDUCING, False, True),
        (TradingState.RECONCILING, False, True),
        (TradingState.HALTED, False, False),
    ],
)
def test_trading_state_gate(state: TradingState, entry_ok: bool, close_ok: bool) -> None:
    snap = snapshot(trading_state=state, state_cause="because")
    assert c.check_trading_state(entry(), snap).passed is entry_ok
    assert c.check_trading_state(closing(), snap).passed is close_ok
    if not entry_ok:
        assert state.value in failed(c.check_trading_state(entry(), snap))


@pytest.mark.parametrize("qty", [0, -1, 1.5, "1", True, math.nan, None])
def test_quantity_must_be_a_positive_integer(qty: Any) -> None:
    assert "positive integer" in failed(c.check_quantity(entry(quantity=qty), snapshot()))


def test_action_must_be_buy_or_sell() -> None:
    assert "unknown action" in failed(c.check_action(entry(action="HOLD"), snapshot()))


def test_order_type_must_be_mkt_or_lmt() -> None:
    assert "unknown order type" in failed(c.check_order_type(entry(order_type="STP"), snapshot()))


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, None, "1.50"])
def test_limit_price_must_be_positive_and_finite(price: Any) -> None:
    assert "positive and finite" in failed(
        c.check_limit_price(entry(limit_price=price), snapshot())
    )


def test_limit_price_must_be_on_the_tick() -> None:
    assert "tick" in failed(c.check_limit_price(entry(limit_price=1.505), snapshot()))
    coarse = snapshot(limits=RiskLimits(tick_size=0.05))
    assert not c.check_limit_price(entry(limit_price=1.52), coarse).passed
    assert c.check_limit_price(entry(limit_price=1.55), coarse).passed
    assert c.check_limit_price(entry(limit_price=0.07), snapshot()).passed


def test_market_order_must_not_carry_a_limit_price() -> None:
    assert not c.check_limit_price(entry(order_type="MKT", limit_price=1.5), snapshot()).passed
    assert c.check_limit_price(entry(order_type="MKT", limit_price=None), snapshot()).passed


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"expiry": "2025-07-22"}, "YYYYMMDD"),
        ({"expiry": "20251399"}, "YYYYMMDD"),
        ({"expiry": (TODAY - timedelta(days=1)).strftime("%Y%m%d")}, "in the past"),
        ({"strike": 0.0}, "strike"),
        ({"strike": math.nan}, "strike"),
        ({"right": "CALL"}, "right"),
        ({"multiplier": 10}, "multiplier"),
        ({"sec_type": "FUT"}, "security type"),
    ],
)
def test_contract_fields_must_be_complete(changes: dict[str, Any], fragment: str) -> None:
    assert fragment in failed(c.check_contract(entry(**changes), snapshot()))


def test_expiry_today_in_new_york_is_not_past() -> None:
    assert c.check_contract(entry(expiry=TODAY.strftime("%Y%m%d")), snapshot()).passed


@pytest.mark.parametrize("op", ["", "   ", None])
def test_operator_id_must_be_present(op: Any) -> None:
    assert "operator id" in failed(c.check_operator_id(entry(operator_id=op), snapshot()))


def test_symbol_must_be_on_the_allowlist() -> None:
    assert "allowlist" in failed(c.check_symbol_allowlist(entry(symbol="TSLA"), snapshot()))


def test_opening_sell_is_refused_unless_short_options_are_allowed() -> None:
    assert "short option" in failed(c.check_entry_side(entry(action="SELL"), snapshot()))
    allowed = snapshot(limits=RiskLimits(allow_short_options=True))
    assert c.check_entry_side(entry(action="SELL"), allowed).passed


def test_market_entry_is_refused_by_default() -> None:
    req = entry(order_type="MKT", limit_price=None)
    assert "market orders" in failed(c.check_entry_order_type(req, snapshot()))


def test_days_to_expiry_minimum_for_entries() -> None:
    near = (TODAY + timedelta(days=3)).strftime("%Y%m%d")
    assert "under the minimum of 4" in failed(
        c.check_days_to_expiry(entry(expiry=near), snapshot())
    )


def test_entry_needs_account_data() -> None:
    assert "no account data" in failed(c.check_account_data(entry(), snapshot(equity=None)))


def test_contracts_per_order_limit_is_in_the_reason() -> None:
    reason = failed(c.check_contracts_per_order(entry(quantity=3), snapshot()))
    assert "limit of 2" in reason


def test_contracts_per_position_counts_what_is_held() -> None:
    key = entry().contract_key
    reason = failed(c.check_contracts_per_position(entry(quantity=2), snapshot(positions={key: 3})))
    assert "5 contracts" in reason and "limit of 4" in reason


def test_open_positions_counts_a_new_contract_only() -> None:
    held = {f"QQQ:{i}": 1 for i in range(3)}
    assert "limit of 3" in failed(c.check_open_positions(entry(), snapshot(positions=held)))
    held_same = {**{f"QQQ:{i}": 1 for i in range(2)}, entry().contract_key: 1}
    assert c.check_open_positions(entry(), snapshot(positions=held_same)).passed


def test_premium_at_risk_uses_the_smaller_of_context_and_cap() -> None:
    # 2.10 x 1 x 100 = 210 > 2% of 10,000
    assert "exceeds 2.00%" in failed(c.check_premium_at_risk(entry(limit_price=2.10), snapshot()))
    # context asks for less than the cap: 1% of 10,000 = 100 < 150
    assert not c.check_premium_at_risk(entry(risk_per_trade=0.01), snapshot()).passed
    # context asks for more than the cap: still capped at 2%
    assert not c.check_premium_at_risk(
        entry(risk_per_trade=0.5, limit_price=2.5), snapshot()
    ).passed


def test_premium_at_risk_for_market_entry_uses_the_worse_price() -> None:
    req = entry(
        order_type="MKT", limit_price=None, reference_price=1.0, quote=fresh_quote(1.9, 2.2)
    )
    result = c.check_premium_at_risk(req, snapshot())
    assert result.value == 220.0 and not result.passed


@pytest.mark.parametrize("rpt", [0.0, -0.1, 1.5, math.nan])
def test_premium_at_risk_refuses_a_bad_risk_per_trade(rpt: float) -> None:
    assert "risk_per_trade" in failed(
        c.check_premium_at_risk(entry(risk_per_trade=rpt), snapshot())
    )


def test_available_funds_include_commission() -> None:
    # 150 premium + 1.00 minimum commission = 151 > 150.5
    assert "available funds" in failed(
        c.check_available_funds(entry(), snapshot(available_funds=150.5))
    )
    assert c.check_available_funds(entry(), snapshot(available_funds=151.0)).passed
    big = RiskLimits(commission_per_contract=0.65, max_contracts_per_order=10)
    assert c.estimated_commission(entry(quantity=4), big) == pytest.approx(2.60)


def test_cash_allocation_counts_committed_premium() -> None:
    reason = failed(c.check_cash_allocation(entry(), snapshot(committed_premium=4900.0)))
    assert "50% cash allocation of 5000.00" in reason


def test_pdt_refuses_entry_with_no_day_trade_left() -> None:
    reason = failed(c.check_pdt(entry(), snapshot(day_trades_used=3)))
    assert "PDT" in reason and "3 used" in reason
    assert c.check_pdt(entry(), snapshot(day_trades_used=2)).passed


def test_pdt_stricter_of_journal_and_ib_wins() -> None:
    assert not c.check_pdt(entry(), snapshot(day_trades_used=0, ib_day_trades_remaining=0)).passed
    assert not c.check_pdt(entry(), snapshot(day_trades_used=3, ib_day_trades_remaining=3)).passed
    assert c.check_pdt(entry(), snapshot(day_trades_used=1, ib_day_trades_remaining=-1)).passed


def test_pdt_does_not_apply_at_or_above_the_threshold() -> None:
    snap = snapshot(equity=25_000.0, day_trades_used=5, ib_day_trades_remaining=0)
    assert c.check_pdt(entry(), snap).passed


def test_daily_loss_limit() -> None:
    assert "daily loss limit" in failed(c.check_daily_loss(entry(), snapshot(equity=9_800.0)))
    assert c.check_daily_loss(entry(), snapshot(equity=9_801.0)).passed
    assert not c.check_daily_loss(entry(), snapshot(start_of_day_equity=None)).passed


def test_weekly_drawdown() -> None:
    reason = failed(c.check_weekly_drawdown(entry(), snapshot(week_high=10_600.0)))
    assert "week's high" in reason
    assert c.check_weekly_drawdown(entry(), snapshot(week_high=10_500.0)).passed


@pytest.mark.parametrize(
    ("quote", "fragment"),
    [
        (None, "no market data"),
        (QuoteCheck(1.0, 1.1, 1.0, is_stale=True, is_delayed=False), "stale"),
        (QuoteCheck(1.0, 1.1, 1.0, is_stale=False, is_delayed=True), "delayed"),
        (QuoteCheck(None, 1.1, 1.0, is_stale=False, is_delayed=False), "bid missing"),
        (QuoteCheck(1.0, math.nan, 1.0, is_stale=False, is_delayed=False), "ask missing"),
        (QuoteCheck(1.0, 1.1, 1.0, False, False, missing_fields=("bid",)), "bid missing"),
        (QuoteCheck(1.2, 1.1, 1.0, is_stale=False, is_delayed=False), "crossed"),
    ],
)
def test_data_gate(quote: QuoteCheck | None, fragment: str) -> None:
    assert fragment in failed(c.check_market_data(entry(quote=quote), snapshot()))


def test_data_gate_ignores_missing_volume() -> None:
    quote = QuoteCheck(1.45, 1.5, 1.48, False, False, missing_fields=("volume",))
    assert c.check_market_data(entry(quote=quote), snapshot()).passed


def test_all_failed_reasons_are_reported_not_only_the_first() -> None:
    req = entry(quantity=5, symbol="TSLA", quote=None, operator_id="")
    reasons = [r.reason for r in c.run_checks(req, snapshot(equity=10_000)) if not r.passed]
    assert any("allowlist" in r for r in reasons if r)
    assert any("operator id" in r for r in reasons if r)
    assert any("no market data" in r for r in reasons if r)
    assert any("per order" in r for r in reasons if r)


def test_closing_order_skips_entry_checks() -> None:
    req = closing(held=2, symbol="SPY", quote=None)
    snap = snapshot(
        positions={req.contract_key: 2},
        equity=None,
        day_trades_used=3,
        trading_state=TradingState.REDUCING,
    )
    results = c.run_checks(req, snap)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    skipped = [r for r in results if r.value == c.SKIPPED_FOR_CLOSE]
    assert len(skipped) == len(c.ENTRY_CHECKS)


@pytest.mark.parametrize(
    ("held", "action", "qty", "fragment"),
    [
        (0, "SELL", 1, "no position"),
        (2, "BUY", 1, "enlarge"),
        (-2, "SELL", 1, "enlarge"),
        (2, "SELL", 3, "flip"),
        (-2, "BUY", 3, "flip"),
    ],
)
def test_closing_order_must_reduce_and_never_flip(
    held: int, action: str, qty: int, fragment: str
) -> None:
    req = closing(held=held or 1, action=action, quantity=qty)
    snap = snapshot(positions={req.contract_key: held} if held else {})
    assert fragment in failed(c.check_closing_position(req, snap))


def test_closing_order_accounts_for_closes_already_approved() -> None:
    req = closing(held=2, quantity=2)
    snap = snapshot(positions={req.contract_key: 2}, pending_close={req.contract_key: 1})
    assert "already being closed" in failed(c.check_closing_position(req, snap))


def test_short_position_close_is_a_buy() -> None:
    req = closing(held=-2)
    assert req.action == "BUY"
    assert c.check_closing_position(req, snapshot(positions={req.contract_key: -2})).passed


def test_a_raising_check_fails_closed() -> None:
    def boom(request: Any, snap: Any) -> CheckResult:
        raise RuntimeError("broken")

    (result,) = c.run_checks(entry(), snapshot(), checks=[boom])
    assert not result.passed and "broken" in (result.reason or "")


def test_is_closing_needs_an_explicit_true() -> None:
    assert not c.is_closing(entry(is_closing="yes"))
    assert c.is_closing(entry(is_closing=True))


def test_pdt_window_skips_weekends_and_exchange_holidays() -> None:
    # Monday 7 July 2025: Friday 4 July was a holiday.
    assert c.pdt_window_start(date(2025, 7, 7)) == date(2025, 6, 30)
    # Saturday: the window ends with Friday's session.
    assert c.pdt_window_start(date(2025, 7, 12)) == date(2025, 7, 7)
    # Outside the calendar's range: plain weekdays.
    assert c.pdt_window_start(date(2040, 1, 9)) == date(2040, 1, 3)


def test_metrics_carry_what_the_checks_saw() -> None:
    metrics = c.risk_metrics(entry(), snapshot(day_trades_used=1, ib_day_trades_remaining=2))
    assert metrics["equity"] == 10_000
    assert metrics["premium_at_risk"] == 150.0
    assert metrics["day_trades_used"] == 1
    assert metrics["day_trades_remaining"] == 2
    assert metrics["daily_pnl_pct"] == 0.0
    assert metrics["drawdown_pct"] == 0.0


def test_a_limit_price_below_one_tick_is_off_the_tick() -> None:
    assert "tick" in failed(c.check_limit_price(entry(limit_price=1e-9), snapshot()))
    assert "tick" in failed(c.check_limit_price(entry(limit_price=0.004), snapshot()))
    assert c.check_limit_price(entry(limit_price=0.01), snapshot()).passed


@pytest.mark.parametrize("op", ["CSA\0TSPRIM", "CSA\nTSPRIM", "CSATSPRIM\x7f", "é" * 3, "X" * 33])
def test_an_operator_id_that_would_not_survive_the_wire_is_refused(op: str) -> None:
    assert "printable ASCII" in failed(c.check_operator_id(entry(operator_id=op), snapshot()))


def test_a_printable_operator_id_passes() -> None:
    assert c.check_operator_id(entry(operator_id="CSA TSPRIM-2"), snapshot()).passed
