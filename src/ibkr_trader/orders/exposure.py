"""The exposure ledger: filled positions plus working orders, ours or not ours.

Exposure is what the account holds **and** what may still fill. Every gate reads this one
ledger: the RiskManager (every limit counts working entries; a close may only take what is not
already being closed), the position manager (a close's quantity is the position minus the
closes already working), the orchestrator (HALT cancels our working entries; an order past its
deadline is cancelled, also one adopted after a reconnect) and reconciliation (which replaces
the broker's part of it with the gateway's word).

Who feeds it:

- the RiskManager: an approved order enters as *not yet sent* (``sent=False``), so that two
  approvals in a row see each other; broker positions through ``sync_positions``; every
  execution through ``on_fill``;
- the executor: the broker ids when the gateway acknowledges, the end when the broker says so;
  an order whose end is not known stays (it may still fill);
- reconciliation: every working order at the gateway, ours (our ``orderRef``) or not ours.

"Ours" for a position is the part our own journaled fills account for; the rest is foreign
(a manual trade, another program) and is left alone by automatic closes unless the operator
opts in (``manage_foreign_positions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """One order that may still fill."""

    ref: str  # our client order id, or "broker:<permId>" for an order that is not ours
    contract_key: str
    symbol: str
    action: str  # BUY | SELL
    quantity: int
    filled: int = 0
    is_closing: bool = False
    ours: bool = True
    sent: bool = True  # False: approved by the RiskManager, not yet at the gateway
    local: bool = False  # this process's executor is handling it (the broker may not list it yet)
    order_id: int = 0
    perm_id: int = 0
    client_id: int = 0
    unit_cost: float = 0.0  # premium per contract (price x multiplier), when known
    deadline: datetime | None = None  # ours: when the rest is cancelled
    status: str = ""

    @property
    def remaining(self) -> int:
        return max(int(self.quantity) - int(self.filled), 0)

    @property
    def sign(self) -> int:
        return 1 if self.action.upper() == "BUY" else -1

    @property
    def signed_remaining(self) -> int:
        return self.sign * self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "contract_key": self.contract_key,
            "symbol": self.symbol,
            "action": self.action,
            "quantity": self.quantity,
            "filled": self.filled,
            "remaining": self.remaining,
            "is_closing": self.is_closing,
            "ours": self.ours,
            "sent": self.sent,
            "order_id": self.order_id,
            "perm_id": self.perm_id,
            "client_id": self.client_id,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "status": self.status,
        }


class ExposureLedger:
    """Positions and working orders (see the module docstring). Not thread-safe: one loop."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}
        self._ours: dict[str, int] | None = None  # None: not known (every position is ours)
        self._orders: dict[str, WorkingOrder] = {}
        self.position_corrections = 0  # syncs that changed the positions (the ledger was behind)

    # ------------------------------------------------------------------ positions

    def sync_positions(
        self, held: Mapping[str, int], ours: Mapping[str, int] | None = None
    ) -> None:
        """Replace the positions with the broker's (or the simulated book's)."""
        positions = {k: int(q) for k, q in held.items() if int(q) != 0}
        if positions != self._positions:
            self.position_corrections += 1
        self._positions = positions
        if ours is not None:
            self._ours = {k: int(q) for k, q in ours.items() if int(q) != 0}

    def set_ours(self, ours: Mapping[str, int]) -> None:
        """Our own part of each position (net of our journaled fills)."""
        self._ours = {k: int(q) for k, q in ours.items() if int(q) != 0}

    def position(self, contract_key: str) -> int:
        return self._positions.get(contract_key, 0)

    @property
    def positions(self) -> dict[str, int]:
        return dict(self._positions)

    def ours_quantity(self, contract_key: str) -> int:
        """The part of a position that is ours: same sign, at most the position."""
        held = self.position(contract_key)
        if self._ours is None:
            return held
        mine = self._ours.get(contract_key, 0)
        if held == 0 or mine == 0 or (held > 0) != (mine > 0):
            return 0
        return mine if abs(mine) < abs(held) else held

    def foreign_quantity(self, contract_key: str) -> int:
        return self.position(contract_key) - self.ours_quantity(contract_key)

    def foreign_positions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in self._positions:
            foreign = self.foreign_quantity(key)
            if foreign:
                out[key] = foreign
        return out

    # ------------------------------------------------------------------ orders

    def add(self, order: WorkingOrder) -> None:
        self._orders[order.ref] = order

    def get(self, ref: str) -> WorkingOrder | None:
        return self._orders.get(ref)

    def update(self, ref: str, **changes: Any) -> WorkingOrder | None:
        order = self._orders.get(ref)
        if order is None:
            return None
        updated = replace(order, **changes)
        self._orders[ref] = updated
        return updated

    def finish(self, ref: str) -> WorkingOrder | None:
        """The broker says this order is over: it is no longer exposure."""
        return self._orders.pop(ref, None)

    def replace_broker_view(self, orders: Iterable[WorkingOrder]) -> None:
        """The gateway's working orders replace every sent one (reconciliation); orders
        approved but not yet sent, and those this process's executor is still handling, stay."""
        kept = {ref: o for ref, o in self._orders.items() if not o.sent or o.local}
        for order in orders:
            kept[order.ref] = order
        self._orders = kept

    def on_fill(self, ref: str | None, contract_key: str, signed_quantity: int) -> None:
        """One execution: the position moves, and the order's working rest shrinks."""
        after = self._positions.get(contract_key, 0) + int(signed_quantity)
        if after:
            self._positions[contract_key] = after
        else:
            self._positions.pop(contract_key, None)
        if self._ours is not None and ref is not None and not ref.startswith("broker:"):
            mine = self._ours.get(contract_key, 0) + int(signed_quantity)
            if mine:
                self._ours[contract_key] = mine
            else:
                self._ours.pop(contract_key, None)
        if ref is None:
            return
        order = self._orders.get(ref)
        if order is not None:
            self._orders[ref] = replace(order, filled=order.filled + abs(int(signed_quantity)))

    def working(
        self,
        contract_key: str | None = None,
        *,
        closing: bool | None = None,
        ours: bool | None = None,
    ) -> list[WorkingOrder]:
        """Working orders with something left, filtered."""
        out = []
        for order in self._orders.values():
            if order.remaining <= 0:
                continue
            if contract_key is not None and order.contract_key != contract_key:
                continue
            if closing is not None and self.reduces(order) != closing:
                continue
            if ours is not None and order.ours != ours:
                continue
            out.append(order)
        return out

    def reduces(self, order: WorkingOrder) -> bool:
        """A close: ours marked closing, or any order on the opposite side of the position."""
        if order.is_closing:
            return True
        held = self.position(order.contract_key)
        return held != 0 and (held > 0) != (order.sign > 0)

    def closing_remaining(self, contract_key: str) -> int:
        """Contracts of this position already being closed by working orders."""
        return sum(o.remaining for o in self.working(contract_key, closing=True))

    def closing_by_contract(self) -> dict[str, int]:
        """:meth:`closing_remaining` of every held contract, in one pass over the orders."""
        out = dict.fromkeys(self._positions, 0)
        for order in self._orders.values():
            key = order.contract_key
            if key in out and order.remaining > 0 and self.reduces(order):
                out[key] += order.remaining
        return out

    def closable(self, contract_key: str) -> int:
        """What a new close may take: the position minus the closes already working."""
        return max(abs(self.position(contract_key)) - self.closing_remaining(contract_key), 0)

    def entry_remaining(self) -> dict[str, int]:
        """Signed contracts that working entries may still add, per contract."""
        out: dict[str, int] = {}
        for order in self.working(closing=False):
            out[order.contract_key] = out.get(order.contract_key, 0) + order.signed_remaining
        return {k: v for k, v in out.items() if v}

    def working_entry_cost(self) -> float:
        """Premium that working buy entries may still commit."""
        return sum(
            o.unit_cost * o.remaining
            for o in self.working(closing=False)
            if o.sign > 0 and o.unit_cost > 0
        )

    def expired(self, now: datetime) -> list[WorkingOrder]:
        """Our sent orders past their deadline (to be cancelled)."""
        return [
            o
            for o in self.working(ours=True)
            if o.sent and o.deadline is not None and o.deadline <= now
        ]

    def status(self) -> dict[str, Any]:
        return {
            "positions": self.positions,
            "foreign_positions": self.foreign_positions(),
            "working_orders": [o.to_dict() for o in self.working()],
        }
