"""The order lifecycle as a transition table, and the records of orders and executions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ibkr_trader.sim import codec
from ibkr_trader.sim.codec import ContractFields

DONE_STATES: Final = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


# The order lifecycle: (status, event) -> next status. Anything else is refused.
ORDER_TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("PendingSubmit", "accept"): "Submitted",
    ("PendingSubmit", "accept_closed"): "PreSubmitted",
    ("PendingSubmit", "reject"): "Cancelled",
    ("PendingSubmit", "inactivate"): "Inactive",
    ("PreSubmitted", "open"): "Submitted",
    ("PreSubmitted", "cancel"): "PendingCancel",
    ("Submitted", "partial_fill"): "Submitted",
    ("Submitted", "fill"): "Filled",
    ("Submitted", "cancel"): "PendingCancel",
    ("Submitted", "modify"): "Submitted",
    ("PreSubmitted", "modify"): "PreSubmitted",
    ("PendingCancel", "cancelled"): "Cancelled",
}


class InvalidTransition(Exception):
    """An order event that its current status does not allow."""


def transition(status: str, event: str) -> str:
    """The status after ``event``; :class:`InvalidTransition` if not allowed."""
    try:
        return ORDER_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(f"{event} not allowed in {status}") from None


@dataclass
class ReceivedOrder:
    """One placeOrder as received, with its live status (introspection for tests)."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    order_ref: str
    ext_operator: str
    con_id: int
    symbol: str
    sec_type: str
    expiry: str
    strike: float
    right: str
    status: str = "PendingSubmit"
    filled: float = 0.0
    raw: tuple[str, ...] = ()
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float = 0.0
    contract: ContractFields = field(default_factory=ContractFields)
    due: float = 0.0
    partial_done: bool = False
    completed_time: str = ""
    completed_status: str = ""
    why_held: str = ""

    @property
    def remaining(self) -> float:
        return max(self.total_quantity - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    def wire(self) -> codec.OrderWire:
        return codec.OrderWire(
            order_id=self.order_id,
            client_id=self.client_id,
            perm_id=self.perm_id,
            contract=self.contract,
            action=self.action,
            total_quantity=self.total_quantity,
            order_type=self.order_type,
            lmt_price=self.lmt_price,
            aux_price=None,
            tif=self.tif,
            account=self.account,
            order_ref=self.order_ref,
            status=self.status,
            filled=self.filled,
            remaining=self.remaining if self.status not in DONE_STATES else 0.0,
            avg_fill_price=self.avg_fill_price,
            last_fill_price=self.last_fill_price,
            open_close="",
            commission=self.commission if self.status == "Filled" else None,
            completed_time=self.completed_time,
            completed_status=self.completed_status,
            why_held=self.why_held,
        )


@dataclass
class Execution:
    exec_id: str
    order: ReceivedOrder
    time: datetime
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float
    realized_pnl: float | None
