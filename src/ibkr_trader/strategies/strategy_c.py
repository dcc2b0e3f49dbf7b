"""Strategy C — capital preservation: never an entry.

Under C the system only closes: the position manager's Strategy C flags (3 days to expiry,
the emergency stop) and the orchestrator's quarantine and governor closures keep running, and
this strategy never proposes an order. It is also the fallback whenever the daily gameplan is
missing or invalid (``strategies.gameplan``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.models import ContractSpec, Position
from ibkr_trader.signals import StrategyContext, TradingSignal
from ibkr_trader.strategies.base import OptionChainView, StrategyDecision

__all__ = ["DEFAULT_CONTEXT_C", "StrategyC"]

DEFAULT_CONTEXT_C = StrategyContext(
    strategy_id="C",
    strategy_name="capital_preservation",
    risk_per_trade=0.01,  # unused: C never sizes an entry (the model needs a positive value)
    take_profit_pct=0.0,
    stop_loss_pct=0.0,
)

REASON_C = "strategy C (capital preservation): no entries, closures only"


class StrategyC:
    """Never an entry."""

    allows_entries = False

    def __init__(self, context: StrategyContext = DEFAULT_CONTEXT_C, reason: str = "") -> None:
        self._context = context
        self.reason = f"{REASON_C}: {reason}" if reason else REASON_C

    @property
    def context(self) -> StrategyContext:
        return self._context

    def candidates(
        self, market_data: MarketData, chain: OptionChainView
    ) -> tuple[ContractSpec, ...]:
        return ()

    def prepare(
        self,
        chain: OptionChainView,
        equity: float,
        *,
        risk_cap: float | None = None,
        max_contracts: int | None = None,
    ) -> None:
        return None

    def evaluate(
        self, market_data: MarketData, positions: Sequence[Position]
    ) -> TradingSignal | None:
        return None

    def explain(self, market_data: MarketData, positions: Sequence[Position]) -> StrategyDecision:
        return StrategyDecision(None, self.reason)
