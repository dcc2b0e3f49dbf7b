"""Strategy A — momentum breakout (handoff 6.2): buy a call when the trend, momentum and
volume-weighted price agree.

Entry rule, all of:

- ``ema_fast > ema_slow`` (EMA 8 above EMA 21 on one-minute closes: short-term uptrend);
- ``rsi_min <= rsi <= rsi_max`` (RSI 14 in 50–65: momentum up, not yet overbought);
- ``last_price > vwap`` (trading above the session's volume-weighted average).

-> a limit BUY of the nearest-the-money call in the DTE window (see ``selection``), sized by
``risk_per_trade``. The shared guards of :class:`~ibkr_trader.strategies.base.OptionEntryStrategy`
apply first (stale / delayed / low-quality data, a position already open, no chain).
"""

from __future__ import annotations

from dataclasses import dataclass

from ibkr_trader.clock import Clock
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.models import OptionRight
from ibkr_trader.signals import StrategyContext
from ibkr_trader.strategies.base import (
    DEFAULT_MAX_QUOTE_AGE_S,
    DEFAULT_MIN_QUALITY_SCORE,
    OptionEntryStrategy,
)
from ibkr_trader.strategies.selection import SelectionConfig

__all__ = ["DEFAULT_CONTEXT_A", "StrategyA", "StrategyAParams"]

DEFAULT_CONTEXT_A = StrategyContext(
    strategy_id="A",
    strategy_name="momentum_breakout",
    risk_per_trade=0.02,
    take_profit_pct=0.5,
    stop_loss_pct=0.25,
)


@dataclass(frozen=True, slots=True)
class StrategyAParams:
    rsi_min: float = 50.0
    rsi_max: float = 65.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rsi_min <= self.rsi_max <= 100.0:
            raise ValueError("need 0 <= rsi_min <= rsi_max <= 100")


class StrategyA(OptionEntryStrategy):
    """Momentum breakout: EMA8 > EMA21, 50 <= RSI <= 65, last > VWAP -> buy a call."""

    required_fields = ("last_price", "ema_fast", "ema_slow", "rsi", "vwap")

    def __init__(
        self,
        clock: Clock,
        context: StrategyContext = DEFAULT_CONTEXT_A,
        selection: SelectionConfig | None = None,
        params: StrategyAParams | None = None,
        *,
        min_quality_score: float = DEFAULT_MIN_QUALITY_SCORE,
        max_quote_age_s: float = DEFAULT_MAX_QUOTE_AGE_S,
    ) -> None:
        super().__init__(
            context,
            clock,
            selection,
            min_quality_score=min_quality_score,
            max_quote_age_s=max_quote_age_s,
        )
        self.params = params or StrategyAParams()

    def direction(self, data: MarketData) -> tuple[OptionRight | None, str]:
        p = self.params
        if not data.ema_fast > data.ema_slow:
            return None, f"no entry: EMA8 {data.ema_fast:.2f} not above EMA21 {data.ema_slow:.2f}"
        if not p.rsi_min <= data.rsi <= p.rsi_max:
            return None, f"no entry: RSI {data.rsi:.1f} outside {p.rsi_min:g}–{p.rsi_max:g}"
        if not data.last_price > data.vwap:
            return None, f"no entry: last {data.last_price:.2f} not above VWAP {data.vwap:.2f}"
        return OptionRight.CALL, (
            f"momentum breakout: EMA8 {data.ema_fast:.2f} > EMA21 {data.ema_slow:.2f}, "
            f"RSI {data.rsi:.1f}, last {data.last_price:.2f} > VWAP {data.vwap:.2f}"
        )
