"""TradingOrchestrator: one trading cycle at a time (handoff 6.1, issue 8).

:meth:`TradingOrchestrator.run_cycle`, in this order:

1. ``risk.refresh()`` (the kill switch, another process's halt, the governors' roll-over);
   a new HALT raises an alert.
2. Not connected -> nothing can act: the cycle reports it and stops there.
3. Reconciliation (at start-up and after every reconnect) BEFORE anything else may send an
   order; while it has not succeeded there are no entries. Then the working orders in the
   exposure ledger are looked after: while HALTED our working **entries** are cancelled
   (working closes stay unless the operator asks); any of ours past its deadline (the intent
   time plus ``order_timeout``, also one adopted after a reconnect) is cancelled. Either is
   followed by a reconciliation, so that the journal has the gateway's word on how it ended.
4. The account (equity, funds -> the governors) and the positions (with their Strategy C flags)
   are refreshed; market data is fetched for every watched symbol (the gameplan's, else the
   configured ones, plus the underlyings of open positions).
5. Protection, whenever the market is open (closing orders need a market):
   - stale data for more than 5 minutes (``MarketData.is_stale``) ->
     ``close_all_positions("DATA_QUARANTINE")`` and no entries this cycle;
   - a governor holding the state in REDUCING -> ``close_all_positions`` with
     ``DAILY_LOSS_LIMIT`` or ``WEEKLY_DRAWDOWN`` (from ``risk.governor_cause``);
   - every position with a Strategy C ``closure_trigger`` (3 DTE, the 40% emergency stop) is
     closed with that reason.
   Automatic closes take only what the bot opened: positions (or the part of one) that the
   journal's fills do not account for are foreign (a manual trade, another program), reported
   and left alone unless ``manage_foreign_positions`` is on.
   Emergency closes raise an alert. Outside regular hours a due closure is reported as
   deferred (a market order there would only rest until the open).
6. Entries, only when: the trading state is ACTIVE, connected, reconciled, the market open and
   more than ``no_entry_minutes_before_close`` minutes before the close (NYSE calendar, on the
   gateway's clock), no protective close this cycle, and the gameplan's strategy allows
   entries. Per symbol and strategy: the option chain (``gw.contracts.option_chain``) ->
   ``strategy.candidates`` -> a snapshot quote of each candidate (``gw.pipeline.fetch_quote``)
   -> ``strategy.prepare(chain view, equity)`` -> ``strategy.explain`` -> ``submit_order``
   (which always goes through the RiskManager and the journal).

Every cycle returns a :class:`CycleReport` (each action with its reason) and journals a compact
``cycle`` event; orders, risk decisions and closures are journaled by the layers that make them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from ibkr_trader.alerts import ALERT_DEGRADED, ALERT_HALT, AlertHook
from ibkr_trader.broker.connection import ConnectionState
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.clock import Clock, days_to_expiry, ny_date
from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.journal import JournalError
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import DEFAULT_NO_ENTRY_MINUTES, MarketHours
from ibkr_trader.models import Position, TradingState
from ibkr_trader.orchestrator.protection import (
    QUARANTINE_AFTER_SECONDS,
    Protection,
    ProtectionPolicy,
)
from ibkr_trader.orchestrator.report import (
    CycleAction,
    CycleReport,
    _short,
    market_data_dict,
    position_dict,
)
from ibkr_trader.orders.lifecycle import FILLED_RESULTS
from ibkr_trader.orders.reconcile import Reconciler, ReconciliationReport
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.risk.usage import governor_usage  # re-exported (moved for the light CLI)
from ibkr_trader.strategies.base import OptionChainView, OptionKey, OptionQuote, Strategy
from ibkr_trader.strategies.gameplan import DailyGameplan, GameplanLoad
from ibkr_trader.strategies.selection import SelectionConfig
from ibkr_trader.strategies.strategy_a import StrategyA
from ibkr_trader.strategies.strategy_b import StrategyB
from ibkr_trader.strategies.strategy_c import StrategyC

__all__ = [
    "QUARANTINE_AFTER_SECONDS",
    "CycleAction",
    "CycleReport",
    "OrchestratorRunner",
    "Protection",
    "ProtectionPolicy",
    "TradingOrchestrator",
    "build_strategy",
    "governor_usage",
    "market_data_dict",
    "position_dict",
]

_log = get_logger("ibkr_trader.orchestrator")
T = TypeVar("T")

EntryLimit = Literal["mid", "ask"]
_SUCCESS = FILLED_RESULTS  # one vocabulary: orders.lifecycle


def build_strategy(gameplan: DailyGameplan, clock: Clock, limits: RiskLimits) -> Strategy:
    """The gameplan's strategy, sized within the risk limits' contracts per order."""
    selection = SelectionConfig(max_contracts=max(1, min(limits.max_contracts_per_order, 10_000)))
    if gameplan.strategy == "A" and gameplan.allows_entries:
        return StrategyA(clock, selection=selection)
    if gameplan.strategy == "B" and gameplan.allows_entries:
        return StrategyB(clock, selection=selection)
    return StrategyC(reason="" if gameplan.strategy == "C" else "the gameplan names no symbols")


class TradingOrchestrator:
    """Drives the strategies through the gateway, one cycle at a time (module docstring)."""

    def __init__(
        self,
        gateway: IBKRGateway,
        strategies: Sequence[Strategy],
        *,
        risk: RiskManager | None = None,
        clock: Clock,
        symbols: Sequence[str] = ("SPY",),
        watch_symbols: Sequence[str] = (),
        gameplan: GameplanLoad | None = None,
        reconciler: Reconciler | None = None,
        alerts: AlertHook | None = None,
        market_hours: MarketHours | None = None,
        no_entry_minutes_before_close: float = DEFAULT_NO_ENTRY_MINUTES,
        entry_limit: EntryLimit = "mid",
        timeout: float = 30.0,
        order_timeout: float = 30.0,
        quarantine_after_seconds: float | None = None,
        manage_foreign_positions: bool = False,
        policy: ProtectionPolicy | None = None,
        rest_entries: bool = False,
    ) -> None:
        self.gateway = gateway
        # a limit entry not filled within order_timeout rests (DAY) instead of being
        # cancelled, and is looked after every cycle: the same for paper and dry-run
        self.rest_entries = bool(rest_entries)
        if rest_entries:
            gateway.executor.rest_entries = True
        self.manage_foreign_positions = bool(manage_foreign_positions)
        self.strategies = list(strategies)
        self.risk = risk or gateway.risk_manager
        self.clock = clock
        self.symbols = tuple(s.upper() for s in symbols)
        self.watch_symbols = tuple(s.upper() for s in watch_symbols)
        self.gameplan = gameplan
        self.reconciler = reconciler or Reconciler(
            gateway.connection,
            gateway.journal,
            self.risk,
            gateway.mode,
            clock,
            order_timeout=order_timeout,
        )
        if self.reconciler.venue_orders is None:
            self.reconciler.venue_orders = gateway.executor.venue_orders
        if self.reconciler.adopted_deadline is None:
            self.reconciler.adopted_deadline = gateway.executor.adopted_deadline
        self.alerts = alerts or AlertHook()
        if not self.alerts.has_sink:
            self.alerts.set_sink(gateway.journal.record_event)
        self.market_hours = market_hours or MarketHours(clock)
        self.no_entry_minutes_before_close = float(no_entry_minutes_before_close)
        self.entry_limit: EntryLimit = entry_limit
        self.timeout = float(timeout)
        self.order_timeout = float(order_timeout)
        self.protection = Protection(
            gateway,
            self.risk,
            self.alerts,
            send_block=self._send_block,
            order_timeout=self.order_timeout,
            market_hours=self.market_hours,
            quarantine_after_seconds=quarantine_after_seconds,
            manage_foreign_positions=self.manage_foreign_positions,
            policy=policy,
        )
        self.session_day = ny_date(clock.now())  # the day the gameplan was loaded for
        if gameplan is not None and gameplan.gameplan.session_date is not None:
            self.session_day = gameplan.gameplan.session_date
        self._journal_failing: str | None = None
        self._backfilled: dict[str, date] = {}  # symbol -> the session its bars cover
        self.needs_reconciliation = True
        self.reconcile_trigger = "start-up"
        self.last_reconciliation: ReconciliationReport | None = None
        self.cycles = 0
        self.last_report: CycleReport | None = None
        self._last_state = self.risk.trading_state
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        gateway.add_state_listener(self.on_connection_state)

    # ------------------------------------------------------------------ connection events

    def set_wake_event(self, event: asyncio.Event | None) -> None:
        """The runner's event, set on a reconnect so reconciliation does not wait a cycle."""
        self._wake = event

    def on_connection_state(self, state: ConnectionState) -> None:
        """Gateway listener: a drop arms the disconnect alert; a restore asks to reconcile."""
        if state is ConnectionState.DISCONNECTED:
            self.alerts.disconnected()
            self._spawn(
                self.gateway.journal.record_connection_event("disconnected", {"by": "gateway"})
            )
        elif state is ConnectionState.RESTORED:
            self.alerts.reconnected()
            self.needs_reconciliation = True
            self.reconcile_trigger = "reconnect"
            self._spawn(self.gateway.journal.record_connection_event("restored", {}))
            if self._wake is not None:
                self._wake.set()

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("orchestrator_task_failed", error=repr(task.exception()))

    async def aclose(self) -> None:
        """Wait for owned background writes (bounded) and the alerts."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        await self.alerts.aclose()

    # ------------------------------------------------------------------ the cycle

    def _strategy_names(self) -> str:
        return "+".join(s.context.strategy_id for s in self.strategies) or "none"

    def _watched(self, positions: Sequence[Position]) -> list[str]:
        wanted = list(self.symbols or self.watch_symbols)
        for p in positions:
            if p.symbol not in wanted:
                wanted.append(p.symbol)
        return wanted

    def _note_state(self, report: CycleReport) -> None:
        state = self.risk.trading_state
        if state is TradingState.HALTED and self._last_state is not TradingState.HALTED:
            cause = self.risk.state_cause
            self.alerts.fire(ALERT_HALT, f"trading HALTED: {cause}", {"cause": cause})
            report.add(CycleAction("alert", f"HALT: {cause}"))
        elif state is TradingState.REDUCING and self._last_state is not TradingState.REDUCING:
            cause = self.risk.state_cause
            self.alerts.fire(
                ALERT_DEGRADED, f"trading REDUCING (closes only): {cause}", {"cause": cause}
            )
            report.add(CycleAction("alert", f"REDUCING: {cause}"))
        self._last_state = state

    async def run_cycle(self) -> CycleReport:
        """One full cycle (module docstring). Never raises for a broker or journal failure:
        the failure is in the report and the next cycle tries again."""
        t0 = time.monotonic()
        self.cycles += 1
        report = CycleReport(
            cycle=self.cycles,
            started_at=self.clock.now(),
            mode=self.gateway.mode.value,
            strategy=self._strategy_names(),
            gameplan=self.gameplan.message if self.gameplan else "",
        )
        try:
            await self._cycle(report)
        except (BrokerError, JournalError, TimeoutError) as exc:
            report.errors.append(f"cycle stopped: {_short(exc)}")
            _log.error("cycle_failed", cycle=report.cycle, error=_short(exc))
        self._note_state(report)
        report.trading_state = self.risk.trading_state.value
        report.state_cause = self.risk.state_cause
        report.governor = self.risk.governor_cause()
        report.risk_status = self.risk.status()
        report.finished_at = self.clock.now()
        report.seconds = time.monotonic() - t0
        self.last_report = report
        await self._journal_cycle(report)
        report.trading_state = self.risk.trading_state.value  # a journal failure reduces
        report.state_cause = self.risk.state_cause
        return report

    async def _journal_cycle(self, report: CycleReport) -> None:
        failures = [e for e in report.errors if "journal" in e.lower()]
        try:
            await self.gateway.journal.record_event(
                "cycle",
                {
                    "cycle": report.cycle,
                    "trading_state": report.trading_state,
                    "entries_allowed": report.entries_allowed,
                    "entry_block": report.entry_block,
                    "actions": [a.to_dict() for a in report.actions],
                    "errors": report.errors,
                },
            )
        except (JournalError, RuntimeError, OSError) as exc:
            _log.error("cycle_not_journaled", error=_short(exc))
            failures.append(_short(exc))
        if failures:
            await self._journal_degraded(report, failures[-1])
        elif self._journal_failing is not None:
            self._journal_failing = None
            await self.protection.restore("journal")
            # what the journal missed meanwhile (a close's status and executions, its owed
            # intent now written) is taken from the gateway before the next order
            self.needs_reconciliation = True
            self.reconcile_trigger = "journal writable again"

    async def _journal_degraded(self, report: CycleReport, why: str) -> None:
        """The journal cannot be written (a full disk): REDUCING (closes still go out, no
        entry: an order that cannot be recorded is not opened) and an alert (item 7)."""
        self._journal_failing = why
        self._reduce(f"journal not writable: {why}")
        await self.protection.degrade(report, "journal", f"the journal cannot be written: {why}")
        self._note_state(report)

    def _reduce(self, cause: str) -> None:
        if self.risk.trading_state in (TradingState.HALTED, TradingState.REDUCING):
            return
        try:
            self.risk.set_trading_state(TradingState.REDUCING, cause, origin="protection")
        except (JournalError, OSError) as exc:  # the state is set in memory first
            _log.error("trading_state_not_journaled", error=_short(exc))

    async def _step(
        self, report: CycleReport, name: str, fn: Callable[[], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """Run one step of the cycle; its failure is reported (and alerted), never the end of
        the cycle: the next step runs (issue 14, item 2). ``(ok, value)``."""
        try:
            return True, await fn()
        except Exception as exc:  # a failed step never skips the next one
            _log.error("cycle_step_failed", step=name, error=_short(exc))
            report.errors.append(f"{name} failed: {_short(exc)}")
            if isinstance(exc, JournalError):
                await self._journal_degraded(report, _short(exc))
            else:
                await self.protection.degrade(
                    report, f"step:{name}", f"{name} failed: {_short(exc)}"
                )
            return False, None

    async def _reconcile(self, report: CycleReport) -> None:
        if self.reconcile_trigger == "reconnect":
            # the paper interlock again: the gateway may be back on another account (item 9)
            await self.gateway.verify_account()
        if self.reconcile_trigger == "start-up":
            # the dry-run venue reloads its resting orders first (paper's are at IB)
            for ref in await self.gateway.executor.restore_working():
                report.add(CycleAction("working", "restored from the journal", order_id=ref))
        rec = await self.reconciler.reconcile(self.reconcile_trigger, self.timeout)
        self.last_reconciliation = rec
        report.reconciliation = rec
        report.add(CycleAction("reconcile", rec.summary()))
        if rec.error is None:
            self.needs_reconciliation = False

    async def _market_data(
        self, report: CycleReport, positions: Sequence[Position]
    ) -> dict[str, MarketData]:
        data: dict[str, MarketData] = {}
        for symbol in self._watched(positions):
            try:
                md = await self.gateway.get_market_data(symbol, self.timeout)
            except (BrokerError, TimeoutError) as exc:
                report.errors.append(f"no market data for {symbol}: {_short(exc)}")
                continue
            data[symbol] = md
            report.market_data[symbol] = market_data_dict(md)
        return data

    async def _backfill(self, now: datetime, positions: Sequence[Position]) -> None:
        """The session's bars before the last hour, for the session VWAP (item 12): at
        start-up, a few one-hour requests per cycle until the session is covered."""
        session = self.market_hours.session(now)
        if session is None:
            return
        for symbol in self._watched(positions):
            if self._backfilled.get(symbol) == session.day:
                continue
            done = await self.gateway.pipeline.backfill_session(
                symbol, session.open, now, min(self.timeout, 30.0)
            )
            if done:
                self._backfilled[symbol] = session.day

    async def _check_session_day(self, report: CycleReport, now: datetime) -> None:
        """A gameplan is for one day: on a later New York date the loop trades strategy C
        (closures only) until it is restarted with that day's plan (item 8)."""
        today = ny_date(now)
        if today == self.session_day or not any(s.allows_entries for s in self.strategies):
            return
        why = (
            f"the gameplan is for {self.session_day.isoformat()}, today is {today.isoformat()}: "
            "strategy C (no entries) until restarted with today's gameplan"
        )
        self.strategies = [StrategyC(reason=why)]
        self.symbols = ()
        await self.protection.degrade(report, "gameplan:day", why)

    async def _cycle(self, report: CycleReport) -> None:
        await self._step(report, "risk refresh", self._refresh_risk)
        if self._journal_failing is not None:
            self._reduce(f"journal not writable: {self._journal_failing}")
        self._note_state(report)
        gw = self.gateway
        report.connected = gw.is_connected
        if not report.connected:
            report.entry_block = "not connected to the gateway"
            return

        if self.needs_reconciliation:
            await self._step(report, "reconciliation", lambda: self._reconcile(report))
            self._note_state(report)

        if not self.needs_reconciliation:
            await self._step(
                report, "working orders", lambda: self._look_after_working_orders(report)
            )

        await self._step(
            report, "account refresh", lambda: gw.refresh_account(min(self.timeout, 10.0))
        )
        self._note_state(report)

        clock_ok, server_now = await self._step(
            report,
            "gateway clock",
            lambda: gw.server_time(min(self.timeout, self.protection.policy.clock_timeout)),
        )
        if clock_ok and server_now is not None:
            now = server_now
            await self.protection.restore("step:gateway clock")
        else:  # protection goes on by our own (injected) clock; entries wait
            now = self.clock.now()
        report.market_open = self.market_hours.is_open(now)
        report.minutes_to_close = self.market_hours.minutes_to_close(now)
        await self._check_session_day(report, now)

        positions = await self._positions(report)
        if report.market_open:
            await self._step(report, "session backfill", lambda: self._backfill(now, positions))
        data = await self._market_data(report, positions)

        protect_ok, protected = await self._step(
            report,
            "protection",
            lambda: self.protection.protect(
                report, positions, data, now=now, watched=self._watched(positions)
            ),
        )
        if protected:
            positions = await self._positions(report)
        block = self._entry_block(report, now, bool(protected))
        if block is None and not clock_ok:
            block = "the gateway's clock did not answer: no entries this cycle"
        if block is None and not protect_ok:
            block = "the protective step failed: no entries this cycle"
        if block is None and self._journal_failing is not None:
            block = f"the journal cannot be written: no entries ({self._journal_failing})"
        report.entry_block = block
        report.entries_allowed = block is None
        if block is None:
            ok, entered = await self._step(
                report, "entries", lambda: self._entries(report, positions, data, now)
            )
            if ok and entered:
                positions = await self._positions(report)
        report.positions = positions

    async def _refresh_risk(self) -> None:
        self.risk.refresh()

    async def _look_after_working_orders(self, report: CycleReport) -> None:
        """HALT or REDUCING cancels our working entries; our orders past their deadline are
        cancelled.
        Either is followed by a reconciliation (the gateway's word on how each ended).
        First the executor's resting entries (``rest_entries``): re-priced, and finished when
        over (filled, expired at the close, cancelled on a HALT)."""
        await self._check_working(report)
        ledger = self.risk.exposure
        doomed: dict[str, str] = {}
        stopped = self.risk.entries_stopped()
        if stopped is not None:
            for order in ledger.working(ours=True, closing=False):
                if order.sent:
                    doomed[order.ref] = stopped
        for order in ledger.expired(self.clock.now()):
            doomed.setdefault(order.ref, "past its deadline (order_timeout)")
        if not doomed:
            return
        unknown_ids = await self._cancel(report, doomed)
        rec = await self.reconciler.reconcile("working orders cancelled", self.timeout)
        if rec.error is None and unknown_ids and self.risk.entries_stopped() is not None:
            # an order whose broker id we did not have yet (the send's answer was lost) is
            # known now that reconciliation adopted it: cancel it this cycle, not the next
            again = {
                ref: why
                for ref, why in unknown_ids.items()
                if (found := ledger.get(ref)) is not None and found.order_id
            }
            if again:
                await self._cancel(report, again)
                rec = await self.reconciler.reconcile("working orders cancelled", self.timeout)
        self.last_reconciliation = rec
        report.reconciliation = rec
        report.add(CycleAction("reconcile", rec.summary()))
        if rec.error is not None:
            self.needs_reconciliation = True
            self.reconcile_trigger = "after cancels"

    async def _cancel(self, report: CycleReport, doomed: dict[str, str]) -> dict[str, str]:
        """Cancel each of ``doomed`` (ref -> why); returns those whose broker order id was
        not known (not cancellable until a reconciliation has adopted them)."""
        ledger = self.risk.exposure
        connection = self.gateway.connection
        unknown_ids: dict[str, str] = {}
        for ref, why in doomed.items():
            found = ledger.get(ref)
            if found is None:
                continue
            order = found
            if not order.order_id:
                unknown_ids[ref] = why
            try:
                if order.client_id and order.client_id != connection.client_id:
                    raise BrokerError(
                        f"placed by client id {order.client_id}: only that client (or the "
                        "gateway's master client) can cancel it"
                    )
                handle = connection.adopt_order(
                    order.order_id, order.client_id or connection.client_id, order.perm_id
                )
                await connection.cancel_order(
                    handle if handle is not None else order.order_id,
                    timeout=min(self.timeout, 10.0),
                )
                text = f"cancelled {order.action} {order.remaining} {order.contract_key}: {why}"
                report.add(CycleAction("cancel", text, order.symbol, order_id=ref))
            except (BrokerError, TimeoutError) as exc:
                report.add(
                    CycleAction(
                        "error",
                        f"cancel of {ref} ({why}) failed: {_short(exc)}",
                        order.symbol,
                        order_id=ref,
                    )
                )
        return unknown_ids

    async def _check_working(self, report: CycleReport) -> None:
        executor = self.gateway.executor
        try:
            await executor.adopt_resting()
        except (JournalError, RuntimeError) as exc:
            report.errors.append(f"adopted working orders not taken over: {_short(exc)}")
        if not executor.resting:
            return
        try:
            ended = await executor.check_working(min(self.timeout, 10.0))
        except (BrokerError, TimeoutError) as exc:
            report.errors.append(f"working orders not checked: {_short(exc)}")
            return
        for result in ended:
            text = f"working order ended {result.status.value}"
            if result.fill_quantity:
                text += f": filled {result.fill_quantity} at {result.fill_price:g}"
            if result.rejection_reason:
                text += f"; {result.rejection_reason}"
            report.add(
                CycleAction(
                    "working",
                    text,
                    result.symbol,
                    status=result.status.value,
                    order_id=result.order_id,
                    detail={
                        "contract": result.contract_key,
                        "fill_price": result.fill_price,
                        "fill_quantity": result.fill_quantity,
                    },
                )
            )
        for ref in executor.resting:
            report.add(
                CycleAction("working", "still working (rests until the close)", order_id=ref)
            )

    def _send_block(self) -> str | None:
        """Why no order may be sent right now (a reconnect in this cycle: reconcile first)."""
        if not self.gateway.is_connected:
            return "not connected to the gateway"
        if self.needs_reconciliation:
            return "the connection was restored: reconciliation comes first (next cycle)"
        return None

    async def _positions(self, report: CycleReport) -> list[Position]:
        try:
            return await self.gateway.get_positions(min(self.timeout, 15.0))
        except (BrokerError, TimeoutError) as exc:
            report.errors.append(f"positions unavailable: {_short(exc)}")
            return list(report.positions)

    # ------------------------------------------------------------------ entries

    def _entry_block(self, report: CycleReport, now: datetime, protected: bool) -> str | None:
        state = self.risk.trading_state
        if state is not TradingState.ACTIVE:
            return f"trading state {state.value}: {self.risk.state_cause}"
        if not self.gateway.is_connected:
            return "not connected to the gateway"
        if self.needs_reconciliation:
            return "reconciliation has not succeeded yet"
        if not report.market_open:
            return "market closed (NYSE regular hours)"
        if not self.market_hours.entries_allowed(now, self.no_entry_minutes_before_close):
            return (
                f"within {self.no_entry_minutes_before_close:g} minutes of the close: "
                "no new entries"
            )
        if protected:
            return "protective closes this cycle: no entries"
        if not any(s.allows_entries for s in self.strategies):
            reasons = [getattr(s, "reason", "") for s in self.strategies]
            return next((r for r in reasons if r), "the strategy allows no entries")
        if not self.symbols:
            return "no symbols to trade"
        return None

    async def _entries(
        self,
        report: CycleReport,
        positions: list[Position],
        data: dict[str, MarketData],
        now: datetime,
    ) -> bool:
        entered = False
        for symbol in self.symbols:
            md = data.get(symbol)
            if md is None:
                report.add(CycleAction("no_entry", "no market data", symbol=symbol))
                continue
            working = [
                o
                for o in self.risk.exposure.working(ours=True, closing=False)
                if o.symbol.upper() == symbol and o.sent
            ]
            if working and any(s.allows_entries for s in self.strategies):
                # one entry at a time per symbol: a resting entry is already our exposure
                refs = ", ".join(o.ref for o in working)
                report.add(
                    CycleAction(
                        "no_entry", f"an entry is already working for {symbol} ({refs})", symbol
                    )
                )
                continue
            cooling = await self.protection.entry_block(symbol, now)
            if cooling is not None:
                report.add(CycleAction("no_entry", cooling, symbol=symbol))
                continue
            for strategy in self.strategies:
                if not strategy.allows_entries:
                    continue
                if await self._enter(report, strategy, md, positions):
                    entered = True
                    positions = await self._positions(report)
        return entered

    async def _enter(
        self,
        report: CycleReport,
        strategy: Strategy,
        md: MarketData,
        positions: Sequence[Position],
    ) -> bool:
        gw = self.gateway
        sid = strategy.context.strategy_id
        symbol = md.symbol
        try:
            chain = await gw.contracts.option_chain(symbol, self.timeout)
        except (BrokerError, TimeoutError) as exc:
            report.add(
                CycleAction("no_entry", f"no option chain: {_short(exc)}", symbol, strategy=sid)
            )
            return False
        view = OptionChainView(
            symbol=symbol,
            expirations=tuple(chain.expirations),
            strikes=tuple(chain.strikes),
            multiplier=chain.multiplier or 100,
        )
        wanted = strategy.candidates(md, view)
        quotes: dict[OptionKey, OptionQuote] = {}
        for contract in wanted:
            try:
                qualified = await gw.contracts.qualify_option_contract(
                    symbol, contract.expiry, contract.strike, contract.right, self.timeout
                )
                quote, _ = await gw.pipeline.fetch_quote(
                    qualified, self.timeout, server_check=False
                )
            except (BrokerError, TimeoutError) as exc:
                report.add(
                    CycleAction(
                        "no_entry",
                        f"no quote for {contract.key}: {_short(exc)}",
                        symbol,
                        strategy=sid,
                    )
                )
                continue
            quotes[(contract.expiry, contract.strike, contract.right)] = OptionQuote(
                bid=quote.bid, ask=quote.ask, min_tick=self.risk.limits.tick_size
            )
        equity = self.risk.equity if self.risk.equity is not None else math.nan
        limits = self.risk.limits  # the limits in force (a gameplan may have tightened them)
        strategy.prepare(
            view.with_quotes(quotes, as_of=self.clock.now()),
            equity,
            risk_cap=limits.max_risk_per_trade_pct,
            max_contracts=min(limits.max_contracts_per_order, limits.max_contracts_per_position),
        )
        decision = strategy.explain(md, positions)
        signal = decision.signal
        if signal is None:
            report.add(CycleAction("no_entry", decision.reason, symbol, strategy=sid))
            return False
        hold = self._send_block()
        if hold is None:
            key = f"{symbol}:{signal.expiry}:{signal.right.value}:{signal.strike:g}"
            hold = await self.protection.entry_block(symbol, self.clock.now(), key)
        if hold is not None:
            report.add(CycleAction("no_entry", f"{decision.reason}; {hold}", symbol, strategy=sid))
            return False
        if self.entry_limit == "ask":
            quote_seen = quotes.get((signal.expiry, signal.strike, signal.right.value))
            if quote_seen is not None and quote_seen.ask is not None:
                signal = signal.model_copy(update={"limit_price": quote_seen.ask})
        try:
            result = await gw.submit_order(
                signal, strategy.context, timeout=self.order_timeout, market_data=md
            )
        except (BrokerError, TimeoutError) as exc:
            report.add(
                CycleAction("error", f"{decision.reason}; submit failed: {_short(exc)}", symbol)
            )
            return False
        text = decision.reason
        if result.rejection_reason:
            text = f"{text}; {result.rejection_reason}"
        report.add(
            CycleAction(
                "entry",
                text,
                symbol,
                status=result.status.value,
                order_id=result.order_id,
                strategy=sid,
                detail={
                    "contract": result.contract_key,
                    "quantity": signal.quantity,
                    "limit": signal.limit_price,
                    "fill_price": result.fill_price,
                    "decision_id": (
                        result.risk_validation.decision_id if result.risk_validation else None
                    ),
                    "days_to_expiry": days_to_expiry(signal.expiry, self.clock.now()),
                },
            )
        )
        return result.status in _SUCCESS and bool(result.fill_quantity)


class OrchestratorRunner:
    """Runs cycles until stopped; owns the cycle task (clean SIGINT / SIGTERM shutdown).

    ``request_stop()`` (the first signal) lets the cycle in flight finish within
    ``grace_seconds``, then cancels it; a second request cancels at once. Orders already sent
    are journaled by the executor (its journal writes are shielded from cancellation), and
    the stop itself is journaled.
    """

    def __init__(
        self,
        orchestrator: TradingOrchestrator,
        *,
        interval: float = 60.0,
        once: bool = False,
        on_report: Callable[[CycleReport], None] | None = None,
        grace_seconds: float = 60.0,
        speed: float = 1.0,
    ) -> None:
        self.orchestrator = orchestrator
        self.interval = float(interval)  # seconds of the orchestrator's (market) clock
        # a rehearsal's clock may run faster than real time (``run --at ... --speed N``):
        # the loop then waits interval / speed real seconds, one interval of market time
        self.speed = float(speed) if math.isfinite(speed) and speed > 0 else 1.0
        self.once = once
        self.on_report = on_report
        self.grace_seconds = float(grace_seconds)
        self.reports: list[CycleReport] = []
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._stop_requests = 0
        self._cycle_task: asyncio.Task[CycleReport] | None = None
        self.stopped_by: str | None = None
        orchestrator.set_wake_event(self._wake)
        protection = orchestrator.protection  # the quarantine acts one cycle ahead of 5 min
        protection.policy = replace(protection.policy, cycle_seconds=self.interval)

    def request_stop(self, why: str = "signal") -> None:
        """Stop after the cycle in flight (a second request cancels it)."""
        self._stop_requests += 1
        self.stopped_by = self.stopped_by or why
        self._stop.set()
        self._wake.set()
        task = self._cycle_task
        if self._stop_requests > 1 and task is not None and not task.done():
            task.cancel()

    async def run(self) -> list[CycleReport]:
        """Cycle until ``once`` is done or a stop is requested; returns the reports."""
        orch = self.orchestrator
        journal = orch.gateway.journal
        cancelled = False
        try:
            while not self._stop.is_set():
                self._cycle_task = asyncio.get_running_loop().create_task(orch.run_cycle())
                report = await self._await_cycle(self._cycle_task)
                if report is None:
                    cancelled = True
                    break
                self.reports.append(report)
                if self.on_report is not None:
                    self.on_report(report)
                if self.once:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval / self.speed)
        finally:
            self._cycle_task = None
            with contextlib.suppress(JournalError, RuntimeError):
                await journal.record_event(
                    "shutdown" if self._stop.is_set() else "run_finished",
                    {
                        "cycles": len(self.reports),
                        "stopped_by": self.stopped_by,
                        "cycle_cancelled": cancelled,
                    },
                )
        return self.reports

    async def _await_cycle(self, task: asyncio.Task[CycleReport]) -> CycleReport | None:
        """The cycle's report; None if it was cancelled by a stop (or outlived the grace)."""
        stop_wait = asyncio.get_running_loop().create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                _log.warning("stop_requested_during_cycle", grace_seconds=self.grace_seconds)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait({task}, timeout=self.grace_seconds)
                if not task.done():
                    task.cancel()
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                _log.warning("cycle_cancelled_by_stop")
                return None
        finally:
            stop_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop_wait
