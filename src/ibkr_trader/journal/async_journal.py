"""An asyncio facade over :class:`Journal`: writes never stall the event loop.

A FULL-sync commit waits for an fsync (about a millisecond or more on a real disk), too long
to spend on the event loop thread. ``AsyncJournal`` runs every call on ONE dedicated worker
thread, so calls are executed in the order they were awaited/submitted, and shields them from
cancellation: a write that was submitted is written even if the awaiting task is cancelled.

:func:`tolerate_write_failures` (issue 14, item 7): inside it, a write that fails (a full disk)
is logged and collected instead of raised, so that a protective close still goes out and is
reported when the journal cannot record it. Only the closes use it; an entry never does.

What such a close could not record is **owed**, not forgotten: :meth:`AsyncJournal.owe_intent`
keeps the decision and the intent of a close sent without them, and the first journal call that
runs after the disk has room writes them first (in order, on the worker thread). Reconciliation
then finds the close by its orderRef and records its status and executions from the gateway,
as for any other order. Only a crash before that loses the debt (the log holds it:
``close_sent_without_journaled_intent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from ibkr_trader.clock import Clock
from ibkr_trader.journal.records import (
    Explanation,
    IntentResult,
    JournalError,
    Recorded,
    SimFillOutcome,
)
from ibkr_trader.journal.store import Journal
from ibkr_trader.logging import get_logger
from ibkr_trader.models import (
    ClosureReason,
    ContractSpec,
    ExecutionMode,
    OrderStatus,
    TradeRequest,
    TradingState,
    ValidationResult,
)

P = ParamSpec("P")
T = TypeVar("T")

_log = get_logger("ibkr_trader.journal")
_TOLERATE: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "ibkr_trader_journal_tolerate", default=None
)
#: what a tolerated failed write answers (a write not listed is raised even when tolerated)
_TOLERATED: dict[str, Any] = {
    "record_fill": Recorded(0, False),
    "record_commission": Recorded(0, False),
    "record_status": 0,
    "record_result": None,
    "record_closure": 0,
    "record_event": None,
    "record_connection_event": 0,
    "attach_broker_ids": None,
    "append_event": 0,
}


@contextlib.contextmanager
def tolerate_write_failures() -> Iterator[list[str]]:
    """Within the block (this task and the tasks it starts), failed writes are collected."""
    failures: list[str] = []
    token = _TOLERATE.set(failures)
    try:
        yield failures
    finally:
        _TOLERATE.reset(token)


@dataclass
class _Group:
    """A group commit's writes (see :meth:`AsyncJournal.group`)."""

    op: str
    writes: list[Callable[[], object]]
    fills: tuple[str, ...] = ()
    landed: list[Callable[[], None]] = field(default_factory=list)  # after its commit
    loop: asyncio.AbstractEventLoop | None = None


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def write_failures_tolerated() -> bool:
    return _TOLERATE.get() is not None


class AsyncJournal:
    """Async wrapper: every call runs on the journal's single worker thread, in order."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._closed = False
        # writes a full disk refused that must still be made (the closes'), oldest first
        self._owed: list[tuple[str, Callable[[], object]]] = []
        self._debt_reported: set[str] = set()
        self._queued: set[asyncio.Future[Any]] = set()  # submitted writes nobody awaits
        # group commits not yet run: the next worker job takes them all into ONE transaction
        # (the flush, or an awaited write such as an order's decision and intent)
        self._groups: list[_Group] = []
        self._groups_lock = threading.Lock()
        self._unlanded: dict[str, tuple[str, int]] = {}  # exec id -> (contract key, signed)
        # decision+intent writes waiting for the worker: the next one takes them all
        self._decisions: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        # reads that need not wait for this process's queued writes: a second, read-only
        # connection on its own thread (opened at first use)
        self._reader: Journal | None = None
        self._loop_reader: Journal | None = None  # read_now's (the event loop's thread)
        self._reader_pool: ThreadPoolExecutor | None = None

    @classmethod
    async def open(
        cls, path: Path | None, mode: ExecutionMode, clock: Clock | None = None, **kwargs: Any
    ) -> AsyncJournal:
        journal = await asyncio.to_thread(Journal.open, path, mode, clock, **kwargs)
        return cls(journal)

    @property
    def journal(self) -> Journal:
        """The synchronous journal (for reads, or for the RiskStateStore protocol)."""
        return self._journal

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the worker thread; cancellation does not undo it.
        It runs after every write queued before it (a read sees them)."""
        if self._closed:
            raise RuntimeError("AsyncJournal is closed")
        loop = asyncio.get_running_loop()
        job: Callable[[], T] = functools.partial(fn, *args, **kwargs)
        if self._owed:
            job = functools.partial(self._pay_then, job)
        future = loop.run_in_executor(self._executor, job)
        try:
            return await asyncio.shield(future)
        except JournalError as exc:
            failures = _TOLERATE.get()
            name = getattr(fn, "__name__", "")
            if failures is None or name not in _TOLERATED:
                raise
            failures.append(f"{name}: {exc}")
            _log.error("journal_write_failed_tolerated", op=name, error=str(exc))
            return cast(T, _TOLERATED[name])

    def read_now(self, fn: Callable[[Journal], T]) -> T:
        """``fn(journal)`` at once, on the caller's thread, through a read-only twin connection
        (``Journal.twin``): in WAL mode it never waits for the writer (no lock shared with the
        worker, no fsync), so a short indexed read costs microseconds on the event loop. It
        sees what is committed, not this process's queued writes."""
        if self._closed:
            raise RuntimeError("AsyncJournal is closed")
        if self._loop_reader is None:
            self._loop_reader = self._journal.twin()
        return fn(self._loop_reader)

    def submit(self, op: str, fn: Callable[[], object]) -> None:
        """Queue ``fn`` on the worker thread and return at once: a write the order path does
        not wait for. It runs in order with every other call (a later read sees it); a
        failure is logged (``journal_write_failed``), never raised. What it records is also
        at the gateway, so reconciliation records it again if the process dies first."""
        if self._closed:
            raise RuntimeError("AsyncJournal is closed")
        job: Callable[[], object] = fn
        if self._owed:
            job = functools.partial(self._pay_then, fn)
        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        self._queued.add(future)

        def done(f: asyncio.Future[Any]) -> None:
            self._queued.discard(f)
            if not f.cancelled() and f.exception() is not None:
                _log.error("journal_write_failed", op=op, error=repr(f.exception()))

        future.add_done_callback(done)

    def group(
        self,
        op: str,
        writes: Sequence[Callable[[], object]],
        *,
        fills: Mapping[str, tuple[str, int]] | None = None,
        landed: Sequence[Callable[[], None]] = (),
    ) -> None:
        """Several writes as ONE transaction, queued like :meth:`submit`: groups that queue
        up while the worker is busy share one commit (one fsync). ``fills`` (exec id ->
        contract key, signed quantity) are the executions the group journals: until they
        land, :meth:`our_net_positions` counts them. A write that fails (a full disk) is
        owed, like a close's intent: retried before the next journal call. ``landed`` run on the
        event loop once every write of the group is committed (not before its fsync)."""
        loop = asyncio.get_running_loop()
        with self._groups_lock:
            if fills:
                self._unlanded.update(fills)
            self._groups.append(_Group(op, list(writes), tuple(fills or ()), list(landed), loop))
            first = len(self._groups) == 1
        if first:  # one flush takes every group queued by the time it runs
            self.submit("group_commit", self._flush_groups)

    def _take_groups(self) -> list[_Group]:
        with self._groups_lock:
            groups, self._groups = self._groups, []
        return groups

    def _flush_groups(self) -> None:
        """On the worker: every queued group in one transaction; each write under its own
        savepoint (one that fails is undone alone, logged and owed; the rest commit)."""
        groups = self._take_groups()
        if not groups:
            return
        failed: dict[int, list[Callable[[], object]]] = {}

        def body() -> None:
            for index, group in enumerate(groups):
                for write in group.writes:
                    try:
                        write()
                    except Exception as exc:
                        _log.error("journal_write_failed", op=group.op, error=repr(exc))
                        failed.setdefault(index, []).append(write)

        try:
            self._journal.run_group("group_commit", body)
        except JournalError as exc:  # the commit itself failed: none of them was written
            _log.error("journal_write_failed", op="group_commit", error=repr(exc))
            failed = {index: list(group.writes) for index, group in enumerate(groups)}
        for index, group in enumerate(groups):
            if index in failed:
                self._owe_group(
                    _Group(group.op, failed[index], group.fills, group.landed, group.loop)
                )
            else:
                self._landed(group)

    def _owe_group(self, group: _Group) -> None:
        """On the worker: ``group``'s writes are retried, in order, before the next call."""

        def retry() -> object:
            while group.writes:
                group.writes[0]()  # raises while the journal still refuses it
                group.writes.pop(0)
            self._landed(group)
            return None

        self._owed.append((f"{group.op}:{','.join(group.fills) or 'writes'}", retry))

    def _landed(self, group: _Group) -> None:
        """On the worker, after the commit: the group's fills are the journal's now, and its
        callbacks run on the loop."""
        if group.fills:
            with self._groups_lock:
                for exec_id in group.fills:
                    self._unlanded.pop(exec_id, None)
        if group.loop is not None and not group.loop.is_closed():
            for callback in group.landed:
                group.loop.call_soon_threadsafe(callback)

    def _net_positions(self) -> dict[str, int]:
        """On the worker: our journaled net positions plus the fills not landed yet."""
        net = self._journal.our_net_positions()
        with self._groups_lock:
            pending = dict(self._unlanded)
        known = self._journal.known_exec_ids(list(pending)) if pending else set()
        for exec_id, (key, signed) in pending.items():
            if exec_id not in known:  # not journaled yet (a write of it may have landed)
                net[key] = net.get(key, 0) + signed
        return {key: qty for key, qty in net.items() if qty}

    async def our_net_positions(self) -> dict[str, int]:
        """Our part of each position: the journaled fills of our orders, and those of our
        fills still queued (or owed, on a full disk) - ours all the same."""
        return await self.call(self._net_positions)

    async def drain(self) -> None:
        """Wait until every submitted and grouped write has run."""
        if self._queued:
            await asyncio.gather(*list(self._queued), return_exceptions=True)

    # --- what a full disk refused ---------------------------------------------------------

    def owe_intent(
        self, request: TradeRequest, validation: ValidationResult, *, con_id: int = 0
    ) -> None:
        """A close went out without its decision and intent journaled (a full disk): write
        them at the first journal call that can (module docstring)."""

        def write() -> object:
            decision_id = validation.decision_id
            if decision_id is None:
                decision_id = self._journal.record_risk_decision(request, validation)
            return self._journal.record_intent(request, decision_id=decision_id, con_id=con_id)

        self._owed.append((request.client_order_id or "", write))

    @property
    def owed(self) -> list[str]:
        """Client order ids whose intent is still owed to the journal."""
        return [ref for ref, _ in self._owed]

    def _pay_then(self, job: Callable[[], T]) -> T:
        """On the worker thread: the owed writes first (while they succeed), then ``job``."""
        while self._owed:
            ref, write = self._owed[0]
            try:
                write()
            except JournalError as exc:
                if ref not in self._debt_reported:  # once per debt, not at every call
                    self._debt_reported.add(ref)
                    _log.error("journal_debt_not_paid", client_order_id=ref, error=str(exc))
                break
            except Exception as exc:  # not the disk: retrying would fail for ever (and block
                # every later call): dropped, loudly; reconciliation re-reads it from IB
                self._owed.pop(0)
                _log.error("journal_debt_dropped", client_order_id=ref, error=repr(exc))
                continue
            self._owed.pop(0)
            _log.warning("journal_debt_paid", client_order_id=ref)
        return job()

    async def aclose(self) -> None:
        """Finish every submitted write, then close the journal (idempotent)."""
        if self._closed:
            return
        await self.call(self._journal.close)
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, True)

    async def __aenter__(self) -> AsyncJournal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the write methods, async -------------------------------------------------------

    async def record_settlement(self, exec_id: str, **kwargs: Any) -> Recorded:
        return await self.call(self._journal.record_settlement, exec_id, **kwargs)

    async def record_risk_decision(self, request: TradeRequest, result: ValidationResult) -> int:
        return await self.call(self._journal.record_risk_decision, request, result)

    async def record_decision_and_intent(
        self, request: TradeRequest, result: ValidationResult, *, con_id: int = 0
    ) -> tuple[int, IntentResult]:
        """An approved order's decision and intent, durable before it is sent. Those that
        queue up while the worker is busy (a close-all's twenty closes) share ONE transaction,
        each under its own savepoint: one fsync for all, and one that fails fails alone."""
        if self._closed:
            raise RuntimeError("AsyncJournal is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, IntentResult]] = loop.create_future()
        job = functools.partial(
            self._journal.record_decision_and_intent, request, result, con_id=con_id
        )
        with self._groups_lock:
            self._decisions.append((job, future))
            first = len(self._decisions) == 1
        if first:  # after the tasks ready now (a close-all's others) have queued theirs
            loop.call_soon(self._submit_decisions, loop)
        return await asyncio.shield(future)

    def _submit_decisions(self, loop: asyncio.AbstractEventLoop) -> None:
        """The queued decisions to the worker; if that is impossible (the journal closed
        meanwhile), each fails at once instead of waiting for ever."""
        try:
            self.submit("record_decision_and_intent", functools.partial(self._decide_queued, loop))
        except Exception as exc:
            with self._groups_lock:
                queued, self._decisions = self._decisions, []
            for _job, future in queued:
                _settle(future, False, JournalError(f"decision not journaled: {exc}"))

    def _decide_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the worker: every queued decision+intent in one transaction."""
        with self._groups_lock:
            queued, self._decisions = self._decisions, []
        if not queued:
            return
        outcomes: list[tuple[bool, Any]] = []

        def body() -> None:
            for job, _future in queued:
                try:
                    outcomes.append((True, job()))
                except Exception as exc:  # its savepoint undone; the others go on
                    outcomes.append((False, exc))

        try:
            if len(queued) == 1:
                job, _future = queued[0]
                try:
                    outcomes.append((True, job()))
                except Exception as exc:
                    outcomes.append((False, exc))
            else:
                self._journal.run_group("record_decision_and_intent", body)
        except Exception as exc:  # the commit failed: none of them is durable
            outcomes = [(False, exc)] * len(queued)
        for (_job, future), (ok, value) in zip(queued, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, ok, value)

    async def record_intent(
        self,
        request: TradeRequest,
        *,
        decision_id: int | None,
        client_order_id: str | None = None,
        con_id: int = 0,
    ) -> IntentResult:
        return await self.call(
            self._journal.record_intent,
            request,
            decision_id=decision_id,
            client_order_id=client_order_id,
            con_id=con_id,
        )

    async def attach_broker_ids(
        self, client_order_id: str, broker_order_id: int | None, perm_id: int | None
    ) -> None:
        await self.call(self._journal.attach_broker_ids, client_order_id, broker_order_id, perm_id)

    async def record_status(
        self,
        client_order_id: str,
        status: str,
        filled: float | None = None,
        remaining: float | None = None,
        avg_price: float | None = None,
        *,
        error_code: int | None = None,
        error_text: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        return await self.call(
            self._journal.record_status,
            client_order_id,
            status,
            filled,
            remaining,
            avg_price,
            error_code=error_code,
            error_text=error_text,
            detail=detail,
        )

    async def record_fill(
        self,
        exec_id: str,
        *,
        client_order_id: str | None,
        symbol: str,
        contract_key: str,
        side: str,
        quantity: float,
        price: float,
        at: datetime | None = None,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> Recorded:
        return await self.call(
            self._journal.record_fill,
            exec_id,
            client_order_id=client_order_id,
            symbol=symbol,
            contract_key=contract_key,
            side=side,
            quantity=quantity,
            price=price,
            at=at,
            broker_order_id=broker_order_id,
            perm_id=perm_id,
        )

    async def record_commission(
        self,
        exec_id: str,
        commission: float,
        currency: str = "USD",
        realized_pnl: float | None = None,
    ) -> Recorded:
        return await self.call(
            self._journal.record_commission, exec_id, commission, currency, realized_pnl
        )

    async def record_result(
        self,
        client_order_id: str,
        status: OrderStatus | str,
        *,
        broker_order_id: int | None = None,
        fill_price: float | None = None,
        fill_quantity: float | None = None,
        rejection_reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        return await self.call(
            self._journal.record_result,
            client_order_id,
            status,
            broker_order_id=broker_order_id,
            fill_price=fill_price,
            fill_quantity=fill_quantity,
            rejection_reason=rejection_reason,
            detail=detail,
        )

    async def record_closure(
        self,
        reason: ClosureReason | str,
        *,
        symbol: str,
        contract_key: str,
        quantity: float,
        client_order_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        return await self.call(
            self._journal.record_closure,
            reason,
            symbol=symbol,
            contract_key=contract_key,
            quantity=quantity,
            client_order_id=client_order_id,
            detail=detail,
        )

    async def apply_simulated_fill(
        self,
        *,
        exec_id: str,
        client_order_id: str | None,
        contract: ContractSpec,
        action: str,
        quantity: int,
        price: float,
        commission: float = 0.0,
        at: datetime | None = None,
    ) -> SimFillOutcome:
        return await self.call(
            self._journal.apply_simulated_fill,
            exec_id=exec_id,
            client_order_id=client_order_id,
            contract=contract,
            action=action,
            quantity=quantity,
            price=price,
            commission=commission,
            at=at,
        )

    async def record_trading_state(self, state: TradingState, cause: str) -> None:
        await self.call(self._journal.record_trading_state, state, cause)

    async def record_event(self, kind: str, detail: dict[str, Any]) -> None:
        await self.call(self._journal.record_event, kind, detail)

    async def record_connection_event(self, kind: str, detail: dict[str, Any] | None = None) -> int:
        return await self.call(self._journal.record_connection_event, kind, detail)

    async def explain(self, client_order_id: str) -> Explanation | None:
        return await self.call(self._journal.explain, client_order_id)
