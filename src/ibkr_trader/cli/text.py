"""Plain-text formatting of the operator's figures, without rich: ``status`` prints its lines
with these alone (rich costs it ~30 ms of start-up); :mod:`ibkr_trader.cli.view` uses them
in its tables."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt", "governors_text", "pct", "signed"]


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100:.{digits}f}%"


def signed(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"


def governors_text(usage: dict[str, Any]) -> str:
    """ "daily loss 0.4% of 2.0% used (1.6% left) · weekly ... · day trades 1 used, 2 left"."""
    if not usage:
        return "unknown (no account data yet)"
    daily = (
        f"daily loss {pct(usage.get('daily_loss_used_pct'))} of "
        f"{pct(usage.get('daily_loss_limit_pct'))} used "
        f"({pct(usage.get('daily_loss_left_pct'))} left)"
    )
    weekly = (
        f"weekly drawdown {pct(usage.get('weekly_drawdown_used_pct'))} of "
        f"{pct(usage.get('weekly_drawdown_pct'))} used "
        f"({pct(usage.get('weekly_drawdown_left_pct'))} left)"
    )
    left = usage.get("day_trades_remaining")
    trades = f"day trades {usage.get('day_trades_used') or 0} used" + (
        f", {left} left" if left is not None else " (PDT rule not applicable)"
    )
    text = " · ".join([daily, weekly, trades])
    if usage.get("governor"):
        text += f"\nGOVERNOR: {usage['governor']}"
    return text
