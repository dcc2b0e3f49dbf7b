"""Orders at the ib_async boundary: OrderSpec -> ib_async Order, and TradeHandle.

:class:`OrderSpec` is our description of an order (snake_case, validated, immutable).
:class:`TradeHandle` wraps ib_async's live ``Trade``: callers read frozen
:class:`TradeSnapshot` copies and await :meth:`TradeHandle.wait_done`, which is built on the
Trade's events (``statusEvent`` / ``filledEvent`` / ``cancelledEvent``), never on polling.
"Done" is not "filled": Cancelled, ApiCancelled and Inactive are done too; read
``snapshot.is_filled``.
"""

# The interface fixes `timeout` parameters on every call (docs/dev/interfaces.md).

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ib_async import Order as IBOrder
from ib_async import Trade as IBTrade
from ib_async import TradeLogEntry

from ibkr_trader.broker.exceptions import (
    BrokerError,
    BrokerTimeoutError,
    GatewayDisconnectedError,
    OrderRejectedError,
)
from ibkr_trader.orders.ids import exec_id_base, exec_revision
from ibkr_trader.orders.lifecycle import IB_ACKNOWLEDGED_STATUSES, IB_DONE_STATUSES

# the one IB-status vocabulary lives in orders.lifecycle (pure: it imports only models)
DONE_STATES: Final[frozenset[str]] = IB_DONE_STATUSES
ACKNOWLEDGED_STATES: Final[frozenset[str]] = IB_ACKNOWLEDGED_STATUSES
VALID_ACTIONS: Final[frozenset[str]] = frozenset({"BUY", "SELL"})
VALID_ORDER_TYPES: Final[frozenset[str]] = frozenset({"MKT", "LMT"})
VALID_TIFS: Final[frozenset[str]] = frozenset({"DAY", "GTC", "IOC", "OPG", "FOK"})
_LOG_PREFIX = re.compile(r"^(Error|Warning) \d+, reqId -?\d+: ")


ORDER_REF_MAX: Final = 128
EXT_OPERATOR_MAX: Final = 32
ACCOUNT_MAX: Final = 32


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order on our side of the boundary (validated on construction).

    ``order_ref`` travels to IB as ``orderRef`` (our client order id), ``ext_operator`` as
    ``extOperator`` (the operator id), ``account`` must be one of the gateway's managed
    accounts (empty: the gateway's default).
    """

    action: str
    quantity: int
    order_type: str = "LMT"
    limit_price: float | None = None
    tif: str = "DAY"
    order_ref: str = ""
    ext_operator: str = ""
    account: str = ""
    outside_rth: bool = False

    def __post_init__(self) -> None:
        action = self.action.upper()
        order_type = {"MARKET": "MKT", "LIMIT": "LMT"}.get(
            self.order_type.upper(), self.order_type.upper()
        )
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "order_type", order_type)
        object.__setattr__(self, "tif", self.tif.upper())
        if action not in VALID_ACTIONS:
            raise ValueError(f"action must be BUY or SELL, got {self.action!r}")
        if order_type not in VALID_ORDER_TYPES:
            raise ValueError(f"order_type must be MKT or LMT, got {self.order_type!r}")
        if self.tif not in VALID_TIFS:
            raise ValueError(f"unsupported tif {self.tif!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise ValueError("quantity must be an int")
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")
        if order_type == "LMT":
            if (
                self.limit_price is None
                or not math.isfinite(self.limit_price)
                or self.limit_price <= 0
            ):
                raise ValueError("a LMT order needs a positive, finite limit_price")
        elif self.limit_price is not None:
            raise ValueError("a MKT order must not carry a limit_price")
        for name, value, longest in (
            ("order_ref", self.order_ref, ORDER_REF_MAX),
            ("ext_operator", self.ext_operator, EXT_OPERATOR_MAX),
            ("account", self.account, ACCOUNT_MAX),
        ):
            if len(value) > longest or not all(" " <= ch <= "~" for ch in value):
                # a NUL would end the field on the wire and shift every later one
                raise ValueError(
                    f"{name} must be printable ASCII of at most {longest} characters, "
                    f"got {value!r}"
                )


def to_ib_order(spec: OrderSpec) -> IBOrder:
    """A fresh ib_async Order for ``spec`` (transmit=True, never outside RTH unless asked)."""
    order = IBOrder(
        action=spec.action,
        totalQuantity=spec.quantity,
        orderType=spec.order_type,
        tif=spec.tif,
        orderRef=spec.order_ref,
        account=spec.account,
        transmit=True,
        outsideRth=spec.outside_rth,
    )
    if spec.ext_operator:
        order.extOperator = spec.ext_operator
    if spec.order_type == "LMT" and spec.limit_price is not None:
        order.lmtPrice = float(spec.limit_price)
    return order


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True, slots=True)
class FillInfo:
    """One execution of the order (copied from ib_async's Fill)."""

    exec_id: str
    time: datetime
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float | None  # None until the commission report arrives


@dataclass(frozen=True, slots=True)
class TradeSnapshot:
    """A frozen copy of an order's state at one moment."""

    order_id: int
    perm_id: int
    client_id: int
    status: str
    filled: float
    remaining: float
    avg_fill_price: float
    last_fill_price: float
    fills: tuple[FillInfo, ...]
    order_ref: str
    last_error_code: int | None
    last_error_text: str | None
    advanced_error: str = ""
    # the done status came from the gateway's own orderStatus (not from ib_async's guess on
    # an error code: it marks live orders Cancelled on codes outside its warning list)
    confirmed_done: bool = False

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    @property
    def is_filled(self) -> bool:
        return self.status == "Filled"

    @property
    def is_rejected(self) -> bool:
        """Done without a single fill (Cancelled / ApiCancelled / Inactive, nothing filled)."""
        return self.is_done and not self.is_filled and self.filled <= 0

    @property
    def commission(self) -> float:
        return sum(f.commission for f in self.fills if f.commission is not None)


def snapshot_trade(trade: IBTrade) -> TradeSnapshot:
    """Copy everything a caller may read from a live ib_async Trade."""
    status = trade.orderStatus
    fills: list[FillInfo] = []
    for fill in trade.fills:
        execution = fill.execution
        report = fill.commissionReport
        commission: float | None = None
        if report is not None and report.execId:
            commission = _float(report.commission)
        # the broker's time of the execution (its clock); the local receipt time otherwise
        broker_time = getattr(execution, "time", None)
        if isinstance(broker_time, datetime) and broker_time.tzinfo is not None:
            fill_time = broker_time
        else:
            fill_time = fill.time if isinstance(fill.time, datetime) else datetime.now(UTC)
        fills.append(
            FillInfo(
                exec_id=str(execution.execId),
                time=fill_time,
                shares=_float(execution.shares),
                price=_float(execution.price),
                cum_qty=_float(execution.cumQty),
                avg_price=_float(execution.avgPrice),
                commission=commission,
            )
        )
    # a correction (exec id X.02) replaces the execution it corrects (X.01): count it once
    latest: dict[str, FillInfo] = {}
    for f in fills:
        base = exec_id_base(f.exec_id)
        kept = latest.get(base)
        if kept is None or exec_revision(f.exec_id) >= exec_revision(kept.exec_id):
            latest[base] = f
    filled_by_fills = sum(f.shares for f in latest.values())
    filled = max(_float(status.filled), filled_by_fills)
    total = _float(trade.order.totalQuantity)
    remaining = _float(status.remaining)
    if status.status in DONE_STATES or remaining <= 0 or math.isnan(remaining):
        remaining = 0.0 if status.status in DONE_STATES else max(total - filled, 0.0)
    code: int | None = None
    text: str | None = None
    for entry in reversed(trade.log):
        if entry.errorCode:
            code = int(entry.errorCode)
            text = _LOG_PREFIX.sub("", str(entry.message)).split(", contract: ")[0]
            break
    confirmed = status.status in DONE_STATES and any(
        entry.status == status.status and not entry.errorCode for entry in trade.log
    )
    return TradeSnapshot(
        confirmed_done=confirmed or (status.status == "Filled"),
        order_id=int(trade.order.orderId),
        perm_id=int(trade.order.permId or status.permId or 0),
        client_id=int(trade.order.clientId),
        status=str(status.status),
        filled=filled,
        remaining=remaining,
        avg_fill_price=_float(status.avgFillPrice),
        last_fill_price=_float(status.lastFillPrice),
        fills=tuple(fills),
        order_ref=str(trade.order.orderRef),
        last_error_code=code,
        last_error_text=text,
        advanced_error=str(trade.advancedError or ""),
    )


class TradeHandle:
    """Our handle on one placed order. Read :meth:`snapshot`; await :meth:`wait_done`.

    Created by ``IBKRConnection.place_order``; the connection fails every pending wait with
    :class:`GatewayDisconnectedError` when the socket drops, and re-binds the handle to the
    gateway's copy of the order after a reconnect.
    """

    def __init__(self, trade: IBTrade, con_id: int) -> None:
        self._trade = trade
        self.con_id = con_id
        self.order_id = int(trade.order.orderId)
        self._waiters: dict[asyncio.Future[TradeSnapshot], Callable[[IBTrade], bool]] = {}
        self._disconnected: BrokerError | None = None
        self._bind(trade)

    # -- ib_async event plumbing -------------------------------------------------------
    def _bind(self, trade: IBTrade) -> None:
        self._trade = trade
        trade.statusEvent += self._on_event
        trade.filledEvent += self._on_event
        trade.cancelledEvent += self._on_event

    def _unbind(self) -> None:
        trade = self._trade
        trade.statusEvent -= self._on_event
        trade.filledEvent -= self._on_event
        trade.cancelledEvent -= self._on_event

    def rebind(self, trade: IBTrade) -> None:
        """Follow a new ib_async Trade for the same order (after a reconnect)."""
        self._unbind()
        self._disconnected = None
        self._bind(trade)

    def _on_event(self, *_args: Any) -> None:
        for waiter, check in list(self._waiters.items()):
            if not waiter.done() and check(self._trade):
                waiter.set_result(self.snapshot())

    def fail_pending(self, error: BrokerError) -> None:
        """Fail every pending wait (the connection dropped)."""
        self._disconnected = error
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_exception(error)

    # -- public ---------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self._trade.orderStatus.status)

    @property
    def perm_id(self) -> int:
        return int(self._trade.order.permId or self._trade.orderStatus.permId or 0)

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    def snapshot(self) -> TradeSnapshot:
        """A frozen copy of the order's state now."""
        return snapshot_trade(self._trade)

    @property
    def ib_trade(self) -> IBTrade:
        """The wrapped ib_async Trade (broker-internal use)."""
        return self._trade

    async def _wait(
        self, check: Callable[[IBTrade], bool], timeout: float, what: str
    ) -> TradeSnapshot:
        if check(self._trade):
            return self.snapshot()
        if self._disconnected is not None:
            raise GatewayDisconnectedError(
                f"connection lost while waiting for order {self.order_id} to {what}; "
                "its state at the gateway is unknown",
                order_id=self.order_id,
            )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[TradeSnapshot] = loop.create_future()
        self._waiters[waiter] = check
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError as exc:
            if isinstance(exc, BrokerError):
                raise
            raise BrokerTimeoutError(
                f"order {self.order_id} did not {what} within {timeout:g}s "
                f"(status {self.status})",
                order_id=self.order_id,
            ) from None
        finally:
            self._waiters.pop(waiter, None)

    async def wait_done(self, timeout: float) -> TradeSnapshot:
        """Wait until the order is done (Filled, Cancelled, ApiCancelled or Inactive).

        Raises BrokerTimeoutError when ``timeout`` passes first (the order is still live:
        cancel it), GatewayDisconnectedError when the connection drops.
        """
        return await self._wait(lambda t: t.orderStatus.status in DONE_STATES, timeout, "finish")

    async def wait_acknowledged(self, timeout: float) -> TradeSnapshot:
        """Wait until the gateway has acknowledged the order (or finished it)."""

        def acknowledged(trade: IBTrade) -> bool:
            return trade.orderStatus.status in ACKNOWLEDGED_STATES or any(
                entry.errorCode for entry in trade.log
            )

        return await self._wait(acknowledged, timeout, "be acknowledged")

    def adopt_broker_status(self, status: str) -> None:
        """The gateway's word on this order's status (from its open orders) replaces a status
        ib_async set on its own, so that waiting on the order goes on while it works."""
        trade = self._trade
        if trade.orderStatus.status != status:
            trade.orderStatus.status = status
            trade.log.append(
                TradeLogEntry(datetime.now(UTC), status, "status from the gateway's open orders")
            )

    def raise_if_rejected(self) -> None:
        """Raise OrderRejectedError if the order finished without a fill."""
        snap = self.snapshot()
        if snap.is_rejected:
            reason = snap.last_error_text or f"order ended {snap.status}"
            raise OrderRejectedError(
                f"order {snap.order_id} rejected: {reason}",
                code=snap.last_error_code,
                text=snap.last_error_text,
                order_id=snap.order_id,
            )

    def __repr__(self) -> str:
        return f"TradeHandle(order_id={self.order_id}, status={self.status})"


__all__ = [
    "DONE_STATES",
    "FillInfo",
    "IBOrder",
    "OrderSpec",
    "TradeHandle",
    "TradeSnapshot",
    "snapshot_trade",
    "to_ib_order",
]
