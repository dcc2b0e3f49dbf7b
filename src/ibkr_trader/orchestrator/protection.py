"""The protective layer: the data quarantine, the loss governors and the Strategy C closures.

Run by the orchestrator every cycle, before any entry. Each rule is decided here, once:

- **No usable data** (:class:`DataWatch`): a symbol whose data arrives stale, or does not
  arrive at all (a timeout, no entitlement, pacing), counts as stale from the time of its last
  usable data; when that reaches ``quarantine_after_seconds`` (5 minutes) less one cycle while
  the market is open (so the close is on the wire within 5 minutes of the last usable data),
  it quarantines: every position is closed (``DATA_QUARANTINE``) and entries stop.
- **The liquidation mark** (:func:`liquidation_mark`): the emergency stop acts on the freshest
  price there is, a snapshot of the contract taken this cycle, at the side a close would get:
  a long at its bid (no bid: worth about nothing), a short at its ask. Only when that snapshot
  fails is IB's portfolio mark used (it can be minutes old). No price at all: an alert, and the
  position is treated as due, because a 40% loss cannot be ruled out.
- **The 40% stop** (:func:`loss_reaches_stop`): a loss of exactly 40% is a stop (a tolerance of
  1e-9 absorbs float rounding).
- **The 3-DTE rule** (:func:`expiry_due`): 3 calendar days to expiry, OR fewer than
  ``dte_sessions`` + 1 trading sessions left before the expiry session (today's included while it
  is not over): a position always gets at least two full sessions in which to be closed, also
  when a holiday weekend comes before the expiry. Such a close does not go out in the first
  ``open_delay_seconds`` of a session (the opening print); an urgent one (the stop, the
  quarantine, a governor) does not wait. A position still open on its expiry day within
  ``late_expiry_minutes`` of the close is an alert.
- **HALTED** (the kill switch, the operator, the paper interlock) stops every order, closes
  included; every other cause restricts to REDUCING (closes allowed, no entries), see
  ``reconcile``.
- **Cool-down** (:meth:`Protection.entry_block`): after a closure (any reason, also a manual
  ``close`` from another process: it reads the journal) no entry on that symbol for
  ``cooldown_minutes``; a contract closed by the emergency stop stays out for the day.

Every degradation is an alert (``DEGRADED``) and a journal event (``degraded`` / ``restored``),
once per episode; a journal that cannot be written is logged and never stops a close.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from ibkr_trader.alerts import ALERT_DEGRADED, ALERT_EMERGENCY_CLOSE, ALERT_FOREIGN, AlertHook
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.broker.market_data import Quote
from ibkr_trader.clock import NY, ny_date
from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.integrations.position_manager import loss_reaches_stop
from ibkr_trader.journal import JournalError
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.models import ClosureReason, Position, TradingState
from ibkr_trader.orchestrator.report import CycleAction, CycleReport, _num, _short
from ibkr_trader.risk import RiskManager

__all__ = [
    "QUARANTINE_AFTER_SECONDS",
    "DataWatch",
    "Mark",
    "Protection",
    "ProtectionPolicy",
    "expiry_due",
    "liquidation_mark",
    "loss_reaches_stop",
]

_log = get_logger("ibkr_trader.orchestrator")

QUARANTINE_AFTER_SECONDS: Final = 300.0
_URGENT: Final = frozenset(
    {
        ClosureReason.EMERGENCY_STOP.value,
        ClosureReason.DATA_QUARANTINE.value,
        ClosureReason.DAILY_LOSS_LIMIT.value,
        ClosureReason.WEEKLY_DRAWDOWN.value,
    }
)


@dataclass(frozen=True, slots=True)
class ProtectionPolicy:
    """The protective layer's settings (README, Strategy C)."""

    quarantine_after_seconds: float = QUARANTINE_AFTER_SECONDS
    emergency_stop_pct: float = 0.40
    dte_days: int = 3
    dte_sessions: int = 2
    open_delay_seconds: float = 120.0
    late_expiry_minutes: float = 60.0
    cooldown_minutes: float = 30.0
    quote_timeout: float = 5.0
    clock_timeout: float = 1.0  # the gateway's clock: a trivial call; then our own clock
    cycle_seconds: float = 60.0  # the loop's interval (the runner sets it)

    @property
    def stale_after_seconds(self) -> float:
        """Missing/stale data quarantines once it is this old: 5 minutes less one cycle, so
        that the close is on the wire within 5 minutes of the last usable data."""
        return max(self.quarantine_after_seconds - self.cycle_seconds, 0.0)


# --------------------------------------------------------------------------- the mark


@dataclass(frozen=True, slots=True)
class Mark:
    """What a position would fetch if closed now, and where that figure comes from."""

    price: float  # per unit; NaN when unknown
    source: str  # bid | ask | no_bid | portfolio | unknown
    pnl_pct: float  # against the absolute cost basis; NaN when unknown

    @property
    def known(self) -> bool:
        return math.isfinite(self.pnl_pct)


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def liquidation_mark(position: Position, quote: Quote | None) -> Mark:
    """The conservative liquidation mark of a position (module docstring).

    ``quote`` is this cycle's snapshot of the contract (None: it failed)."""
    long = position.quantity > 0
    price = math.nan
    source = "unknown"
    if quote is not None:
        if long and _usable(quote.bid):
            price, source = float(quote.bid or 0.0), "bid"
        elif long and (_usable(quote.ask) or quote.bid is not None):
            price, source = 0.0, "no_bid"  # nobody buys it: worth about nothing
        elif not long and _usable(quote.ask):
            price, source = float(quote.ask or 0.0), "ask"
    if source == "unknown" and _usable(position.current_price):
        price, source = float(position.current_price), position.price_source or "portfolio"
    if source == "unknown":
        return Mark(math.nan, source, math.nan)
    mult = (
        max(1, int(position.contract.multiplier or 1)) if position.contract.sec_type != "STK" else 1
    )
    basis = abs(position.entry_price * position.quantity * mult)
    pnl = (price - position.entry_price) * position.quantity * mult
    return Mark(price, source, pnl / basis if basis > 0 else 0.0)


def sessions_before_expiry(hours: MarketHours, expiry: str, now: datetime) -> int | None:
    """Trading sessions left before the expiry session, today's counted while not over."""
    try:
        expiry_day = datetime.strptime(expiry[:8], "%Y%m%d").date()
    except ValueError:
        return None
    day = ny_date(now)
    count = 0
    while day < expiry_day and count < 30:
        session = hours.session(datetime(day.year, day.month, day.day, 12, tzinfo=NY))
        if session is not None and now < session.close:
            count += 1
        day += timedelta(days=1)
    return count


def expiry_due(
    hours: MarketHours, position: Position, now: datetime, policy: ProtectionPolicy
) -> bool:
    """The 3-DTE rule: calendar days OR trading sessions left (module docstring)."""
    contract = position.contract
    if not contract.is_option or not contract.expiry:
        return False
    if position.days_to_expiry is not None and position.days_to_expiry <= policy.dte_days:
        return True
    left = sessions_before_expiry(hours, contract.expiry, now)
    return left is not None and left <= policy.dte_sessions


# --------------------------------------------------------------------------- no data


class DataWatch:
    """How long each watched symbol has gone without usable data (module docstring)."""

    def __init__(self) -> None:
        self._since: dict[str, datetime] = {}

    def observe(
        self, symbol: str, md: MarketData | None, now: datetime, market_open: bool
    ) -> float:
        """Seconds since ``symbol``'s last usable data (0 while the market is closed)."""
        if not market_open:
            self._since[symbol] = now  # closed hours do not count
            return 0.0
        if md is not None and not md.is_stale:
            self._since[symbol] = now
            return 0.0
        since = self._since.setdefault(symbol, now)
        age = (now - since).total_seconds()
        if md is not None and math.isfinite(md.staleness_seconds):
            age = max(age, float(md.staleness_seconds))
        return age


# --------------------------------------------------------------------------- the layer


class Protection:
    """The quarantine, the governors and the Strategy C closures of one orchestrator."""

    def __init__(
        self,
        gateway: IBKRGateway,
        risk: RiskManager,
        alerts: AlertHook,
        *,
        send_block: Callable[[], str | None],
        order_timeout: float,
        market_hours: MarketHours,
        quarantine_after_seconds: float | None = None,
        manage_foreign_positions: bool = False,
        policy: ProtectionPolicy | None = None,
    ) -> None:
        self.gateway = gateway
        self.risk = risk
        self.alerts = alerts
        self._send_block = send_block
        self.order_timeout = float(order_timeout)
        self.market_hours = market_hours
        base = policy or ProtectionPolicy()
        if quarantine_after_seconds is not None:  # the keyword wins over the policy's value
            base = replace(base, quarantine_after_seconds=float(quarantine_after_seconds))
        self.policy = base
        self.manage_foreign_positions = bool(manage_foreign_positions)
        self.data_watch = DataWatch()
        self._degraded: dict[str, str] = {}
        self._foreign: dict[str, float] = {}  # contract key -> quantity alerted about
        self.marks: dict[str, Mark] = {}

    @property
    def quarantine_after_seconds(self) -> float:
        return self.policy.quarantine_after_seconds

    # ------------------------------------------------------------------ degradations

    async def _event(self, kind: str, detail: dict[str, Any]) -> None:
        try:
            await self.gateway.journal.record_event(kind, detail)
        except (JournalError, RuntimeError, OSError) as exc:
            _log.error("protection_event_not_journaled", kind=kind, error=_short(exc))

    async def degrade(
        self, report: CycleReport | None, key: str, message: str, **detail: Any
    ) -> None:
        """A degradation: an alert and a journal event once per episode; in the report always."""
        if report is not None:
            report.add(CycleAction("alert", f"DEGRADED: {message}", detail=dict(detail)))
        if key in self._degraded:
            return
        self._degraded[key] = message
        _log.error("degraded", key=key, message=message)
        self.alerts.fire(ALERT_DEGRADED, message, {"key": key, **detail})
        await self._event("degraded", {"key": key, "message": message, **detail})

    async def restore(self, key: str) -> None:
        """The end of a degradation episode (journaled)."""
        message = self._degraded.pop(key, None)
        if message is not None:
            await self._event("restored", {"key": key, "was": message})

    async def restore_prefix(self, prefix: str, keep: set[str]) -> None:
        for key in [k for k in self._degraded if k.startswith(prefix) and k not in keep]:
            await self.restore(key)

    @property
    def degraded(self) -> dict[str, str]:
        return dict(self._degraded)

    # ------------------------------------------------------------------ marks

    async def _quote(self, position: Position) -> Quote | None:
        gw = self.gateway
        timeout = self.policy.quote_timeout
        try:
            spec = position.contract
            if not spec.con_id:
                spec = await gw.contracts.qualify_option_contract(
                    spec.symbol, spec.expiry, spec.strike, spec.right, timeout
                )
            quote, _ = await gw.pipeline.fetch_quote(spec, timeout, server_check=False)
        except (BrokerError, TimeoutError, ValueError) as exc:
            _log.warning("liquidation_quote_failed", contract=position.contract.key, error=str(exc))
            return None
        return quote

    async def _marks(self, positions: Sequence[Position]) -> dict[str, Mark]:
        options = [p for p in positions if p.contract.is_option]
        quotes = await asyncio.gather(*(self._quote(p) for p in options))
        marks = {
            p.position_id: liquidation_mark(p, q) for p, q in zip(options, quotes, strict=True)
        }
        for p in positions:
            if p.position_id not in marks:
                marks[p.position_id] = liquidation_mark(p, None)
        return marks

    # ------------------------------------------------------------------ the decision

    async def _note_foreign(self, report: CycleReport, positions: list[Position]) -> None:
        """A position the bot did not open, wholly or in part (a manual trade added to one of
        ours): reported, journaled and alerted once (again when its foreign part changes);
        left alone unless ``manage_foreign_positions`` is on (closes take our part only)."""
        seen: dict[str, float] = {}
        for p in positions:
            key = p.contract.key
            foreign = p.quantity - self.risk.exposure.ours_quantity(key)
            if foreign == 0:
                continue
            seen[key] = foreign
            if self._foreign.get(key) == foreign:
                continue
            handled = (
                "managed (manage_foreign_positions is on)"
                if (self.manage_foreign_positions)
                else "left alone"
            )
            if foreign == p.quantity:
                message = f"{p.quantity:+g} {key}: a position the bot did not open, {handled}"
            else:
                ours = p.quantity - foreign
                message = (
                    f"{foreign:+g} of {p.quantity:+g} {key}: not opened by the bot, {handled}"
                    f" (ours: {ours:+g})"
                )
            detail = {"contract": key, "quantity": p.quantity, "foreign": foreign}
            report.add(CycleAction("foreign", message, symbol=p.symbol))
            self.alerts.fire(ALERT_FOREIGN, message, detail)
            await self._event("foreign_position", detail)
        if positions:  # an empty list may be a failed read: keep what was alerted about
            self._foreign = seen

    def _ours(self, p: Position) -> bool:
        return (
            self.manage_foreign_positions or self.risk.exposure.ours_quantity(p.contract.key) != 0
        )

    async def _due(
        self, report: CycleReport, positions: Sequence[Position], now: datetime
    ) -> list[tuple[Position, str, str]]:
        """(position, reason, why) for every position a Strategy C rule closes now."""
        marks = await self._marks(positions) if report.market_open else {}
        self.marks = marks
        due: list[tuple[Position, str, str]] = []
        unknown: set[str] = set()
        stop = self.policy.emergency_stop_pct
        for p in positions:
            mark = marks.get(p.position_id)
            why = ""
            reason: str | None = None
            if mark is not None and mark.known and loss_reaches_stop(mark.pnl_pct, stop):
                reason = ClosureReason.EMERGENCY_STOP.value
                why = f"{mark.pnl_pct:.1%} at the {mark.source} {mark.price:g}"
            elif p.closure_trigger == ClosureReason.EMERGENCY_STOP.value:
                reason, why = p.closure_trigger, f"{p.unrealized_pnl_pct:.1%}"
            elif mark is not None and not mark.known:
                key = f"price:{p.contract.key}"
                unknown.add(key)
                await self.degrade(
                    report,
                    key,
                    f"no price at all for {p.quantity:+g} {p.contract.key}: a "
                    f"{stop:.0%} loss cannot be ruled out, treated as due",
                    position_id=p.position_id,
                )
                reason, why = ClosureReason.EMERGENCY_STOP.value, "price unknown"
            elif p.closure_trigger == ClosureReason.DTE_RULE.value or expiry_due(
                self.market_hours, p, now, self.policy
            ):
                reason = ClosureReason.DTE_RULE.value
                why = f"{p.days_to_expiry} days to expiry"
            elif p.closure_trigger:
                reason = p.closure_trigger
            if reason is not None:
                due.append((p, reason, why))
            await self._late_expiry_check(report, p, now)
        await self.restore_prefix("price:", unknown)
        return due

    async def _late_expiry_check(self, report: CycleReport, p: Position, now: datetime) -> None:
        expiry = p.contract.expiry[:8] if p.contract.is_option else ""
        if not expiry or expiry != ny_date(now).strftime("%Y%m%d"):
            return
        left = self.market_hours.minutes_to_close(now)
        if left is None or left <= self.policy.late_expiry_minutes:
            when = f"{left:.0f} min to the close" if left is not None else "market closed"
            await self.degrade(
                report,
                f"expiry:{p.contract.key}",
                f"{p.quantity:+g} {p.contract.key} still open on its expiry day ({when}): "
                "no open is coming for it",
                position_id=p.position_id,
            )

    async def protect(
        self,
        report: CycleReport,
        positions: Sequence[Position],
        data: dict[str, MarketData],
        *,
        now: datetime,
        watched: Sequence[str] = (),
    ) -> bool:
        """The quarantine, the governors and the Strategy C closures. True if it closed."""
        state = self.risk.trading_state
        limit = self.policy.stale_after_seconds
        stale: list[tuple[str, float, str]] = []
        missing: set[str] = set()
        for symbol in dict.fromkeys([*watched, *data]):
            md = data.get(symbol)
            age = self.data_watch.observe(symbol, md, now, report.market_open)
            if md is None and report.market_open:
                missing.add(f"data:{symbol}")
                await self.degrade(
                    report,
                    f"data:{symbol}",
                    f"no usable market data for {symbol} ({age:.0f} s)",
                    symbol=symbol,
                )
            if age > limit or (limit > 0 and age >= limit):  # at the limit: this cycle
                stale.append((symbol, age, "missing" if md is None else "stale"))
        await self.restore_prefix("data:", missing)
        positions = [p for p in positions if p.quantity != 0]
        await self._note_foreign(report, positions)
        due_all = await self._due(report, positions, now)
        due: list[tuple[Position, str, str]] = []
        for p, reason, why in due_all:
            if self._ours(p):
                due.append((p, reason, why))
                continue
            report.add(
                CycleAction(
                    "foreign",
                    f"{reason} due on {p.quantity:+g} {p.contract.key}, a "
                    "position the bot did not open: left alone (manage_foreign_positions "
                    "is off)",
                    symbol=p.symbol,
                    detail={"position_id": p.position_id},
                )
            )
        if not report.market_open:
            for p, reason, _ in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{reason} due; market closed, closing at the open",
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
                    + ", ".join(f"{s} ({age:.0f} s, {kind})" for s, age, kind in stale),
                )
            )
        if state is TradingState.HALTED:
            for p, reason, _ in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{reason} due; trading HALTED ({self.risk.state_cause}): "
                        "no orders at all until resumed",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            return False
        open_positions = [p for p in positions if self._ours(p)]
        if stale:
            if open_positions:
                kinds = sorted({kind for _, _, kind in stale})
                await self._close_all(
                    report, ClosureReason.DATA_QUARANTINE, " and ".join(kinds) + " data"
                )
            return True
        governor = self.risk.governor_cause() if state is TradingState.REDUCING else None
        if governor is not None:
            closure = (
                ClosureReason.WEEKLY_DRAWDOWN
                if governor.startswith("WEEKLY")
                else ClosureReason.DAILY_LOSS_LIMIT
            )
            if open_positions:
                await self._close_all(report, closure, governor)
                return True
            return False
        return await self._close_due(report, due, now)

    async def _close_due(
        self, report: CycleReport, due: Sequence[tuple[Position, str, str]], now: datetime
    ) -> bool:
        closed = False
        session = self.market_hours.session(now)
        since_open = (now - session.open).total_seconds() if session is not None else math.inf
        for p, trigger, why in due:
            hold = self._send_block()
            if (
                hold is None
                and trigger not in _URGENT
                and since_open < self.policy.open_delay_seconds
            ):
                hold = (
                    f"waiting {self.policy.open_delay_seconds - since_open:.0f} s past the open "
                    "(not into the opening print)"
                )
            if hold is not None:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{trigger} due; {hold}",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
                continue
            try:
                result = await self.gateway.close_position(
                    p.position_id,
                    trigger,
                    self.order_timeout,
                    only_ours=not self.manage_foreign_positions,
                )
            except (BrokerError, TimeoutError, JournalError) as exc:
                report.add(
                    CycleAction(
                        "error",
                        f"closing {p.position_id} ({trigger}) failed: {_short(exc)}",
                        symbol=p.symbol,
                    )
                )
                continue
            closed = True
            text = f"{trigger} ({why})" if why else trigger
            report.add(self._close_action("close", p, text, result))
            if trigger == ClosureReason.EMERGENCY_STOP.value:
                self.alerts.fire(
                    ALERT_EMERGENCY_CLOSE,
                    f"EMERGENCY_STOP: {p.position_id} ({why}) -> {result.status.value}",
                    {"position_id": p.position_id, "status": result.status.value},
                )
        return closed

    def _close_action(
        self, kind: str, p: Position | None, reason: str, result: OrderResult
    ) -> CycleAction:
        detail: dict[str, Any] = {"fill_price": result.fill_price}
        if p is not None:
            mark = self.marks.get(p.position_id)
            detail.update(
                position_id=p.position_id,
                days_to_expiry=p.days_to_expiry,
                pnl_pct=_num(p.unrealized_pnl_pct),
                mark=_num(mark.price) if mark else None,
                mark_source=mark.source if mark else None,
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
        except (BrokerError, TimeoutError, JournalError) as exc:
            report.add(CycleAction("error", f"{reason.value} close-all failed: {_short(exc)}"))
            results = []
        for result in results:
            report.add(self._close_action("close_all", None, f"{reason.value}: {why}", result))
        statuses = [r.status.value for r in results]
        await self._event(
            "emergency_close", {"reason": reason.value, "why": why, "results": statuses}
        )
        self.alerts.fire(
            ALERT_EMERGENCY_CLOSE,
            f"{reason.value}: closing {len(results)} position(s) ({why}) -> {statuses}",
            {"reason": reason.value, "why": why, "results": statuses},
        )

    # ------------------------------------------------------------------ cool-down

    async def entry_block(self, symbol: str, now: datetime, contract_key: str = "") -> str | None:
        """Why no entry on ``symbol`` (or on ``contract_key``) now: the cool-down after a
        closure. Read from the journal, so a manual close by another process counts too.
        A journal that cannot be read blocks the entry (fail safe)."""
        journal = self.gateway.journal
        start_of_day = datetime.combine(ny_date(now), datetime.min.time(), tzinfo=NY)
        try:
            rows = await journal.call(
                journal.journal.closures, since=start_of_day, symbol=symbol, limit=500
            )
        except (JournalError, RuntimeError, OSError) as exc:
            return f"closures unreadable ({_short(exc)}): no entry"
        cooldown = timedelta(minutes=self.policy.cooldown_minutes)
        for row in rows:
            if (
                contract_key
                and row.contract_key == contract_key
                and row.reason == ClosureReason.EMERGENCY_STOP.value
            ):
                return f"{contract_key} was closed by the emergency stop today: out for the day"
            if now - row.at < cooldown:
                left = (cooldown - (now - row.at)).total_seconds() / 60
                return (
                    f"cool-down: {symbol} closed ({row.reason}) at "
                    f"{row.at.astimezone(NY):%H:%M}; {left:.0f} min left"
                )
        return None
