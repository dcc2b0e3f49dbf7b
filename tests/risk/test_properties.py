"""Property tests: no approved entry breaks a limit; rejections always say why; closes pass
in every state but HALTED."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from ibkr_trader.models import QuoteCheck, TradeRequest, TradingState, ValidationResult
from ibkr_trader.risk import InMemoryRiskStateStore, RiskLimits, RiskManager
from ibkr_trader.risk import checks as c

from .builders import (
    TODAY,
    account,
    closing,
    entry,
    fresh_quote,
    make_manager,
    position,
    snapshot,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

limits_st = st.builds(
    RiskLimits,
    max_contracts_per_order=st.integers(1, 5),
    max_contracts_per_position=st.integers(1, 8),
    max_open_positions=st.integers(1, 4),
    max_risk_per_trade_pct=st.sampled_from([0.01, 0.02, 0.05, 0.2]),
    cash_allocation_pct=st.sampled_from([0.1, 0.5, 1.0]),
    pdt_max_day_trades=st.sampled_from([3, 3, 1, 0]),
)
ticks_st = st.integers(1, 300).map(lambda n: round(n * 0.01, 2))
price_st = st.one_of(ticks_st, ticks_st, st.floats(0.001, 30.0))
quote_st = st.one_of(
    st.none(),
    st.builds(
        QuoteCheck,
        bid=st.one_of(st.none(), st.floats(0.0, 20.0)),
        ask=st.one_of(st.none(), st.floats(0.0, 20.0), st.just(math.nan)),
        last=st.none(),
        is_stale=st.booleans(),
        is_delayed=st.booleans(),
    ),
)


@st.composite
def entry_case(draw: st.DrawFn) -> tuple[TradeRequest, c.RiskSnapshot]:
    """Entries and account states near the limits, from both sides of each."""
    limits = draw(limits_st)
    order_type = draw(st.sampled_from(["LMT", "LMT", "LMT", "MKT"]))
    request = entry(
        symbol=draw(st.sampled_from(["SPY", "SPY", "QQQ", "TSLA"])),
        action=draw(st.sampled_from(["BUY", "BUY", "BUY", "SELL"])),
        quantity=draw(st.one_of(st.integers(1, 2), st.integers(1, 6))),
        order_type=order_type,
        limit_price=draw(price_st) if order_type == "LMT" else None,
        strike=draw(st.sampled_from([540.0, 550.0, 560.0])),
        risk_per_trade=draw(st.one_of(st.sampled_from([0.02, 0.05, 0.5]), st.floats(0.001, 1.0))),
        quote=draw(st.sampled_from([fresh_quote()] * 3) | quote_st),
        reference_price=draw(st.one_of(st.none(), price_st)),
    )
    keys = [entry(strike=s).contract_key for s in (540.0, 550.0, 560.0, 570.0, 580.0)]
    chosen = draw(st.just([]) | st.lists(st.sampled_from(keys), max_size=4))
    positions = {k: draw(st.integers(-3, 3)) for k in chosen}
    equity = draw(st.one_of(st.floats(10_000.0, 60_000.0), st.floats(500.0, 60_000.0)))
    snap = snapshot(
        limits=limits,
        equity=equity,
        available_funds=draw(st.one_of(st.just(equity), st.floats(0.0, 60_000.0))),
        positions=positions,
        committed_premium=draw(st.one_of(st.just(0.0), st.floats(0.0, 20_000.0))),
        day_trades_used=draw(st.sampled_from([0, 0, 1]) | st.integers(0, 5)),
        ib_day_trades_remaining=draw(st.one_of(st.none(), st.integers(-1, 3))),
        start_of_day_equity=equity * draw(st.floats(0.95, 1.03)),
        week_high=equity * draw(st.floats(1.0, 1.07)),
    )
    return request, snap


def _approved(case: tuple[TradeRequest, c.RiskSnapshot]) -> bool:
    return all(r.passed for r in c.run_checks(*case))


def test_the_entry_generator_reaches_approvals() -> None:
    request, _ = find(entry_case(), _approved, settings=settings(max_examples=2000))
    assert request.action == "BUY"


def _fields(request: TradeRequest, **changes: Any) -> dict[str, Any]:
    fields = {name: getattr(request, name) for name in request.__dataclass_fields__}
    fields.update(changes)
    return fields


@SETTINGS
@given(entry_case())
def test_no_approved_entry_ever_breaks_a_limit(case: tuple[TradeRequest, c.RiskSnapshot]) -> None:
    request, snap = case
    if not _approved(case):
        return
    limits = snap.limits
    equity = snap.equity
    assert equity is not None and snap.available_funds is not None
    qty = request.quantity
    held = snap.positions.get(request.contract_key, 0)
    signed = qty if request.action == "BUY" else -qty
    price = c.entry_unit_price(request)
    assert price is not None
    premium = price * qty * 100
    cost = premium + max(limits.min_commission_per_order, limits.commission_per_contract * qty)
    assert snap.trading_state is TradingState.ACTIVE
    assert request.symbol in limits.symbol_allowlist
    assert request.action == "BUY" and request.order_type == "LMT"
    assert qty <= limits.max_contracts_per_order
    assert abs(held + signed) <= limits.max_contracts_per_position
    open_after = sum(1 for q in snap.positions.values() if q) + (0 if held else 1)
    assert open_after <= limits.max_open_positions
    assert premium <= min(request.risk_per_trade, limits.max_risk_per_trade_pct) * equity + 1e-9
    assert cost <= snap.available_funds
    assert snap.committed_premium + cost <= limits.cash_allocation_pct * equity + 1e-9
    if equity < limits.pdt_equity_threshold:
        assert snap.day_trades_used < limits.pdt_max_day_trades
        ib = snap.ib_day_trades_remaining
        assert ib is None or ib < 0 or ib >= 1
    assert snap.start_of_day_equity is not None and snap.week_high is not None
    assert (equity - snap.start_of_day_equity) / snap.start_of_day_equity > -(
        limits.daily_loss_limit_pct
    )
    assert (snap.week_high - equity) / snap.week_high < limits.weekly_drawdown_pct
    quote = request.quote
    assert quote is not None and not quote.is_stale and not quote.is_delayed
    assert quote.bid is not None and quote.ask is not None and 0 < quote.bid <= quote.ask
    assert c.parse_expiry(request.expiry) is not None
    assert request.limit_price is not None
    ticks = request.limit_price / limits.tick_size
    assert abs(ticks - round(ticks)) < 1e-6


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@st.composite
def any_request(draw: st.DrawFn) -> TradeRequest:
    base = _fields(draw(st.sampled_from([entry(), closing()])))
    for name in draw(st.sets(st.sampled_from(sorted(base)), max_size=5)):
        base[name] = draw(junk)
    return TradeRequest(**base)


def validate(rm: RiskManager, request: TradeRequest) -> ValidationResult:
    return asyncio.run(rm.validate_trade(request))


@SETTINGS
@given(any_request(), st.sampled_from(list(TradingState)))
def test_every_rejection_names_a_reason_and_nothing_raises(
    request: TradeRequest, state: TradingState
) -> None:
    rm, store, _ = make_manager()
    rm.set_trading_state(state, "property")
    result = validate(rm, request)
    assert result.approved == (not result.rejection_reasons)
    if not result.approved:
        assert all(isinstance(r, str) and r for r in result.rejection_reasons)
    assert result.decision_id == len(store.decisions)


@SETTINGS
@given(
    state=st.sampled_from(list(TradingState)),
    held=st.integers(-10, 10).filter(bool),
    data=st.data(),
    equity=st.floats(100.0, 50_000.0),
    day_trades=st.integers(0, 5),
    order_type=st.sampled_from(["MKT", "LMT"]),
)
def test_reducing_close_is_approved_in_every_state_but_halted(
    state: TradingState,
    held: int,
    data: st.DataObject,
    equity: float,
    day_trades: int,
    order_type: str,
) -> None:
    store = InMemoryRiskStateStore()
    for i in range(day_trades):
        store.record_day_trade(f"k{i}", "SPY", TODAY)
    rm, _, _ = make_manager(store=store, equity=20_000.0)
    rm.update_account(account(equity, available=0.0))  # may trip both governors
    asyncio.run(rm.sync_positions([position(quantity=held)]))
    rm.set_trading_state(state, "property")
    qty = data.draw(st.integers(1, abs(held)))
    request = closing(
        held=held,
        quantity=qty,
        order_type=order_type,
        limit_price=None if order_type == "MKT" else 0.05,
    )
    result = validate(rm, request)
    assert result.approved is (rm.trading_state is not TradingState.HALTED)
    if rm.trading_state is TradingState.HALTED:
        assert state is TradingState.HALTED
