"""OrderExecutor: every order through the RiskManager, journaled, then executed (handoff 3.3).

CRITICAL SAFETY INVARIANT: every order — entries and closes alike — flows through
``RiskManager.validate_trade()`` before any execution path. There is no bypass.

Flow of :meth:`OrderExecutor.execute`, under ONE deadline:

1. validate the signal and the strategy context (malformed -> REJECTED, nothing sent);
2. build the TradeRequest with a deterministic client order id (operator, strategy, signal id,
   contract, side, quantity); a second submission of the same signal returns the first
   result and sends nothing;
3. qualify the contract (failure -> FAILED) and take a snapshot of it, which feeds the risk
   manager's data gate and affordability check;
4. ``RiskManager.validate_trade`` (journaled by the risk manager) -> REJECTED with every reason;
5. journal the order intent BEFORE anything is sent;
6. ONE path to the venue (``execution.venues``): PAPER sends to IB (the paper interlock
   first), DRY_RUN to the local matching engine (priced from the gateway's quotes; nothing is
   ever sent). The order (orderRef = our client order id, which carries the operator id;
   extOperator = the operator id; account = the managed paper account or SIMULATED; tif
   DAY) is placed and awaited: FILLED (SIMULATED in dry-run), PARTIAL, CANCELLED, FAILED
   (the venue's code and text), or, on timeout, the rest cancelled and TIMEOUT / PARTIAL.
   With ``rest_entries`` on, a limit entry still working at the timeout is not cancelled:
   it rests (DAY: until the close), counts as working exposure, and :meth:`check_working`
   looks after it every cycle (filled, partly filled, cancelled on a HALT, expired at the
   close). LIVE: refused again here (the feature flag is checked a second time).
7. every status change, fill, commission and the final result are journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ibkr_trader.broker.connection import IBKRConnection, OrderInfo
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.exceptions import (
    BrokerError,
    BrokerTimeoutError,
    ContractQualificationError,
    GatewayDisconnectedError,
    OrderRejectedError,
)
from ibkr_trader.broker.market_data import Quote
from ibkr_trader.broker.orders import FillInfo, OrderSpec, TradeSnapshot
from ibkr_trader.clock import NY, Clock, SystemClock
from ibkr_trader.execution.venues import DryRunVenue, PaperVenue, Venue, VenueOrder
from ibkr_trader.integrations.exceptions import GatewayError
from ibkr_trader.integrations.feature_flags import DEFAULT_FLAGS, IntegrationFeatureFlags
from ibkr_trader.integrations.market_data_pipeline import MarketDataPipeline
from ibkr_trader.journal import (
    AsyncJournal,
    IntentRecord,
    IntentResult,
    Journal,
    JournalError,
    OrderRow,
    client_order_id_for,
    tolerate_write_failures,
    write_failures_tolerated,
)
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import ListedHours, MarketHours, day_order_close
from ibkr_trader.models import (
    ContractSpec,
    ExecutionMode,
    OrderStatus,
    QuoteCheck,
    TradeRequest,
    ValidationResult,
)
from ibkr_trader.orders.exposure import WorkingOrder
from ibkr_trader.orders.lifecycle import (
    FAILED,
    NOT_SENT,
    REJECTED,
    UNCONFIRMED,
    UNKNOWN,
    is_warning_code,
    is_working_status,
    outcome,
)
from ibkr_trader.orders.reconcile import refresh_exposure
from ibkr_trader.risk import RiskManager
from ibkr_trader.signals import StrategyContext, TradingSignal

__all__ = ["FillResult", "OrderExecutor", "OrderResult", "OrderStatus", "TradeRequest"]

_log = get_logger("ibkr_trader.integrations.executor")

RESULT_CACHE_SIZE = 1024
CANCEL_GRACE_SECONDS = 5.0  # extra time to cancel the rest of an order after its deadline
CANCEL_REFUSED_CODES = frozenset({161, 10147, 10148})  # the cancel was refused or not found
HALT_CHECK_SECONDS = 0.25  # a working entry checks for a HALT this often while it waits
UNCONFIRMED_STATUS = UNCONFIRMED  # not final: reconciliation settles it from the gateway
CALLER_DATA_MAX_AGE_SECONDS = 5.0  # the caller's market data counts as fresh this long
# The gateway's working orders and positions, read for an entry, stand this long for the next
# entries (see ``_refresh_exposure``); 0 reads them before every entry.
EXPOSURE_MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class OrderResult:
    """Result of an order attempt (handoff 3.3 / 5.4). ``order_id`` is our client order id."""

    order_id: str
    status: OrderStatus
    timestamp: datetime
    ibkr_order_id: int | None = None
    fill_price: float | None = None
    fill_quantity: int | None = None
    rejection_reason: str | None = None
    execution_mode: ExecutionMode | None = None
    risk_validation: ValidationResult | None = None
    perm_id: int | None = None
    error_code: int | None = None
    symbol: str = ""
    contract_key: str = ""
    operator_id: str = ""
    closure_reason: str | None = None
    duplicate: bool = False  # True: the same signal was submitted before; nothing was sent
    commission: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def client_order_id(self) -> str:
        return self.order_id

    @property
    def is_success(self) -> bool:
        return self.status in (OrderStatus.FILLED, OrderStatus.SIMULATED)


@dataclass(frozen=True, slots=True)
class FillResult:
    """Fill status of an order (handoff 3.3)."""

    filled: bool
    avg_fill_price: float
    filled_quantity: int


@dataclass(slots=True)
class _Resting:
    """A limit entry left working past its wait (``rest_entries``)."""

    request: TradeRequest
    validation: ValidationResult
    handle: VenueOrder
    timeout: float
    deadline: datetime | None  # the session's close: a DAY order ends there


AccountGuard = Callable[[], str]
QuoteSource = Callable[[ContractSpec, float], Awaitable[tuple[Quote, QuoteCheck]]]


def _now(clock: Clock) -> datetime:
    return clock.now()


def _request_from_intent(intent: IntentRecord) -> TradeRequest:
    """The request a journaled intent was made from (for an order this process did not
    place: restored after a restart, or adopted at the gateway)."""
    return TradeRequest(
        symbol=intent.symbol,
        action=intent.action,
        quantity=int(intent.quantity),
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        strategy_id=intent.strategy_id,
        strategy_name=intent.strategy_id,
        risk_per_trade=0.0,
        take_profit_pct=0.0,
        stop_loss_pct=0.0,
        expiry=intent.expiry,
        strike=intent.strike,
        right=intent.right,
        operator_id=intent.operator_id,
        signal_id=intent.signal_id,
        client_order_id=intent.client_order_id,
        multiplier=intent.multiplier,
        reference_price=intent.limit_price,
        sec_type=intent.sec_type,
    )


class OrderExecutor:
    """Executes orders with mandatory RiskManager validation (see the module docstring)."""

    def __init__(
        self,
        connection: IBKRConnection,
        contracts: ContractManager,
        risk_manager: RiskManager,
        mode: ExecutionMode,
        operator_id: str,
        *,
        journal: AsyncJournal,
        pipeline: MarketDataPipeline,
        account_guard: AccountGuard,
        clock: Clock | None = None,
        flags: IntegrationFeatureFlags = DEFAULT_FLAGS,
        venue: Venue | None = None,
        rest_entries: bool = False,
        exposure_max_age: float = EXPOSURE_MAX_AGE_SECONDS,
    ) -> None:
        if not operator_id or not operator_id.strip():
            raise GatewayError("operator_id must not be empty (compliance requirement)")
        self._connection = connection
        self._contracts = contracts
        self._risk_manager = risk_manager
        self._mode = ExecutionMode(mode)
        self._operator_id = operator_id.strip()
        self._journal = journal
        self._pipeline = pipeline
        self._account_guard = account_guard
        self._clock: Clock = clock or SystemClock()
        self._flags = flags
        self._results: OrderedDict[str, OrderResult] = OrderedDict()  # recent, bounded
        self._inflight: dict[str, asyncio.Future[OrderResult]] = {}
        # client order ids with a journaled intent, read once at the first order and kept: a
        # new order needs no duplicate-check read (the intent's insert still catches an id
        # another process journaled since)
        self._known_coids: set[str] | None = None
        self._result_journaled: set[str] = set()  # results in a queued group commit
        self._resting: dict[str, _Resting] = {}
        self.rest_entries = rest_entries
        self.exposure_max_age = max(float(exposure_max_age), 0.0)
        self._exposure_read_at: float | None = None  # monotonic; None: read before the next entry
        self._intents_seen = 0  # the journal's newest intent (row id) at the last read
        self._corrections_seen = 0  # the ledger's position corrections at the last read
        self._own_intents: set[str] = set()  # intents this executor journaled since that read
        subscribe = getattr(connection, "subscribe", None)
        if callable(subscribe):  # a reconnect (or any change of the link) forgets the view
            subscribe(lambda _state: self.forget_exposure())
        if self._mode is ExecutionMode.LIVE:
            raise GatewayError("Live execution blocked: ExecutionMode.LIVE is refused")
        self._hours = MarketHours(self._clock)
        self._venue: Venue = venue or self._default_venue()

    def _default_venue(self) -> Venue:
        """The one choice between the modes: where the order goes."""
        if self._mode is ExecutionMode.DRY_RUN:

            async def quotes(contract: ContractSpec, timeout: float) -> Quote:
                quote, _quality = await self._pipeline.fetch_quote(
                    contract, timeout, server_check=False
                )
                return quote

            return DryRunVenue(
                quotes,
                self._journal,
                lambda: self._risk_manager.limits,
                self._clock,
                market_hours=self._hours,
                contract_hours=self._listed_hours,
            )
        return PaperVenue(self._connection, self._account_guard, self._flags, self._journal)

    @property
    def venue(self) -> Venue:
        """Where this executor's orders go (PaperVenue or DryRunVenue)."""
        return self._venue

    def venue_orders(self) -> list[OrderInfo]:
        """The local venue's working orders (dry-run), for reconciliation; [] for paper."""
        return self._venue.open_orders()

    @property
    def resting(self) -> list[str]:
        """Client order ids of the entries resting past their wait."""
        return list(self._resting)

    @property
    def mode(self) -> ExecutionMode:
        return self._mode

    @property
    def operator_id(self) -> str:
        return self._operator_id

    # ------------------------------------------------------------------ entry point

    async def execute(
        self,
        signal: TradingSignal | dict[str, Any],
        strategy_context: StrategyContext | dict[str, Any],
        timeout: float = 30.0,
        *,
        underlying_check: QuoteCheck | None = None,
        contract_quote: Quote | None = None,
    ) -> OrderResult:
        """Execute a trading signal with full risk validation (never raises for bad input).

        ``underlying_check`` is the data the signal was decided on (``MarketData.to_quote_check``);
        its staleness counts in the risk manager's data gate with the contract's own quote.
        ``contract_quote``: the traded contract's own snapshot, when the caller holds one (it
        priced the limit with it); fresh, live and of this contract, it spares the order's own.
        """
        started = time.monotonic()
        try:
            sig = (
                signal
                if isinstance(signal, TradingSignal)
                else TradingSignal.model_validate(signal)
            )
            ctx = (
                strategy_context
                if isinstance(strategy_context, StrategyContext)
                else StrategyContext.model_validate(strategy_context)
            )
        except (ValidationError, TypeError, ValueError) as exc:
            return await self._invalid_input(exc)
        if sig.strategy_id != ctx.strategy_id:
            return await self._invalid_input(
                ValueError(
                    f"signal strategy_id {sig.strategy_id!r} does not match the context's "
                    f"{ctx.strategy_id!r}"
                )
            )
        request = self._build_trade_request(sig, ctx)
        return await self._run_once(
            request,
            lambda: self._execute_request(
                request, timeout, started, underlying_check, contract_quote=contract_quote
            ),
        )

    async def execute_request(
        self,
        request: TradeRequest,
        timeout: float = 30.0,
        *,
        contract: ContractSpec | None = None,
    ) -> OrderResult:
        """Execute an already built TradeRequest (the PositionManager's closes use this).

        The request gets the same treatment: risk validation, journal, idempotency.
        """
        started = time.monotonic()
        if not request.client_order_id:
            request = replace(request, client_order_id=self._client_order_id(request))
        if request.operator_id != self._operator_id:
            request = replace(request, operator_id=self._operator_id)
        return await self._run_once(
            request,
            lambda: self._execute_request(request, timeout, started, None, contract=contract),
        )

    # ------------------------------------------------------------------ building

    def _build_trade_request(self, signal: TradingSignal, context: StrategyContext) -> TradeRequest:
        """Build a TradeRequest from a validated signal and context (operator id attached)."""
        request = TradeRequest(
            symbol=signal.symbol,
            action=signal.action.value,
            quantity=signal.quantity,
            order_type=signal.order_type.value,
            limit_price=signal.limit_price,
            strategy_id=context.strategy_id,
            strategy_name=context.strategy_name,
            risk_per_trade=context.risk_per_trade,
            take_profit_pct=context.take_profit_pct,
            stop_loss_pct=context.stop_loss_pct,
            expiry=signal.expiry,
            strike=signal.strike,
            right=signal.right.value,
            operator_id=self._operator_id,  # COMPLIANCE REQUIREMENT
            is_closing=False,
            signal_id=signal.signal_id,
        )
        return replace(request, client_order_id=self._client_order_id(request))

    def _client_order_id(self, request: TradeRequest) -> str:
        return client_order_id_for(
            self._operator_id,
            request.strategy_id,
            request.signal_id,
            request.contract_key,
            request.action,
            request.quantity,
        )

    def _build_ibkr_order(self, request: TradeRequest, account: str) -> OrderSpec:
        """The IB order: orderRef = client order id (carries the operator id), extOperator =
        the operator id, account = the managed paper account, tif DAY."""
        return OrderSpec(
            action=request.action,
            quantity=request.quantity,
            order_type=request.order_type,
            limit_price=request.limit_price if request.order_type == "LMT" else None,
            tif="DAY",
            order_ref=request.client_order_id,
            ext_operator=request.operator_id,
            account=account,
        )

    def _contract_spec(self, request: TradeRequest) -> ContractSpec:
        return ContractSpec(
            symbol=request.symbol,
            sec_type=request.sec_type,
            expiry=request.expiry,
            strike=request.strike,
            right=request.right,
            multiplier=request.multiplier,
        )

    # ------------------------------------------------------------------ idempotency

    async def _run_once(
        self, request: TradeRequest, body: Callable[[], Awaitable[OrderResult]]
    ) -> OrderResult:
        coid = request.client_order_id
        if coid in self._results:
            return replace(self._results[coid], duplicate=True)
        inflight = self._inflight.get(coid)
        if inflight is not None:
            first = await asyncio.shield(inflight)
            return replace(first, duplicate=True)
        if self._known_coids is None:
            self._known_coids = await self._journal.call(self._journal.journal.client_order_ids)
        if coid in self._known_coids:
            earlier = await self._journaled_result(coid)
            if earlier is not None:
                self._remember(coid, earlier)
                return replace(earlier, duplicate=True)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[OrderResult] = loop.create_future()
        self._inflight[coid] = future
        try:
            result = await body()
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: the caller re-raises it
            raise
        finally:
            self._inflight.pop(coid, None)
        self._remember(coid, result)
        future.set_result(result)
        return result

    def _remember(self, coid: str, result: OrderResult) -> None:
        """Recent results answer a repeated signal at once; older ones come from the journal
        (the authority), so the cache stays bounded over a long session."""
        self._results[coid] = result
        self._results.move_to_end(coid)
        while len(self._results) > RESULT_CACHE_SIZE:
            self._results.popitem(last=False)

    async def _journaled_result(self, coid: str) -> OrderResult | None:
        """The first result of an intent journaled before (a restart, a retried signal)."""
        explanation = await self._journal.explain(coid)
        if explanation is None:
            return None
        intent, state = explanation.intent, explanation.state
        if explanation.results:
            first = explanation.results[0]
            try:
                status = OrderStatus(first.status.lower())
            except ValueError:
                status = OrderStatus.PENDING
            return OrderResult(
                order_id=coid,
                status=status,
                timestamp=first.at,
                ibkr_order_id=first.broker_order_id,
                fill_price=first.fill_price,
                fill_quantity=int(first.fill_quantity) if first.fill_quantity is not None else None,
                rejection_reason=first.rejection_reason,
                execution_mode=self._mode,
                symbol=intent.symbol,
                contract_key=intent.contract_key,
                operator_id=intent.operator_id,
                closure_reason=intent.closure_reason,
            )
        # an intent without a result: it may have been sent before a crash; never resend it
        return OrderResult(
            order_id=coid,
            status=OrderStatus.PENDING,
            timestamp=state.updated_at,
            ibkr_order_id=state.broker_order_id,
            perm_id=state.perm_id,
            rejection_reason=(
                "an intent with this client order id exists without a final result; "
                "reconciliation resolves it (nothing was resent)"
            ),
            execution_mode=self._mode,
            symbol=intent.symbol,
            contract_key=intent.contract_key,
            operator_id=intent.operator_id,
            closure_reason=intent.closure_reason,
        )

    # ------------------------------------------------------------------ the flow

    async def _invalid_input(self, exc: Exception) -> OrderResult:
        reason = f"invalid order input: {_short_error(exc)}"
        _log.warning("order_input_rejected", reason=reason)
        try:
            await self._journal.record_event("invalid_order_input", {"reason": reason})
        except Exception as journal_exc:  # the refusal stands even if it cannot be recorded
            _log.error("journal_write_failed", error=repr(journal_exc))
        return OrderResult(
            order_id=f"INVALID-{int(time.time() * 1000)}",
            status=OrderStatus.REJECTED,
            timestamp=_now(self._clock),
            rejection_reason=reason,
            execution_mode=self._mode,
            operator_id=self._operator_id,
        )

    def _result(self, request: TradeRequest, status: OrderStatus, **kwargs: Any) -> OrderResult:
        return OrderResult(
            order_id=request.client_order_id,
            status=status,
            timestamp=_now(self._clock),
            execution_mode=self._mode,
            symbol=request.symbol,
            contract_key=request.contract_key,
            operator_id=request.operator_id,
            closure_reason=request.closure_reason,
            **kwargs,
        )

    async def _execute_request(
        self,
        request: TradeRequest,
        timeout: float,
        started: float,
        underlying_check: QuoteCheck | None,
        *,
        contract: ContractSpec | None = None,
        contract_quote: Quote | None = None,
    ) -> OrderResult:
        deadline = started + timeout

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.001)

        if self._mode is ExecutionMode.LIVE or self._flags.ENABLE_LIVE_EXECUTION:
            raise GatewayError("Live execution blocked: this path is unreachable by design")

        # Step 3: qualify the contract and take its quote (data gate, affordability, dry-run fill)
        try:
            qualified = contract if contract and contract.con_id else None
            if qualified is None:
                qualified = await self._qualify(request, remaining())
            quote: Quote | None = None
            quote_check = request.quote
            if self._caller_quote_suffices(request, qualified, contract_quote):
                assert contract_quote is not None
                quote = contract_quote
                quote_check = self._check_of(contract_quote, None, underlying_check)
            elif not self._priced_paper_close(request):
                try:
                    quote, quote_check = await self._quote(qualified, remaining(), underlying_check)
                except (BrokerError, TimeoutError) as exc:
                    if not self._paper_market_close(request):
                        raise
                    # reducing risk must always be possible: a market close needs no quote
                    _log.warning(
                        "market_close_without_quote",
                        client_order_id=request.client_order_id,
                        error=str(exc),
                    )
        except ContractQualificationError as exc:
            return await self._failed_before_risk(
                request, f"Contract qualification failed: {exc}", exc
            )
        except TimeoutError as exc:  # the broker's typed timeout, or a bare deadline
            return await self._failed_before_risk(
                request, f"Execution timeout after {timeout:g}s ({exc})", exc, OrderStatus.TIMEOUT
            )
        except BrokerError as exc:
            return await self._failed_before_risk(request, f"market data unavailable: {exc}", exc)

        if quote is not None:
            reference = _reference_price(request, quote)
        elif request.order_type == "LMT" and request.limit_price is not None:
            reference = request.limit_price  # the caller's data sufficed: priced at its limit
        else:
            reference = request.reference_price
        request = replace(
            request,
            quote=quote_check,
            reference_price=reference,
            multiplier=qualified.multiplier or request.multiplier,
        )

        # Step 4: MANDATORY RISK VALIDATION — no bypass. An entry counts every order working
        # at the gateway (ours from a previous session or client id, another instance's, a
        # manual one): the ledger is refreshed from the gateway first; unknown -> no entry
        # An account the paper interlock refuses needs no refresh: the risk check (HALTED by
        # the interlock) refuses the entry, and so does the last check before sending.
        account: str | None = None
        if self._mode is ExecutionMode.PAPER and not request.is_closing:
            try:
                account = self._account_guard()
            except GatewayError:
                account = None  # the paper interlock refuses the send below: nothing goes out
        if account is not None:
            try:
                await self._refresh_exposure(account, remaining())
            except (BrokerError, TimeoutError) as exc:
                return await self._failed_before_risk(
                    request, f"the gateway's working orders are unknown ({exc}): no entry", exc
                )
        validation, intent = await self._decide(request, qualified.con_id)
        if not validation.approved:
            reason = "; ".join(validation.rejection_reasons) or "rejected by the RiskManager"
            _log.warning(
                "order_rejected_by_risk",
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                reasons=validation.rejection_reasons,
            )
            return self._result(
                request,
                OrderStatus.REJECTED,
                rejection_reason=reason,
                risk_validation=validation,
            )

        self._own_intents.add(request.client_order_id)
        if self._known_coids is not None:
            self._known_coids.add(request.client_order_id)
        if intent is not None and intent.existed:
            earlier = await self._journaled_result(request.client_order_id)
            if earlier is not None:
                # the first attempt may still work: its exposure stays until the broker's word
                self.forget_exposure()
                self._risk_manager.exposure.update(
                    request.client_order_id, sent=True, local=False, status=UNKNOWN
                )
                return replace(earlier, duplicate=True)

        # Step 6: the venue (one path; only where the order goes differs)
        try:
            result = await self._execute_at_venue(
                request, qualified, validation, deadline, timeout, quote
            )
        except BaseException:
            # a journal error after the send, a cancelled task: the order may be working;
            # it stays exposure until the venue's word (refresh, reconciliation) settles it
            self.forget_exposure()
            self._risk_manager.exposure.update(
                request.client_order_id, sent=True, local=False, status=UNKNOWN
            )
            raise
        if result.details.get("working"):
            return result  # resting: its result is journaled when it ends (check_working)
        await self._conclude(request, result)
        return result

    async def _decide(
        self, request: TradeRequest, con_id: int
    ) -> tuple[ValidationResult, IntentResult | None]:
        """Step 4 and 5: the risk decision and, when approved, the order's intent, durable
        together in ONE transaction on the journal's worker thread before anything is sent
        (nothing fsynced on the event loop). The approved order counts in the exposure ledger
        before the await, so a concurrent decision sees it.

        A decision that cannot be journaled is a rejection: nothing unrecorded is approved.
        The exception is a protective close on a full disk (issue 14, item 7): it goes out,
        and its decision and intent are owed to the journal (``AsyncJournal.owe_intent``)."""
        risk = self._risk_manager
        validation = risk.evaluate_trade(request)
        if not validation.approved:
            try:
                decision_id = await self._journal.record_risk_decision(request, validation)
            except Exception as exc:  # the rejection stands even if it cannot be recorded
                _log.error("risk_decision_not_journaled", error=repr(exc))
                return validation, None
            _log.info(
                "risk_decision",
                decision_id=decision_id,
                approved=False,
                reasons=validation.rejection_reasons,
            )
            return replace(validation, decision_id=decision_id), None
        risk.note_approved(request)
        try:
            decision_id, intent = await self._journal.record_decision_and_intent(
                request, validation, con_id=con_id
            )
        except JournalError as exc:
            if request.is_closing and write_failures_tolerated():
                _log.error(
                    "close_sent_without_journaled_intent",
                    client_order_id=request.client_order_id,
                    error=str(exc),
                )
                self._journal.owe_intent(request, validation, con_id=con_id)
                return validation, None
            risk.withdraw_approved(request)  # nothing is sent
            _log.error("risk_decision_not_journaled", error=repr(exc))
            return (
                replace(
                    validation,
                    approved=False,
                    rejection_reasons=[
                        *validation.rejection_reasons,
                        f"decision could not be journaled: {type(exc).__name__}: {exc}",
                    ],
                ),
                None,
            )
        except BaseException:
            risk.withdraw_approved(request)  # nothing was sent
            raise
        _log.info("risk_decision", decision_id=decision_id, approved=True, reasons=[])
        return replace(validation, decision_id=decision_id), intent

    async def _refresh_exposure(self, account: str, timeout: float) -> None:
        """The gateway's working orders (every client id) and the account's positions into the
        exposure ledger before an entry, unless read less than ``exposure_max_age`` ago.

        Between two reads the ledger stays exact for everything this process does: an approved
        order counts at once, its broker ids and end as the gateway reports them, every fill
        moves the position (``on_fill``). What a read adds is what *others* did: an order placed
        by hand or by another instance. A read per entry costs two messages of IB's 50 a
        second (back-to-back orders would run at a third of the rate); one per second leaves
        a foreign order at most that long unseen, where a read per entry leaves it the few
        milliseconds between the read and the send (no read closes that race). The view is
        read again after any change of the connection, after a read that failed, and after an
        order whose end the gateway did not confirm."""
        now = time.monotonic()
        read_at = self._exposure_read_at
        ledger = self._risk_manager.exposure
        if (
            read_at is not None
            and 0 <= now - read_at < self.exposure_max_age
            and ledger.position_corrections == self._corrections_seen
            and self._positions_agree(account)
        ):
            # another instance writing this journal: its intents since the read mean orders
            # the ledger may not have, so the gateway is asked again
            mark, coids = self._journal.read_now(lambda j: j.intents_since(self._intents_seen))
            if all(coid in self._own_intents for coid in coids):
                self._intents_seen = mark
                return
        self._exposure_read_at = None
        mark, _coids = self._journal.read_now(lambda j: j.intents_since(self._intents_seen))
        await refresh_exposure(
            self._connection,
            self._journal,
            self._risk_manager,
            timeout,
            account=account,
            adopted_deadline=self.adopted_deadline,  # a resting entry keeps its DAY close
        )
        self._exposure_read_at = now
        self._corrections_seen = ledger.position_corrections
        self._intents_seen = mark
        self._own_intents.clear()

    def _positions_agree(self, account: str) -> bool:
        """The ledger's positions are the gateway's position stream's (no message): a fill
        the ledger did not take (an order that filled after its end was decided, a manual
        trade) sends the entry to the gateway for the whole view."""
        streamed = getattr(self._connection, "streamed_positions", None)
        if not callable(streamed):
            return False
        held = streamed(account)
        return held is not None and held == self._risk_manager.exposure.positions

    async def reread_exposure(self, timeout: float) -> None:
        """Read the gateway's working orders and positions now (PAPER; a failed read is logged
        and the ledger kept: the caller decides on what it has)."""
        if self._mode is not ExecutionMode.PAPER:
            return
        try:
            account = self._account_guard()
        except GatewayError:
            return
        self.forget_exposure()
        try:
            await self._refresh_exposure(account, timeout)
        except (BrokerError, TimeoutError) as exc:
            _log.warning("exposure_reread_failed", error=str(exc))

    def gateway_view_fresh(self) -> bool:
        """The gateway's working orders were read (successfully) within the view's max age."""
        read_at = self._exposure_read_at
        return read_at is not None and 0 <= time.monotonic() - read_at < max(
            self.exposure_max_age, 1.0
        )

    def forget_exposure(self) -> None:
        """The next entry reads the gateway's working orders and positions first."""
        self._exposure_read_at = None

    async def _conclude(self, request: TradeRequest, result: OrderResult) -> None:
        self._settle_exposure(request, result)
        if request.client_order_id in self._result_journaled:
            self._result_journaled.discard(request.client_order_id)
            return  # in the order's group commit (_group_after_fill)
        await self._journal.record_result(request.client_order_id, **_result_of(result))

    def _settle_exposure(self, request: TradeRequest, result: OrderResult) -> None:
        """The ledger follows the broker's word: a final result ends the order's exposure; a
        PENDING one (the gateway's state unknown) stays working until reconciliation says."""
        ledger = self._risk_manager.exposure
        coid = request.client_order_id
        if result.status is OrderStatus.PENDING:
            self.forget_exposure()
            ledger.update(coid, sent=True, local=False, status=UNKNOWN)
        else:
            ledger.finish(coid)

    def _paper_market_close(self, request: TradeRequest) -> bool:
        """A PAPER market order that closes: it needs no quote to be sent (issue 14, item 4)."""
        return (
            self._mode is ExecutionMode.PAPER and request.is_closing and request.order_type == "MKT"
        )

    def _caller_quote_suffices(
        self, request: TradeRequest, contract: ContractSpec, quote: Quote | None
    ) -> bool:
        """A PAPER limit order whose caller passed the traded contract's own snapshot, fresh
        (at most CALLER_DATA_MAX_AGE_SECONDS old) and live, takes no snapshot of its own (two
        messages: the snapshot and the server time for its age). The data gate reads that
        quote, as it would read the order's own; the underlying's data never stands in for it.
        A dry run still takes a quote, to fill at."""
        if quote is None or not contract.con_id or quote.con_id != contract.con_id:
            return False
        limit = request.limit_price
        age = (self._clock.now() - quote.receipt_time).total_seconds()
        return (
            self._mode is ExecutionMode.PAPER
            and request.order_type == "LMT"
            and limit is not None
            and math.isfinite(limit)
            and limit > 0
            and not quote.is_delayed
            and not quote.is_frozen
            and -CALLER_DATA_MAX_AGE_SECONDS <= age <= CALLER_DATA_MAX_AGE_SECONDS
        )

    def _priced_paper_close(self, request: TradeRequest) -> bool:
        """A PAPER market close already priced by IB's portfolio mark needs no snapshot.

        Saves two messages per close (IB allows 50 a second): an emergency ``close_all`` of
        20 positions goes out at once instead of waiting on the message budget. The risk
        manager's closing rules do not read the quote; a dry run still takes one to fill at.
        """
        price = request.reference_price
        return (
            self._mode is ExecutionMode.PAPER
            and request.is_closing
            and request.order_type == "MKT"
            and price is not None
            and math.isfinite(price)
            and price > 0
        )

    async def _qualify(self, request: TradeRequest, timeout: float) -> ContractSpec:
        if request.sec_type == "STK":
            return await self._contracts.qualify_stock(request.symbol, timeout)
        return await self._contracts.qualify_option_contract(
            request.symbol, request.expiry, request.strike, request.right, timeout
        )

    async def _quote(
        self, contract: ContractSpec, timeout: float, underlying_check: QuoteCheck | None
    ) -> tuple[Quote, QuoteCheck]:
        quote, quality = await self._pipeline.fetch_quote(contract, timeout)
        assert quality is not None
        return quote, self._check_of(quote, quality, underlying_check)

    @staticmethod
    def _check_of(quote: Quote, quality: Any, underlying_check: QuoteCheck | None) -> QuoteCheck:
        """What the data gate reads of the contract's quote (``quality``: the pipeline's
        verdict on it; None for a caller's quote, judged by its own fields)."""
        if quality is not None:
            fields: tuple[str, ...] = tuple(quality.missing_fields)
            is_stale, is_delayed = bool(quality.is_stale), bool(quality.is_delayed)
        else:
            fields = tuple(quote.missing_fields)
            is_stale, is_delayed = False, bool(quote.is_delayed)
        missing = tuple(f for f in fields if f in ("bid", "ask", "last", "delayed"))
        if underlying_check is not None:
            is_stale = is_stale or underlying_check.is_stale
            is_delayed = is_delayed or underlying_check.is_delayed
        # an option's last trade may be old while its quote is live: staleness of the contract
        # itself counts only when it has no live two-sided quote
        if quote.bid is not None and quote.ask is not None and not quote.is_delayed:
            is_stale = underlying_check.is_stale if underlying_check is not None else False
        check = QuoteCheck(
            bid=quote.bid,
            ask=quote.ask,
            last=quote.last,
            is_stale=is_stale,
            is_delayed=is_delayed,
            missing_fields=tuple(f for f in missing if f in ("bid", "ask")),
            as_of=quote.receipt_time,
        )
        return check

    async def _failed_before_risk(
        self,
        request: TradeRequest,
        reason: str,
        exc: BaseException,
        status: OrderStatus = OrderStatus.FAILED,
    ) -> OrderResult:
        _log.error(
            "order_failed_before_risk", client_order_id=request.client_order_id, reason=reason
        )
        try:
            await self._journal.record_event(
                "order_failed_before_risk",
                {
                    "client_order_id": request.client_order_id,
                    "symbol": request.symbol,
                    "contract_key": request.contract_key,
                    "reason": reason,
                },
            )
        except Exception as journal_exc:
            _log.error("journal_write_failed", error=repr(journal_exc))
        code = getattr(exc, "code", None)
        return self._result(request, status, rejection_reason=reason, error_code=code)

    # ------------------------------------------------------------------ the venue

    async def _execute_at_venue(
        self,
        request: TradeRequest,
        contract: ContractSpec,
        validation: ValidationResult,
        deadline: float,
        timeout: float,
        quote: Quote | None,
    ) -> OrderResult:
        coid = request.client_order_id

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0.001)

        try:
            # paper: the feature flag and the interlock (raises unless DU...); dry-run: SIMULATED
            account = self._venue.account()
        except GatewayError as exc:
            await self._journal.record_status(
                coid, NOT_SENT, 0, request.quantity, None, detail={"reason": str(exc)}
            )
            return self._result(
                request, OrderStatus.FAILED, rejection_reason=str(exc), risk_validation=validation
            )

        order = self._build_ibkr_order(request, account)
        handle: VenueOrder | None = None
        with contextlib.ExitStack() as after_send:
            try:
                try:
                    handle = await self._venue.place(contract, order, remaining())
                except OrderRejectedError as exc:
                    # ib_async's word is not the broker's: a live order it marked Cancelled on a
                    # warning code is asked about before it is called rejected
                    handle = await self._still_working(exc, coid, remaining())
                    if handle is None:
                        raise
                # the order is out: a journal write that fails from here on (a full disk,
                # a locked file) is logged, never a reason to abandon the order; its fills
                # and end are still recorded when the journal takes writes
                after_send.enter_context(tolerate_write_failures())
                self._risk_manager.exposure.update(
                    coid,
                    sent=True,
                    order_id=handle.order_id,
                    perm_id=handle.perm_id,
                    deadline=self._clock.now()
                    + timedelta(seconds=max(deadline - time.monotonic(), 0)),
                    status=handle.status,
                )
                if self._groups_writes:
                    # queued on the journal's worker, in order, not waited for: the order is
                    # out, and reconciliation re-reads it from the gateway by its orderRef
                    # if the process dies before they land
                    self._journal.group(
                        "order_sent",
                        self._sent_writes(coid, handle.order_id, handle.snapshot()),
                    )
                else:
                    await self._journal.attach_broker_ids(
                        coid, handle.order_id, handle.perm_id or None
                    )
                    await self._record_snapshot(request, handle.snapshot())
                try:
                    snap = await self._wait_broker_done(
                        handle, coid, remaining, entry=not request.is_closing
                    )
                except BrokerTimeoutError:
                    if self._may_rest(request):
                        return await self._rest(
                            request, contract, validation, handle, timeout, quote
                        )
                    snap = await self._cancel_rest(handle, request)
                    return await self._finish(
                        request, validation, snap, timed_out=True, timeout=timeout
                    )
                return await self._finish(
                    request,
                    validation,
                    snap,
                    timed_out=False,
                    timeout=timeout,
                    group=self._groups_writes,
                )
            except OrderRejectedError as exc:
                rejected_snap = handle.snapshot() if handle is not None else None
                if rejected_snap is None:
                    found = self._venue.find(exc.order_id) if exc.order_id else None
                    rejected_snap = found.snapshot() if found is not None else None
                if rejected_snap is not None:
                    await self._record_snapshot(request, rejected_snap)
                    if rejected_snap.order_id:
                        await self._journal.attach_broker_ids(
                            coid, rejected_snap.order_id, rejected_snap.perm_id or None
                        )
                await self._journal.record_status(
                    coid,
                    REJECTED,
                    0,
                    request.quantity,
                    None,
                    error_code=exc.code,
                    error_text=exc.text or str(exc),
                )
                reason = f"broker rejected the order: {exc}"
                return self._result(
                    request,
                    OrderStatus.FAILED,
                    rejection_reason=reason,
                    risk_validation=validation,
                    error_code=exc.code,
                    ibkr_order_id=rejected_snap.order_id if rejected_snap else exc.order_id,
                )
            except GatewayDisconnectedError as exc:
                reason = (
                    f"connection lost while the order was in flight: {exc}; "
                    "reconciliation resolves it"
                )
                await self._journal.record_status(
                    coid, UNKNOWN, None, None, None, detail={"reason": reason}
                )
                return self._result(
                    request,
                    OrderStatus.PENDING,
                    rejection_reason=reason,
                    risk_validation=validation,
                    ibkr_order_id=handle.order_id if handle else None,
                )
            except BrokerTimeoutError as exc:
                # no acknowledgement in time: cancel whatever may have reached the gateway
                if handle is None and exc.order_id:
                    handle = self._venue.find(exc.order_id)
                if handle is not None:
                    snap = await self._cancel_rest(handle, request)
                    return await self._finish(
                        request, validation, snap, timed_out=True, timeout=timeout
                    )
                await self._journal.record_status(
                    coid, UNKNOWN, None, None, None, detail={"reason": str(exc)}
                )
                return self._result(
                    request,
                    OrderStatus.PENDING,
                    rejection_reason=(
                        f"no acknowledgement within {timeout:g}s: the order may have reached the "
                        "gateway; reconciliation resolves it, nothing is resent"
                    ),
                    risk_validation=validation,
                )
            except BrokerError as exc:
                await self._journal.record_status(
                    coid, FAILED, None, None, None, error_code=exc.code, error_text=str(exc)
                )
                return self._result(
                    request,
                    OrderStatus.FAILED,
                    rejection_reason=str(exc),
                    risk_validation=validation,
                    error_code=exc.code,
                )

    # ------------------------------------------------------------------ resting entries

    def _may_rest(self, request: TradeRequest) -> bool:
        """A limit entry may rest past its wait when asked to (never a close, never while a
        HALT is asked for)."""
        return (
            self.rest_entries
            and not request.is_closing
            and request.order_type == "LMT"
            and self._risk_manager.entries_stopped() is None
        )

    def _listed_hours(self, contract: ContractSpec) -> ListedHours | None:
        """The hours the gateway listed for the contract when it was qualified."""
        return self._contracts.listed_hours(contract.con_id)

    def _session_close(self, contract: ContractSpec) -> datetime | None:
        """When a DAY order placed now ends, by the same rule as the dry-run venue's."""
        return day_order_close(self._clock.now(), self._listed_hours(contract), self._hours)

    async def _rest(
        self,
        request: TradeRequest,
        contract: ContractSpec,
        validation: ValidationResult,
        handle: VenueOrder,
        timeout: float,
        quote: Quote | None,
    ) -> OrderResult:
        """Leave a limit entry working (DAY: until the close); reported as PENDING with why."""
        coid = request.client_order_id
        close = self._session_close(contract)
        self._resting[coid] = _Resting(request, validation, handle, timeout, close)
        snap = handle.snapshot()
        self._keep_in_ledger(self._resting[coid], snap)
        await self._record_snapshot(request, snap)
        await self._record_new_fills(request, snap)  # a part filled before it rests is ours
        buy = request.action == "BUY"
        side = "ask" if buy else "bid"
        touch = (quote.ask if buy else quote.bid) if quote is not None else None
        seen = f"; the {side} was {touch:g}" if touch is not None and math.isfinite(touch) else ""
        until = f"the close ({close.astimezone(NY):%H:%M} New York)" if close else "cancelled"
        reason = (
            f"working: limit {request.limit_price:g} not reached within {timeout:.3g}s{seen} "
            f"(filled {round(snap.filled)} of {request.quantity}); it rests as a DAY order "
            f"until {until} and is checked every cycle"
        )
        _log.info("order_resting", client_order_id=coid, venue=self._venue.name, reason=reason)
        return self._result(
            request,
            OrderStatus.PENDING,
            rejection_reason=reason,
            risk_validation=validation,
            ibkr_order_id=handle.order_id,
            fill_quantity=round(snap.filled),
            details={"working": True, "deadline": close.isoformat() if close else None},
        )

    def adopted_deadline(self, row: OrderRow) -> datetime | None:
        """When reconciliation's adopted order of ours is cancelled, by this executor's rule:
        a limit entry rests (``rest_entries``) as a DAY order until the close of the session
        it was placed in; None for any other (intent + order_timeout)."""
        intent = row.intent
        if not self.rest_entries or intent.is_closing or intent.order_type != "LMT":
            return None
        return day_order_close(
            intent.created_at, self._contracts.listed_hours(intent.con_id), self._hours
        )

    def _keep_in_ledger(self, rest: _Resting, snap: TradeSnapshot) -> None:
        """A resting order is working exposure with its DAY deadline (re-asserted after a
        reconciliation replaced the broker's part of the ledger)."""
        ledger = self._risk_manager.exposure
        coid = rest.request.client_order_id
        changes: dict[str, Any] = {
            "sent": True,
            "local": True,  # this executor looks after it: a reconciliation keeps it
            "order_id": rest.handle.order_id,
            "perm_id": rest.handle.perm_id,
            "deadline": rest.deadline,
            "status": snap.status,
        }
        if ledger.update(coid, **changes) is None:
            request = rest.request
            ledger.add(
                WorkingOrder(
                    ref=coid,
                    contract_key=request.contract_key,
                    symbol=request.symbol,
                    action=request.action,
                    quantity=request.quantity,
                    filled=round(snap.filled),
                    is_closing=request.is_closing,
                    unit_cost=(request.reference_price or 0.0) * (request.multiplier or 1),
                    **changes,
                )
            )

    async def restore_working(self) -> list[str]:
        """After a restart, before reconciliation: the dry-run venue reloads the entries that
        were resting in it from the journal (the intent, its last working status and its fills
        so far), so that they go on working until filled or the close, as a paper order does
        at IB. Returns their client order ids (none for paper: the gateway holds those)."""
        venue = self._venue
        if not isinstance(venue, DryRunVenue) or not self.rest_entries:
            return []
        journal = self._journal.journal
        rows = await self._journal.call(journal.unresolved_intents)
        restored: list[str] = []
        for row in rows:
            intent, state = row.intent, row.state
            coid = intent.client_order_id
            if (
                coid in self._resting
                or intent.is_closing
                or intent.order_type != "LMT"
                or intent.limit_price is None
                or not is_working_status(state.status)
            ):
                continue
            request = _request_from_intent(intent)
            contract = replace(self._contract_spec(request), con_id=intent.con_id)
            records = await self._journal.call(journal.fills, None, None, 1000, coid)
            fills = [
                FillInfo(
                    exec_id=f.exec_id,
                    time=f.at,
                    shares=float(f.quantity),
                    price=float(f.price),
                    cum_qty=0.0,
                    avg_price=0.0,
                    commission=None,
                )
                for f in records
            ]
            spec = self._build_ibkr_order(request, venue.account())
            handle = venue.restore(contract, spec, intent.created_at, fills)
            validation = ValidationResult(approved=True, decision_id=intent.decision_id)
            rest = _Resting(request, validation, handle, 0.0, handle.expires_at)
            self._resting[coid] = rest
            self._keep_in_ledger(rest, handle.snapshot())
            await self._journal.record_event(
                "working_order_restored",
                {"client_order_id": coid, "venue": venue.name, "filled": handle.filled},
            )
            restored.append(coid)
        return restored

    async def adopt_resting(self) -> list[str]:
        """Our limit entries that reconciliation adopted at the gateway (placed before a
        restart or a reconnect, re-attached by the connection) are looked after like the ones
        this process placed: fills journaled, cancelled at the close or on a HALT. Paper only
        (the dry-run venue restores its own: :meth:`restore_working`). Returns their ids."""
        if not self.rest_entries or isinstance(self._venue, DryRunVenue):
            return []
        journal = self._journal.journal
        client_id = self._connection.client_id
        adopted: list[str] = []
        for order in self._risk_manager.exposure.working(ours=True, closing=False):
            if (
                order.ref in self._resting
                or order.local
                or not order.sent
                or not order.order_id
                or (order.client_id and order.client_id != client_id)
            ):
                continue
            handle = self._venue.find(order.order_id)
            if handle is None or handle.snapshot().is_done:
                continue
            row = await self._journal.call(journal.find_order, order.ref)
            if row is None or row.intent.is_closing or row.intent.order_type != "LMT":
                continue
            request = _request_from_intent(row.intent)
            validation = ValidationResult(approved=True, decision_id=row.intent.decision_id)
            deadline = order.deadline or self.adopted_deadline(row)
            rest = _Resting(request, validation, handle, 0.0, deadline)
            self._resting[order.ref] = rest
            self._keep_in_ledger(rest, handle.snapshot())
            adopted.append(order.ref)
        return adopted

    async def check_working(self, timeout: float = 10.0) -> list[OrderResult]:
        """Look after the resting entries (every cycle): re-price them at the venue (dry-run:
        a fresh quote against the matching rule; paper: IB matched them, the fills are on
        the Trade), and finish each one that is over: filled, cancelled by the venue, past
        its DAY deadline (cancelled), or an entry while trading is HALTED (cancelled). The
        results of those that ended are journaled like any other and returned."""
        ended: list[OrderResult] = []
        for coid, rest in list(self._resting.items()):
            handle, request = rest.handle, rest.request
            closed = rest.deadline is not None and self._clock.now() >= rest.deadline
            if not closed:  # past the close nothing fills: the executor cancels it below
                try:
                    await self._venue.refresh(handle, timeout)
                except (BrokerError, TimeoutError) as exc:
                    _log.warning(
                        "working_order_refresh_failed", client_order_id=coid, error=str(exc)
                    )
            snap = handle.snapshot()
            why = ""
            if not snap.is_done:
                now = self._clock.now()
                stopped = self._risk_manager.entries_stopped()
                if stopped is not None:
                    why = stopped
                elif rest.deadline is not None and now >= rest.deadline:
                    why = "DAY order: the session closed"
                else:
                    self._keep_in_ledger(rest, snap)
                    await self._record_new_fills(request, snap)
                    continue
                snap = await self._cancel_rest(handle, request)
            result = await self._finish(
                request, rest.validation, snap, timed_out=False, timeout=rest.timeout
            )
            if why and result.status is not OrderStatus.PENDING:
                result = replace(
                    result, rejection_reason=f"{why}; {result.rejection_reason or 'cancelled'}"
                )
            del self._resting[coid]
            await self._conclude(request, result)
            self._remember(coid, result)
            ended.append(result)
        forget = getattr(self._venue, "forget_done", None)
        if callable(forget) and not self._resting:
            forget()
        return ended

    async def _broker_status(
        self, order_id: int, coid: str, perm_id: int, timeout: float
    ) -> OrderInfo | None:
        """The venue's own view of one order (for paper: the gateway's open orders, then its
        completed orders); None when it does not hold it. Raises the broker's error when it
        cannot be asked (the order's state is then unknown: never concluded from the client's
        guess)."""
        _ = order_id
        return await self._venue.order_info(coid, perm_id, timeout)

    async def _still_working(
        self, exc: OrderRejectedError, coid: str, timeout: float
    ) -> VenueOrder | None:
        """A rejection as ib_async reports it: the handle if the gateway says the order works."""
        handle = self._venue.find(exc.order_id) if exc.order_id else None
        if handle is None:
            return None
        snap = handle.snapshot()
        if snap.confirmed_done and not is_warning_code(snap.last_error_code):
            return None
        try:
            info = await self._broker_status(handle.order_id, coid, handle.perm_id, timeout)
        except (BrokerError, TimeoutError) as err:
            raise GatewayDisconnectedError(
                f"order {handle.order_id} ended {snap.status} by the client library only "
                f"(IB {snap.last_error_code}) and the gateway could not be asked: {err}",
                order_id=handle.order_id,
            ) from err
        if info is None:
            raise GatewayDisconnectedError(
                f"order {handle.order_id} ended {snap.status} by the client library only "
                f"(IB {snap.last_error_code}); the gateway lists it nowhere yet",
                order_id=handle.order_id,
            )
        if not is_working_status(info.status):
            return None
        handle.adopt_broker_status(info.status)
        _log.warning(
            "order_live_despite_client_status",
            client_order_id=coid,
            local_status=snap.status,
            code=snap.last_error_code,
            gateway_status=info.status,
        )
        await self._journal.record_event(
            "order_warning_live",
            {
                "client_order_id": coid,
                "code": snap.last_error_code,
                "text": snap.last_error_text,
                "local_status": snap.status,
                "gateway_status": info.status,
            },
        )
        return handle

    async def _wait_broker_done(
        self,
        handle: VenueOrder,
        coid: str,
        remaining: Callable[[], float],
        *,
        entry: bool = True,
    ) -> TradeSnapshot:
        """Wait until the order is over by the gateway's word (an ib_async status set on an
        error code alone is checked against the gateway's open and completed orders). An
        entry still working when trading is HALTED or REDUCING is cancelled then and there."""
        while True:
            try:
                snap = await handle.wait_done(min(remaining(), HALT_CHECK_SECONDS))
            except BrokerTimeoutError:
                if remaining() <= 0.001:
                    raise
                stopped = self._risk_manager.entries_stopped() if entry else None
                if stopped is not None:
                    _log.warning("entry_cancelled_on_halt", client_order_id=coid, why=stopped)
                    await self._journal.record_event(
                        "entry_cancelled_on_halt",
                        {
                            "client_order_id": coid,
                            "cause": self._risk_manager.state_cause,
                            "why": stopped,
                        },
                    )
                    raise
                continue
            if snap.confirmed_done:
                return snap
            try:
                info = await self._broker_status(handle.order_id, coid, handle.perm_id, remaining())
            except (BrokerError, TimeoutError) as exc:
                _log.warning("broker_status_unavailable", client_order_id=coid, error=str(exc))
                info = None
            if info is None:
                return replace(snap, status=UNCONFIRMED)  # not final: reconciliation settles
            if is_working_status(info.status):
                handle.adopt_broker_status(info.status)
                await self._journal.record_event(
                    "order_warning_live",
                    {
                        "client_order_id": coid,
                        "code": snap.last_error_code,
                        "text": snap.last_error_text,
                        "local_status": snap.status,
                        "gateway_status": info.status,
                    },
                )
                continue
            return replace(snap, status=info.status, confirmed_done=True)

    async def _cancel_rest(self, handle: VenueOrder, request: TradeRequest) -> TradeSnapshot:
        try:
            await self._venue.cancel(handle, CANCEL_GRACE_SECONDS)
        except BrokerError as exc:
            _log.error(
                "cancel_after_timeout_failed",
                client_order_id=request.client_order_id,
                order_id=handle.order_id,
                error=str(exc),
            )
            await self._journal.record_event(
                "cancel_failed",
                {"client_order_id": request.client_order_id, "error": str(exc)},
            )
        return handle.snapshot()

    async def _record_new_fills(self, request: TradeRequest, snap: TradeSnapshot) -> None:
        """Journal the order's executions not journaled yet (the journal ignores a known exec
        id), each fed to the RiskManager once."""
        coid, side = request.client_order_id, request.action
        for fill in snap.fills:
            new = await self._venue.record_fill(
                coid, request.contract_key, request.symbol, side, snap, fill
            )
            if new:
                self._apply_fill(request, fill)

    def _apply_fill(self, request: TradeRequest, fill: FillInfo) -> int:
        """One execution of our order into the RiskManager (the ledger, the day trades), once
        per exec id; returns its signed quantity."""
        signed = int(fill.shares) if request.action == "BUY" else -int(fill.shares)
        self._risk_manager.on_fill(
            request.contract_key,
            request.symbol,
            signed,
            fill.time,
            ref=request.client_order_id,
            exec_id=fill.exec_id,
        )
        return signed

    async def record_working_fills(self) -> None:
        """Journal the fills the resting entries have had so far: a partly filled entry is
        a position of ours at once (protected like any other, not taken for a foreign one)."""
        for rest in list(self._resting.values()):
            await self._record_new_fills(rest.request, rest.handle.snapshot())

    async def _record_snapshot(self, request: TradeRequest, snap: TradeSnapshot) -> None:
        await self._journal.record_status(request.client_order_id, **_status_of(snap))

    async def _finish(
        self,
        request: TradeRequest,
        validation: ValidationResult,
        snap: TradeSnapshot,
        *,
        timed_out: bool,
        timeout: float,
        group: bool = False,
    ) -> OrderResult:
        """The order's end from the venue's snapshot. ``group``: everything the journal learns
        here (broker ids, the status, the fills and commissions, the day-trade bookkeeping
        and the result) is ONE transaction queued on the journal's worker, off the critical
        path (see ``_group_after_fill``); the fills count in memory at once."""
        coid = request.client_order_id
        unconfirmed = not snap.is_done or (
            timed_out and snap.last_error_code in CANCEL_REFUSED_CODES
        )
        if group:
            result = self._outcome(request, validation, snap, unconfirmed, timed_out, timeout)
            self._group_after_fill(request, snap, result, unconfirmed)
            return result
        if snap.perm_id:
            await self._journal.attach_broker_ids(coid, snap.order_id, snap.perm_id)
        if unconfirmed:
            await self._journal.record_status(
                coid,
                UNCONFIRMED_STATUS,
                snap.filled,
                None,
                snap.avg_fill_price if math.isfinite(snap.avg_fill_price) else None,
                error_code=snap.last_error_code,
                error_text=snap.last_error_text,
                detail={"local_status": snap.status},
            )
        else:
            await self._record_snapshot(request, snap)
        await self._record_new_fills(request, snap)
        return self._outcome(request, validation, snap, unconfirmed, timed_out, timeout)

    def _outcome(
        self,
        request: TradeRequest,
        validation: ValidationResult,
        snap: TradeSnapshot,
        unconfirmed: bool,
        timed_out: bool,
        timeout: float,
    ) -> OrderResult:
        """The OrderResult of an order's end. After a timeout the order is over only if the
        gateway says so (``unconfirmed``): ib_async marks an order Cancelled locally when a
        cancel is refused (10147 not found, 10148 / 161 not cancellable), e.g. when the cancel
        overtook a late order that then works or fills."""
        coid = request.client_order_id
        filled = round(snap.filled)
        avg = snap.avg_fill_price if math.isfinite(snap.avg_fill_price) and filled else None
        common: dict[str, Any] = {
            "ibkr_order_id": snap.order_id,
            "perm_id": snap.perm_id or None,
            "risk_validation": validation,
            "fill_price": avg,
            "fill_quantity": filled,
            "commission": snap.commission if snap.fills else None,
        }
        # THE mapping (orders.lifecycle.outcome) decides; a deadline and IB's codes add detail
        phase, final = outcome(snap.status, filled, request.quantity)
        if final is OrderStatus.FILLED:
            status = self._venue.filled_status
            reason = None
        elif unconfirmed or final is None:
            status = OrderStatus.PENDING
            reason = (
                f"no final state within {timeout:g}s and the cancel is not confirmed by the "
                f"gateway (local status {snap.status}"
                + (
                    f", IB {snap.last_error_code}: {snap.last_error_text}"
                    if snap.last_error_code
                    else ""
                )
                + f"; filled {filled} so far); reconciliation resolves it, nothing is resent"
            )
        elif final is OrderStatus.PARTIAL:
            status = OrderStatus.PARTIAL
            reason = f"filled {filled} of {request.quantity}" + (
                f"; the rest was cancelled after {timeout:g}s" if timed_out else ""
            )
        elif timed_out:
            status = OrderStatus.TIMEOUT
            reason = f"Execution timeout after {timeout:g}s: nothing filled, order cancelled"
        elif final is OrderStatus.FAILED or (
            snap.last_error_code is not None
            and snap.last_error_code != 202
            and not is_warning_code(snap.last_error_code)
        ):
            status = OrderStatus.FAILED
            reason = f"IB error {snap.last_error_code}: {snap.last_error_text} ({phase.value})"
        else:
            status = OrderStatus.CANCELLED
            reason = f"order ended {snap.status}" + (
                f" (IB {snap.last_error_code}: {snap.last_error_text})"
                if snap.last_error_code
                else ""
            )
        _log.info(
            "order_done",
            venue=self._venue.name,
            client_order_id=coid,
            symbol=request.symbol,
            status=status.value,
            filled=filled,
            fill_price=avg,
            operator_id=request.operator_id,
        )
        return self._result(
            request, status, rejection_reason=reason, error_code=snap.last_error_code, **common
        )

    @property
    def _groups_writes(self) -> bool:
        """Paper orders journal what follows the send in group commits off the critical path
        (the gateway holds the order and its executions: reconciliation re-reads them after
        a crash). The dry-run venue's book is the journal itself: its writes are awaited."""
        return isinstance(self._venue, PaperVenue)

    def _sent_writes(
        self, coid: str, order_id: int, snap: TradeSnapshot
    ) -> list[Callable[[], object]]:
        """The broker ids and the status right after the send (for the worker)."""
        store = self._journal.journal
        return [
            lambda: store.attach_broker_ids(coid, order_id, snap.perm_id or None),
            lambda: store.record_status(coid, **_status_of(snap)),
        ]

    def _group_after_fill(
        self, request: TradeRequest, snap: TradeSnapshot, result: OrderResult, unconfirmed: bool
    ) -> None:
        """Everything the journal learns at an order's end as ONE transaction, queued: the
        OrderResult does not wait for its fsync. The fills move the ledger and the day-trade
        count now (the next decision sees them; an exec id moves them once, whoever reports
        it). Crash safety: the decision and the intent were durable before the send; if the
        process dies before this commit lands, reconciliation records the order's status and
        executions from the gateway. Each write is a savepoint: one that fails (logged) does
        not take the others with it; it is owed, retried before the next journal call."""
        store = self._journal.journal
        coid = request.client_order_id
        avg = snap.avg_fill_price if math.isfinite(snap.avg_fill_price) else None
        writes: list[Callable[[], object]] = []
        if snap.perm_id:
            writes.append(lambda: store.attach_broker_ids(coid, snap.order_id, snap.perm_id))
        if unconfirmed:
            writes.append(
                lambda: store.record_status(
                    coid,
                    UNCONFIRMED_STATUS,
                    snap.filled,
                    None,
                    avg,
                    error_code=snap.last_error_code,
                    error_text=snap.last_error_text,
                    detail={"local_status": snap.status},
                )
            )
        else:
            writes.append(lambda: store.record_status(coid, **_status_of(snap)))
        day_writes: list[Callable[[], object]] = []
        landed: list[Callable[[], None]] = []
        fills: dict[str, tuple[str, int]] = {}
        with self._risk_manager.writes_into(day_writes, landed):
            for fill in snap.fills:
                if not (math.isfinite(fill.shares) and fill.shares > 0) or not (
                    math.isfinite(fill.price) and fill.price > 0
                ):  # as reconciliation does: a malformed execution is reported, not taken
                    _log.error(
                        "fill_ignored",
                        client_order_id=coid,
                        exec_id=fill.exec_id,
                        shares=fill.shares,
                        price=fill.price,
                    )
                    continue
                writes.append(functools.partial(_record_fill, store, request, snap, fill))
                fills[fill.exec_id] = (request.contract_key, self._apply_fill(request, fill))
        writes.extend(day_writes)
        writes.append(lambda: store.record_result(coid, **_result_of(result)))
        self._journal.group("order_done", writes, fills=fills, landed=landed)
        self._result_journaled.add(coid)


def _record_fill(
    store: Journal, request: TradeRequest, snap: TradeSnapshot, fill: FillInfo
) -> None:
    """On the worker: one execution and its commission (a known exec id is not written twice)."""
    store.record_fill(
        fill.exec_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        contract_key=request.contract_key,
        side=request.action,
        quantity=fill.shares,
        price=fill.price,
        at=fill.time,
        broker_order_id=snap.order_id,
        perm_id=snap.perm_id or None,
    )
    if fill.commission is not None and math.isfinite(fill.commission):
        store.record_commission(fill.exec_id, fill.commission)


def _status_of(snap: TradeSnapshot) -> dict[str, Any]:
    """A snapshot's status row (``record_status``'s arguments after the client order id)."""
    return {
        "status": snap.status,
        "filled": snap.filled,
        "remaining": snap.remaining,
        "avg_price": snap.avg_fill_price if math.isfinite(snap.avg_fill_price) else None,
        "error_code": snap.last_error_code,
        "error_text": snap.last_error_text,
    }


def _result_of(result: OrderResult) -> dict[str, Any]:
    """An OrderResult's journal row (``record_result``'s arguments after the client order id)."""
    return {
        "status": result.status,
        "broker_order_id": result.ibkr_order_id,
        "fill_price": result.fill_price,
        "fill_quantity": result.fill_quantity,
        "rejection_reason": result.rejection_reason,
        "detail": {"error_code": result.error_code, "perm_id": result.perm_id},
    }


def _reference_price(request: TradeRequest, quote: Quote) -> float | None:
    """The per-unit premium the risk manager prices the order at."""
    if request.order_type == "LMT" and request.limit_price is not None:
        return request.limit_price
    side_price = quote.ask if request.action == "BUY" else quote.bid
    for candidate in (side_price, quote.mid, quote.last):
        if candidate is not None and math.isfinite(candidate) and candidate > 0:
            return candidate
    return None


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc or 'input'}: {err.get('msg')}")
        return "; ".join(parts)
    return str(exc)
