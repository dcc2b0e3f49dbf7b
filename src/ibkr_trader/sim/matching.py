"""The matching rule of the simulated gateway, as one pure function.

Rule (**touch**): a BUY fills when the ask is at or below its limit (a market order at any
positive ask), at the ask; a SELL fills when the bid is at or above its limit, at the bid. The
fill price is the touch, never the limit, so a marketable limit gets the better price. Size:
the order's remaining quantity, capped at the displayed size at the touch when one is given
(``None``: unlimited, the simulator's own gateway behaviour). No bid (or no ask) means no fill,
never a fill at 0.0.

Used by the simulator's order book (``sim.state``) and by the dry-run venue
(``ibkr_trader.execution.venues``), so that both fill an order the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Match", "match"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Match:
    """What an order gets now: ``quantity`` at ``price``."""

    quantity: float
    price: float


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def match(
    action: str,
    order_type: str,
    limit_price: float | None,
    remaining: float,
    bid: float | None,
    ask: float | None,
    *,
    bid_size: float | None = None,
    ask_size: float | None = None,
) -> Match | None:
    """The fill an order gets against this quote now, or None (see the module's rule)."""
    if remaining <= _EPS:
        return None
    buy = action.upper() == "BUY"
    price = ask if buy else bid
    if price is None or not _usable(price):
        return None
    if order_type.upper() == "LMT":
        if limit_price is None:
            return None
        if (buy and price > limit_price + _EPS) or (not buy and price < limit_price - _EPS):
            return None
    size = ask_size if buy else bid_size
    quantity = remaining
    if size is not None:
        if not _usable(size):
            return None
        quantity = min(remaining, math.floor(size + _EPS))
        if quantity <= 0:
            return None
    return Match(float(quantity), float(price))
