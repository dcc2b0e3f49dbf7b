"""Builders shared by the risk tests (plain functions, no fixtures)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ibkr_trader.clock import ManualClock, ny_date
from ibkr_trader.models import (
    AccountSnapshot,
    ContractSpec,
    Position,
    QuoteCheck,
    TradeRequest,
)
from ibkr_trader.risk import InMemoryRiskStateStore, RiskLimits, RiskManager
from ibkr_trader.risk.checks import RiskSnapshot

# Tuesday 8 July 2025, 11:00 in New York (15:00 UTC): a regular session day.
START = datetime(2025, 7, 8, 15, 0, tzinfo=UTC)
TODAY = ny_date(START)
EXPIRY = (TODAY + timedelta(days=14)).strftime("%Y%m%d")
EQUITY = 10_000.0


def fresh_quote(bid: float = 1.45, ask: float = 1.50) -> QuoteCheck:
    return QuoteCheck(bid=bid, ask=ask, last=1.48, is_stale=False, is_delayed=False, as_of=START)


def entry(**overrides: Any) -> TradeRequest:
    """A valid opening order: BUY 1 SPY call LMT 1.50, within every default limit."""
    fields: dict[str, Any] = {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": 1.50,
        "strategy_id": "A",
        "strategy_name": "momentum",
        "risk_per_trade": 0.02,
        "take_profit_pct": 0.5,
        "stop_loss_pct": 0.3,
        "expiry": EXPIRY,
        "strike": 550.0,
        "right": "C",
        "operator_id": "CSATSPRIM",
        "quote": fresh_quote(),
    }
    fields.update(overrides)
    return TradeRequest(**fields)


def closing(held: int = 2, quantity: int | None = None, **overrides: Any) -> TradeRequest:
    """A close of ``quantity`` (default: all) of a held position of ``held`` contracts."""
    fields: dict[str, Any] = {
        "action": "SELL" if held > 0 else "BUY",
        "quantity": abs(held) if quantity is None else quantity,
        "is_closing": True,
        "quote": None,
        "closure_reason": "STRATEGY_EXIT",
    }
    fields.update(overrides)
    return entry(**fields)


def position(request: TradeRequest | None = None, quantity: int = 2, **kw: Any) -> Position:
    req = request or entry()
    contract = ContractSpec(
        symbol=req.symbol, expiry=req.expiry, strike=req.strike, right=req.right
    )
    fields: dict[str, Any] = {
        "position_id": contract.key,
        "symbol": req.symbol,
        "quantity": quantity,
        "entry_price": 1.50,
        "current_price": 1.50,
        "unrealized_pnl": 0.0,
        "unrealized_pnl_pct": 0.0,
        "days_to_expiry": 14,
        "contract": contract,
        "cost_basis": abs(quantity) * 150.0,
    }
    fields.update(kw)
    return Position(**fields)


def account(
    equity: float = EQUITY,
    available: float | None = None,
    day_trades_remaining: int | None = None,
) -> AccountSnapshot:
    return AccountSnapshot(
        account="DU1234567",
        net_liquidation=equity,
        available_funds=equity if available is None else available,
        cash=equity,
        day_trades_remaining=day_trades_remaining,
    )


def snapshot(**overrides: Any) -> RiskSnapshot:
    """A snapshot in which the default entry passes every check."""
    fields: dict[str, Any] = {
        "limits": RiskLimits(),
        "today": TODAY,
        "equity": EQUITY,
        "available_funds": EQUITY,
        "start_of_day_equity": EQUITY,
        "week_high": EQUITY,
    }
    fields.update(overrides)
    return RiskSnapshot(**fields)


def make_manager(
    store: InMemoryRiskStateStore | None = None,
    clock: ManualClock | None = None,
    limits: RiskLimits | None = None,
    equity: float | None = EQUITY,
    **kw: Any,
) -> tuple[RiskManager, InMemoryRiskStateStore, ManualClock]:
    store = store if store is not None else InMemoryRiskStateStore()
    clock = clock or ManualClock(START)
    rm = RiskManager(limits or RiskLimits(), store, clock, **kw)
    if equity is not None:
        rm.update_account(account(equity))
    return rm, store, clock


def ny_datetime(day: date, hour: int = 11) -> datetime:
    """``hour`` o'clock New York time on ``day`` as an aware UTC datetime."""
    from ibkr_trader.clock import NY

    return datetime(day.year, day.month, day.day, hour, tzinfo=NY).astimezone(UTC)


def replace(request: TradeRequest, **changes: Any) -> TradeRequest:
    return dataclasses.replace(request, **changes)
