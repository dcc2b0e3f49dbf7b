"""The Strategy protocol, the option-chain view it reads, and the shared long-entry logic.

A strategy keeps the issue's signature ``evaluate(market_data, positions) -> TradingSignal |
None``. What it also needs to build a signal — the option chain, quotes for the contract it
would buy and the account's equity — reaches it through one ``prepare`` step per cycle, so
``evaluate`` stays pure and synchronous. The orchestrator's cycle:

.. code-block:: python

    data = await gateway.get_market_data(symbol)
    for strategy in strategies:
        wanted = strategy.candidates(data, chain)        # () when no entry is in view
        quotes = {(c.expiry, c.strike, c.right): await quote_of(c) for c in wanted}
        strategy.prepare(chain.with_quotes(quotes, as_of=server_time), equity)
        signal = strategy.evaluate(data, positions)      # or explain(...) for the reason
        if signal:
            await gateway.submit_order(signal, strategy.context)

``candidates`` runs the same data checks and entry rule as ``evaluate``, so option quotes are
only requested when an entry is actually in view (market-data pacing matters).

No entry (``evaluate`` returns None, ``explain`` says why) when:

- the data is stale, delayed, scores below ``min_quality_score`` (default 0.9: one missing
  field at most), or a field the rule reads is NaN;
- a position in the same underlying is already open (any non-zero quantity: one position per
  underlying, the strategies do not pyramid);
- nothing was prepared, the chain is for another symbol, or its quotes are older than
  ``max_quote_age_s`` (default 60 s) on the strategy's clock;
- no expiry in the DTE window, no strike, no two-sided quote, or the premium does not fit
  ``risk_per_trade`` of the equity (quantity 0).

Every signal is a limit BUY of one option series (calls or puts); exits are the position
manager's (Strategy C rules) and the risk manager's business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from ibkr_trader.clock import Clock
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.models import (
    OPTION_MULTIPLIER,
    ContractSpec,
    OptionRight,
    OrderAction,
    OrderType,
    Position,
)
from ibkr_trader.signals import StrategyContext, TradingSignal
from ibkr_trader.strategies.selection import (
    SelectionConfig,
    candidate_contract,
    limit_price,
    position_size,
)

__all__ = [
    "DEFAULT_MAX_QUOTE_AGE_S",
    "DEFAULT_MIN_QUALITY_SCORE",
    "OptionChainView",
    "OptionEntryStrategy",
    "OptionKey",
    "OptionQuote",
    "Strategy",
    "StrategyDecision",
    "StrategyInputs",
]

DEFAULT_MIN_QUALITY_SCORE = 0.9
DEFAULT_MAX_QUOTE_AGE_S = 60.0

OptionKey = tuple[str, float, str]
"""(expiry YYYYMMDD, strike, right "C"/"P")."""


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """One option's two-sided market and its price increment at this price."""

    bid: float | None
    ask: float | None
    min_tick: float = 0.01  # IB's minTick / market-rule increment for this premium


@dataclass(frozen=True, slots=True)
class OptionChainView:
    """What a strategy sees of an option chain (IB's reqSecDefOptParams plus a few quotes)."""

    symbol: str
    expirations: tuple[str, ...]  # YYYYMMDD
    strikes: tuple[float, ...]
    quotes: Mapping[OptionKey, OptionQuote] = field(default_factory=dict)
    multiplier: int = OPTION_MULTIPLIER
    as_of: datetime | None = None  # when the quotes were taken (aware); None: no age check

    def quote_for(self, contract: ContractSpec) -> OptionQuote | None:
        return self.quotes.get((contract.expiry, contract.strike, contract.right))

    def with_quotes(
        self, quotes: Mapping[OptionKey, OptionQuote], as_of: datetime | None = None
    ) -> OptionChainView:
        """A copy with these quotes (merged over any already held) taken at ``as_of``."""
        return replace(self, quotes={**self.quotes, **quotes}, as_of=as_of)


@dataclass(frozen=True, slots=True)
class StrategyInputs:
    """What ``prepare`` hands a strategy for this cycle."""

    chain: OptionChainView
    equity: float  # net liquidation, account currency
    risk_cap: float | None = None  # the limits in force: max risk per trade (fraction)
    max_contracts: int | None = None  # the limits in force: contracts per order / position


@dataclass(frozen=True, slots=True)
class StrategyDecision:
    """A strategy's answer with its reason, for the journal and the status view."""

    signal: TradingSignal | None
    reason: str


class Strategy(Protocol):
    """What the orchestrator drives (issue 8)."""

    @property
    def context(self) -> StrategyContext: ...

    @property
    def allows_entries(self) -> bool: ...

    def candidates(
        self, market_data: MarketData, chain: OptionChainView
    ) -> tuple[ContractSpec, ...]: ...

    def prepare(
        self,
        chain: OptionChainView,
        equity: float,
        *,
        risk_cap: float | None = None,
        max_contracts: int | None = None,
    ) -> None: ...

    def evaluate(
        self, market_data: MarketData, positions: Sequence[Position]
    ) -> TradingSignal | None: ...

    def explain(
        self, market_data: MarketData, positions: Sequence[Position]
    ) -> StrategyDecision: ...


class OptionEntryStrategy:
    """Shared logic of the entry strategies (A, B): guards, selection, pricing, sizing.

    A subclass names the MarketData fields its rule reads (``required_fields``) and implements
    :meth:`direction`: the option right to buy, or None, with a reason.
    """

    required_fields: tuple[str, ...] = ("last_price",)
    allows_entries = True

    def __init__(
        self,
        context: StrategyContext,
        clock: Clock,
        selection: SelectionConfig | None = None,
        *,
        min_quality_score: float = DEFAULT_MIN_QUALITY_SCORE,
        max_quote_age_s: float = DEFAULT_MAX_QUOTE_AGE_S,
    ) -> None:
        if not 0.0 <= min_quality_score <= 1.0:
            raise ValueError("min_quality_score must be within [0, 1]")
        if max_quote_age_s <= 0:
            raise ValueError("max_quote_age_s must be positive")
        self._context = context
        self._clock = clock
        self.selection = selection or SelectionConfig()
        self.min_quality_score = min_quality_score
        self.max_quote_age_s = max_quote_age_s
        self._inputs: StrategyInputs | None = None

    @property
    def context(self) -> StrategyContext:
        return self._context

    def direction(self, data: MarketData) -> tuple[OptionRight | None, str]:
        raise NotImplementedError

    def prepare(
        self,
        chain: OptionChainView,
        equity: float,
        *,
        risk_cap: float | None = None,
        max_contracts: int | None = None,
    ) -> None:
        """Hand over this cycle's chain (with the candidate's quote), the account equity and
        the limits in force (the strategy sizes within them: the RiskManager's cap on the risk
        per trade and its contract limits)."""
        self._inputs = StrategyInputs(
            chain=chain, equity=equity, risk_cap=risk_cap, max_contracts=max_contracts
        )

    def _data_problem(self, data: MarketData) -> str | None:
        if data.is_stale:
            return f"stale data ({data.staleness_seconds:.0f} s since the last trade)"
        if data.is_delayed:
            return "delayed market data"
        if data.data_quality_score < self.min_quality_score:
            return (
                f"data quality {data.data_quality_score:.2f} below {self.min_quality_score:.2f}"
                f" (missing: {', '.join(data.missing_fields) or 'none'})"
            )
        nan_fields = [name for name in self.required_fields if math.isnan(getattr(data, name))]
        if nan_fields:
            return f"no value for {', '.join(nan_fields)}"
        return None

    def _entry_in_view(self, data: MarketData) -> tuple[OptionRight | None, str]:
        problem = self._data_problem(data)
        if problem is not None:
            return None, f"no entry: {problem}"
        return self.direction(data)

    def candidates(
        self, market_data: MarketData, chain: OptionChainView
    ) -> tuple[ContractSpec, ...]:
        """The contract whose quote ``evaluate`` will need, or () when no entry is in view."""
        right, _ = self._entry_in_view(market_data)
        if right is None or chain.symbol != market_data.symbol:
            return ()
        contract = candidate_contract(
            chain, market_data.last_price, right, self._clock.now(), self.selection
        )
        return () if contract is None else (contract,)

    def evaluate(
        self, market_data: MarketData, positions: Sequence[Position]
    ) -> TradingSignal | None:
        return self.explain(market_data, positions).signal

    def explain(self, market_data: MarketData, positions: Sequence[Position]) -> StrategyDecision:
        """The signal or None, with the reason either way."""
        right, reason = self._entry_in_view(market_data)
        if right is None:
            return StrategyDecision(None, reason)
        symbol = market_data.symbol
        if any(p.symbol == symbol and p.quantity != 0 for p in positions):
            return StrategyDecision(None, f"no entry: a position in {symbol} is already open")

        inputs = self._inputs
        if inputs is None:
            return StrategyDecision(None, "no entry: no option chain prepared")
        chain = inputs.chain
        if chain.symbol != symbol:
            return StrategyDecision(
                None, f"no entry: the chain is for {chain.symbol}, not {symbol}"
            )
        now = self._clock.now()
        if chain.as_of is not None:
            age = (now - chain.as_of).total_seconds()
            if age > self.max_quote_age_s:
                return StrategyDecision(None, f"no entry: option quotes are {age:.0f} s old")

        contract = candidate_contract(chain, market_data.last_price, right, now, self.selection)
        if contract is None:
            return StrategyDecision(
                None,
                f"no entry: no {symbol} expiry with {self.selection.min_dte}–"
                f"{self.selection.max_dte} days to expiry, or no strike",
            )
        quote = chain.quote_for(contract)
        limit = None if quote is None else limit_price(quote)
        if limit is None:
            return StrategyDecision(None, f"no entry: no two-sided quote for {contract.key}")
        risk = self._context.risk_per_trade
        if inputs.risk_cap is not None and 0 < inputs.risk_cap < risk:
            risk = inputs.risk_cap
        most = self.selection.max_contracts
        if inputs.max_contracts is not None and inputs.max_contracts >= 0:
            most = min(most, inputs.max_contracts)
        quantity = position_size(risk, inputs.equity, limit, contract.multiplier, most)
        if quantity == 0:
            return StrategyDecision(
                None,
                f"no entry: {contract.key} at {limit:g} x {contract.multiplier} exceeds "
                f"{risk:.2%} of equity {inputs.equity:,.2f}",
            )
        signal = TradingSignal(
            symbol=symbol,
            action=OrderAction.BUY,
            quantity=quantity,
            order_type=OrderType.LIMIT,
            limit_price=limit,
            expiry=contract.expiry,
            strike=contract.strike,
            right=right,
            strategy_id=self._context.strategy_id,
            timestamp=now,
        )
        return StrategyDecision(signal, f"{reason}: buy {quantity} {contract.key} at {limit:g}")
