"""Contract selection, pricing and sizing for a long option entry. Pure functions.

The rules (issue 8):

- **Expiry**: the nearest expiry whose days to expiry, counted in New York calendar dates
  (:func:`ibkr_trader.clock.days_to_expiry`), fall in ``[min_dte, max_dte]`` (default 7–21).
  ``min_dte`` may never be 3 or less: a contract bought there would already be due for the
  3-DTE closure rule.
- **Strike**: the listed strike nearest the underlying's last price. On a tie the in-the-money
  one (the lower strike for a call, the higher for a put).
- **Limit**: the mid of the option's bid and ask, rounded to the option's tick, halves rounded
  up (toward the ask, as a buyer's fill is likelier there), kept within [bid, ask]. No limit
  without a two-sided market (bid and ask both > 0 and finite, ask >= bid).
- **Quantity**: ``floor(risk_per_trade * equity / (limit * multiplier))``, capped at
  ``max_contracts``; 0 means no signal (the premium does not fit the risk budget).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from ibkr_trader.clock import days_to_expiry
from ibkr_trader.models import OPTION_MULTIPLIER, ContractSpec, OptionRight

if TYPE_CHECKING:  # base imports this module at run time
    from ibkr_trader.strategies.base import OptionChainView, OptionQuote

__all__ = [
    "MIN_ALLOWED_DTE",
    "SelectionConfig",
    "candidate_contract",
    "limit_price",
    "nearest_strike",
    "position_size",
    "round_to_tick",
    "select_expiry",
]

MIN_ALLOWED_DTE = 4  # "never 3 or fewer"
MAX_SIGNAL_QUANTITY = 10_000  # TradingSignal's own bound


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    """How a strategy picks its contract. Defaults: 7–21 days to expiry."""

    min_dte: int = 7
    max_dte: int = 21
    max_contracts: int = MAX_SIGNAL_QUANTITY

    def __post_init__(self) -> None:
        if self.min_dte < MIN_ALLOWED_DTE:
            raise ValueError(
                f"min_dte must be at least {MIN_ALLOWED_DTE} (never 3 or fewer days to "
                f"expiry), got {self.min_dte}"
            )
        if self.max_dte < self.min_dte:
            raise ValueError(f"max_dte ({self.max_dte}) must be >= min_dte ({self.min_dte})")
        if not 1 <= self.max_contracts <= MAX_SIGNAL_QUANTITY:
            raise ValueError(f"max_contracts must be in 1..{MAX_SIGNAL_QUANTITY}")


def select_expiry(expirations: Iterable[str], now: datetime, config: SelectionConfig) -> str | None:
    """The nearest expiry (YYYYMMDD) whose New York days to expiry fall in the window."""
    best: tuple[int, str] | None = None
    for expiry in expirations:
        dte = days_to_expiry(expiry, now)
        if dte is None or not config.min_dte <= dte <= config.max_dte:
            continue
        if best is None or (dte, expiry) < best:
            best = (dte, expiry)
    return None if best is None else best[1]


def nearest_strike(strikes: Iterable[float], price: float, right: OptionRight) -> float | None:
    """The strike nearest ``price``; on a tie the in-the-money one."""
    if not math.isfinite(price) or price <= 0:
        return None
    valid = [s for s in strikes if math.isfinite(s) and s > 0]
    if not valid:
        return None
    # Tie-break: a call is in the money below the price (prefer lower), a put above.
    sign = 1.0 if right is OptionRight.CALL else -1.0
    return min(valid, key=lambda s: (abs(s - price), sign * s))


def candidate_contract(
    chain: OptionChainView,
    underlying_price: float,
    right: OptionRight,
    now: datetime,
    config: SelectionConfig,
) -> ContractSpec | None:
    """The contract a long entry of ``right`` would buy, or None if none qualifies."""
    expiry = select_expiry(chain.expirations, now, config)
    if expiry is None:
        return None
    strike = nearest_strike(chain.strikes, underlying_price, right)
    if strike is None:
        return None
    return ContractSpec(
        symbol=chain.symbol,
        sec_type="OPT",
        expiry=expiry,
        strike=strike,
        right=right.value,
        multiplier=chain.multiplier,
    )


def round_to_tick(price: float, tick: float) -> float:
    """``price`` rounded to the nearest multiple of ``tick``, halves up (decimal arithmetic)."""
    if not math.isfinite(price) or not math.isfinite(tick) or tick <= 0:
        raise ValueError(f"cannot round {price!r} to tick {tick!r}")
    step = Decimal(str(tick))
    units = (Decimal(str(price)) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(units * step)


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def limit_price(quote: OptionQuote) -> float | None:
    """The buy limit: the mid rounded to the tick within [bid, ask]; None without a market."""
    bid, ask = quote.bid, quote.ask
    if bid is None or ask is None or not (_usable(bid) and _usable(ask)) or ask < bid:
        return None
    mid = (Decimal(str(bid)) + Decimal(str(ask))) / 2
    rounded = round_to_tick(float(mid), quote.min_tick)
    return min(max(rounded, bid), ask)


def position_size(
    risk_per_trade: float,
    equity: float,
    premium: float,
    multiplier: int = OPTION_MULTIPLIER,
    max_contracts: int = MAX_SIGNAL_QUANTITY,
) -> int:
    """Contracts whose premium fits ``risk_per_trade`` of ``equity``; 0 when none does."""
    if not (_usable(risk_per_trade) and _usable(equity) and _usable(premium)) or multiplier <= 0:
        return 0
    budget = Decimal(str(risk_per_trade)) * Decimal(str(equity))
    cost = Decimal(str(premium)) * multiplier
    return max(0, min(int(budget // cost), max_contracts))
