"""PositionManager: positions, P&L, the Strategy C flags, and closes (handoff 3.4).

- PAPER: positions come from IB's portfolio (``marketPrice`` is IB's mark per unit); a row
  without a usable mark is priced by a snapshot of the contract. DRY_RUN: positions come from
  the journal's simulated book, priced by snapshots.
- P&L is measured against the ABSOLUTE cost basis with the contract multiplier (IB's
  ``averageCost`` for an option is per contract, price x 100), and is right in sign for
  short positions: ``unrealized = (price - avg) x quantity x multiplier`` (quantity signed)
  and ``pct = unrealized / |avg x quantity x multiplier|``.
- Days to expiry are counted in New York dates.
- Strategy C flags: 3 days to expiry or fewer -> ``3_DTE_RULE``; a loss of 40% or more ->
  ``EMERGENCY_STOP``, which takes precedence.
- Every close is a TradeRequest with ``is_closing=True`` that goes through the OrderExecutor,
  and so through the RiskManager's closing rules, the journal and the idempotency guard.
  ``close_all`` sends every close concurrently under ONE deadline and reports each result;
  a failure never stops the others.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.exceptions import BrokerError, BrokerTimeoutError
from ibkr_trader.clock import Clock, SystemClock, days_to_expiry, ny_date
from ibkr_trader.integrations.exceptions import GatewayError, PositionNotFoundError
from ibkr_trader.integrations.market_data_pipeline import MarketDataPipeline
from ibkr_trader.integrations.order_executor import OrderExecutor, OrderResult
from ibkr_trader.journal import AsyncJournal, JournalError, tolerate_write_failures
from ibkr_trader.logging import get_logger
from ibkr_trader.models import (
    ClosureReason,
    ContractSpec,
    ExecutionMode,
    OrderStatus,
    Position,
    TradeRequest,
)
from ibkr_trader.orders.lifecycle import FAILED_RESULTS, FILLED_RESULTS
from ibkr_trader.risk import RiskManager

__all__ = [
    "Position",
    "PositionManager",
    "build_position",
    "determine_closure_trigger",
    "loss_reaches_stop",
]

_log = get_logger("ibkr_trader.integrations.positions")

DTE_RULE_DAYS = 3
EMERGENCY_STOP_PCT = 0.40
_FINAL_FAILURES = FAILED_RESULTS  # one vocabulary: orders.lifecycle
#: float rounding must not let an exact 40% loss slip past the stop (issue 14, item 5)
STOP_TOLERANCE = 1e-9


def loss_reaches_stop(pnl_pct: float, stop_pct: float) -> bool:
    """True when a P&L fraction is a loss of ``stop_pct`` or more (an exact loss counts)."""
    return math.isfinite(pnl_pct) and pnl_pct <= -stop_pct + STOP_TOLERANCE


def determine_closure_trigger(should_close_3_dte: bool, should_close_emergency: bool) -> str | None:
    """Which Strategy C rule applies: the 40% emergency stop takes priority over 3 DTE."""
    if should_close_emergency:
        return ClosureReason.EMERGENCY_STOP.value
    if should_close_3_dte:
        return ClosureReason.DTE_RULE.value
    return None


def build_position(
    contract: ContractSpec,
    quantity: float,
    avg_price: float,
    current_price: float,
    now: datetime,
    *,
    price_source: str,
    opened_on: datetime | None = None,
    dte_rule_days: int = DTE_RULE_DAYS,
    emergency_stop_pct: float = EMERGENCY_STOP_PCT,
) -> Position:
    """A Position with P&L against the absolute cost basis and the Strategy C flags.

    ``avg_price`` and ``current_price`` are per unit (per share of the option). A price that is
    not a positive finite number gives NaN P&L and NO emergency flag from it: an unknown price
    must not read as a 100% loss.
    """
    qty = round(quantity)
    mult = max(1, int(contract.multiplier or 1)) if contract.sec_type != "STK" else 1
    cost_basis = abs(avg_price * qty * mult)
    # a long with no bid is worth about nothing: a real zero mark, not an unknown price
    price_ok = math.isfinite(current_price) and (
        current_price > 0 or (current_price == 0 and price_source == "no_bid")
    )
    if price_ok:
        unrealized = (current_price - avg_price) * qty * mult
        pct = unrealized / cost_basis if cost_basis > 0 else 0.0
    else:
        unrealized = math.nan
        pct = math.nan
    dte = days_to_expiry(contract.expiry, now) if contract.is_option and contract.expiry else None
    should_close_3_dte = dte is not None and dte <= dte_rule_days
    should_close_emergency = price_ok and loss_reaches_stop(pct, emergency_stop_pct)
    key = contract.con_id if contract.con_id else contract.key
    return Position(
        position_id=f"{contract.symbol}_{key}",
        symbol=contract.symbol,
        quantity=qty,
        entry_price=avg_price,
        current_price=current_price,
        unrealized_pnl=unrealized,
        unrealized_pnl_pct=pct,
        days_to_expiry=dte,
        contract=contract,
        should_close_3_dte=should_close_3_dte,
        should_close_emergency=should_close_emergency,
        closure_trigger=determine_closure_trigger(should_close_3_dte, should_close_emergency),
        cost_basis=cost_basis,
        price_source=price_source,
        opened_on=ny_date(opened_on) if opened_on is not None else None,
    )


class PositionManager:
    """Open positions with Strategy C closure logic (see the module docstring)."""

    def __init__(
        self,
        connection: IBKRConnection,
        contracts: ContractManager,
        risk_manager: RiskManager,
        executor: OrderExecutor,
        pipeline: MarketDataPipeline,
        journal: AsyncJournal,
        mode: ExecutionMode,
        *,
        account: str = "",
        clock: Clock | None = None,
        dte_rule_days: int = DTE_RULE_DAYS,
        emergency_stop_pct: float = EMERGENCY_STOP_PCT,
    ) -> None:
        self._connection = connection
        self._contracts = contracts
        self._risk_manager = risk_manager
        self._executor = executor
        self._pipeline = pipeline
        self._journal = journal
        self._mode = ExecutionMode(mode)
        self._account = account
        self._clock: Clock = clock or SystemClock()
        self._dte_rule_days = dte_rule_days
        self._emergency_stop_pct = emergency_stop_pct
        self._positions_cache: dict[str, Position] = {}
        self._last_sync: datetime | None = None
        self._needs_sync: set[str] = set()

    @property
    def last_sync(self) -> datetime | None:
        return self._last_sync

    def set_account(self, account: str) -> None:
        self._account = account

    def clear_cache(self) -> None:
        """Forget cached positions (on disconnect)."""
        self._positions_cache.clear()
        self._last_sync = None

    def cached(self) -> list[Position]:
        return list(self._positions_cache.values())

    # ------------------------------------------------------------------ reading

    async def get_all(self, timeout: float = 10.0) -> list[Position]:
        """Every open position with P&L, days to expiry and the Strategy C flags.

        On a timeout the cached positions are returned if there are any (logged); otherwise the
        timeout error is raised.
        """
        try:
            async with asyncio.timeout(timeout):
                if self._mode is ExecutionMode.DRY_RUN:
                    positions = await self._from_simulated_book(timeout)
                else:
                    positions = await self._from_portfolio(timeout)
        except TimeoutError as exc:
            _log.error("position_fetch_timeout", timeout=timeout)
            if self._positions_cache:
                _log.warning("returning_cached_positions", count=len(self._positions_cache))
                return list(self._positions_cache.values())
            if isinstance(exc, BrokerTimeoutError):
                raise
            raise BrokerTimeoutError(f"positions not fetched within {timeout:g}s") from None
        self._positions_cache = {p.position_id: p for p in positions}
        self._last_sync = self._clock.now()
        await self._risk_manager.sync_positions(positions)
        # our part of each position: what our journaled fills add up to (the rest is foreign)
        ours = await self._journal.our_net_positions()
        self._risk_manager.exposure.set_ours(ours)
        return positions

    def foreign_quantity(self, position: Position) -> int:
        """The part of a position the bot did not open (a manual trade, another program)."""
        return self._risk_manager.exposure.foreign_quantity(position.contract.key)

    async def _from_portfolio(self, timeout: float) -> list[Position]:
        items = await self._connection.get_portfolio(timeout)
        now = self._clock.now()
        rows = [
            item
            for item in items
            if round(item.quantity) != 0 and (not self._account or item.account == self._account)
        ]
        prices = await asyncio.gather(
            *(self._mark(item.contract, item.market_price, timeout, item.quantity) for item in rows)
        )
        positions: list[Position] = []
        for item, (price, source) in zip(rows, prices, strict=True):
            mult = max(1, int(item.contract.multiplier or 1)) if item.contract.is_option else 1
            avg_per_unit = item.avg_cost / mult  # IB: per contract for options
            positions.append(
                build_position(
                    item.contract,
                    item.quantity,
                    avg_per_unit,
                    price,
                    now,
                    price_source=source,
                    dte_rule_days=self._dte_rule_days,
                    emergency_stop_pct=self._emergency_stop_pct,
                )
            )
        return positions

    async def _from_simulated_book(self, timeout: float) -> list[Position]:
        book = await self._journal.call(self._journal.journal.simulated_positions)
        now = self._clock.now()
        marks = await asyncio.gather(
            *(
                self._mark(row.contract, math.nan, timeout, row.quantity)
                for row in book
                if row.quantity
            )
        )
        positions: list[Position] = []
        for row, (price, source) in zip((r for r in book if r.quantity), marks, strict=True):
            positions.append(
                build_position(
                    row.contract,
                    row.quantity,
                    row.avg_price,
                    price,
                    now,
                    price_source=source,
                    opened_on=row.opened_at,
                    dte_rule_days=self._dte_rule_days,
                    emergency_stop_pct=self._emergency_stop_pct,
                )
            )
        return positions

    async def _mark(
        self, contract: ContractSpec, ib_mark: float, timeout: float, quantity: float = 1.0
    ) -> tuple[float, str]:
        """IB's portfolio mark when usable, else the liquidation side of a fresh snapshot."""
        if math.isfinite(ib_mark) and ib_mark > 0:
            return ib_mark, "portfolio"
        return await self._get_current_price(contract, timeout, quantity)

    async def _get_current_price(
        self, contract: ContractSpec, timeout: float, quantity: float = 1.0
    ) -> tuple[float, str]:
        """What a close would get (never the handoff's 0.0 placeholder): a long at its bid (no
        bid but an ask: 0.0, ``no_bid``), a short at its ask; NaN if there is no such price.
        Never the mid, the last trade or yesterday's close (issue 14, item 3)."""
        try:
            spec = contract
            if not spec.con_id:
                spec = await self._qualify(contract, timeout)
            quote, _quality = await self._pipeline.fetch_quote(spec, timeout, server_check=False)
        except (BrokerError, TimeoutError) as exc:
            _log.warning("position_price_unavailable", contract=contract.key, error=str(exc))
            return math.nan, "unavailable"
        side = quote.bid if quantity > 0 else quote.ask
        if side is not None and math.isfinite(side) and side > 0:
            return float(side), "snapshot"
        if quantity > 0 and contract.is_option and quote.ask is not None and quote.ask > 0:
            return 0.0, "no_bid"
        return math.nan, "unavailable"

    async def _qualify(self, contract: ContractSpec, timeout: float) -> ContractSpec:
        contracts = self._contracts
        if contract.sec_type == "STK":
            return await contracts.qualify_stock(contract.symbol, timeout)
        return await contracts.qualify_option_contract(
            contract.symbol, contract.expiry, contract.strike, contract.right, timeout
        )

    async def check_strategy_c_closures(self, timeout: float = 10.0) -> list[Position]:
        """Positions that trigger a Strategy C rule (called every cycle by the orchestrator)."""
        positions = await self.get_all(timeout)
        return [p for p in positions if p.closure_trigger is not None]

    # ------------------------------------------------------------------ closing

    async def close(
        self, position_id: str, reason: str, timeout: float = 30.0, *, only_ours: bool = False
    ) -> OrderResult:
        """Close one position through the RiskManager's closing rules; journaled with reason.

        The quantity is the position minus the closes already working at the broker (never
        more: a partly filled close still working is not closed again). ``only_ours`` (the
        automatic closes, unless ``manage_foreign_positions``): at most our own part of it.

        Raises PositionNotFoundError for an id that is not open, GatewayError for an unknown
        reason. Every other failure is an OrderResult (FAILED, TIMEOUT, ...).
        """
        started = time.monotonic()
        try:
            closure = ClosureReason(reason)
        except ValueError:
            raise GatewayError(
                f"unknown closure reason {reason!r}; one of "
                + ", ".join(r.value for r in ClosureReason)
            ) from None
        position = self._positions_cache.get(position_id)
        if position is None or position_id in self._needs_sync:
            # after a failed close the RiskManager still reserves its quantity until the next
            # sync: the broker's positions are the truth for a retry (get_all syncs them)
            await self.get_all(timeout)
            position = self._positions_cache.get(position_id)
        if position is None or position.quantity == 0:
            raise PositionNotFoundError(f"Position not found: {position_id}")
        remaining = max(timeout - (time.monotonic() - started), 0.001)
        result = await self._close(position, closure, remaining, only_ours=only_ours)
        await self._journal.drain()  # a close returns journaled (with its closure and reason)
        return result

    def _close_quantity(self, position: Position, only_ours: bool) -> tuple[int, str]:
        """What a new close may take, and why it is less than the position (if it is)."""
        ledger = self._risk_manager.exposure
        key = position.contract.key
        held = abs(round(position.quantity))
        working = ledger.closing_remaining(key)
        quantity = max(held - working, 0)
        why = f"{working} already being closed by working orders" if working else ""
        if only_ours:
            ours = abs(ledger.ours_quantity(key))
            if ours < held:
                quantity = max(ours - working, 0)
                why = f"{held - ours} of {held} not opened by the bot (foreign: left alone)" + (
                    f"; {why}" if why else ""
                )
        return quantity, why

    def _stale_closes(self, position: Position) -> bool:
        """Working closes of this contract in the ledger that this process is not handling."""
        ledger = self._risk_manager.exposure
        return any(not o.local for o in ledger.working(position.contract.key, closing=True))

    def _nothing_to_close(
        self, position: Position, closure: ClosureReason, why: str
    ) -> OrderResult:
        return OrderResult(
            order_id=f"CLOSE_{position.position_id}",
            status=OrderStatus.PENDING,
            timestamp=self._clock.now(),
            rejection_reason=f"nothing sent: {why}",
            execution_mode=self._mode,
            symbol=position.symbol,
            contract_key=position.contract.key,
            closure_reason=closure.value,
            details={"not_sent": True},
        )

    async def _close(
        self,
        position: Position,
        closure: ClosureReason,
        timeout: float,
        *,
        only_ours: bool = False,
        base: int | None = None,
    ) -> OrderResult:
        # a journal that cannot be written (a full disk) never stops a close: the failed
        # writes are logged and collected (issue 14, item 7)
        with tolerate_write_failures():
            return await self._close_tolerant(
                position, closure, timeout, only_ours=only_ours, base=base
            )

    async def _close_tolerant(
        self,
        position: Position,
        closure: ClosureReason,
        timeout: float,
        *,
        only_ours: bool = False,
        base: int | None = None,
    ) -> OrderResult:
        started = time.monotonic()
        quantity, why = self._close_quantity(position, only_ours)
        if quantity < abs(round(position.quantity)) and self._stale_closes(position):
            # a close held back by working closes this process is not handling (the gateway's
            # view, read earlier): the gateway says whether they still work (found in review:
            # one that had filled meanwhile kept an emergency close from going out)
            await self._executor.reread_exposure(min(timeout / 3, 10.0))
            quantity, why = self._close_quantity(position, only_ours)
        if quantity <= 0:
            _log.warning(
                "close_not_sent", position_id=position.position_id, reason=closure.value, why=why
            )
            await self._journal.record_event(
                "close_not_sent",
                {"position_id": position.position_id, "reason": closure.value, "why": why},
            )
            return self._nothing_to_close(position, closure, why)
        _log.info(
            "closing_position",
            position_id=position.position_id,
            symbol=position.symbol,
            quantity=position.quantity,
            reason=closure.value,
            unrealized_pnl=position.unrealized_pnl,
        )
        # the close's client order id counts the closes of this contract already final in the
        # journal: a close still in flight maps to the same id (never sent twice), while a
        # re-opened position, or a retry after a failed close, gets a new one
        if base is None:
            base = await self._journal.call(
                self._journal.journal.final_closes, position.contract.key
            )
        result: OrderResult | None = None
        for bump in range(10):
            request = self._closing_request(position, closure, base + bump, quantity)
            remaining = max(timeout - (time.monotonic() - started), 0.001)
            result = await self._executor.execute_request(
                request, remaining, contract=position.contract
            )
            if result.duplicate and result.status in _FINAL_FAILURES:
                continue  # that attempt ended (refused, failed): this is a new one
            if result.duplicate and result.status is OrderStatus.PENDING:
                # an earlier attempt whose end the journal has not learnt: if the gateway
                # (read now, every client id) no longer works it, it is over and the position
                # still needs its close (a restart mid-order; its end comes with reconciliation)
                await self._executor.reread_exposure(min(remaining / 3, 10.0))
                if self._executor.gateway_view_fresh() and (
                    self._risk_manager.exposure.get(result.order_id) is None
                ):
                    quantity, why = self._close_quantity(position, only_ours)
                    if quantity <= 0:
                        return self._nothing_to_close(position, closure, why)
                    continue
            break
        assert result is not None
        if result.status in _FINAL_FAILURES:
            self._needs_sync.add(position.position_id)
        filled = result.fill_quantity or 0
        if result.status in FILLED_RESULTS and filled > 0:
            # queued with the order's own group commit, not waited for (owed if refused)
            store = self._journal.journal
            detail = {
                "position_id": position.position_id,
                "status": result.status.value,
                "fill_price": result.fill_price,
                "unrealized_pnl_pct": position.unrealized_pnl_pct,
                "days_to_expiry": position.days_to_expiry,
            }
            self._journal.group(
                "closure",
                [
                    functools.partial(
                        store.record_closure,
                        closure,
                        symbol=position.symbol,
                        contract_key=position.contract.key,
                        quantity=filled,
                        client_order_id=result.order_id,
                        detail=detail,
                    )
                ],
            )
            if filled >= abs(position.quantity):
                self._positions_cache.pop(position.position_id, None)
                self._needs_sync.discard(position.position_id)
            else:
                left = (
                    position.quantity - filled
                    if position.quantity > 0
                    else position.quantity + filled
                )
                self._positions_cache[position.position_id] = replace(position, quantity=left)
        elif not result.duplicate:
            await self._journal.record_event(
                "close_not_done",
                {
                    "position_id": position.position_id,
                    "reason": closure.value,
                    "status": result.status.value,
                    "detail": result.rejection_reason,
                    "client_order_id": result.order_id,
                },
            )
        _log.info(
            "close_result",
            position_id=position.position_id,
            reason=closure.value,
            status=result.status.value,
            fill_price=result.fill_price,
        )
        return replace(result, closure_reason=closure.value)

    def _closing_request(
        self, position: Position, closure: ClosureReason, sequence: int, quantity: int
    ) -> TradeRequest:
        contract = position.contract
        signal_id = f"close:{position.position_id}:{position.quantity}:{sequence}"
        return TradeRequest(
            symbol=contract.symbol,
            action="SELL" if position.quantity > 0 else "BUY",
            quantity=quantity,
            order_type="MKT",  # closures are market orders (handoff 3.4)
            limit_price=None,
            strategy_id="position_manager",
            strategy_name="Strategy C closure",
            risk_per_trade=0.0,
            take_profit_pct=0.0,
            stop_loss_pct=0.0,
            expiry=contract.expiry,
            strike=contract.strike,
            right=contract.right,
            operator_id=self._executor.operator_id,
            is_closing=True,
            signal_id=signal_id,
            multiplier=contract.multiplier,
            closure_reason=closure.value,
            sec_type=contract.sec_type,
            # IB's portfolio mark prices a paper close (no snapshot needed); NaN: none
            reference_price=(
                position.current_price
                if position.price_source == "portfolio"
                and math.isfinite(position.current_price)
                and position.current_price > 0
                else None
            ),
        )

    async def close_all(
        self, reason: str, timeout: float = 60.0, *, only_ours: bool = False
    ) -> list[OrderResult]:
        """Close every open position concurrently under one deadline; every result reported.

        ``only_ours``: positions the bot did not open are reported and left alone."""
        started = time.monotonic()
        try:
            closure = ClosureReason(reason)
        except ValueError:
            raise GatewayError(f"unknown closure reason {reason!r}") from None
        with tolerate_write_failures():  # the resting entries' fills so far are ours
            await self._executor.record_working_fills()
        try:
            positions = await self.get_all(min(timeout / 3, 10.0))
        except (BrokerError, TimeoutError) as exc:
            _log.error("close_all_refresh_failed", error=str(exc))
            positions = list(self._positions_cache.values())
        positions = [p for p in positions if p.quantity != 0]
        if only_ours:
            foreign = [p for p in positions if abs(self.foreign_quantity(p)) >= abs(p.quantity)]
            if foreign:
                with tolerate_write_failures():  # a full disk never stops the closes
                    await self._journal.record_event(
                        "foreign_positions_left_alone",
                        {
                            "reason": closure.value,
                            "positions": [f"{p.quantity:+g} {p.contract.key}" for p in foreign],
                        },
                    )
            positions = [p for p in positions if p not in foreign]
        _log.warning("EMERGENCY_LIQUIDATION", reason=closure.value, position_count=len(positions))
        # every close's sequence number in one read, so the closes reach the wire together
        try:
            bases: dict[str, int] = await self._journal.call(
                self._journal.journal.final_closes_of, [p.contract.key for p in positions]
            )
        except JournalError as exc:  # each close reads its own (a full disk never stops one)
            _log.error("close_all_sequence_read_failed", error=str(exc))
            bases = {}
        remaining = max(timeout - (time.monotonic() - started), 0.001)
        outcomes = await asyncio.gather(
            *(
                self._close_bounded(p, closure, remaining, only_ours, bases.get(p.contract.key))
                for p in positions
            ),
            return_exceptions=True,
        )
        results: list[OrderResult] = []
        for position, outcome in zip(positions, outcomes, strict=True):
            if isinstance(outcome, OrderResult):
                results.append(outcome)
                continue
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            _log.error("close_failed", position_id=position.position_id, error=repr(outcome))
            results.append(
                OrderResult(
                    order_id=f"CLOSE_{position.position_id}",
                    status=OrderStatus.FAILED,
                    timestamp=self._clock.now(),
                    rejection_reason=f"{type(outcome).__name__}: {outcome}",
                    execution_mode=self._mode,
                    symbol=position.symbol,
                    contract_key=position.contract.key,
                    closure_reason=closure.value,
                )
            )
        await self._journal.drain()  # the closes return journaled (their closures, reasons)
        return results

    async def _close_bounded(
        self,
        position: Position,
        closure: ClosureReason,
        timeout: float,
        only_ours: bool,
        base: int | None = None,
    ) -> OrderResult:
        async with asyncio.timeout(timeout + 6.0):  # the executor's own cancel grace is 5 s
            return await self._close(position, closure, timeout, only_ours=only_ours, base=base)

    def positions_by_trigger(self, positions: Sequence[Position]) -> dict[str, list[Position]]:
        grouped: dict[str, list[Position]] = {}
        for p in positions:
            if p.closure_trigger:
                grouped.setdefault(p.closure_trigger, []).append(p)
        return grouped
