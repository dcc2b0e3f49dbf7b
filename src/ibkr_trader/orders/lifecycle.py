"""One order lifecycle: the phases, the one IB-status table and the one ``outcome()``.

Every place that must decide whether an order is still working, or how it ended, reads this
module: the executor, reconciliation, the journal's queries (through the same status strings),
the position manager and the orchestrator. An order's end is the broker's word: a status that
only a client library set (ib_async marks a live order ``Cancelled`` on order-level codes
outside its warning list, ``ValidationError`` on the ones inside it) does not end it for us.

Statuses we write ourselves besides IB's:

- ``NotSent``: refused before anything went to the gateway (final, nothing at the broker);
- ``Unknown`` / ``Unconfirmed``: the gateway's state is not known (a drop while the order was in
  flight, a cancel the gateway did not confirm): still exposure, reconciliation settles it;
- ``Lost``: journaled, but the gateway never received it (final);
- ``Rejected``: the gateway refused it (final).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ibkr_trader.broker.errors import WARNING_CODES, WARNING_RANGE
from ibkr_trader.models import OrderStatus


class Phase(StrEnum):
    """Where an order is in its life."""

    INTENDED = "intended"  # journaled, not yet at the gateway
    WORKING = "working"  # at the gateway, may still fill
    UNKNOWN = "unknown"  # the gateway's state is not known: exposure until settled
    FILLED = "filled"
    PARTIAL = "partial"  # over, partly filled
    CANCELLED = "cancelled"
    FAILED = "failed"  # rejected, inactive, not sent
    LOST = "lost"  # journaled, never reached the gateway

    @property
    def is_final(self) -> bool:
        return self not in (Phase.INTENDED, Phase.WORKING, Phase.UNKNOWN)

    @property
    def is_exposure(self) -> bool:
        """May still fill: counts as working exposure."""
        return not self.is_final


NOT_SENT: Final = "NotSent"
UNKNOWN: Final = "Unknown"
UNCONFIRMED: Final = "Unconfirmed"
LOST: Final = "Lost"
REJECTED: Final = "Rejected"
FAILED: Final = "Failed"

# THE IB-status table (lower-cased keys): IB's statuses, ib_async's own, and ours.
STATUS_PHASE: Final[dict[str, Phase]] = {
    "pendingsubmit": Phase.WORKING,
    "apipending": Phase.WORKING,
    "presubmitted": Phase.WORKING,
    "submitted": Phase.WORKING,
    "pendingcancel": Phase.WORKING,  # a cancel is not an end until confirmed
    "validationerror": Phase.WORKING,  # ib_async-only: a warning on a live order
    "filled": Phase.FILLED,
    "cancelled": Phase.CANCELLED,
    "apicancelled": Phase.CANCELLED,
    "inactive": Phase.FAILED,
    "notsent": Phase.FAILED,
    "rejected": Phase.FAILED,
    "failed": Phase.FAILED,
    "lost": Phase.LOST,
    "unknown": Phase.UNKNOWN,
    "unconfirmed": Phase.UNKNOWN,
    "intended": Phase.INTENDED,
    "intent": Phase.INTENDED,  # the journal's pre-send status
    "": Phase.INTENDED,
    # our OrderStatus values, as the journal's results write them
    "pending": Phase.UNKNOWN,
    "simulated": Phase.FILLED,
    "partial": Phase.PARTIAL,  # an OrderResult PARTIAL: the rest was cancelled
    "timeout": Phase.CANCELLED,  # nothing filled before the deadline; the rest cancelled
}

# IB statuses at which an ib_async Trade is "done" (Filled, Cancelled, ApiCancelled, Inactive).
IB_DONE_STATUSES: Final[frozenset[str]] = frozenset(
    {"Filled", "Cancelled", "ApiCancelled", "Inactive"}
)
IB_ACKNOWLEDGED_STATUSES: Final[frozenset[str]] = (
    frozenset({"PreSubmitted", "Submitted", "ApiPending", "PendingCancel", "ValidationError"})
    | IB_DONE_STATUSES
)

# Codes real gateways send on live orders that ib_async 2.1 treats as errors (10349 "Order
# TIF was set to DAY based on order preset", ib_async issues #191 and #217): the order keeps
# working at IB.
LIVE_ORDER_WARNING_CODES: Final[frozenset[int]] = frozenset({10349, 10311})

# Order-level codes that do NOT end an order at IB (the order keeps working): ib_async's
# warning list and the 2100-2199 notices (one list, broker.errors') and the live-order
# warnings above. A status that one of these produced is not the broker's.
ORDER_WARNING_CODES: Final[frozenset[int]] = (
    WARNING_CODES | frozenset(WARNING_RANGE) | LIVE_ORDER_WARNING_CODES
)

# Codes after which IB itself ended the order (the cancel confirmation, a rejection).
ORDER_ENDING_CODES: Final[frozenset[int]] = frozenset({201, 202, 203})


def phase_of(status: str | None) -> Phase:
    """The phase of a status string (IB's, ib_async's or ours); unknown strings: UNKNOWN."""
    if status is None:
        return Phase.INTENDED
    return STATUS_PHASE.get(status.strip().lower(), Phase.UNKNOWN)


def is_working_status(status: str | None) -> bool:
    return phase_of(status) is Phase.WORKING


def is_done_status(status: str | None) -> bool:
    return phase_of(status).is_final


def is_warning_code(code: int | None) -> bool:
    """An order-level code that does not end the order at IB."""
    return code is not None and code in ORDER_WARNING_CODES


def outcome(status: str, filled: float, quantity: float) -> tuple[Phase, OrderStatus | None]:
    """THE mapping from the broker's status and filled quantity to our outcome.

    A working or unknown order has no final OrderStatus (None). A done order: FILLED when all
    of it filled, PARTIAL when some did, FAILED when IB made it Inactive (or we never sent it,
    or it was lost), CANCELLED otherwise.
    """
    phase = phase_of(status)
    if not phase.is_final:
        return phase, None
    if phase is Phase.FILLED and filled + 1e-9 >= quantity:
        return Phase.FILLED, OrderStatus.FILLED
    if filled > 0:
        return Phase.PARTIAL, OrderStatus.PARTIAL
    if phase in (Phase.FAILED, Phase.LOST):
        return phase, OrderStatus.FAILED
    return Phase.CANCELLED, OrderStatus.CANCELLED


# Final results of an attempt that ended without a fill (a retry is a new attempt).
FAILED_RESULTS: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.REJECTED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.TIMEOUT}
)
# Results that put a position on (or took one off).
FILLED_RESULTS: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.FILLED, OrderStatus.SIMULATED, OrderStatus.PARTIAL}
)
