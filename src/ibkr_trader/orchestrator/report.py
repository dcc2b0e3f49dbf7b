"""What one cycle saw and did: :class:`CycleReport`, :class:`CycleAction` and the JSON views
(no account id in any of them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.models import Position
from ibkr_trader.orders.reconcile import ReconciliationReport

__all__ = ["CycleAction", "CycleReport", "market_data_dict", "position_dict"]


@dataclass(frozen=True, slots=True)
class CycleAction:
    """One thing the cycle did or decided not to do, with its reason."""

    kind: str  # entry | no_entry | close | close_all | deferred | reconcile | alert | error
    # | working (a resting entry looked after: filled, expired, cancelled, still working)
    # | cancel (a working order of ours cancelled: HALT, REDUCING, deadline)
    # | foreign (left alone)
    reason: str
    symbol: str = ""
    status: str = ""
    order_id: str = ""
    strategy: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "symbol": self.symbol,
            "status": self.status,
            "order_id": self.order_id,
            "strategy": self.strategy,
            "detail": self.detail,
        }


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    cycle: int
    started_at: datetime
    mode: str
    strategy: str
    gameplan: str
    finished_at: datetime | None = None
    connected: bool = False
    trading_state: str = ""
    state_cause: str = ""
    governor: str | None = None
    market_open: bool = False
    minutes_to_close: float | None = None
    entries_allowed: bool = False
    entry_block: str | None = None
    reconciliation: ReconciliationReport | None = None
    market_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: list[Position] = field(default_factory=list)
    actions: list[CycleAction] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    risk_status: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, action: CycleAction) -> None:
        self.actions.append(action)

    @property
    def orders_sent(self) -> list[CycleAction]:
        return [a for a in self.actions if a.order_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "mode": self.mode,
            "strategy": self.strategy,
            "gameplan": self.gameplan,
            "connected": self.connected,
            "trading_state": self.trading_state,
            "state_cause": self.state_cause,
            "governor": self.governor,
            "market_open": self.market_open,
            "minutes_to_close": (
                round(self.minutes_to_close, 1) if self.minutes_to_close is not None else None
            ),
            "entries_allowed": self.entries_allowed,
            "entry_block": self.entry_block,
            "reconciliation": self.reconciliation.to_dict() if self.reconciliation else None,
            "market_data": self.market_data,
            "positions": [position_dict(p) for p in self.positions],
            "actions": [a.to_dict() for a in self.actions],
            "errors": list(self.errors),
            "risk": self.risk_status,
            "seconds": round(self.seconds, 3),
        }


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def position_dict(p: Position) -> dict[str, Any]:
    """A JSON-ready view of a position (no account id)."""
    return {
        "position_id": p.position_id,
        "symbol": p.symbol,
        "contract": p.contract.key,
        "quantity": p.quantity,
        "entry_price": _num(p.entry_price),
        "current_price": _num(p.current_price),
        "unrealized_pnl": _num(p.unrealized_pnl, 2),
        "unrealized_pnl_pct": _num(p.unrealized_pnl_pct),
        "days_to_expiry": p.days_to_expiry,
        "closure_trigger": p.closure_trigger,
        "price_source": p.price_source,
    }


def market_data_dict(md: MarketData) -> dict[str, Any]:
    return {
        "last": _num(md.last_price),
        "bid": _num(md.bid),
        "ask": _num(md.ask),
        "ema_fast": _num(md.ema_fast),
        "ema_slow": _num(md.ema_slow),
        "rsi": _num(md.rsi, 2),
        "vwap": _num(md.vwap),
        "bollinger_lower": _num(md.bollinger_lower),
        "bollinger_upper": _num(md.bollinger_upper),
        "is_stale": md.is_stale,
        "staleness_seconds": _num(md.staleness_seconds, 1),
        "quality": _num(md.data_quality_score, 2),
    }


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
