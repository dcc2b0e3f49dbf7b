"""Position arithmetic, once: what one fill does to a holding, its cash and its realized P&L.

The convention is IB's, so that a dry-run book and a paper account read the same: the average
cost of a position is per unit (per share of an option; IB's ``avgCost`` is this times the
multiplier) and **includes the commission** of the fills that opened it; closing realizes
``(price - average) x quantity x multiplier`` (sign-corrected for a short) minus the closing
part's commission. A fill that goes through zero closes the old position and opens the rest at
its own price, the commission split pro rata between the two parts.

Pure: no I/O, no clock. The dry-run book in the journal (``Journal.apply_simulated_fill``)
derives from the venue's fills with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FillEffect", "Holding", "apply_fill"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Holding:
    """A position: signed quantity and the per-unit average cost (commission included)."""

    quantity: float = 0.0
    avg_cost: float = 0.0

    @property
    def is_flat(self) -> bool:
        return abs(self.quantity) < _EPS


@dataclass(frozen=True, slots=True)
class FillEffect:
    """The holding after a fill, the P&L it realized and the cash it moved."""

    holding: Holding
    realized: float  # 0.0 when the fill only opened or added
    cash_delta: float  # negative for a purchase: premium and commission paid
    opened: bool  # the fill opened a position (from flat, or the rest after a flip)
    closed_quantity: float  # how much of an existing position it closed


def apply_fill(
    holding: Holding,
    signed_quantity: float,
    price: float,
    multiplier: float = 1.0,
    commission: float = 0.0,
) -> FillEffect:
    """The effect of one fill of ``signed_quantity`` (BUY > 0) at ``price`` per unit."""
    if not math.isfinite(price) or price <= 0:
        raise ValueError("a fill price must be positive and finite")
    if not math.isfinite(signed_quantity) or abs(signed_quantity) < _EPS:
        raise ValueError("a fill quantity must be non-zero and finite")
    if not math.isfinite(commission) or commission < 0:
        raise ValueError("a commission must be finite and non-negative")
    mult = float(multiplier) or 1.0
    q0, a0 = holding.quantity, holding.avg_cost
    size = abs(signed_quantity)
    per_unit_commission = commission / (size * mult)
    cash_delta = -signed_quantity * price * mult - commission
    if abs(q0) < _EPS or (q0 > 0) == (signed_quantity > 0):
        cost = price + per_unit_commission if signed_quantity > 0 else price - per_unit_commission
        q1 = q0 + signed_quantity
        a1 = (abs(q0) * a0 + size * cost) / abs(q1)
        return FillEffect(Holding(q1, a1), 0.0, cash_delta, abs(q0) < _EPS, 0.0)
    closed = min(size, abs(q0))
    direction = 1.0 if q0 > 0 else -1.0
    closing_commission = commission * closed / size
    realized = (price - a0) * closed * mult * direction - closing_commission
    q1 = q0 + signed_quantity
    if abs(q1) < _EPS:
        return FillEffect(Holding(0.0, 0.0), realized, cash_delta, False, closed)
    if (q1 > 0) == (q0 > 0):  # reduced, same side: the average cost stays
        return FillEffect(Holding(q1, a0), realized, cash_delta, False, closed)
    # through zero: the rest opens at this price with its share of the commission
    rest = abs(q1)
    rest_commission = (commission - closing_commission) / (rest * mult)
    cost = price + rest_commission if q1 > 0 else price - rest_commission
    return FillEffect(Holding(q1, cost), realized, cash_delta, True, closed)
