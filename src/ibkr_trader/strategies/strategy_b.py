"""Strategy B — mean reversion on the Bollinger bands and RSI.

Parameters (:class:`StrategyBParams`, defaults in brackets):

- ``rsi_oversold`` [30]: ``last_price < bollinger_lower`` and ``rsi < rsi_oversold`` -> the
  price is stretched below its 20-period range and momentum is washed out: buy a **call**;
- ``rsi_overbought`` [70]: ``last_price > bollinger_upper`` and ``rsi > rsi_overbought`` ->
  stretched above the range: buy a **put**.

The bands are the pipeline's: 20 one-minute closes, 2 population standard deviations; RSI 14
with Wilder's smoothing. Comparisons are strict (on the band or at exactly 30 / 70: no entry).
The contract, limit and size follow ``selection``; the shared guards of
:class:`~ibkr_trader.strategies.base.OptionEntryStrategy` apply first.
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

__all__ = ["DEFAULT_CONTEXT_B", "StrategyB", "StrategyBParams"]

DEFAULT_CONTEXT_B = StrategyContext(
    strategy_id="B",
    strategy_name="mean_reversion",
    risk_per_trade=0.02,
    take_profit_pct=0.5,
    stop_loss_pct=0.25,
)


@dataclass(frozen=True, slots=True)
class StrategyBParams:
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rsi_oversold < self.rsi_overbought <= 100.0:
            raise ValueError("need 0 <= rsi_oversold < rsi_overbought <= 100")


class StrategyB(OptionEntryStrategy):
    """Mean reversion: below the lower band with RSI < 30 -> call; above the upper with
    RSI > 70 -> put."""

    required_fields = ("last_price", "rsi", "bollinger_upper", "bollinger_lower")

    def __init__(
        self,
        clock: Clock,
        context: StrategyContext = DEFAULT_CONTEXT_B,
        selection: SelectionConfig | None = None,
        params: StrategyBParams | None = None,
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
        self.params = params or StrategyBParams()

    def direction(self, data: MarketData) -> tuple[OptionRight | None, str]:
        p = self.params
        last, rsi = data.last_price, data.rsi
        if last < data.bollinger_lower and rsi < p.rsi_oversold:
            return OptionRight.CALL, (
                f"mean reversion up: last {last:.2f} < lower band {data.bollinger_lower:.2f},"
                f" RSI {rsi:.1f} < {p.rsi_oversold:g}"
            )
        if last > data.bollinger_upper and rsi > p.rsi_overbought:
            return OptionRight.PUT, (
                f"mean reversion down: last {last:.2f} > upper band {data.bollinger_upper:.2f},"
                f" RSI {rsi:.1f} > {p.rsi_overbought:g}"
            )
        return None, (
            f"no entry: last {last:.2f} within or at the bands "
            f"[{data.bollinger_lower:.2f}, {data.bollinger_upper:.2f}] or RSI {rsi:.1f} not "
            f"beyond {p.rsi_oversold:g}/{p.rsi_overbought:g}"
        )
