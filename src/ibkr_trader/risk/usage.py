"""How much of each loss governor is used and left, and the day trades (for the status views).

Pure reads of a :class:`~ibkr_trader.risk.manager.RiskManager`; light to import, so ``status``
shows it without the orchestrator (and its broker stack) loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ibkr_trader.clock import Clock, ny_date

if TYPE_CHECKING:
    from ibkr_trader.risk.manager import RiskManager

__all__ = ["governor_usage"]


def governor_usage(risk: RiskManager, clock: Clock) -> dict[str, Any]:
    """How much of each governor is used and left (for the status view)."""
    status = risk.status()
    limits = risk.limits
    equity = status.get("equity")
    sod = status.get("start_of_day_equity")
    high = status.get("week_high")
    daily_used = weekly_used = None
    if equity and sod:
        daily_used = max(0.0, (sod - equity) / sod)
    if equity and high:
        weekly_used = max(0.0, (high - equity) / high)
    return {
        "daily_loss_limit_pct": limits.daily_loss_limit_pct,
        "daily_loss_used_pct": daily_used,
        "daily_loss_left_pct": (
            max(0.0, limits.daily_loss_limit_pct - daily_used) if daily_used is not None else None
        ),
        "weekly_drawdown_pct": limits.weekly_drawdown_pct,
        "weekly_drawdown_used_pct": weekly_used,
        "weekly_drawdown_left_pct": (
            max(0.0, limits.weekly_drawdown_pct - weekly_used) if weekly_used is not None else None
        ),
        "day_trades_used": status.get("day_trades_used"),
        "day_trades_remaining": status.get("day_trades_remaining"),
        "governor": status.get("governor"),
        "new_york_date": ny_date(clock.now()).isoformat(),
    }
