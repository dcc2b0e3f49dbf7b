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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from ibkr_trader.alerts import ALERT_EMERGENCY_CLOSE, ALERT_HALT, AlertHook
from ibkr_trader.broker.connection import ConnectionState
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.clock import Clock, days_to_expiry
from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.journal import JournalError
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import DEFAULT_NO_ENTRY_MINUTES, MarketHours
from ibkr_trader.models import ClosureReason, Position, TradingState
from ibkr_trader.orders.lifecycle import FILLED_RESULTS
from ibkr_trader.reconcile import Reconciler, ReconciliationReport
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.risk.usage import governor_usage  # re-exported (moved for the light CLI)
from ibkr_trader.strategies.base import OptionChainView, OptionKey, OptionQuote, Strategy
from ibkr_trader.strategies.gameplan import DailyGameplan, GameplanLoad
from ibkr_trader.strategies.selection import SelectionConfig
from ibkr_trader.strategies.strategy_a import StrategyA
from ibkr_trader.strategies.strategy_b import StrategyB
from ibkr_trader.strategies.strategy_c import StrategyC

__all__ = [
    "CycleAction",
    "CycleReport",
    "OrchestratorRunner",
    "TradingOrchestrator",
    "build_strategy",
    "governor_usage",
    "market_data_dict",
    "position_dict",
]

_log = get_logger("ibkr_trader.orchestrator")

QUARANTINE_AFTER_SECONDS: Final = 300.0
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


@dataclass(frozen=True, slots=True)
class CycleAction:
    """One thing the cycle did or decided not to do, with its reason."""

    kind: str  # entry | no_entry | close | close_all | deferred | reconcile | alert | error
    # | working (a resting entry looked after: filled, expired, cancelled, still working)
    # | cancel (a working order of ours cancelled: HALT, deadline) | foreign (left alone)
    reason: str
    symbol: str = ""
    status: str = ""
    order_id: str = ""
    strategy: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "symbol": self.symbol,
            "status": self.status,
            "order_id": self.order_id,
            "strategy": self.strategy,
            "detail": self.detail,
        }


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    cycle: int
    started_at: datetime
    mode: str
    strategy: str
    gameplan: str
    finished_at: datetime | None = None
    connected: bool = False
    trading_state: str = ""
    state_cause: str = ""
    governor: str | None = None
    market_open: bool = False
    minutes_to_close: float | None = None
    entries_allowed: bool = False
    entry_block: str | None = None
    reconciliation: ReconciliationReport | None = None
    market_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: list[Position] = field(default_factory=list)
    actions: list[CycleAction] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    risk_status: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, action: CycleAction) -> None:
        self.actions.append(action)

    @property
    def orders_sent(self) -> list[CycleAction]:
        return [a for a in self.actions if a.order_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "mode": self.mode,
            "strategy": self.strategy,
            "gameplan": self.gameplan,
            "connected": self.connected,
            "trading_state": self.trading_state,
            "state_cause": self.state_cause,
            "governor": self.governor,
            "market_open": self.market_open,
            "minutes_to_close": (
                round(self.minutes_to_close, 1) if self.minutes_to_close is not None else None
            ),
            "entries_allowed": self.entries_allowed,
            "entry_block": self.entry_block,
            "reconciliation": self.reconciliation.to_dict() if self.reconciliation else None,
            "market_data": self.market_data,
            "positions": [position_dict(p) for p in self.positions],
            "actions": [a.to_dict() for a in self.actions],
            "errors": list(self.errors),
            "risk": self.risk_status,
            "seconds": round(self.seconds, 3),
        }


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def position_dict(p: Position) -> dict[str, Any]:
    """A JSON-ready view of a position (no account id)."""
    return {
        "position_id": p.position_id,
        "symbol": p.symbol,
        "contract": p.contract.key,
        "quantity": p.quantity,
        "entry_price": _num(p.entry_price),
        "current_price": _num(p.current_price),
        "unrealized_pnl": _num(p.unrealized_pnl, 2),
        "unrealized_pnl_pct": _num(p.unrealized_pnl_pct),
        "days_to_expiry": p.days_to_expiry,
        "closure_trigger": p.closure_trigger,
        "price_source": p.price_source,
    }


def market_data_dict(md: MarketData) -> dict[str, Any]:
    return {
        "last": _num(md.last_price),
        "bid": _num(md.bid),
        "ask": _num(md.ask),
        "ema_fast": _num(md.ema_fast),
        "ema_slow": _num(md.ema_slow),
        "rsi": _num(md.rsi, 2),
        "vwap": _num(md.vwap),
        "bollinger_lower": _num(md.bollinger_lower),
        "bollinger_upper": _num(md.bollinger_upper),
        "is_stale": md.is_stale,
        "staleness_seconds": _num(md.staleness_seconds, 1),
        "quality": _num(md.data_quality_score, 2),
    }


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
        quarantine_after_seconds: float = QUARANTINE_AFTER_SECONDS,
        manage_foreign_positions: bool = False,
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
        self.alerts = alerts or AlertHook()
        if not self.alerts.has_sink:
            self.alerts.set_sink(gateway.journal.record_event)
        self.market_hours = market_hours or MarketHours(clock)
        self.no_entry_minutes_before_close = float(no_entry_minutes_before_close)
        self.entry_limit: EntryLimit = entry_limit
        self.timeout = float(timeout)
        self.order_timeout = float(order_timeout)
        self.quarantine_after_seconds = float(quarantine_after_seconds)
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
        return report

    async def _journal_cycle(self, report: CycleReport) -> None:
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
        except (JournalError, RuntimeError) as exc:
            _log.error("cycle_not_journaled", error=_short(exc))

    async def _cycle(self, report: CycleReport) -> None:
        self.risk.refresh()
        self._note_state(report)
        gw = self.gateway
        report.connected = gw.is_connected
        if not report.connected:
            report.entry_block = "not connected to the gateway"
            return

        if self.needs_reconciliation:
            if self.reconcile_trigger == "start-up":
                # the dry-run venue reloads its resting orders first (paper's are at IB)
                for ref in await gw.executor.restore_working():
                    report.add(CycleAction("working", "restored from the journal", order_id=ref))
            rec = await self.reconciler.reconcile(self.reconcile_trigger, self.timeout)
            self.last_reconciliation = rec
            report.reconciliation = rec
            report.add(CycleAction("reconcile", rec.summary()))
            if rec.error is None:
                self.needs_reconciliation = False
            self._note_state(report)

        if not self.needs_reconciliation:
            await self._look_after_working_orders(report)

        try:
            await gw.refresh_account(min(self.timeout, 10.0))
        except (BrokerError, TimeoutError) as exc:
            report.errors.append(f"account refresh failed: {_short(exc)}")
        self._note_state(report)

        now = await gw.server_time(min(self.timeout, 10.0))
        report.market_open = self.market_hours.is_open(now)
        report.minutes_to_close = self.market_hours.minutes_to_close(now)

        positions = await self._positions(report)
        data: dict[str, MarketData] = {}
        for symbol in self._watched(positions):
            try:
                md = await gw.get_market_data(symbol, self.timeout)
            except (BrokerError, TimeoutError) as exc:
                report.errors.append(f"no market data for {symbol}: {_short(exc)}")
                continue
            data[symbol] = md
            report.market_data[symbol] = market_data_dict(md)

        protected = await self._protect(report, positions, data)
        if protected:
            positions = await self._positions(report)
        block = self._entry_block(report, now, protected)
        report.entry_block = block
        report.entries_allowed = block is None
        if block is None:
            entered = await self._entries(report, positions, data)
            if entered:
                positions = await self._positions(report)
        report.positions = positions

    async def _look_after_working_orders(self, report: CycleReport) -> None:
        """HALT cancels our working entries; our orders past their deadline are cancelled.
        Either is followed by a reconciliation (the gateway's word on how each ended).
        First the executor's resting entries (``rest_entries``): re-priced, and finished when
        over (filled, expired at the close, cancelled on a HALT)."""
        await self._check_working(report)
        ledger = self.risk.exposure
        doomed: dict[str, str] = {}
        if self.risk.trading_state is TradingState.HALTED:
            for order in ledger.working(ours=True, closing=False):
                if order.sent:
                    doomed[order.ref] = f"trading HALTED ({self.risk.state_cause})"
        for order in ledger.expired(self.clock.now()):
            doomed.setdefault(order.ref, "past its deadline (order_timeout)")
        if not doomed:
            return
        connection = self.gateway.connection
        for ref, why in doomed.items():
            found = ledger.get(ref)
            if found is None:
                continue
            order = found
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
        rec = await self.reconciler.reconcile("working orders cancelled", self.timeout)
        self.last_reconciliation = rec
        report.reconciliation = rec
        report.add(CycleAction("reconcile", rec.summary()))
        if rec.error is not None:
            self.needs_reconciliation = True
            self.reconcile_trigger = "after cancels"

    async def _check_working(self, report: CycleReport) -> None:
        executor = self.gateway.executor
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

    async def _positions(self, report: CycleReport) -> list[Position]:
        try:
            return await self.gateway.get_positions(min(self.timeout, 15.0))
        except (BrokerError, TimeoutError) as exc:
            report.errors.append(f"positions unavailable: {_short(exc)}")
            return list(report.positions)

    # ------------------------------------------------------------------ protection

    async def _protect(
        self, report: CycleReport, positions: Sequence[Position], data: dict[str, MarketData]
    ) -> bool:
        """The quarantine, the governors and the Strategy C closures. True if it closed."""
        state = self.risk.trading_state
        stale = [
            s
            for s, md in data.items()
            if md.is_stale and md.staleness_seconds > self.quarantine_after_seconds
        ]
        governor = self.risk.governor_cause() if state is TradingState.REDUCING else None
        due = [p for p in positions if p.closure_trigger and p.quantity != 0]
        if not self.manage_foreign_positions:
            ledger = self.risk.exposure
            foreign = [p for p in due if ledger.ours_quantity(p.contract.key) == 0]
            for p in foreign:
                report.add(
                    CycleAction(
                        "foreign",
                        f"{p.closure_trigger} due on {p.quantity:+g} {p.contract.key}, a "
                        "position the bot did not open: left alone (manage_foreign_positions "
                        "is off)",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            due = [p for p in due if p not in foreign]
        if not report.market_open:
            for p in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{p.closure_trigger} due; market closed, closing at the open",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            return False
        if stale:
            report.add(
                CycleAction(
                    "quarantine",
                    "DATA_QUARANTINE: stale data for "
                    + ", ".join(f"{s} ({data[s].staleness_seconds:.0f} s)" for s in stale),
                )
            )
        if state is TradingState.HALTED:
            for p in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{p.closure_trigger} due; trading HALTED ({self.risk.state_cause}): "
                        "no orders at all until resumed",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            return False
        open_positions = [p for p in positions if p.quantity != 0]
        if not self.manage_foreign_positions:
            open_positions = [
                p for p in open_positions if self.risk.exposure.ours_quantity(p.contract.key) != 0
            ]
        if stale:
            if open_positions:
                await self._close_all(report, ClosureReason.DATA_QUARANTINE, "stale data")
            return True
        if governor is not None:
            reason = (
                ClosureReason.WEEKLY_DRAWDOWN
                if governor.startswith("WEEKLY")
                else ClosureReason.DAILY_LOSS_LIMIT
            )
            if open_positions:
                await self._close_all(report, reason, governor)
                return True
            return False
        closed = False
        for p in due:
            trigger = p.closure_trigger or ""
            hold = self._send_block()
            if hold is not None:
                report.add(CycleAction("deferred", f"{trigger} due; {hold}", symbol=p.symbol))
                continue
            try:
                result = await self.gateway.close_position(
                    p.position_id,
                    trigger,
                    self.order_timeout,
                    only_ours=not self.manage_foreign_positions,
                )
            except (BrokerError, TimeoutError) as exc:
                report.add(
                    CycleAction(
                        "error",
                        f"closing {p.position_id} ({trigger}) failed: {_short(exc)}",
                        symbol=p.symbol,
                    )
                )
                continue
            closed = True
            report.add(self._close_action("close", p, trigger, result))
            if trigger == ClosureReason.EMERGENCY_STOP.value:
                self.alerts.fire(
                    ALERT_EMERGENCY_CLOSE,
                    f"EMERGENCY_STOP: {p.position_id} at {p.unrealized_pnl_pct:.1%} "
                    f"-> {result.status.value}",
                    {"position_id": p.position_id, "status": result.status.value},
                )
        return closed

    def _close_action(
        self, kind: str, p: Position | None, reason: str, result: OrderResult
    ) -> CycleAction:
        detail: dict[str, Any] = {"fill_price": result.fill_price}
        if p is not None:
            detail.update(
                position_id=p.position_id,
                days_to_expiry=p.days_to_expiry,
                pnl_pct=_num(p.unrealized_pnl_pct),
            )
        text = reason if not result.rejection_reason else f"{reason}: {result.rejection_reason}"
        return CycleAction(
            kind,
            text,
            symbol=result.symbol or (p.symbol if p else ""),
            status=result.status.value,
            order_id=result.order_id,
            strategy="C",
            detail=detail,
        )

    def _send_block(self) -> str | None:
        """Why no order may be sent right now (a reconnect in this cycle: reconcile first)."""
        if not self.gateway.is_connected:
            return "not connected to the gateway"
        if self.needs_reconciliation:
            return "the connection was restored: reconciliation comes first (next cycle)"
        return None

    async def _close_all(self, report: CycleReport, reason: ClosureReason, why: str) -> None:
        _log.warning("close_all", reason=reason.value, why=why)
        hold = self._send_block()
        if hold is not None:
            report.add(CycleAction("deferred", f"{reason.value} ({why}) due; {hold}"))
            return
        try:
            results = await self.gateway.close_all_positions(
                reason.value,
                self.order_timeout * 2,
                only_ours=not self.manage_foreign_positions,
            )
        except (BrokerError, TimeoutError) as exc:
            report.add(CycleAction("error", f"{reason.value} close-all failed: {_short(exc)}"))
            results = []
        for result in results:
            report.add(self._close_action("close_all", None, f"{reason.value}: {why}", result))
        statuses = [r.status.value for r in results]
        await self.gateway.journal.record_event(
            "emergency_close",
            {"reason": reason.value, "why": why, "results": statuses},
        )
        self.alerts.fire(
            ALERT_EMERGENCY_CLOSE,
            f"{reason.value}: closing {len(results)} position(s) ({why}) -> {statuses}",
            {"reason": reason.value, "why": why, "results": statuses},
        )

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
        self, report: CycleReport, positions: list[Position], data: dict[str, MarketData]
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
    ) -> None:
        self.orchestrator = orchestrator
        self.interval = float(interval)
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
                    await asyncio.wait_for(self._wake.wait(), self.interval)
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
