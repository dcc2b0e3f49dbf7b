"""RiskManager: every order validated, every refusal explained, state that survives a restart.

The manager holds what the checks need (account values, synced positions, the trading state, the
governors' anchors), builds a frozen :class:`~ibkr_trader.risk.checks.RiskSnapshot`, runs every
check in :mod:`ibkr_trader.risk.checks` and folds the results into a frozen ValidationResult
that is journaled before it is returned.

Daily P&L is equity-based: net liquidation now against the first net liquidation seen on the New
York day (start-of-day equity). That includes realized and unrealized P&L and commissions with no
bookkeeping of our own to drift; deposits and withdrawals during the day would distort it.

What is persisted through the :class:`~ibkr_trader.risk.state.RiskStateStore` (keys of
``put_risk_state``): ``start_of_day_equity`` (as_of: NY date), ``week_high`` (as_of: the week's
Monday), ``daily_loss_tripped`` (as_of: NY date), ``weekly_drawdown_tripped`` (as_of: Monday),
``state_origin``, ``pre_halt_state``, ``pre_reconciliation_state``, and per contract
``open_date:<key>`` / ``day_trade_marked:<key>``; plus the trading state itself
(``record_trading_state``) and the day trades (``record_day_trade``). A new RiskManager on the
same store therefore makes the same decisions, and a restart never resets a governor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

from ibkr_trader.clock import Clock, ny_date
from ibkr_trader.logging import get_logger
from ibkr_trader.models import (
    AccountSnapshot,
    CheckResult,
    Position,
    TradeRequest,
    TradingState,
    ValidationResult,
)
from ibkr_trader.orders.exposure import ExposureLedger, WorkingOrder
from ibkr_trader.risk import killswitch
from ibkr_trader.risk.checks import (
    RiskSnapshot,
    contract_key,
    day_trades_remaining,
    entry_unit_price,
    is_closing,
    is_int,
    is_real,
    pdt_applies,
    pdt_window_start,
    risk_metrics,
    run_checks,
    signed_quantity,
)
from ibkr_trader.risk.config import RiskLimits
from ibkr_trader.risk.state import RiskStateStore

APPLIED_EXECS_KEPT: Final = 10_000  # exec ids remembered so that one moves the ledger once
_PDT_SPAN_DAYS: Final = 14  # calendar days that always hold the PDT window's five sessions

# Who put the trading state where it is (decides what may lift it automatically).
ORIGIN_OPERATOR: Final = "operator"
ORIGIN_GOVERNOR: Final = "governor"
ORIGIN_KILL_SWITCH: Final = "kill_switch"
ORIGIN_RECONCILIATION: Final = "reconciliation"
ORIGIN_EXTERNAL: Final = "external"  # adopted from the store (another process wrote it)
ORIGIN_SYSTEM: Final = "system"

K_SOD: Final = "start_of_day_equity"
K_WEEK_HIGH: Final = "week_high"
K_DAILY_TRIP: Final = "daily_loss_tripped"
K_WEEKLY_TRIP: Final = "weekly_drawdown_tripped"
K_ORIGIN: Final = "state_origin"
K_PRE_HALT: Final = "pre_halt_state"
K_PRE_RECON: Final = "pre_reconciliation_state"


def week_start(day: date) -> date:
    """The Monday of a date's week (the weekly governor's period)."""
    return day - timedelta(days=day.weekday())


def _as_float(value: float | str | None) -> float | None:
    try:
        result = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return result if result is not None and math.isfinite(result) else None


class RiskManager:
    """Pre-trade risk gate with a persisted trading state and governors."""

    def __init__(
        self,
        limits: RiskLimits,
        store: RiskStateStore,
        clock: Clock,
        kill_switch_path: Path | None = None,
        *,
        exposure: ExposureLedger | None = None,
    ) -> None:
        self._base_limits = limits
        # THE exposure ledger: positions plus working orders; every gate reads it
        self.exposure = exposure if exposure is not None else ExposureLedger()
        self._limits = limits
        self._hashed: tuple[RiskLimits, str] | None = None  # (limits, their hash): _limits_hash
        self._store = store
        self._reads_store: RiskStateStore | None = None  # see _reads
        self._clock = clock
        self._kill_switch_path = kill_switch_path
        self._log = get_logger("ibkr_trader.risk")

        self._equity: float | None = None
        self._available_funds: float | None = None
        self._ib_day_trades_remaining: int | None = None
        self._position_cost: dict[str, float] = {}
        self._last_intent: dict[str, tuple[str, int, date]] = {}  # key -> (open|close, sign, day)
        self._last_pdt_disagreement: tuple[date, int, int] | None = None

        last = store.last_trading_state()
        self._state, self._cause = (
            (TradingState(last[0]), last[1]) if last else (TradingState.ACTIVE, "initial state")
        )
        origin = store.get_risk_state(K_ORIGIN)
        self._origin = str(origin[0]) if origin and origin[0] else ORIGIN_OPERATOR
        self._unpersisted = False  # a store write failed: the store is behind this process
        # the day-trade bookkeeping a failed write (a full disk) could not store yet: kept
        # here, counted by every decision, written when the store takes writes again
        self._owed_state: dict[str, tuple[str | None, date]] = {}
        self._owed_day_trades: list[tuple[str, str, date]] = []  # (contract key, symbol, day)
        # writes_into(): the day-trade bookkeeping of an opening fill goes into the caller's
        # group commit; until it lands, reads of those keys are answered from here
        self._batch: list[Callable[[], object]] | None = None
        self._batch_landed: list[Callable[[], None]] | None = None
        self._pending_state: dict[str, tuple[str | None, date]] = {}
        self._applied_execs: OrderedDict[str, None] = OrderedDict()  # recent, bounded

        self._sod_equity, self._sod_date = self._load_float(K_SOD)
        self._week_high, self._week_start = self._load_float(K_WEEK_HIGH)
        self._daily_trip = self._load_trip(K_DAILY_TRIP)
        self._weekly_trip = self._load_trip(K_WEEKLY_TRIP)
        self.refresh()

    # ------------------------------------------------------------------ loading

    def _load_float(self, key: str) -> tuple[float | None, date | None]:
        rec = self._reads.get_risk_state(key)
        if rec is None:
            return None, None
        return _as_float(rec[0]), rec[1]

    def _load_trip(self, key: str) -> tuple[str, date] | None:
        rec = self._reads.get_risk_state(key)
        if rec is None or rec[1] is None or not rec[0]:
            return None
        return str(rec[0]), rec[1]

    # ------------------------------------------------------------------ properties

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @property
    def trading_state(self) -> TradingState:
        return self._state

    @property
    def state_cause(self) -> str:
        return self._cause

    @property
    def kill_switch_path(self) -> Path | None:
        return self._kill_switch_path

    @property
    def equity(self) -> float | None:
        return self._equity

    def governor_cause(self, today: date | None = None) -> str | None:
        """Why a governor keeps trading REDUCING today, or None."""
        day = today or ny_date(self._clock.now())
        if self._daily_trip is not None and self._daily_trip[1] == day:
            return self._daily_trip[0]
        if self._weekly_trip is not None and self._weekly_trip[1] == week_start(day):
            return self._weekly_trip[0]
        return None

    # ------------------------------------------------------------------ limits

    def apply_hard_limits(self, hard_limits: Mapping[str, Any]) -> RiskLimits:
        """Tighten the configured limits with a gameplan's hard limits (never loosen them).

        Always tightens from the limits the manager was built with, so one day's gameplan does
        not carry over to the next. Raises LimitLoosenError / RiskConfigError and keeps the
        current limits when a hard limit is invalid or would loosen one.
        """
        tightened = self._base_limits.tighten_with(hard_limits)
        self._limits = tightened
        self._store.record_event(
            "risk_limits_tightened",
            {"hard_limits": dict(hard_limits), "limits_hash": tightened.limits_hash()},
        )
        return tightened

    # ------------------------------------------------------------------ trading state

    def _write_state(self, state: TradingState, cause: str, origin: str) -> None:
        if state is self._state and origin == self._origin:
            return
        previous = self._state
        self._state, self._cause, self._origin = state, cause, origin
        # memory first: a store that cannot be written (a full disk) must not leave the
        # process less restricted than it decided to be (issue 14, item 7)
        if self._persist("record_trading_state", self._store.record_trading_state, state, cause):
            self._persist("put_risk_state", self._store.put_risk_state, K_ORIGIN, origin, None)
        # a restriction is worth a warning; the routine ACTIVE <-> RECONCILING cycle is not
        restrictive = state in (TradingState.HALTED, TradingState.REDUCING)
        log = self._log.warning if restrictive else self._log.info
        log(
            "trading_state_changed",
            previous=previous.value,
            state=state.value,
            cause=cause,
            origin=origin,
        )

    def _effective(self, target: TradingState, cause: str) -> tuple[TradingState, str, bool]:
        """Apply what overrides a requested state: the kill switch, then the governors."""
        if target is not TradingState.HALTED and self._kill_switch_engaged():
            return TradingState.HALTED, self._kill_switch_cause(), True
        if target is TradingState.ACTIVE:
            governor = self.governor_cause()
            if governor is not None:
                return TradingState.REDUCING, f"{governor} (still applies; {cause})", False
        return target, cause, False

    def set_trading_state(
        self, state: TradingState, cause: str, *, origin: str = ORIGIN_OPERATOR
    ) -> TradingState:
        """Set the trading state with its cause (journaled). ACTIVE yields to governors."""
        target, why, by_switch = self._effective(TradingState(state), cause)
        if by_switch:
            origin = ORIGIN_KILL_SWITCH
        elif target is TradingState.REDUCING and target is not TradingState(state):
            origin = ORIGIN_GOVERNOR
        if target is self._state and origin == self._origin:
            return self._state
        if target is not self._state:
            self._write_state(target, why, origin)
        else:  # same state, new owner: remember who owns it without a new journal row
            self._origin = origin
            self._store.put_risk_state(K_ORIGIN, origin, None)
        return self._state

    def halt(self, cause: str) -> TradingState:
        """Stop everything, closes included, until :meth:`resume`."""
        self._remember_prior(K_PRE_HALT)
        return self.set_trading_state(TradingState.HALTED, cause, origin=ORIGIN_OPERATOR)

    def resume(self, cause: str) -> TradingState:
        """Back to ACTIVE, unless a governor still applies (REDUCING) or the kill switch is on."""
        if self._kill_switch_engaged():
            self._store.record_event(
                "resume_refused", {"cause": cause, "why": self._kill_switch_cause()}
            )
            self._log.warning("resume_refused_kill_switch", cause=cause)
            return self.set_trading_state(
                TradingState.HALTED, self._kill_switch_cause(), origin=ORIGIN_KILL_SWITCH
            )
        return self.set_trading_state(TradingState.ACTIVE, cause, origin=ORIGIN_OPERATOR)

    def begin_reconciliation(self, cause: str = "reconciliation started") -> TradingState:
        """RECONCILING until :meth:`end_reconciliation` (a HALT stays a HALT)."""
        if self._state is TradingState.HALTED:
            self._store.record_event("reconciliation_while_halted", {"cause": cause})
            return self._state
        if self._state is not TradingState.RECONCILING:
            self._remember_prior(K_PRE_RECON)
        return self.set_trading_state(TradingState.RECONCILING, cause, origin=ORIGIN_RECONCILIATION)

    def end_reconciliation(self, cause: str = "reconciliation finished") -> TradingState:
        """Return to the state before reconciliation (re-evaluated against the governors)."""
        if self._state is not TradingState.RECONCILING:
            return self._state
        state, origin = self._recall_prior(K_PRE_RECON)
        return self.set_trading_state(state, cause, origin=origin)

    def _remember_prior(self, key: str) -> None:
        if self._state is TradingState.HALTED:
            return
        if key == K_PRE_RECON and self._state is TradingState.RECONCILING:
            return
        self._store.put_risk_state(key, f"{self._state.value}|{self._origin}", None)

    def _recall_prior(self, key: str) -> tuple[TradingState, str]:
        rec = self._reads.get_risk_state(key)
        if rec and isinstance(rec[0], str) and "|" in rec[0]:
            state_text, origin = rec[0].split("|", 1)
            try:
                state = TradingState(state_text)
            except ValueError:
                state = TradingState.ACTIVE
            if state is TradingState.REDUCING and origin == ORIGIN_GOVERNOR:
                return TradingState.ACTIVE, ORIGIN_SYSTEM  # governors re-apply if due
            if state is not TradingState.HALTED:
                return state, origin
        return TradingState.ACTIVE, ORIGIN_SYSTEM

    # ------------------------------------------------------------------ kill switch

    def _kill_switch_engaged(self) -> bool:
        path = self._kill_switch_path
        return path is not None and killswitch.is_engaged(path)

    def _kill_switch_cause(self) -> str:
        path = self._kill_switch_path
        if path is None:
            return "kill switch"
        return f"kill switch {path}: {killswitch.read_reason(path)}"

    def halt_requested(self) -> bool:
        """HALTED, or the kill-switch file is there (a stat, nothing written): an order
        waiting at the broker checks this while it waits."""
        return self._state is TradingState.HALTED or self._kill_switch_engaged()

    def entries_stopped(self) -> str | None:
        """Why an entry of ours still working must be cancelled now, or None: trading HALTED
        (or the kill switch is there), or REDUCING (closes only: a working entry that filled
        would add exposure). Every place that looks after working entries asks this."""
        if self.halt_requested():
            return f"trading HALTED ({self.state_cause})"
        if self._state is TradingState.REDUCING:
            return f"trading REDUCING, closes only ({self.state_cause})"
        return None

    def _limits_hash(self) -> str:
        """The limits' hash, computed once per limits object (they are frozen)."""
        hashed = self._hashed
        if hashed is None or hashed[0] is not self._limits:
            hashed = (self._limits, self._limits.limits_hash())
            self._hashed = hashed
        return hashed[1]

    @property
    def _reads(self) -> RiskStateStore:
        """Where the decisions read the store: a read-only twin connection of the journal
        (``Journal.twin``) where there is one, so that a decision on the event loop never waits
        on the journal's writer thread (a group commit's fsync) for a read; the store itself
        otherwise. It sees every committed write, this process's and any other's."""
        if self._reads_store is None:
            reads: RiskStateStore = self._store
            twin = getattr(self._store, "twin", None)
            if callable(twin):
                try:
                    reads = cast(RiskStateStore, twin())
                except Exception as exc:  # a journal that cannot be opened twice
                    self._log.warning("risk_reads_on_the_store", error=repr(exc))
            self._reads_store = reads
        return self._reads_store

    def refresh(self) -> TradingState:
        """Re-read the outside world: another process's state change, the kill-switch file, and
        the governors' day/week roll-over. Called on every decision; an orchestrator may call it
        every cycle so a kill switch halts even when no order is being validated."""
        today = ny_date(self._clock.now())
        last = self._reads.last_trading_state()
        if self._unpersisted:  # the store is behind this process: our state stands, re-written
            last = None
            self._unpersisted = False
            if self._persist(
                "record_trading_state", self._store.record_trading_state, self._state, self._cause
            ):
                self._persist(
                    "put_risk_state", self._store.put_risk_state, K_ORIGIN, self._origin, None
                )
        if last is not None and TradingState(last[0]) is not self._state:
            self._log.warning("trading_state_adopted", state=str(last[0]), cause=last[1])
            self._state, self._cause, self._origin = TradingState(last[0]), last[1], ORIGIN_EXTERNAL
        if self._kill_switch_engaged():
            if self._state is not TradingState.HALTED:
                self._remember_prior(K_PRE_HALT)
                self._write_state(
                    TradingState.HALTED, self._kill_switch_cause(), ORIGIN_KILL_SWITCH
                )
        elif self._state is TradingState.HALTED and self._origin == ORIGIN_KILL_SWITCH:
            state, origin = self._recall_prior(K_PRE_HALT)
            self.set_trading_state(state, "kill-switch file removed", origin=origin)
        self._apply_governors(today)
        return self._state

    # ------------------------------------------------------------------ governors

    def _apply_governors(self, today: date) -> None:
        cause = self.governor_cause(today)
        if cause is not None and self._state is TradingState.ACTIVE:
            self._write_state(TradingState.REDUCING, cause, ORIGIN_GOVERNOR)
        elif (
            cause is None
            and self._state is TradingState.REDUCING
            and self._origin == ORIGIN_GOVERNOR
        ):
            self._write_state(
                TradingState.ACTIVE, f"governor period over (New York date {today})", ORIGIN_SYSTEM
            )

    def _persist(self, op: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Write to the store; a failure is logged and remembered, never raised: the decision
        in memory stands (the orchestrator alerts on the journal)."""
        try:
            fn(*args)
        except Exception as exc:
            self._unpersisted = True
            self._log.error("risk_state_not_persisted", op=op, error=repr(exc))
            return False
        return True

    def _trip(self, key: str, cause: str, as_of: date, detail: dict[str, Any]) -> None:
        self._persist("put_risk_state", self._store.put_risk_state, key, cause, as_of)
        self._persist(
            "record_event",
            self._store.record_event,
            "governor_tripped",
            {"governor": key, "cause": cause, **detail},
        )
        self._log.warning("governor_tripped", governor=key, cause=cause)

    # ------------------------------------------------------------------ account and positions

    def update_account(self, snapshot: AccountSnapshot) -> None:
        """Feed account values; anchors start-of-day equity and the week's high; runs governors."""
        today = ny_date(self._clock.now())
        monday = week_start(today)
        equity = snapshot.net_liquidation
        if not is_real(equity) or float(equity) <= 0:
            self._equity = None
            self._store.record_event(
                "account_snapshot_rejected", {"net_liquidation": repr(equity), "why": "not > 0"}
            )
            self.refresh()
            return
        self._equity = float(equity)
        funds = snapshot.available_funds
        self._available_funds = float(funds) if is_real(funds) else None
        dtr = snapshot.day_trades_remaining
        self._ib_day_trades_remaining = (
            int(dtr) if dtr is not None and is_int(dtr) and int(dtr) >= 0 else None
        )

        if self._sod_date != today or self._sod_equity is None:
            self._sod_equity, self._sod_date = self._equity, today
            self._persist("put_risk_state", self._store.put_risk_state, K_SOD, self._equity, today)
            self._persist(
                "record_event",
                self._store.record_event,
                "start_of_day_equity",
                {"equity": self._equity, "date": today.isoformat()},
            )
        if self._week_start != monday or self._week_high is None:
            self._week_high, self._week_start = self._equity, monday
            self._persist(
                "put_risk_state", self._store.put_risk_state, K_WEEK_HIGH, self._equity, monday
            )
        elif self._equity > self._week_high:
            self._week_high = self._equity
            self._persist(
                "put_risk_state", self._store.put_risk_state, K_WEEK_HIGH, self._equity, monday
            )

        limits = self._limits
        assert self._sod_equity is not None and self._week_high is not None
        daily_pct = (self._equity - self._sod_equity) / self._sod_equity
        if daily_pct <= -limits.daily_loss_limit_pct and not (
            self._daily_trip and self._daily_trip[1] == today
        ):
            cause = (
                f"DAILY_LOSS_LIMIT: daily P&L {daily_pct:.2%} at or below "
                f"-{limits.daily_loss_limit_pct:.2%} of start-of-day equity "
                f"{self._sod_equity:.2f} (New York date {today})"
            )
            self._daily_trip = (cause, today)
            self._trip(K_DAILY_TRIP, cause, today, {"daily_pnl_pct": daily_pct})
        drawdown = (self._week_high - self._equity) / self._week_high
        if drawdown >= limits.weekly_drawdown_pct and not (
            self._weekly_trip and self._weekly_trip[1] == monday
        ):
            cause = (
                f"WEEKLY_DRAWDOWN: equity {drawdown:.2%} below the week's high "
                f"{self._week_high:.2f}, limit {limits.weekly_drawdown_pct:.2%} "
                f"(week of {monday})"
            )
            self._weekly_trip = (cause, monday)
            self._trip(K_WEEKLY_TRIP, cause, monday, {"drawdown_pct": drawdown})
        self.refresh()
        self._check_pdt_disagreement(today)

    async def sync_positions(self, positions: Sequence[Position]) -> None:
        """Replace the known positions with the broker's (or the simulated book's).

        Working orders stay in the exposure ledger: a close still working at the broker keeps
        its quantity reserved (a sync never frees it; only the order's end does)."""
        held: dict[str, int] = {}
        cost: dict[str, float] = {}
        for pos in positions:
            key = pos.contract.key
            qty = int(pos.quantity)
            held[key] = held.get(key, 0) + qty
            basis = abs(pos.cost_basis) if is_real(pos.cost_basis) else 0.0
            if basis == 0 and is_real(pos.entry_price):
                basis = abs(pos.entry_price * qty * max(1, pos.contract.multiplier))
            cost[key] = cost.get(key, 0.0) + basis
        self.exposure.sync_positions(held)
        positions_now = self.exposure.positions
        self._position_cost = {k: c for k, c in cost.items() if k in positions_now}

    def _committed_premium(self) -> float:
        return sum(c for k, c in self._position_cost.items() if self.exposure.position(k) > 0)

    # ------------------------------------------------------------------ day trades

    def on_fill(
        self,
        contract_key: str,
        symbol: str,
        signed_quantity: int,
        when: datetime,
        *,
        ref: str | None = None,
        exec_id: str | None = None,
    ) -> None:
        """Day-trade bookkeeping for one execution (signed: + bought, - sold); ``ref`` (our
        client order id) shrinks that order's working rest in the exposure ledger. An
        ``exec_id`` seen before is ignored: one execution moves the ledger once, whoever
        reports it (the executor at the fill, reconciliation from the gateway).

        An opening fill records the contract's New York open date; a reducing fill on that same
        date records one day trade (once per opening: partial fills of one exit count once).
        """
        if not is_int(signed_quantity) or int(signed_quantity) == 0:
            self._persist(
                "record_event",
                self._store.record_event,
                "fill_ignored",
                {"contract_key": contract_key, "quantity": repr(signed_quantity)},
            )
            return
        if exec_id:
            if exec_id in self._applied_execs:
                return
            self._applied_execs[exec_id] = None
            while len(self._applied_execs) > APPLIED_EXECS_KEPT:
                self._applied_execs.popitem(last=False)
        qty = int(signed_quantity)
        day = ny_date(when)
        sign = 1 if qty > 0 else -1
        held = self.exposure.position(contract_key)
        intent = self._last_intent.get(contract_key)
        if intent is not None and intent[1] == sign and intent[2] == day:
            kind = intent[0]
        else:
            kind = "close" if held != 0 and (held > 0) != (qty > 0) else "open"

        self.exposure.on_fill(ref, contract_key, qty)
        if held + qty == 0:
            self._position_cost.pop(contract_key, None)

        open_key, mark_key = f"open_date:{contract_key}", f"day_trade_marked:{contract_key}"
        self._pay_day_trades()
        if kind == "open":
            self._put_day_state(open_key, day.isoformat(), day)
            self._put_day_state(mark_key, None, day)
            return
        opened = self._day_state(open_key)
        if opened is None or opened[0] != day.isoformat():
            return
        marked = self._day_state(mark_key)
        if marked is not None and marked[0] == day.isoformat():
            return
        try:
            self._store.record_day_trade(contract_key, symbol, day)
        except Exception as exc:  # a full disk: the fill happened; PDT must still count it
            self._log.error("day_trade_not_journaled", contract_key=contract_key, error=repr(exc))
            self._owed_day_trades.append((contract_key, symbol, day))
        self._put_day_state(mark_key, day.isoformat(), day)
        self._persist(
            "record_event",
            self._store.record_event,
            "day_trade",
            {"contract_key": contract_key, "symbol": symbol, "date": day.isoformat()},
        )
        self._log.info("day_trade_recorded", contract_key=contract_key, date=day.isoformat())

    def _day_state(self, key: str) -> tuple[Any, date | None] | None:
        owed = self._owed_state.get(key)
        if owed is not None:
            return owed
        pending = self._pending_state.get(key)
        return pending if pending is not None else self._reads.get_risk_state(key)

    @contextlib.contextmanager
    def writes_into(
        self, batch: list[Callable[[], object]], landed: list[Callable[[], None]]
    ) -> Iterator[None]:
        """Inside the block, :meth:`on_fill`'s day-trade bookkeeping of an opening fill is
        appended to ``batch`` (the caller runs it in its group commit on the journal's
        worker thread) instead of being written on the event loop. Until it is committed
        (the caller runs ``landed`` then, on the loop), this process reads it from memory."""
        previous = self._batch, self._batch_landed
        self._batch, self._batch_landed = batch, landed
        try:
            yield
        finally:
            self._batch, self._batch_landed = previous

    def _put_day_state(self, key: str, value: str | None, as_of: date) -> None:
        """The day-trade bookkeeping: in the store, or owed to it (never raised: the fill
        happened, and a close must not be reported failed because a disk is full)."""
        if self._batch is not None and self._batch_landed is not None:
            entry = (value, as_of)
            self._pending_state[key] = entry
            self._batch.append(functools.partial(self._store.put_risk_state, key, value, as_of))
            self._batch_landed.append(functools.partial(self._landed, key, entry))
            return
        try:
            self._store.put_risk_state(key, value, as_of)
        except Exception as exc:
            self._log.error("risk_state_not_persisted", op="put_risk_state", error=repr(exc))
            self._owed_state[key] = (value, as_of)
        else:
            self._owed_state.pop(key, None)

    def _landed(self, key: str, entry: tuple[str | None, date]) -> None:
        """A batched day-state write is committed: the store answers for it again."""
        if self._pending_state.get(key) == entry:
            del self._pending_state[key]

    def _pay_day_trades(self) -> None:
        """Write what a full disk refused earlier, oldest first, while the store takes it."""
        while self._owed_day_trades:
            contract, symbol, day = self._owed_day_trades[0]
            try:
                self._store.record_day_trade(contract, symbol, day)
            except Exception:
                return
            self._owed_day_trades.pop(0)
        for key, (value, as_of) in list(self._owed_state.items()):
            try:
                self._store.put_risk_state(key, value, as_of)
            except Exception:
                return
            del self._owed_state[key]

    def day_trades_used(self, today: date | None = None) -> int:
        """Day trades in the rolling five-business-day window ending today (New York dates),
        those a full disk has not let us store yet included."""
        day = today or ny_date(self._clock.now())
        self._pay_day_trades()
        # five NYSE sessions never span more than 14 calendar days: the window's day trades
        # are among the last 14 days' (one read), and with none there the count is 0 without
        # the NYSE calendar (pandas, ~0.6 s)
        recent = self._reads.day_trades_between(day - timedelta(days=_PDT_SPAN_DAYS), day)
        if not recent and not self._owed_day_trades:
            return 0
        start = pdt_window_start(day)
        stored = sum(1 for _key, d in recent if start <= d)
        owed = sum(1 for _c, _s, d in self._owed_day_trades if start <= d <= day)
        return stored + owed

    def _check_pdt_disagreement(self, today: date) -> None:
        ib = self._ib_day_trades_remaining
        if ib is None or self._equity is None or self._equity >= self._limits.pdt_equity_threshold:
            return
        local = max(0, self._limits.pdt_max_day_trades - self.day_trades_used(today))
        if local == ib or self._last_pdt_disagreement == (today, local, ib):
            return
        self._last_pdt_disagreement = (today, local, ib)
        self._store.record_event(
            "pdt_disagreement",
            {
                "journal_remaining": local,
                "ib_remaining": ib,
                "used": min(local, ib),
                "date": today.isoformat(),
                "resolution": "stricter wins",
            },
        )
        self._log.warning("pdt_disagreement", journal_remaining=local, ib_remaining=ib)

    # ------------------------------------------------------------------ decisions

    def snapshot(self) -> RiskSnapshot:
        """What the checks would see now (also useful for a status view)."""
        today = ny_date(self._clock.now())
        return RiskSnapshot(
            limits=self._limits,
            today=today,
            trading_state=self._state,
            state_cause=self._cause,
            equity=self._equity,
            available_funds=self._available_funds,
            positions=self.exposure.positions,
            pending_close=self.exposure.closing_by_contract(),
            working_entries=self.exposure.entry_remaining(),
            working_entry_cost=self.exposure.working_entry_cost(),
            # PDT's reserve: only where PDT can apply (two reads per held contract)
            same_day_exits_reserved=(
                self._same_day_exits_reserved(today)
                if self._equity is None or self._equity < self._limits.pdt_equity_threshold
                else 0
            ),
            committed_premium=self._committed_premium(),
            day_trades_used=self.day_trades_used(today),
            ib_day_trades_remaining=self._ib_day_trades_remaining,
            start_of_day_equity=self._sod_equity if self._sod_date == today else None,
            week_high=self._week_high if self._week_start == week_start(today) else None,
        )

    async def validate_trade(self, request: TradeRequest) -> ValidationResult:
        """Run every check, journal the decision, return it with its decision_id.

        Never raises for a bad request: a malformed one is REJECTED with its reasons. If the
        decision cannot be journaled, the order is REJECTED (nothing unrecorded is approved).
        The order path uses :meth:`evaluate_trade` and journals the decision together with
        the order's intent (one transaction, off the event loop).
        """
        return self._journal(request, self.evaluate_trade(request))

    def evaluate_trade(self, request: TradeRequest) -> ValidationResult:
        """Every check, without journaling the decision (the caller journals it before
        anything is sent) and without counting the order: :meth:`note_approved` does, once
        the decision is durable or at once when the caller awaits it (so that two approvals
        in a row see each other). Never raises for a bad request."""
        if not isinstance(request, TradeRequest):
            return ValidationResult(
                approved=False,
                rejection_reasons=[f"not a TradeRequest: {type(request).__name__}"],
                limits_hash=self._limits_hash(),
                trading_state=self._state,
            )
        try:
            self.refresh()
            snap = self.snapshot()
            if not is_closing(request):
                self._check_pdt_disagreement(snap.today)
            checks = run_checks(request, snap)
            metrics = risk_metrics(request, snap)
            metrics["governor"] = self.governor_cause(snap.today)
            metrics["kill_switch_engaged"] = self._kill_switch_engaged()
        except Exception as exc:  # a store or clock failure: fail closed, with the reason
            self._log.error("risk_validation_error", error=repr(exc))
            checks = (
                CheckResult(
                    name="risk_manager",
                    passed=False,
                    reason=f"risk state unavailable: {type(exc).__name__}: {exc}",
                ),
            )
            metrics = {}
        reasons = [c.reason or f"{c.name} failed" for c in checks if not c.passed]
        return ValidationResult(
            approved=not reasons,
            rejection_reasons=reasons,
            risk_metrics=metrics,
            checks=checks,
            limits_hash=self._limits_hash(),
            trading_state=self._state,
        )

    def note_approved(self, request: TradeRequest) -> None:
        """An approved order counts in the exposure ledger (not yet sent) from now on."""
        self._note_intent(request)

    def withdraw_approved(self, request: TradeRequest) -> None:
        """An approved order that will not be sent (its decision could not be journaled)."""
        if request.client_order_id:
            self.exposure.finish(request.client_order_id)

    def _journal(self, request: Any, result: ValidationResult) -> ValidationResult:
        try:
            decision_id = self._store.record_risk_decision(request, result)
        except Exception as exc:
            self._log.error("risk_decision_not_journaled", error=repr(exc))
            if result.approved and isinstance(request, TradeRequest) and is_closing(request):
                # reducing risk must always be possible (issue 14, item 7): an approved close
                # goes out although its decision could not be journaled; the log has it
                self._note_intent(request)
                return result
            return dataclasses.replace(
                result,
                approved=False,
                rejection_reasons=[
                    *result.rejection_reasons,
                    f"decision could not be journaled: {type(exc).__name__}: {exc}",
                ],
            )
        if result.approved:
            self._note_intent(request)
        self._log.info(
            "risk_decision",
            decision_id=decision_id,
            approved=result.approved,
            reasons=result.rejection_reasons,
        )
        return dataclasses.replace(result, decision_id=decision_id)

    def _note_intent(self, request: TradeRequest) -> None:
        key = contract_key(request)
        signed = signed_quantity(request)
        if key is None or signed is None:
            return
        kind = "close" if is_closing(request) else "open"
        self._last_intent[key] = (kind, 1 if signed > 0 else -1, ny_date(self._clock.now()))
        ref = request.client_order_id or f"approved:{key}:{len(self.exposure.working())}"
        unit = entry_unit_price(request)
        self.exposure.add(
            WorkingOrder(
                ref=ref,
                contract_key=key,
                symbol=str(request.symbol),
                action=str(request.action),
                quantity=abs(signed),
                is_closing=kind == "close",
                ours=True,
                sent=False,
                local=True,
                unit_cost=(unit or 0.0) * max(1, int(request.multiplier or 1)),
                status="approved",
            )
        )

    def _same_day_exits_reserved(self, today: date) -> int:
        """Day trades that positions opened today may need to exit today (PDT): every held
        contract opened today not yet counted as a day trade, and every working entry on a
        contract not held (it would open today)."""
        held = self.exposure.positions
        reserved = 0
        for key in held:
            opened = self._day_state(f"open_date:{key}")
            if opened is None or opened[0] != today.isoformat():
                continue
            marked = self._day_state(f"day_trade_marked:{key}")
            if marked is not None and marked[0] == today.isoformat():
                continue
            reserved += 1
        reserved += sum(1 for key in self.exposure.entry_remaining() if key not in held)
        return reserved

    def status(self) -> dict[str, Any]:
        """A plain summary for status views (no secrets, no account id)."""
        snap = self.snapshot()
        return {
            "trading_state": self._state.value,
            "cause": self._cause,
            "origin": self._origin,
            "governor": self.governor_cause(snap.today),
            "kill_switch_engaged": self._kill_switch_engaged(),
            "equity": snap.equity,
            "start_of_day_equity": snap.start_of_day_equity,
            "week_high": snap.week_high,
            "day_trades_used": snap.day_trades_used,
            "day_trades_remaining": day_trades_remaining(snap) if pdt_applies(snap) else None,
            "open_positions": sum(1 for q in snap.positions.values() if q != 0),
            "working_orders": len(self.exposure.working()),
            "working_entries": dict(snap.working_entries),
            "foreign_positions": self.exposure.foreign_positions(),
            "limits_hash": self._limits_hash(),
        }
