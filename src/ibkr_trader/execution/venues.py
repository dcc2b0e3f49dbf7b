"""Where an order goes: one executor path, two venues.

The executor (``integrations.order_executor``) validates, asks the RiskManager, journals the
intent, then hands the order to a :class:`Venue` and waits on the :class:`VenueOrder` it gets
back; statuses, journal rows, timeouts and cancels are the executor's, the same for both:

- :class:`PaperVenue`: IB (the paper interlock first; the order goes to the verified ``DU...``
  account through the connection; IB fills it);
- :class:`DryRunVenue`: a local matching engine. Nothing is ever sent to IB. It is priced from
  the quotes the gateway delivers (a snapshot of the contract at most every
  ``reprice_seconds``), so dry-run against a real IB Gateway trades real market data with
  simulated fills. It uses the simulator's order lifecycle (``sim.lifecycle.transition``, the
  same transition table) and matching rule (``sim.matching.match``): **touch** -- a BUY fills
  when the ask is at or below its limit, at the ask; a SELL when the bid is at or above its
  limit, at the bid -- for at most the **displayed size** at the touch (the rest keeps working:
  a partial fill). A DAY order still working at the session's close expires (Cancelled, as IB
  does). Commissions come from the limits the risk check uses (``commission_per_contract``,
  ``min_commission_per_order`` of the order). Every fill is written at once to the journal's
  dry-run book (fill row, commission, cash and position in one transaction, with the shared
  arithmetic of :mod:`ibkr_trader.book`), so the book survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ibkr_trader.broker.connection import IBKRConnection, OrderInfo
from ibkr_trader.broker.exceptions import BrokerError, BrokerTimeoutError
from ibkr_trader.broker.market_data import Quote
from ibkr_trader.broker.orders import DONE_STATES, FillInfo, OrderSpec, TradeSnapshot
from ibkr_trader.clock import Clock
from ibkr_trader.integrations.exceptions import GatewayError
from ibkr_trader.integrations.feature_flags import IntegrationFeatureFlags
from ibkr_trader.journal import AsyncJournal
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import ListedHours, MarketHours, day_order_close, hours_at
from ibkr_trader.models import ContractSpec, OrderStatus
from ibkr_trader.risk import RiskLimits
from ibkr_trader.sim.lifecycle import transition
from ibkr_trader.sim.matching import match

__all__ = [
    "DryRunOrder",
    "DryRunVenue",
    "PaperVenue",
    "Venue",
    "VenueOrder",
    "VenueRefusal",
]

_log = get_logger("ibkr_trader.execution.venues")

DRY_RUN_ACCOUNT = "SIMULATED"
REPRICE_SECONDS = 1.0  # a working dry-run order takes a fresh quote at most this often
EXPIRED_TEXT = "Order Canceled - reason: DAY order expired at the close (dry-run venue)"


class VenueRefusal(GatewayError):
    """The venue will not take orders (the paper interlock, a feature flag): nothing sent."""


class VenueOrder(Protocol):
    """An order at a venue: what the executor reads and waits on (``TradeHandle`` is one)."""

    order_id: int

    @property
    def perm_id(self) -> int: ...

    @property
    def status(self) -> str: ...

    def snapshot(self) -> TradeSnapshot: ...

    async def wait_done(self, timeout: float) -> TradeSnapshot: ...

    def adopt_broker_status(self, status: str) -> None: ...


class Venue(Protocol):
    """Where orders go (see the module docstring)."""

    name: str
    filled_status: OrderStatus  # the result status of a complete fill

    def account(self) -> str: ...

    async def place(
        self, contract: ContractSpec, order: OrderSpec, timeout: float
    ) -> VenueOrder: ...

    def find(self, order_id: int) -> VenueOrder | None: ...

    async def cancel(self, order: VenueOrder, timeout: float) -> None: ...

    async def refresh(self, order: VenueOrder, timeout: float) -> None: ...

    async def order_info(self, coid: str, perm_id: int, timeout: float) -> OrderInfo | None: ...

    async def record_fill(
        self,
        coid: str,
        contract_key: str,
        symbol: str,
        side: str,
        snap: TradeSnapshot,
        fill: FillInfo,
    ) -> bool: ...

    def open_orders(self) -> list[OrderInfo]: ...


# --------------------------------------------------------------------------- paper


class PaperVenue:
    """IB paper trading through the connection (the paper interlock on every order)."""

    name = "paper"
    filled_status = OrderStatus.FILLED

    def __init__(
        self,
        connection: IBKRConnection,
        account_guard: Callable[[], str],
        flags: IntegrationFeatureFlags,
        journal: AsyncJournal,
    ) -> None:
        self._connection = connection
        self._account_guard = account_guard
        self._flags = flags
        self._journal = journal

    def account(self) -> str:
        if not self._flags.ENABLE_PAPER_EXECUTION:
            raise VenueRefusal("paper execution disabled by feature flag ENABLE_PAPER_EXECUTION")
        return self._account_guard()  # the paper interlock: raises unless DU...

    async def place(self, contract: ContractSpec, order: OrderSpec, timeout: float) -> VenueOrder:
        return await self._connection.place_order(contract, order, timeout=timeout)

    def find(self, order_id: int) -> VenueOrder | None:
        return self._connection.trade_handle(order_id)

    async def cancel(self, order: VenueOrder, timeout: float) -> None:
        handle = self._connection.trade_handle(order.order_id)
        await self._connection.cancel_order(
            handle if handle is not None else order.order_id, timeout=timeout
        )

    async def refresh(self, order: VenueOrder, timeout: float) -> None:
        """IB matches the order itself; its fills arrive on the Trade's events."""

    async def order_info(self, coid: str, perm_id: int, timeout: float) -> OrderInfo | None:
        """The gateway's own view of one order: its open orders first, then its completed
        orders; None when neither holds it. Raises the broker's error when it cannot be
        asked."""
        opened = await self._connection.get_open_orders(timeout, all_clients=False)
        for info in opened:
            if info.order_ref == coid or (perm_id and info.perm_id == perm_id):
                return info
        completed = await self._connection.get_completed_orders(timeout)
        for info in completed:
            if info.order_ref == coid or (perm_id and info.perm_id == perm_id):
                return info
        return None

    async def record_fill(
        self,
        coid: str,
        contract_key: str,
        symbol: str,
        side: str,
        snap: TradeSnapshot,
        fill: FillInfo,
    ) -> bool:
        recorded = await self._journal.record_fill(
            fill.exec_id,
            client_order_id=coid,
            symbol=symbol,
            contract_key=contract_key,
            side=side,
            quantity=fill.shares,
            price=fill.price,
            at=fill.time,
            broker_order_id=snap.order_id,
            perm_id=snap.perm_id or None,
        )
        if fill.commission is not None:
            await self._journal.record_commission(fill.exec_id, fill.commission)
        return not recorded.duplicate

    def open_orders(self) -> list[OrderInfo]:
        """The gateway holds paper orders; reconciliation asks it directly."""
        return []


# --------------------------------------------------------------------------- dry run

QuoteFeed = Callable[[ContractSpec, float], Awaitable[Quote]]


@dataclass
class DryRunOrder:
    """One order in the dry-run venue's book (the simulator's lifecycle and states)."""

    venue: DryRunVenue
    order_id: int
    contract: ContractSpec
    spec: OrderSpec
    placed_at: datetime
    expires_at: datetime | None
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = math.nan
    last_fill_price: float = math.nan
    fills: list[FillInfo] = field(default_factory=list)
    last_error_code: int | None = None
    last_error_text: str | None = None
    last_quote: Quote | None = None
    next_reprice: float = 0.0  # monotonic
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def perm_id(self) -> int:
        return 0

    @property
    def remaining(self) -> float:
        return max(float(self.spec.quantity) - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    def snapshot(self) -> TradeSnapshot:
        return TradeSnapshot(
            order_id=self.order_id,
            perm_id=0,
            client_id=0,
            status=self.status,
            filled=self.filled,
            remaining=0.0 if self.is_done else self.remaining,
            avg_fill_price=self.avg_fill_price,
            last_fill_price=self.last_fill_price,
            fills=tuple(self.fills),
            order_ref=self.spec.order_ref,
            last_error_code=self.last_error_code,
            last_error_text=self.last_error_text,
            confirmed_done=self.is_done,  # the venue's word is final: nothing else decides
        )

    async def wait_done(self, timeout: float) -> TradeSnapshot:
        """Re-price against fresh quotes until the order is done, or raise
        BrokerTimeoutError after ``timeout`` (the order still works: cancel it)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if time.monotonic() >= self.next_reprice:  # a fresh quote at most this often
                self.next_reprice = time.monotonic() + self.venue.reprice_seconds
                await self.venue.refresh(self, max(left, 0.001))
            if self.is_done:
                return self.snapshot()
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerTimeoutError(
                    f"order {self.order_id} did not finish within {timeout:g}s "
                    f"(status {self.status})",
                    order_id=self.order_id,
                )
            self.changed.clear()
            wait = min(left, max(self.next_reprice - time.monotonic(), 0.01))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), wait)

    def adopt_broker_status(self, status: str) -> None:
        """The venue is the broker here: its own status is already the word."""


class DryRunVenue:
    """The local matching engine of dry-run (see the module docstring for the rule)."""

    name = "dry_run"
    filled_status = OrderStatus.SIMULATED

    def __init__(
        self,
        quotes: QuoteFeed,
        journal: AsyncJournal,
        limits: Callable[[], RiskLimits],
        clock: Clock,
        *,
        market_hours: MarketHours | None = None,
        contract_hours: Callable[[ContractSpec], ListedHours | None] | None = None,
        reprice_seconds: float = REPRICE_SECONDS,
    ) -> None:
        self._quotes = quotes
        self._journal = journal
        self._limits = limits
        self._clock = clock
        self._hours = market_hours
        self._contract_hours = contract_hours
        self.reprice_seconds = float(reprice_seconds)
        self._orders: dict[int, DryRunOrder] = {}
        self._reported: set[str] = set()  # exec ids already handed to the executor
        self._next_id = 1

    # -- the venue interface ------------------------------------------------------------
    def account(self) -> str:
        return DRY_RUN_ACCOUNT

    async def place(self, contract: ContractSpec, order: OrderSpec, timeout: float) -> VenueOrder:
        now = self._clock.now()
        placed = DryRunOrder(
            venue=self,
            order_id=self._next_id,
            contract=contract,
            spec=order,
            placed_at=now,
            expires_at=self.working_close(contract, now) if order.tif == "DAY" else None,
        )
        self._next_id += 1
        self._orders[placed.order_id] = placed
        is_open = self.is_open(contract, now)
        placed.status = transition(placed.status, "accept" if is_open else "accept_closed")
        _log.info(
            "dry_run_order_accepted",
            order_id=placed.order_id,
            order_ref=order.order_ref,
            contract=contract.key,
            action=order.action,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            expires_at=placed.expires_at.isoformat() if placed.expires_at else None,
        )
        placed.next_reprice = time.monotonic() + self.reprice_seconds
        await self.refresh(placed, timeout)
        return placed

    def restore(
        self,
        contract: ContractSpec,
        order: OrderSpec,
        placed_at: datetime,
        fills: list[FillInfo],
    ) -> DryRunOrder:
        """Reload a working order from the journal after a restart (IB's gateway keeps its
        orders; this venue keeps them in the journal): its fills so far are in the book
        already and are not reported again; it expires at the close of its own session."""
        placed = DryRunOrder(
            venue=self,
            order_id=self._next_id,
            contract=contract,
            spec=order,
            placed_at=placed_at,
            expires_at=self.working_close(contract, placed_at) if order.tif == "DAY" else None,
            status="Submitted",
        )
        self._next_id += 1
        for fill in fills:
            placed.fills.append(fill)
            self._reported.add(fill.exec_id)
        placed.filled = sum(f.shares for f in fills)
        if placed.filled:
            placed.avg_fill_price = sum(f.shares * f.price for f in fills) / placed.filled
            placed.last_fill_price = fills[-1].price
        if placed.remaining <= 1e-9:
            placed.status = "Filled"
        self._orders[placed.order_id] = placed
        _log.info(
            "dry_run_order_restored",
            order_id=placed.order_id,
            order_ref=order.order_ref,
            filled=placed.filled,
            expires_at=placed.expires_at.isoformat() if placed.expires_at else None,
        )
        return placed

    def find(self, order_id: int) -> VenueOrder | None:
        return self._orders.get(order_id)

    async def cancel(self, order: VenueOrder, timeout: float) -> None:
        placed = self._own(order)
        if placed.is_done:
            return
        placed.status = transition(transition(placed.status, "cancel"), "cancelled")
        placed.changed.set()

    async def refresh(self, order: VenueOrder, timeout: float) -> None:
        """Expire a DAY order past the close; otherwise match it against a fresh quote (one
        snapshot request; a waiting order calls this at most every ``reprice_seconds``)."""
        placed = self._own(order)
        if placed.is_done:
            return
        now = self._clock.now()
        if placed.expires_at is not None and now >= placed.expires_at:
            placed.status = transition(transition(placed.status, "cancel"), "cancelled")
            placed.last_error_code, placed.last_error_text = 202, EXPIRED_TEXT
            placed.changed.set()
            return
        if not self.is_open(placed.contract, now):
            return  # IB holds it (PreSubmitted) until the open
        try:
            quote = await self._quotes(placed.contract, max(timeout, 0.001))
        except (BrokerError, TimeoutError) as exc:
            _log.warning("dry_run_quote_unavailable", order_id=placed.order_id, error=str(exc))
            return
        placed.last_quote = quote
        if placed.status == "PreSubmitted":
            placed.status = transition(placed.status, "open")
        got = match(
            placed.spec.action,
            placed.spec.order_type,
            placed.spec.limit_price,
            placed.remaining,
            quote.bid,
            quote.ask,
            bid_size=_size(quote.bid_size),
            ask_size=_size(quote.ask_size),
        )
        if got is not None:
            await self._fill(placed, int(got.quantity), got.price, now)

    async def order_info(self, coid: str, perm_id: int, timeout: float) -> OrderInfo | None:
        for placed in self._orders.values():
            if placed.spec.order_ref == coid:
                return self._info(placed)
        return None

    async def record_fill(
        self,
        coid: str,
        contract_key: str,
        symbol: str,
        side: str,
        snap: TradeSnapshot,
        fill: FillInfo,
    ) -> bool:
        """The fill is in the journal's book already (written when it happened); True the
        first time the executor reports it (the risk manager then counts it once)."""
        if fill.exec_id in self._reported:
            return False
        self._reported.add(fill.exec_id)
        return True

    def open_orders(self) -> list[OrderInfo]:
        """The venue's working orders, as the gateway would list them (for reconciliation)."""
        return [self._info(o) for o in self._orders.values() if not o.is_done]

    def forget_done(self) -> None:
        """Drop finished orders (the journal keeps them)."""
        for order_id in [i for i, o in self._orders.items() if o.is_done]:
            del self._orders[order_id]

    # -- the engine ---------------------------------------------------------------------
    def _own(self, order: VenueOrder) -> DryRunOrder:
        placed = self._orders.get(order.order_id)
        if placed is None or placed is not order:
            raise BrokerError(f"order {order.order_id} is not an order of the dry-run venue")
        return placed

    def _listed(self, contract: ContractSpec) -> ListedHours | None:
        return self._contract_hours(contract) if self._contract_hours is not None else None

    def is_open(self, contract: ContractSpec, at: datetime) -> bool:
        """Whether ``contract`` trades at ``at``: by the hours the gateway lists for it while
        they cover ``at`` (the gateway is the venue), else by the exchange calendar."""
        hours = hours_at(at, self._listed(contract), self._hours)
        return hours is None or hours.is_open(at)

    def working_close(self, contract: ContractSpec, at: datetime) -> datetime | None:
        """A DAY order ends at the close of the session it works in (today's while ahead or
        open, else the next one's); None without any hours."""
        return day_order_close(at, self._listed(contract), self._hours)

    def _commission(self, filled_before: float, filled_after: float) -> float:
        """IB's tiered minimum per order: the order's commission so far, from the limits the
        risk check uses, minus what earlier fills of the order paid."""
        limits = self._limits()

        def total(q: float) -> float:
            if q <= 0:
                return 0.0
            return max(limits.min_commission_per_order, limits.commission_per_contract * q)

        return round(total(filled_after) - total(filled_before), 2)

    async def _fill(self, placed: DryRunOrder, qty: int, price: float, now: datetime) -> None:
        commission = self._commission(placed.filled, placed.filled + qty)
        # one exec id per fill of the order: stable across a restart (the journal's key)
        exec_id = f"DRY-{placed.spec.order_ref}-{len(placed.fills) + 1:02d}"
        await self._journal.apply_simulated_fill(
            exec_id=exec_id,
            client_order_id=placed.spec.order_ref or None,
            contract=placed.contract,
            action=placed.spec.action,
            quantity=qty,
            price=price,
            commission=commission,
            at=now,
        )
        before = placed.filled
        placed.filled = before + qty
        prior = placed.avg_fill_price if before else 0.0
        placed.avg_fill_price = round((prior * before + price * qty) / placed.filled, 6)
        placed.last_fill_price = price
        placed.fills.append(
            FillInfo(
                exec_id=exec_id,
                time=now,
                shares=float(qty),
                price=price,
                cum_qty=placed.filled,
                avg_price=placed.avg_fill_price,
                commission=commission,
            )
        )
        placed.status = transition(
            placed.status, "fill" if placed.remaining <= 1e-9 else "partial_fill"
        )
        placed.changed.set()
        _log.info(
            "dry_run_fill",
            order_ref=placed.spec.order_ref,
            exec_id=exec_id,
            quantity=qty,
            price=price,
            commission=commission,
            status=placed.status,
        )

    def _info(self, placed: DryRunOrder) -> OrderInfo:
        return OrderInfo(
            order_id=placed.order_id,
            perm_id=0,
            client_id=0,
            account=DRY_RUN_ACCOUNT,
            contract=placed.contract,
            action=placed.spec.action,
            quantity=float(placed.spec.quantity),
            order_type=placed.spec.order_type,
            limit_price=placed.spec.limit_price,
            status=placed.status,
            filled=placed.filled,
            remaining=0.0 if placed.is_done else placed.remaining,
            avg_fill_price=placed.avg_fill_price if placed.filled else 0.0,
            order_ref=placed.spec.order_ref,
        )


def _size(value: float | None) -> float | None:
    """The displayed size, when the quote has one (None: not known, not limiting)."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None  # a snapshot without a size (IB sends 0 or nothing): not limiting
    return value
