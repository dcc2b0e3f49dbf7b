"""Reconciliation: the journal and the gateway agree before any new order.

Run at start-up and after every reconnect (the orchestrator does it before its next order).
While it runs the trading state is RECONCILING (no order passes the RiskManager).

1. The gateway's open orders, today's executions and completed orders are fetched.
2. Each is matched to the journal by ``orderRef`` (our client order id) and, failing that, by
   IB's ``permId`` **and** the contract, side and quantity (a permId alone can match a manual
   order to one of ours after a gateway restart). Open orders are asked of every client id
   (``reqAllOpenOrders``): an order placed under a previous client id is still ours. Set the
   gateway's *Master API client ID* to the bot's ``client_id`` so that it sees them all.
3. Every execution of one of our orders is recorded (``record_fill`` ignores an exec id it
   already has) and a new one is fed to ``RiskManager.on_fill`` (day-trade bookkeeping).
   A closing order that filled while we were away also gets its closure recorded with the
   intent's reason.
4. The exposure ledger takes the gateway's working orders: ours are **adopted** (a handle is
   re-attached and the original deadline, intent time plus ``order_timeout``, still cancels
   them: the orchestrator cancels every one of ours past its deadline), the others are
   exposure too (not ours). Our part of each position (our journaled fills) is set, so that
   automatic closes leave foreign positions alone.
   Every unresolved journal intent is settled from what the gateway says: still working
   (status recorded, adopted), done (final status and result recorded), or **unknown to
   the gateway**: it never arrived (the socket dropped, the process died before sending), so
   it is marked final as ``Lost`` with the reason — it is never resent blindly. In DRY_RUN
   nothing is ever sent: an unresolved intent is one the process did not finish simulating;
   if its simulated fill was committed (a crash right after it), it is settled as SIMULATED.
5. A broker order whose orderRef and permId the journal does not know (someone else's, or a
   manual one) is reported, and in PAPER mode puts trading in REDUCING (closes allowed, no
   entries; the orchestrator alerts) until the operator has looked and runs
   ``ibkr-trader resume`` (issue 14, item 10: only the kill switch and the paper interlock
   stop everything, a close included). One the operator acknowledged
   (``ibkr-trader ack PERM_ID --by --reason``) is only noted (``notes``), never reduced on.

The result is a frozen :class:`ReconciliationReport` (also journaled as an event).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ibkr_trader.broker.connection import ExecutionInfo, OrderInfo
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.clock import Clock, ny_date
from ibkr_trader.journal import AsyncJournal, JournalError, OrderRow
from ibkr_trader.logging import get_logger
from ibkr_trader.models import ClosureReason, ExecutionMode, OrderStatus, TradingState
from ibkr_trader.orders.exposure import WorkingOrder
from ibkr_trader.orders.ids import settlement_order_id
from ibkr_trader.orders.lifecycle import LOST, is_working_status, outcome
from ibkr_trader.risk import RiskManager
from ibkr_trader.risk.manager import ORIGIN_RECONCILIATION

# risk-state key of an operator's acknowledgement of an unknown broker order (``ack``)
ACK_KEY_PREFIX = "acknowledged_order:"

__all__ = [
    "BrokerOrders",
    "Reconciler",
    "ReconciliationReport",
    "ResolvedIntent",
    "UnknownBrokerOrder",
]

_log = get_logger("ibkr_trader.orders.reconcile")

LOST_STATUS = LOST


class BrokerOrders(Protocol):
    """What reconciliation reads from the gateway (``IBKRConnection`` satisfies it)."""

    async def get_open_orders(self, timeout: float | None = None) -> list[OrderInfo]: ...

    async def get_completed_orders(self, timeout: float | None = None) -> list[OrderInfo]: ...

    async def get_executions(self, timeout: float | None = None) -> list[ExecutionInfo]: ...


@dataclass(frozen=True, slots=True)
class ResolvedIntent:
    """What reconciliation decided about one journal intent."""

    client_order_id: str
    outcome: str  # working | filled | partial | cancelled | failed | lost
    reason: str


@dataclass(frozen=True, slots=True)
class UnknownBrokerOrder:
    """A broker order the journal has no intent for."""

    order_id: int
    perm_id: int
    order_ref: str
    symbol: str
    action: str
    quantity: float
    status: str

    def describe(self) -> str:
        ref = self.order_ref or "<no orderRef>"
        return (
            f"{self.action} {self.quantity:g} {self.symbol} (order {self.order_id}, "
            f"permId {self.perm_id}, orderRef {ref}, {self.status})"
        )


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """What one reconciliation found and did."""

    trigger: str
    started_at: datetime
    finished_at: datetime
    open_orders: int = 0
    completed_orders: int = 0
    executions: int = 0
    matched: tuple[str, ...] = ()
    resolved: tuple[ResolvedIntent, ...] = ()
    fills_recorded: tuple[str, ...] = ()
    unknown_orders: tuple[UnknownBrokerOrder, ...] = ()
    halted: bool = False
    error: str | None = None
    trading_state: str = ""
    reduced: bool = False  # REDUCING for unknown broker orders (closes only)
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    corrected: tuple[str, ...] = ()  # final intents whose journaled state the gateway contradicted

    @property
    def ok(self) -> bool:
        """True when the journal and the gateway agree and nothing unknown was found."""
        return self.error is None and not self.unknown_orders

    def summary(self) -> str:
        if self.error is not None:
            return f"reconciliation ({self.trigger}) failed: {self.error}"
        parts = [
            f"{self.open_orders} open / {self.completed_orders} completed orders, "
            f"{self.executions} executions",
            f"{len(self.resolved)} intents settled",
            f"{len(self.fills_recorded)} fills recorded",
        ]
        if self.corrected:
            parts.append(f"{len(self.corrected)} journal states corrected")
        if self.unknown_orders:
            parts.append(f"{len(self.unknown_orders)} UNKNOWN broker orders")
        if self.halted:
            parts.append("trading HALTED")
        elif self.reduced:
            parts.append("trading REDUCING (closes only)")
        return f"reconciliation ({self.trigger}): " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "open_orders": self.open_orders,
            "completed_orders": self.completed_orders,
            "executions": self.executions,
            "matched": list(self.matched),
            "resolved": [
                {"client_order_id": r.client_order_id, "outcome": r.outcome, "reason": r.reason}
                for r in self.resolved
            ],
            "fills_recorded": list(self.fills_recorded),
            "unknown_orders": [u.describe() for u in self.unknown_orders],
            "halted": self.halted,
            "reduced": self.reduced,
            "error": self.error,
            "trading_state": self.trading_state,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "corrected": list(self.corrected),
        }


def _final_outcome(status: str, filled: float, quantity: float) -> tuple[str, OrderStatus]:
    """The one outcome() of orders.lifecycle, for an order the gateway reports as done."""
    phase, final = outcome(status, filled, quantity)
    return phase.value, final if final is not None else OrderStatus.CANCELLED


def _side(action: str) -> str:
    return "BUY" if action.strip().upper() in ("BOT", "BUY") else "SELL"


def _signed(ex: ExecutionInfo) -> int:
    """An execution's contracts, + bought, - sold."""
    return int(ex.shares) if _side(ex.side) == "BUY" else -int(ex.shares)


def _same_order(row: OrderRow, contract_key: str, action: str, quantity: float | None) -> bool:
    """A permId match is ours only if the contract, the side and the quantity agree too."""
    intent = row.intent
    if intent.contract_key != contract_key or intent.action.upper() != _side(action):
        return False
    return quantity is None or abs(float(intent.quantity) - float(quantity)) < 1e-9


def working_order(info: OrderInfo, row: OrderRow, deadline: datetime | None) -> WorkingOrder:
    """One of ours working at the gateway, as the exposure ledger holds it."""
    intent = row.intent
    unit = (intent.limit_price or 0.0) * max(1, int(intent.multiplier or 1))
    return WorkingOrder(
        ref=intent.client_order_id,
        contract_key=intent.contract_key,
        symbol=intent.symbol,
        action=intent.action,
        quantity=round(info.quantity),
        filled=round(info.filled),
        is_closing=bool(intent.is_closing),
        ours=True,
        sent=True,
        order_id=info.order_id,
        perm_id=info.perm_id,
        client_id=info.client_id,
        unit_cost=unit,
        deadline=deadline,
        status=info.status,
    )


def foreign_order(info: OrderInfo) -> WorkingOrder:
    """A working order that is not ours: exposure all the same, never cancelled by us."""
    unit = (info.limit_price or 0.0) * max(1, int(info.contract.multiplier or 1))
    return WorkingOrder(
        ref=f"broker:{info.perm_id or f'{info.client_id}:{info.order_id}'}",
        contract_key=info.contract.key,
        symbol=info.contract.symbol,
        action=_side(info.action),
        quantity=round(info.quantity),
        filled=round(info.filled),
        is_closing=False,
        ours=False,
        sent=True,
        order_id=info.order_id,
        perm_id=info.perm_id,
        client_id=info.client_id,
        unit_cost=unit,
        status=info.status,
    )


async def refresh_exposure(
    broker: BrokerOrders,
    journal: AsyncJournal,
    risk: RiskManager,
    timeout: float,
    order_timeout: float = 30.0,
    *,
    account: str | None = None,
    adopted_deadline: Callable[[OrderRow], datetime | None] | None = None,
) -> int:
    """The gateway's working orders (every client id) into the exposure ledger, without
    journaling anything: what an entry must count, including another instance's orders and
    orders someone placed by hand. With ``account``, that account's positions too (a process
    that just started has synced none yet). Returns how many orders are working. Raises the
    broker's error (the caller fails closed)."""
    ledger = risk.exposure
    store = journal.journal
    if account is not None:
        held = await broker_positions(broker, timeout, account)
        if held is not None:
            ledger.sync_positions(held)
    working: list[WorkingOrder] = []
    for info in await broker.get_open_orders(timeout):
        if not is_working_status(info.status):
            continue
        row = await journal.call(store.find_order, info.order_ref) if info.order_ref else None
        if row is None and info.perm_id:
            by_perm = await journal.call(store.intent_by_perm_id, info.perm_id)
            if by_perm is not None and _same_order(
                by_perm, info.contract.key, info.action, info.quantity
            ):
                row = by_perm
        if row is None:
            working.append(foreign_order(info))
            continue
        known = ledger.get(row.intent.client_order_id)
        deadline = (
            known.deadline
            if known is not None and known.deadline is not None
            else adopted_deadline_of(row, adopted_deadline, order_timeout)
        )
        working.append(working_order(info, row, deadline))
    ledger.replace_broker_view(working)
    return len(working)


async def broker_positions(
    broker: BrokerOrders, timeout: float, account: str
) -> dict[str, int] | None:
    """The gateway's positions per contract, of ``account`` (every account when empty);
    None when the broker has no positions to ask (a dry-run venue's stand-in)."""
    get_positions = getattr(broker, "get_positions", None)
    if not callable(get_positions):
        return None
    held: dict[str, int] = {}
    for row in await get_positions(timeout):
        if account and row.account != account:
            continue
        key = row.contract.key
        held[key] = held.get(key, 0) + round(row.quantity)
    return held


def adopted_deadline_of(
    row: OrderRow, rule: Callable[[OrderRow], datetime | None] | None, order_timeout: float
) -> datetime:
    """When an adopted order of ours is cancelled: by ``rule`` (the executor's: a resting
    entry at the session's close) where it has one, else the intent's time plus
    ``order_timeout``."""
    deadline = rule(row) if rule is not None else None
    return deadline or row.intent.created_at + timedelta(seconds=order_timeout)


class Reconciler:
    """Matches the gateway's orders and executions against the journal (module docstring)."""

    def __init__(
        self,
        broker: BrokerOrders,
        journal: AsyncJournal,
        risk: RiskManager,
        mode: ExecutionMode,
        clock: Clock,
        *,
        order_timeout: float = 30.0,
        venue_orders: Callable[[], Sequence[OrderInfo]] | None = None,
    ) -> None:
        self._broker = broker
        # the local venue's working orders (dry-run): held by this process, not the gateway;
        # they are ours and working, never "lost" while the venue holds them
        self.venue_orders = venue_orders
        self._journal = journal
        self._risk = risk
        self._mode = ExecutionMode(mode)
        self._clock = clock
        self._lock = asyncio.Lock()
        self.order_timeout = float(order_timeout)
        # when an adopted order of ours is cancelled, if not intent + order_timeout: the
        # executor's rule (a resting entry is a DAY order: the session's close); None: default
        self.adopted_deadline: Callable[[OrderRow], datetime | None] | None = None

    async def reconcile(
        self, trigger: str = "start-up", timeout: float = 30.0
    ) -> ReconciliationReport:
        """One reconciliation (serialised: a second caller waits for the first)."""
        async with self._lock:
            return await self._reconcile(trigger, timeout)

    async def _reconcile(self, trigger: str, timeout: float) -> ReconciliationReport:
        started = self._clock.now()
        t0 = time.monotonic()
        self._risk.begin_reconciliation(f"reconciliation ({trigger})")
        try:
            report = await self._run(trigger, started, t0, timeout)
        except (BrokerError, TimeoutError, JournalError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            _log.error("reconciliation_failed", trigger=trigger, error=error)
            self._risk.end_reconciliation(
                f"reconciliation ({trigger}) failed: {error}; no entries until it succeeds"
            )
            report = ReconciliationReport(
                trigger=trigger,
                started_at=started,
                finished_at=self._clock.now(),
                error=error,
                trading_state=self._risk.trading_state.value,
                seconds=time.monotonic() - t0,
            )
        except BaseException:
            self._risk.end_reconciliation(f"reconciliation ({trigger}) interrupted")
            raise
        await self._record(report)
        return report

    async def _record(self, report: ReconciliationReport) -> None:
        try:
            await self._journal.record_event("reconciliation", report.to_dict())
        except JournalError as exc:  # pragma: no cover - the report is still returned
            _log.error("reconciliation_not_journaled", error=str(exc))

    async def _run(
        self, trigger: str, started: datetime, t0: float, timeout: float
    ) -> ReconciliationReport:
        deadline = t0 + timeout

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.001)

        open_orders, completed, executions, held = await asyncio.gather(
            self._broker.get_open_orders(remaining()),
            self._broker.get_completed_orders(remaining()),
            self._broker.get_executions(remaining()),
            self._broker_positions(remaining()),
        )
        if self.venue_orders is not None:
            open_orders = [*open_orders, *self.venue_orders()]
        journal = self._journal.journal
        unresolved: list[OrderRow] = await self._journal.call(journal.unresolved_intents)

        known: dict[str, OrderRow | None] = {}

        async def lookup(
            order_ref: str,
            perm_id: int,
            contract_key: str = "",
            action: str = "",
            quantity: float | None = None,
        ) -> OrderRow | None:
            key = f"{order_ref}|{perm_id}|{contract_key}|{action}|{quantity}"
            if key in known:
                return known[key]
            row: OrderRow | None = None
            if order_ref:
                row = await self._journal.call(journal.find_order, order_ref)
            if row is None and perm_id:
                by_perm = await self._journal.call(journal.intent_by_perm_id, perm_id)
                if by_perm is not None and _same_order(by_perm, contract_key, action, quantity):
                    row = by_perm
            known[key] = row
            return row

        matched: list[str] = []
        unknown: dict[int, UnknownBrokerOrder] = {}
        by_coid: dict[str, OrderInfo] = {}
        # completed first, open last: an order in both lists is still working
        working: list[WorkingOrder] = []
        for info in [*completed, *open_orders]:
            row = await lookup(
                info.order_ref, info.perm_id, info.contract.key, info.action, info.quantity
            )
            if row is None:
                unknown[info.perm_id or -info.order_id] = UnknownBrokerOrder(
                    order_id=info.order_id,
                    perm_id=info.perm_id,
                    order_ref=info.order_ref,
                    symbol=info.contract.symbol,
                    action=info.action,
                    quantity=info.quantity,
                    status=info.status,
                )
                continue
            coid = row.intent.client_order_id
            if info in open_orders and is_working_status(info.status):
                working.append(self._working(info, row))
            by_coid[coid] = info
            if coid not in matched:
                matched.append(coid)
            if info.perm_id and row.state.perm_id != info.perm_id:
                await self._journal.attach_broker_ids(coid, info.order_id or None, info.perm_id)

        fills = await self._record_executions(executions, lookup, unknown)

        # the exposure ledger takes the gateway's word: every working order, ours or not
        ledger = self._risk.exposure
        for info in open_orders:
            if is_working_status(info.status) and any(
                u.perm_id == info.perm_id and u.order_id == info.order_id for u in unknown.values()
            ):
                working.append(self._foreign(info))
        ledger.replace_broker_view(working)
        if held is not None:
            # the gateway's positions, fetched with its executions: they already hold every
            # fill just recorded (on_fill moved the ledger's by it too: a fill that happened
            # after the last positions sync counted twice, a long looked short)
            ledger.sync_positions(held)
        ledger.set_ours(await self._journal.our_net_positions())

        unresolved_ids = {row.intent.client_order_id for row in unresolved}
        corrected: list[str] = []
        for coid, info in by_coid.items():
            if coid in unresolved_ids:
                continue
            final_row = await self._journal.call(journal.find_order, coid)
            if final_row is not None and await self._correct(final_row, info, trigger):
                corrected.append(coid)

        resolved: list[ResolvedIntent] = []
        for row in unresolved:
            coid = row.intent.client_order_id
            found = by_coid.get(coid)
            if found is None and row.state.perm_id:
                found = next((o for o in by_coid.values() if o.perm_id == row.state.perm_id), None)
            resolved.append(await self._settle(row, found, trigger))

        halted = reduced = False
        unknown_list, acknowledged = await self._split_acknowledged(tuple(unknown.values()))
        if unknown_list:
            described = "; ".join(u.describe() for u in unknown_list[:5])
            await self._journal.record_event(
                "reconciliation_unknown_orders",
                {"count": len(unknown_list), "orders": [u.describe() for u in unknown_list]},
            )
            _log.error("unknown_broker_orders", count=len(unknown_list), orders=described)
        self._risk.end_reconciliation(f"reconciliation ({trigger}) finished")
        if unknown_list and self._mode is ExecutionMode.PAPER:
            # issue 14, item 10: an unknown order REDUCES (closes allowed, no entries, an
            # alert); only the kill switch and the paper interlock stop everything
            self._risk.set_trading_state(
                TradingState.REDUCING,
                f"reconciliation: {len(unknown_list)} broker order(s) unknown to the "
                f"journal ({described}); closes only: look at them, then `ibkr-trader resume`",
                origin=ORIGIN_RECONCILIATION,
            )
            reduced = True
        return ReconciliationReport(
            trigger=trigger,
            started_at=started,
            finished_at=self._clock.now(),
            open_orders=len(open_orders),
            completed_orders=len(completed),
            executions=len(executions),
            matched=tuple(matched),
            resolved=tuple(resolved),
            fills_recorded=tuple(fills),
            unknown_orders=unknown_list,
            notes=acknowledged,
            corrected=tuple(corrected),
            halted=halted or self._risk.trading_state is TradingState.HALTED,
            reduced=reduced,
            trading_state=self._risk.trading_state.value,
            seconds=time.monotonic() - t0,
        )

    async def _split_acknowledged(
        self, unknown: tuple[UnknownBrokerOrder, ...]
    ) -> tuple[tuple[UnknownBrokerOrder, ...], tuple[str, ...]]:
        """Unknown orders an operator acknowledged (``ibkr-trader ack PERM_ID``) are noted,
        not halted on; the rest stay unknown."""
        still: list[UnknownBrokerOrder] = []
        notes: list[str] = []
        for order in unknown:
            found = None
            if order.perm_id:
                found = await self._journal.call(
                    self._journal.journal.get_risk_state, f"{ACK_KEY_PREFIX}{order.perm_id}"
                )
            if found is None or not isinstance(found[0], str):
                still.append(order)
                continue
            try:
                ack = json.loads(found[0])
            except ValueError:
                ack = {}
            notes.append(
                f"acknowledged broker order {order.describe()} by {ack.get('by', '?')}: "
                f"{ack.get('reason', '')}"
            )
        return tuple(still), tuple(notes)

    def _working(self, info: OrderInfo, row: OrderRow) -> WorkingOrder:
        """One of ours, working at the gateway: adopted, with its original deadline."""
        adopt = getattr(self._broker, "adopt_order", None)
        if callable(adopt):
            adopt(info.order_id, info.client_id, info.perm_id)
        return working_order(info, row, self._deadline(row))

    def _deadline(self, row: OrderRow) -> datetime:
        """When an adopted order is cancelled: what it would have been before the restart (a
        resting entry at the session's close), else the intent's time plus order_timeout."""
        return adopted_deadline_of(row, self.adopted_deadline, self.order_timeout)

    @staticmethod
    def _foreign(info: OrderInfo) -> WorkingOrder:
        return foreign_order(info)

    async def _record_executions(
        self,
        executions: Iterable[ExecutionInfo],
        lookup: Any,
        unknown: dict[int, UnknownBrokerOrder],
    ) -> list[str]:
        recorded: list[str] = []
        executions = list(executions)
        legs = await self._settlement_legs(executions)
        for ex in executions:
            leg = legs.get(ex.exec_id)
            if leg is not None:
                if await self._record_settlement(ex, *leg):
                    recorded.append(ex.exec_id)
                continue
            row: OrderRow | None = await lookup(ex.order_ref, ex.perm_id, ex.contract.key, ex.side)
            if row is None and ex.order_id == 0:
                settled = await self._journal.call(
                    self._journal.journal.find_order, settlement_order_id(ex.exec_id)
                )
                if settled is not None:  # a settlement leg journaled earlier
                    continue
            if row is None:
                key = ex.perm_id or -ex.order_id
                if key not in unknown:
                    unknown[key] = UnknownBrokerOrder(
                        order_id=ex.order_id,
                        perm_id=ex.perm_id,
                        order_ref=ex.order_ref,
                        symbol=ex.contract.symbol,
                        action="BUY" if ex.side.upper() in ("BOT", "BUY") else "SELL",
                        quantity=ex.shares,
                        status="executed",
                    )
                continue
            if not (math.isfinite(ex.shares) and ex.shares > 0 and math.isfinite(ex.price)):
                continue
            intent = row.intent
            result = await self._journal.record_fill(
                ex.exec_id,
                client_order_id=intent.client_order_id,
                symbol=intent.symbol,
                contract_key=intent.contract_key,
                side=ex.side,
                quantity=ex.shares,
                price=ex.price,
                at=ex.time,
                broker_order_id=ex.order_id or None,
                perm_id=ex.perm_id or None,
            )
            if ex.commission is not None and math.isfinite(ex.commission):
                await self._journal.record_commission(ex.exec_id, ex.commission)
            if result.duplicate:
                continue
            recorded.append(ex.exec_id)
            signed = _signed(ex)
            self._risk.on_fill(
                intent.contract_key,
                intent.symbol,
                signed,
                ex.time,
                ref=intent.client_order_id,
                exec_id=ex.exec_id,
            )
            _log.warning(
                "fill_recorded_by_reconciliation",
                client_order_id=intent.client_order_id,
                exec_id=ex.exec_id,
                quantity=signed,
                price=ex.price,
            )
        return recorded

    async def _broker_positions(self, timeout: float) -> dict[str, int] | None:
        """PAPER: the gateway's positions of the one managed account, per contract (None in
        dry-run, where the book is local, or when the account is not known)."""
        accounts = list(getattr(self._broker, "managed_accounts", None) or [])
        if self._mode is not ExecutionMode.PAPER or len(accounts) != 1:
            return None
        return await broker_positions(self._broker, timeout, accounts[0])

    async def _settlement_legs(
        self, executions: Sequence[ExecutionInfo]
    ) -> dict[str, tuple[str, str]]:
        """IB's own booking at an option's expiry, for a position of ours: exec id ->
        (the option's key, expired | exercised | assigned). An execution without an order
        (order id 0) that takes one of our options off the book on or after its expiry day is
        the option leg; the underlying's execution at the strike at the same time, for the
        option's quantity times its multiplier, is the share leg of an exercise or assignment.
        Anything else without an order is someone else's (reported as unknown)."""
        ours = await self._journal.our_net_positions()
        legs: dict[str, tuple[str, str]] = {}
        options = [
            ex
            for ex in executions
            if ex.order_id == 0
            and ex.contract.is_option
            and ours.get(ex.contract.key, 0) != 0
            and ex.contract.expiry
            and ny_date(ex.time).strftime("%Y%m%d") >= ex.contract.expiry[:8]
        ]
        for opt in options:
            c = opt.contract
            shares = abs(opt.shares) * float(c.multiplier or 1)
            share_leg = next(
                (
                    ex
                    for ex in executions
                    if ex.order_id == 0
                    and ex.contract.sec_type == "STK"
                    and ex.contract.symbol == c.symbol
                    and abs(ex.price - c.strike) < 1e-6
                    and abs(ex.shares - shares) < 1e-6
                    and abs((ex.time - opt.time).total_seconds()) <= 1.0
                    and ex.exec_id not in legs
                ),
                None,
            )
            long = opt.side.upper() in ("SLD", "SELL")  # a long option leaves by a sale
            outcome = "expired" if share_leg is None else ("exercised" if long else "assigned")
            legs[opt.exec_id] = (c.key, outcome)
            if share_leg is not None:
                legs[share_leg.exec_id] = (c.key, outcome)
        return legs

    async def _record_settlement(self, ex: ExecutionInfo, option_key: str, outcome: str) -> bool:
        """Journal one settlement leg as ours (and the ledger takes it); False if known."""
        if not (math.isfinite(ex.shares) and ex.shares > 0 and math.isfinite(ex.price)):
            return False
        result = await self._journal.record_settlement(
            ex.exec_id,
            contract=ex.contract,
            side=ex.side,
            quantity=ex.shares,
            price=ex.price,
            at=ex.time,
            outcome=outcome,
            option_key=option_key,
        )
        if result.duplicate:
            return False
        signed = _signed(ex)
        self._risk.on_fill(
            ex.contract.key,
            ex.contract.symbol,
            signed,
            ex.time,
            ref=settlement_order_id(ex.exec_id),
            exec_id=ex.exec_id,
        )
        _log.warning(
            "option_settled",
            contract=ex.contract.key,
            option=option_key,
            outcome=outcome,
            quantity=signed,
            price=ex.price,
        )
        return True

    async def _record_gateway_status(
        self, coid: str, info: OrderInfo, detail: dict[str, Any]
    ) -> float | None:
        """Journal the gateway's view of an order; returns its average fill price if known."""
        avg = info.avg_fill_price if math.isfinite(info.avg_fill_price) else None
        await self._journal.record_status(
            coid,
            info.status,
            info.filled,
            info.remaining if math.isfinite(info.remaining) else None,
            avg if info.filled else None,
            detail=detail,
        )
        return avg

    async def _correct(self, row: OrderRow, info: OrderInfo, trigger: str) -> bool:
        """A final intent the gateway contradicts (a cancel that was never confirmed, an order
        marked lost that the gateway did get): the journal's mirror takes the gateway's state,
        and the correction is journaled. Nothing is sent."""
        state = row.state
        same_status = state.status.strip().lower() == info.status.strip().lower()
        journal_filled = float(state.filled or 0.0)
        if same_status and abs(journal_filled - info.filled) < 1e-9:
            return False
        coid = row.intent.client_order_id
        await self._record_gateway_status(
            coid,
            info,
            {
                "reconciliation": trigger,
                "corrected_from": state.status,
                "journal_filled": journal_filled,
            },
        )
        await self._journal.record_event(
            "reconciliation_corrected",
            {
                "client_order_id": coid,
                "journal_status": state.status,
                "journal_filled": journal_filled,
                "gateway_status": info.status,
                "gateway_filled": info.filled,
                "trigger": trigger,
            },
        )
        _log.warning(
            "journal_state_corrected",
            client_order_id=coid,
            journal_status=state.status,
            gateway_status=info.status,
            gateway_filled=info.filled,
        )
        return True

    async def _settle(self, row: OrderRow, info: OrderInfo | None, trigger: str) -> ResolvedIntent:
        intent = row.intent
        coid = intent.client_order_id
        if info is None and self._mode is ExecutionMode.DRY_RUN:
            simulated = await self._simulated_fill(row, trigger)
            if simulated is not None:
                return simulated
        if info is None:
            if self._mode is ExecutionMode.DRY_RUN:
                reason = (
                    f"dry-run intent without a simulated fill (found by reconciliation, "
                    f"{trigger}); the process stopped before finishing it; not resent"
                )
            else:
                reason = (
                    f"sent but unknown to the gateway (reconciliation, {trigger}): it never "
                    "arrived; marked lost, not resent"
                )
            await self._journal.record_status(
                coid, LOST_STATUS, row.state.filled, 0, None, detail={"reason": reason}
            )
            await self._journal.record_result(
                coid,
                OrderStatus.FAILED,
                fill_quantity=row.state.filled or 0,
                rejection_reason=reason,
                detail={"reconciliation": trigger},
            )
            _log.warning("intent_lost", client_order_id=coid, reason=reason)
            return ResolvedIntent(coid, "lost", reason)

        avg = await self._record_gateway_status(coid, info, {"reconciliation": trigger})
        if is_working_status(info.status):
            deadline = self._deadline(row)
            reason = (
                f"still working at the gateway ({info.status}, filled {info.filled:g}); "
                f"adopted: cancelled at its deadline ({deadline.isoformat(timespec='seconds')})"
            )
            return ResolvedIntent(coid, "working", reason)
        outcome, status = _final_outcome(info.status, info.filled, float(intent.quantity))
        reason = (
            f"{info.status} at the gateway while we were away: filled {info.filled:g} of "
            f"{intent.quantity}"
        )
        await self._journal.record_result(
            coid,
            status,
            broker_order_id=info.order_id or None,
            fill_price=avg if info.filled else None,
            fill_quantity=info.filled,
            rejection_reason=None if status is OrderStatus.FILLED else reason,
            detail={"reconciliation": trigger, "perm_id": info.perm_id},
        )
        if intent.is_closing and info.filled > 0 and intent.closure_reason:
            await self._journal.record_closure(
                ClosureReason(intent.closure_reason),
                symbol=intent.symbol,
                contract_key=intent.contract_key,
                quantity=info.filled,
                client_order_id=coid,
                detail={"found_by": f"reconciliation ({trigger})", "status": info.status},
            )
        return ResolvedIntent(coid, outcome, reason)

    async def _simulated_fill(self, row: OrderRow, trigger: str) -> ResolvedIntent | None:
        """A dry-run intent whose simulated fill was committed before the process stopped:
        the fill, cash and positions show it, so it is SIMULATED, not lost."""
        journal = self._journal.journal
        coid = row.intent.client_order_id
        fills = await self._journal.call(journal.fills, None, None, 10, coid)
        if not fills:
            return None
        quantity = sum(f.quantity for f in fills)
        price = fills[-1].price
        reason = (
            f"dry-run intent whose simulated fill was committed (found by reconciliation, "
            f"{trigger}): settled as simulated"
        )
        await self._journal.record_status(
            coid, "Filled", quantity, 0, price, detail={"reason": reason}
        )
        await self._journal.record_result(
            coid,
            OrderStatus.SIMULATED,
            fill_price=price,
            fill_quantity=quantity,
            detail={"reconciliation": trigger},
        )
        return ResolvedIntent(coid, "filled", reason)
