"""IBKRConnection: one ib_async session with bounded calls, typed errors and reconnects.

What this layer changes about ib_async's defaults (see ib_protocol_facts.md section 6):

* every call takes a timeout and raises :class:`BrokerTimeoutError` (a ``TimeoutError``)
  when it passes; nothing waits forever;
* request errors are raised as typed exceptions (``RaiseRequestErrors`` plus
  :func:`~ibkr_trader.broker.errors.to_exception`), never only logged;
* a socket drop fails every pending call with :class:`GatewayDisconnectedError` at once,
  then reconnects with capped exponential backoff and jitter, publishing
  :class:`ConnectionState` to subscribers;
* a refused API session (socket closed during the handshake, client id in use) is a
  :class:`GatewayAuthenticationError` as soon as it happens, not a bare timeout;
* every message we send is counted against a :class:`MessageBudget` (< 50/s).
"""

# The interface fixes `timeout` parameters on every call (docs/dev/interfaces.md).

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from ib_async import IB
from ib_async import Order as IBOrder
from ib_async import RequestError as IBRequestError
from ib_async import Trade as IBTrade

from ibkr_trader.broker.contracts import from_ib_contract, require_qualified, to_ib_contract
from ibkr_trader.broker.errors import (
    AUTHENTICATION_CODES,
    CONNECTIVITY_LOST_CODES,
    CONNECTIVITY_RESTORED_CODES,
    FARM_BROKEN_CODES,
    FARM_INACTIVE_CODES,
    FARM_OK_CODES,
    MARKET_DATA_FARM_CODES,
    ErrorCategory,
    classify,
    to_exception,
)
from ibkr_trader.broker.exceptions import (
    BrokerError,
    BrokerTimeoutError,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayDisconnectedError,
    GatewayNotConnectedError,
    OrderRejectedError,
)
from ibkr_trader.broker.orders import OrderSpec, TradeHandle, snapshot_trade, to_ib_order
from ibkr_trader.broker.pacing import IB_ASYNC_MAX_REQUESTS, PRIORITY_ORDER, MessageBudget
from ibkr_trader.clock import Clock, SystemClock
from ibkr_trader.logging import get_logger, install_record_redaction
from ibkr_trader.models import ContractSpec

install_record_redaction()  # ib_async logs Trade/Position reprs with the account id

T = TypeVar("T")
MAX_KEPT_HANDLES: Final[int] = 512
_log = get_logger("ibkr_trader.broker.connection")

_CHECKLIST: Final[str] = (
    "Check: is IB Gateway or TWS running on {host}? is {port} its API port "
    "(IB Gateway 4001 live / 4002 paper, TWS 7496 live / 7497 paper)? is the API enabled "
    "(Configure > Settings > API > 'Enable ActiveX and Socket Clients')? is {host} a "
    "trusted IP?"
)


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class HealthStatus:
    connected: bool
    server_time: datetime | None
    market_data_available: bool
    farms: dict[str, str] = field(default_factory=dict)  # farm name -> ok / broken / inactive
    round_trip_seconds: float | None = None
    ib_servers_connected: bool = True  # False between error 1100 and 1101/1102


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    account: str
    contract: ContractSpec
    quantity: float
    avg_cost: float  # IB's: per share for stocks, per contract (x multiplier) for options


@dataclass(frozen=True, slots=True)
class PortfolioItem:
    account: str
    contract: ContractSpec
    quantity: float
    market_price: float  # per unit
    market_value: float
    avg_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """An open or completed order as the gateway reports it."""

    order_id: int
    perm_id: int
    client_id: int
    account: str
    contract: ContractSpec
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    status: str
    filled: float
    remaining: float
    avg_fill_price: float
    order_ref: str


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    account: str
    contract: ContractSpec
    time: datetime
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float | None


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished background future's exception as seen (it was handled elsewhere)."""
    if not task.cancelled():
        task.exception()


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class RequestScope:
    """One bounded call: its deadline, its ib_async futures, and what to undo on failure."""

    def __init__(self, conn: IBKRConnection, what: str, deadline: float) -> None:
        self.conn = conn
        self.what = what
        self.deadline = deadline  # time.monotonic()
        self._aborts: list[tuple[Callable[[], None], bool]] = []
        self.finished = False

    @property
    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    async def reserve(self, messages: int = 1) -> None:
        """Wait for room in the message budget, then make sure we are still connected."""
        await self.conn.message_budget.acquire(messages, self.deadline)
        self.conn.require_connected(self.what)

    def start(self, key: Any, contract: Any = None, container: Any = None) -> asyncio.Future[Any]:
        """Register an ib_async request future (wrapper.startReq), removed again on failure."""
        wrapper = self.conn.wrapper
        future: asyncio.Future[Any] = wrapper.startReq(key, contract, container)

        def forget() -> None:
            if wrapper._futures.get(key) is future:
                wrapper._futures.pop(key, None)
                wrapper._results.pop(key, None)
                wrapper._reqId2Contract.pop(key, None)

        self._aborts.append((forget, False))
        return future

    def on_abort(self, undo: Callable[[], None]) -> None:
        self._aborts.append((undo, False))

    def send_cancel(self, send: Callable[[], None]) -> None:
        """On timeout or cancellation, tell the gateway to stop (if the socket is still up).

        Not sent after an error answer: the gateway has already ended that request.
        """

        def cancel() -> None:
            if self.conn.is_connected:
                self.conn.message_budget.record(1)
                send()

        self._aborts.append((cancel, True))

    def abort(self, reason: str) -> None:
        """Undo what the request registered; ``reason``: timeout/cancelled/error/disconnect."""
        if self.finished:
            return
        self.finished = True
        stop_at_gateway = reason in ("timeout", "cancelled")
        for undo, is_cancel in reversed(self._aborts):
            if is_cancel and not stop_at_gateway:
                continue
            try:
                undo()
            except Exception as exc:  # cleanup must not mask the real error
                _log.warning("request cleanup failed", what=self.what, error=repr(exc))


class IBKRConnection:
    """One API session with IB Gateway / TWS (or the simulator)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 1,
        timeout: float = 30.0,
        clock: Clock | None = None,
        reconnect: bool = True,
        *,
        readonly: bool = False,
        account: str = "",
        message_budget: MessageBudget | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_reconnect_attempts: int | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.timeout = _check_timeout(timeout)
        self.clock: Clock = clock or SystemClock()
        self.reconnect_enabled = reconnect
        self.readonly = readonly
        self.account = account
        self.message_budget = message_budget or MessageBudget()
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_reconnect_attempts = max_reconnect_attempts
        self._rng = rng or random.Random()
        self._sleep = sleep

        self.ib = IB()
        self.ib.RaiseRequestErrors = True  # request errors end the request with RequestError
        self.ib.client.MaxRequests = IB_ASYNC_MAX_REQUESTS  # just above our own budget
        self.ib.errorEvent += self._on_error
        # ib_async answers 1102 with a fire-and-forget reqAccountSummaryAsync() task whose
        # failure (the socket dropped again) is never retrieved; we own that task instead
        self.ib.errorEvent -= self.ib._onError
        self._background: set[asyncio.Future[Any]] = set()
        self.ib.disconnectedEvent += self._on_disconnected

        self._subscribers: list[Callable[[ConnectionState], None]] = []
        self._handles: dict[int, TradeHandle] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._farms: dict[str, str] = {}
        self._ib_link_up = True
        # our session: up once ib_async's connect (with its start-up sync) has returned
        self._session_ready = False
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._handshake_refusal: asyncio.Future[str] | None = None
        self.state = ConnectionState.DISCONNECTED
        self.session = 0  # increments on every successful (re)connect
        self.reconnect_attempts = 0

    # -- state ------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """The socket is up and ib_async's connect has finished its start-up sync.

        Not ``ib.isConnected()`` alone: that is true while the sync still runs, and the sync
        asks for open orders under the request key ("openOrders") our reqAllOpenOrders uses;
        a call of ours then would replace its future and wait for an answer ib_async took."""
        return self._session_ready and bool(self.ib.isConnected())

    @property
    def client(self) -> Any:
        """ib_async's Client (broker-internal)."""
        return self.ib.client

    @property
    def wrapper(self) -> Any:
        """ib_async's Wrapper, which holds request futures and state (broker-internal)."""
        return self.ib.wrapper

    @property
    def managed_accounts(self) -> list[str]:
        if not self.is_connected:
            return []
        return list(self.ib.client.getAccounts())

    def streamed_positions(self, account: str) -> dict[str, int] | None:
        """``account``'s positions per contract key as the gateway's position stream has them
        now (ib_async keeps them from the ``reqPositions`` subscription of its start-up: the
        gateway pushes every change, whoever traded). No message is sent. None when not
        connected."""
        if not self.is_connected:
            return None
        held: dict[str, int] = {}
        for row in self.ib.wrapper.positions.get(account, {}).values():
            quantity = round(_num(row.position))
            if quantity:
                key = from_ib_contract(row.contract).key
                held[key] = held.get(key, 0) + quantity
        return held

    @property
    def server_version(self) -> int:
        return int(self.client.serverVersion())

    def subscribe(self, callback: Callable[[ConnectionState], None]) -> Callable[[], None]:
        """Call ``callback(state)`` on every state change; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, state: ConnectionState) -> None:
        self.state = state
        _log.info("connection state", state=state.value, host=self.host, port=self.port)
        for callback in list(self._subscribers):
            try:
                callback(state)
            except Exception as exc:  # a subscriber must not break the link
                _log.error("connection subscriber failed", error=repr(exc))

    def require_connected(self, what: str) -> None:
        if not self.is_connected:
            state = "reconnecting" if self.state is ConnectionState.RECONNECTING else "down"
            raise GatewayNotConnectedError(
                f"{what}: not connected to the gateway at {self.host}:{self.port} "
                f"(connection {state})"
            )

    def next_req_id(self) -> int:
        try:
            return int(self.ib.client.getReqId())
        except ConnectionError:
            raise GatewayNotConnectedError("not connected to the gateway") from None

    def _timeout_for(self, timeout: float | None) -> float:
        return _check_timeout(self.timeout if timeout is None else timeout)

    # -- connect / disconnect ---------------------------------------------------------------
    async def connect(self, timeout: float | None = None) -> None:
        """Open the API session. Raises GatewayConnectionError (with what to check),
        GatewayAuthenticationError, or BrokerTimeoutError."""
        timeout = _check_timeout(timeout if timeout is not None else self.timeout)
        if self.is_connected:
            return
        self._closing = False
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        await self._connect_once(timeout)
        self._publish(ConnectionState.CONNECTED)

    async def _connect_once(self, timeout: float) -> None:
        ib = self.ib
        self._session_ready = False
        loop = asyncio.get_running_loop()
        refusal: asyncio.Future[str] = loop.create_future()
        self._handshake_refusal = refusal

        def on_api_error(msg: str) -> None:
            if "Peer closed connection" in msg and not refusal.done():
                refusal.set_result(msg)

        def on_socket_closed(msg: str) -> None:
            if not ib.client.isReady() and not refusal.done():
                refusal.set_result(msg or "the gateway closed the socket during the handshake")

        ib.client.apiError += on_api_error
        ib.client.conn.disconnected += on_socket_closed
        where = f"{self.host}:{self.port}"
        checklist = _CHECKLIST.format(host=self.host, port=self.port)
        task = asyncio.ensure_future(
            ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=timeout,
                readonly=self.readonly,
                # never name the account here: ib_async's start-up sync would wait (until the
                # timeout) for updates of an account the gateway does not manage; the
                # integration layer checks the configured account against managedAccounts
                account="",
            )
        )
        try:
            done, _ = await asyncio.wait(
                {task, refusal}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                exc = task.exception()
                if exc is None:
                    self._on_connected()
                    return
                raise self._connect_error(exc, where, checklist, timeout) from exc
            await self._abandon(task)
            if refusal in done:
                raise GatewayAuthenticationError(
                    f"the gateway at {where} refused the API session ({refusal.result()}). "
                    f"Check: is client id {self.client_id} already in use by another "
                    "connection? is this host trusted and the API enabled?"
                )
            raise BrokerTimeoutError(
                f"no API session with {where} within {timeout:g}s: the socket opened but "
                f"the handshake did not finish. {checklist} Is client id {self.client_id} "
                "free?"
            )
        finally:
            if not task.done():  # we were cancelled (disconnect() during a reconnect)
                task.cancel()
            task.add_done_callback(_retrieve)  # its outcome is never left unretrieved
            ib.client.apiError -= on_api_error
            ib.client.conn.disconnected -= on_socket_closed
            self._handshake_refusal = None
            if not refusal.done():
                refusal.cancel()

    def _connect_error(
        self, exc: BaseException, where: str, checklist: str, timeout: float
    ) -> BrokerError:
        if isinstance(exc, BrokerError):
            return exc
        if isinstance(exc, ConnectionRefusedError):
            return GatewayConnectionError(
                f"cannot connect to the gateway at {where}: connection refused. {checklist}"
            )
        if isinstance(exc, TimeoutError):
            return BrokerTimeoutError(
                f"no API session with {where} within {timeout:g}s. {checklist}"
            )
        if isinstance(exc, OSError):
            return GatewayConnectionError(
                f"cannot connect to the gateway at {where}: {exc}. {checklist}"
            )
        if isinstance(exc, ConnectionError):
            return GatewayConnectionError(f"the gateway at {where} dropped the session: {exc}")
        return GatewayConnectionError(f"connecting to {where} failed: {exc!r}. {checklist}")

    async def _abandon(self, task: asyncio.Future[Any]) -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        self._close_ib()

    def _close_ib(self) -> None:
        """ib_async's disconnect(), which raises when the socket is open but the API session
        is not ready yet (a handshake in flight): then the socket is closed directly."""
        self._session_ready = False
        try:
            self.ib.disconnect()
        except ConnectionError:
            self.ib.client.disconnect()  # type: ignore[no-untyped-call]
            self.ib.wrapper.reset()  # type: ignore[no-untyped-call]

    def _on_connected(self) -> None:
        self.session += 1
        self._ib_link_up = True
        self._session_ready = True
        _log.info(
            "connected",
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            server_version=self.server_version,
        )

    async def disconnect(self) -> None:
        """Close the session on purpose (no reconnect)."""
        self._closing = True
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._reconnect_task = None
        for job in list(self._background):
            job.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        was_connected = self.is_connected
        self._close_ib()
        self._fail_handles("disconnect() was called")
        if was_connected or self.state is not ConnectionState.DISCONNECTED:
            self._publish(ConnectionState.DISCONNECTED)

    async def __aenter__(self) -> IBKRConnection:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.disconnect()

    # -- events -----------------------------------------------------------------------------
    def _fail_handles(self, reason: str) -> None:
        for handle in self._handles.values():
            if not handle.is_done:
                handle.fail_pending(
                    GatewayDisconnectedError(
                        f"connection lost ({reason}) while waiting on order {handle.order_id}",
                        order_id=handle.order_id,
                    )
                )

    def _on_disconnected(self) -> None:
        self._session_ready = False
        if self._closing:
            return
        _log.warning("gateway connection lost", host=self.host, port=self.port)
        self._fail_handles("socket closed")
        self._publish(ConnectionState.DISCONNECTED)
        if self.reconnect_enabled and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop())

    def backoff_delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter (attempt 1, 2, ...)."""
        exponent = max(attempt - 1, 0)
        base: float = min(self.backoff_max, self.backoff_initial * 2.0**exponent)
        return base * (0.5 + 0.5 * self._rng.random())

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._closing:
            attempt += 1
            if self.max_reconnect_attempts is not None and attempt > self.max_reconnect_attempts:
                _log.error("giving up reconnecting", attempts=attempt - 1)
                return
            self.reconnect_attempts += 1
            self._publish(ConnectionState.RECONNECTING)
            await self._sleep(self.backoff_delay(attempt))
            if self._closing:
                return
            try:
                await self._connect_once(self.timeout)
            except BrokerError as exc:
                _log.warning("reconnect failed", attempt=attempt, error=str(exc))
                continue
            self._rebind_handles()
            self._publish(ConnectionState.RESTORED)
            return

    def _rebind_handles(self) -> None:
        trades = self.ib.wrapper.trades
        for order_id, handle in self._handles.items():
            trade = trades.get((self.client_id, order_id))
            if trade is None and handle.perm_id:
                trade = self.ib.wrapper.permId2Trade.get(handle.perm_id)
            if trade is not None:
                handle.rebind(trade)

    def _on_error(self, req_id: int, code: int, text: str, _contract: Any) -> None:
        category = classify(code, text)
        if code in FARM_OK_CODES | FARM_BROKEN_CODES | FARM_INACTIVE_CODES:
            farm = text.rsplit(":", 1)[-1].strip() or str(code)
            kind = "market" if code in MARKET_DATA_FARM_CODES else "other"
            status = (
                "ok"
                if code in FARM_OK_CODES
                else "broken" if code in FARM_BROKEN_CODES else "inactive"
            )
            self._farms[f"{kind}:{farm}"] = status
        refusal = self._handshake_refusal
        if code in AUTHENTICATION_CODES and refusal is not None and not refusal.done():
            refusal.set_result(f"IB error {code}: {text}")
        if code in CONNECTIVITY_LOST_CODES:
            self._ib_link_up = False
            self._publish(ConnectionState.DISCONNECTED)
        elif code in CONNECTIVITY_RESTORED_CODES:
            self._ib_link_up = True
            self._publish(ConnectionState.RESTORED)
            if code == 1102:  # data maintained: refresh the account summary, as ib_async does
                self._spawn(self._refresh_account_summary())
        if category is ErrorCategory.WARNING:
            _log.debug("ib notice", req_id=req_id, code=code, text=text)
        else:
            _log.info("ib error", req_id=req_id, code=code, category=category.value, text=text)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        """Run a background job we own: kept until done, its failure logged, never lost."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(finished: asyncio.Future[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                _log.warning("background_job_failed", error=repr(finished.exception()))

        task.add_done_callback(done)

    async def _refresh_account_summary(self) -> None:
        if self.is_connected:
            await asyncio.wait_for(self.ib.reqAccountSummaryAsync(), self.timeout)

    # -- the bounded call ---------------------------------------------------------------------
    async def call(
        self,
        what: str,
        timeout: float,
        body: Callable[[RequestScope], Awaitable[T]],
        *,
        lock: str | None = None,
    ) -> T:
        """Run one request under ``timeout`` with typed errors (broker-internal).

        ``body`` reserves message budget, registers its ib_async futures on the scope and
        sends; on timeout, error, disconnect or cancellation the scope undoes what it
        registered (pending futures removed, cancel messages sent).
        """
        timeout = _check_timeout(timeout)
        self.require_connected(what)
        scope = RequestScope(self, what, time.monotonic() + timeout)
        try:
            async with asyncio.timeout(timeout):
                if lock is None:
                    result = await body(scope)
                else:
                    async with self._locks[lock]:
                        result = await body(scope)
            scope.finished = True
            return result
        except BrokerError as exc:
            scope.abort("disconnect" if isinstance(exc, GatewayNotConnectedError) else "error")
            raise
        except IBRequestError as exc:
            scope.abort("error")
            raise to_exception(exc.code, exc.message, req_id=exc.reqId, context=what) from None
        except TimeoutError:
            scope.abort("timeout")
            raise BrokerTimeoutError(f"{what}: no answer within {timeout:g}s") from None
        except ConnectionError as exc:
            scope.abort("disconnect")
            raise GatewayDisconnectedError(
                f"{what}: the connection to {self.host}:{self.port} dropped ({exc})"
            ) from None
        except BaseException:
            scope.abort("cancelled")
            raise

    # -- simple round trips -------------------------------------------------------------------
    async def server_time(self, timeout: float | None = None) -> datetime:
        """The gateway's clock (reqCurrentTime), aware UTC."""

        async def body(scope: RequestScope) -> datetime:
            await scope.reserve(1)
            future = scope.start("currentTime")
            self.client.reqCurrentTime()
            value: datetime = await future
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC)

        return await self.call("server time", self._timeout_for(timeout), body, lock="currentTime")

    async def health_check(self, timeout: float | None = None) -> HealthStatus:
        """A current-time round trip plus farm status and IB-link state."""
        timeout = _check_timeout(timeout if timeout is not None else self.timeout)
        if not self.is_connected:
            return HealthStatus(False, None, False, dict(self._farms))
        started = time.monotonic()
        server_now = await self.server_time(timeout)
        rtt = time.monotonic() - started
        market_broken = any(
            status == "broken" for name, status in self._farms.items() if name.startswith("market:")
        )
        return HealthStatus(
            connected=self.is_connected,
            server_time=server_now,
            market_data_available=self._ib_link_up and not market_broken,
            farms=dict(self._farms),
            round_trip_seconds=rtt,
            ib_servers_connected=self._ib_link_up,
        )

    # -- orders -------------------------------------------------------------------------------
    def _remember(self, handle: TradeHandle) -> None:
        """Keep a handle by order id; finished ones are forgotten, oldest first, past a bound
        (a long session must not grow without limit; live orders are always kept)."""
        self._handles[handle.order_id] = handle
        if len(self._handles) <= MAX_KEPT_HANDLES:
            return
        for order_id in [oid for oid, h in self._handles.items() if h.is_done]:
            if len(self._handles) <= MAX_KEPT_HANDLES // 2:
                break
            if order_id != handle.order_id:
                del self._handles[order_id]

    def trade_handle(self, order_id: int) -> TradeHandle | None:
        return self._handles.get(order_id)

    def adopt_order(self, order_id: int, client_id: int, perm_id: int = 0) -> TradeHandle | None:
        """Re-attach a handle to one of our orders still working at the gateway (reconciliation
        after a reconnect or a restart), so that its deadline can cancel it. Only an order of
        this client id can be cancelled from here; None for another's."""
        if client_id != self.client_id:
            return None
        handle = self._handles.get(order_id)
        trade = self.ib.wrapper.trades.get((client_id, order_id))
        if trade is None and perm_id:
            trade = self.ib.wrapper.permId2Trade.get(perm_id)
        if trade is None:
            return handle
        if handle is None:
            handle = TradeHandle(trade, int(trade.contract.conId or 0))
            self._remember(handle)
        elif handle.ib_trade is not trade:
            handle.rebind(trade)
        return handle

    async def place_order(
        self, contract: ContractSpec, order: OrderSpec, timeout: float | None = None
    ) -> TradeHandle:
        """Send ``order`` for a qualified ``contract`` and wait for the gateway's acknowledgement.

        Raises ContractQualificationError (con_id 0; nothing sent), OrderRejectedError (the
        gateway refused it), BrokerTimeoutError (no acknowledgement; ``order_id`` is set so the
        caller can cancel it through :meth:`cancel_order`), GatewayDisconnectedError.
        """
        require_qualified(contract, "place_order")
        if not isinstance(order, OrderSpec):
            raise TypeError("place_order takes an OrderSpec")
        timeout = _check_timeout(timeout if timeout is not None else self.timeout)
        self.require_connected("place_order")
        accounts = self.managed_accounts
        if order.account and order.account not in accounts:
            raise OrderRejectedError(
                f"account {order.account} is not managed by this gateway (managed: "
                f"{', '.join(accounts) or 'none'}); nothing was sent"
            )
        deadline = time.monotonic() + timeout
        await self.message_budget.acquire(1, deadline, PRIORITY_ORDER)
        self.require_connected("place_order")
        ib_order: IBOrder = to_ib_order(order)
        try:
            trade: IBTrade = self.ib.placeOrder(to_ib_contract(contract), ib_order)
        except ConnectionError:
            raise GatewayNotConnectedError("place_order: not connected") from None
        handle = TradeHandle(trade, contract.con_id)
        self._remember(handle)
        _log.info(
            "order sent",
            order_id=handle.order_id,
            contract=contract.key,
            action=order.action,
            quantity=order.quantity,
            order_type=order.order_type,
            order_ref=order.order_ref,
        )
        await handle.wait_acknowledged(max(deadline - time.monotonic(), 0.001))
        handle.raise_if_rejected()
        return handle

    async def cancel_order(
        self, handle_or_order_id: TradeHandle | int, timeout: float | None = None
    ) -> TradeHandle:
        """Cancel an order and wait until it is done (Cancelled, or Filled if it raced)."""
        timeout = _check_timeout(timeout if timeout is not None else self.timeout)
        if isinstance(handle_or_order_id, TradeHandle):
            handle: TradeHandle | None = handle_or_order_id
            order_id = handle_or_order_id.order_id
        else:
            order_id = int(handle_or_order_id)
            handle = self._handles.get(order_id)
        if handle is None:
            trade = self.ib.wrapper.trades.get((self.client_id, order_id))
            if trade is None:
                raise OrderRejectedError(
                    f"cancel_order: order {order_id} is unknown to this session",
                    order_id=order_id,
                )
            handle = TradeHandle(trade, int(trade.contract.conId or 0))
            self._remember(handle)
        if handle.is_done:
            return handle
        self.require_connected("cancel_order")
        deadline = time.monotonic() + timeout
        await self.message_budget.acquire(1, deadline, PRIORITY_ORDER)
        self.require_connected("cancel_order")
        try:
            self.ib.cancelOrder(handle.ib_trade.order)
        except ConnectionError:
            raise GatewayNotConnectedError("cancel_order: not connected") from None
        await handle.wait_done(max(deadline - time.monotonic(), 0.001))
        return handle

    # -- account state ------------------------------------------------------------------------
    async def get_positions(self, timeout: float | None = None) -> list[BrokerPosition]:
        """Every position of every managed account (a fresh reqPositions round trip)."""

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            future = scope.start("positions")
            self.client.reqPositions()
            rows: list[Any] = await future
            return rows

        rows = await self.call("positions", self._timeout_for(timeout), body, lock="positions")
        latest: dict[tuple[str, int], Any] = {}
        for row in rows:
            latest[(row.account, int(row.contract.conId))] = row
        return [
            BrokerPosition(
                account=row.account,
                contract=from_ib_contract(row.contract),
                quantity=_num(row.position),
                avg_cost=_num(row.avgCost),
            )
            for row in latest.values()
            if _num(row.position) != 0
        ]

    def _account(self) -> str:
        if self.account:
            return self.account
        accounts = self.managed_accounts
        return accounts[0] if len(accounts) == 1 else ""

    async def _refresh_account(self, what: str, timeout: float | None) -> str:
        account = self._account()

        async def body(scope: RequestScope) -> None:
            await scope.reserve(1)
            future = scope.start("accountValues")
            self.client.reqAccountUpdates(True, account)
            await future

        await self.call(what, self._timeout_for(timeout), body, lock="accountValues")
        return account

    async def get_portfolio(self, timeout: float | None = None) -> list[PortfolioItem]:
        """The managed account's portfolio (refreshed by an account-updates round trip)."""
        account = await self._refresh_account("portfolio", timeout)
        return [
            PortfolioItem(
                account=item.account,
                contract=from_ib_contract(item.contract),
                quantity=_num(item.position),
                market_price=_num(item.marketPrice),
                market_value=_num(item.marketValue),
                avg_cost=_num(item.averageCost),
                unrealized_pnl=_num(item.unrealizedPNL),
                realized_pnl=_num(item.realizedPNL),
            )
            for item in self.ib.portfolio(account)
        ]

    async def get_account_values(self, timeout: float | None = None) -> dict[str, str]:
        """tag -> value for the managed account (BASE currency wins over others)."""
        account = await self._refresh_account("account values", timeout)
        values: dict[str, str] = {}
        for row in self.ib.accountValues(account):
            if row.tag not in values or row.currency in ("BASE", ""):
                values[row.tag] = str(row.value)
        return values

    @staticmethod
    def _order_info(trade: IBTrade) -> OrderInfo:
        order = trade.order
        snap = snapshot_trade(trade)
        limit = _num(order.lmtPrice)
        filled_quantity = _num(getattr(order, "filledQuantity", math.nan))
        filled = snap.filled
        if math.isfinite(filled_quantity) and 0 < filled_quantity < 1e300:
            filled = max(filled, filled_quantity)
        return OrderInfo(
            order_id=int(order.orderId),
            perm_id=snap.perm_id,
            client_id=int(order.clientId),
            account=str(order.account),
            contract=from_ib_contract(trade.contract),
            action=str(order.action),
            quantity=_num(order.totalQuantity),
            order_type=str(order.orderType),
            limit_price=limit if math.isfinite(limit) and limit < 1e300 else None,
            status=snap.status,
            filled=filled,
            remaining=snap.remaining,
            avg_fill_price=snap.avg_fill_price,
            order_ref=str(order.orderRef),
        )

    async def get_open_orders(
        self, timeout: float | None = None, *, all_clients: bool = True
    ) -> list[OrderInfo]:
        """The gateway's working orders: of every client id (``reqAllOpenOrders``) unless
        ``all_clients`` is False (``reqOpenOrders``: this client's, every one for client 0).
        An order placed under a previous client id is still ours and still exposure."""

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            future = scope.start("openOrders")
            if all_clients:
                self.client.reqAllOpenOrders()
            else:
                self.client.reqOpenOrders()
            rows: list[Any] = await future
            return rows

        trades = await self.call("open orders", self._timeout_for(timeout), body, lock="openOrders")
        return [self._order_info(t) for t in trades]

    async def get_completed_orders(self, timeout: float | None = None) -> list[OrderInfo]:
        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            future = scope.start("completedOrders")
            self.client.reqCompletedOrders(False)
            rows: list[Any] = await future
            return rows

        trades = await self.call(
            "completed orders", self._timeout_for(timeout), body, lock="completedOrders"
        )
        return [self._order_info(t) for t in trades]

    async def get_executions(self, timeout: float | None = None) -> list[ExecutionInfo]:
        from ib_async import ExecutionFilter

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            req_id = self.next_req_id()
            future = scope.start(req_id)
            self.client.reqExecutions(req_id, ExecutionFilter())
            rows: list[Any] = await future
            return rows

        fills = await self.call("executions", self._timeout_for(timeout), body)
        result: list[ExecutionInfo] = []
        for fill in fills:
            execution = fill.execution
            report = fill.commissionReport
            when = execution.time if isinstance(execution.time, datetime) else fill.time
            result.append(
                ExecutionInfo(
                    exec_id=str(execution.execId),
                    order_id=int(execution.orderId),
                    perm_id=int(execution.permId),
                    client_id=int(execution.clientId),
                    account=str(execution.acctNumber),
                    contract=from_ib_contract(fill.contract),
                    time=when if when.tzinfo else when.replace(tzinfo=UTC),
                    side=str(execution.side),
                    shares=_num(execution.shares),
                    price=_num(execution.price),
                    cum_qty=_num(execution.cumQty),
                    avg_price=_num(execution.avgPrice),
                    order_ref=str(execution.orderRef),
                    commission=(
                        _num(report.commission) if report is not None and report.execId else None
                    ),
                )
            )
        return result


__all__ = [
    "BrokerPosition",
    "ConnectionState",
    "ExecutionInfo",
    "HealthStatus",
    "IBKRConnection",
    "OrderInfo",
    "PortfolioItem",
    "RequestScope",
]
