"""Execution: where an order goes (venues), behind the one executor path.

``integrations.order_executor.OrderExecutor`` keeps the handoff's import path and the flow
(validate -> risk -> intent -> venue -> result); :mod:`ibkr_trader.execution.venues` holds the
two venues, :class:`PaperVenue` (IB) and :class:`DryRunVenue` (a local matching engine).
"""

from ibkr_trader.execution.venues import (
    DryRunOrder,
    DryRunVenue,
    PaperVenue,
    Venue,
    VenueOrder,
    VenueRefusal,
)

__all__ = ["DryRunOrder", "DryRunVenue", "PaperVenue", "Venue", "VenueOrder", "VenueRefusal"]
