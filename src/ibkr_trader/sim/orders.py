"""Orders: placing (IB's validation), modifying, cancelling, open and completed order queries."""

from __future__ import annotations

from typing import Any

from ibkr_trader.sim import codec, expiry
from ibkr_trader.sim.config import (
    ERR_NO_SECURITY,
    NY,
)
from ibkr_trader.sim.contracts import ContractInfo
from ibkr_trader.sim.fills import (
    FillsPart,
)
from ibkr_trader.sim.lifecycle import (
    ReceivedOrder,
    transition,
)
from ibkr_trader.sim.market_data import (
    contract_fields,
)
from ibkr_trader.sim.sessions import (
    Action,
    Send,
    Session,
)


def off_tick(price: float, tick: float) -> bool:
    """Not a whole, positive number of ticks (1e-9 is off the tick: zero ticks)."""
    steps = price / tick
    return round(steps) < 1 or abs(steps - round(steps)) > 1e-6


def is_wire_text(text: str, max_length: int) -> bool:
    """Printable ASCII of at most ``max_length`` (no NUL, no control characters)."""
    return len(text) <= max_length and all(" " <= ch <= "~" for ch in text)


class OrdersPart(FillsPart):
    """The orders part of :class:`~ibkr_trader.sim.state.GatewayState`."""

    def next_order_id(self, client_id: int) -> int:
        used = self._max_order_id.get(client_id, 0)
        return max(self.config.first_order_id - 1, used) + 1

    def working_orders(self) -> list[ReceivedOrder]:
        """The orders not done yet, oldest first (done ones are dropped on the way)."""
        out: list[ReceivedOrder] = []
        for key, order in list(self._working.items()):
            if order.is_done:
                del self._working[key]
            else:
                out.append(order)
        return out

    def _order_msgs(self, conn_id: int, order: ReceivedOrder) -> list[Action]:
        wire = order.wire()
        return [
            Send(conn_id, codec.enc_open_order(wire, self._version(conn_id))),
            Send(conn_id, codec.enc_order_status(wire)),
        ]

    def _req_open_orders(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            if order.client_id == session.client_id or session.client_id == 0:
                out += self._order_msgs(session.conn_id, order)
        out.append(Send(session.conn_id, codec.enc_open_order_end()))
        return out

    def _req_all_open_orders(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            out += self._order_msgs(session.conn_id, order)
        out.append(Send(session.conn_id, codec.enc_open_order_end()))
        return out

    def _req_auto_open_orders(self, session: Session, req: codec.ReqAutoOpenOrders) -> list[Action]:
        session.auto_bind = req.auto_bind
        return []

    def _req_completed_orders(
        self, session: Session, req: codec.ReqCompletedOrders
    ) -> list[Action]:
        out: list[Action] = [
            Send(session.conn_id, codec.enc_completed_order(o.wire(), session.version))
            for o in self.orders
            if o.is_done
        ]
        out.append(Send(session.conn_id, codec.enc_completed_orders_end()))
        return out

    def _new_order(
        self, session: Session, req: codec.PlaceOrder, info: ContractInfo | None
    ) -> ReceivedOrder:
        assert session.client_id is not None
        o = req.order
        c = contract_fields(info) if info is not None else req.contract
        order = ReceivedOrder(
            order_id=req.order_id,
            client_id=session.client_id,
            perm_id=self.take_perm_id(),
            account=o.account,
            action=o.action.upper(),
            total_quantity=o.total_quantity,
            order_type=o.order_type.upper(),
            lmt_price=o.lmt_price,
            tif=o.tif or "DAY",
            order_ref=o.order_ref,
            ext_operator=o.ext_operator,
            con_id=c.con_id,
            symbol=c.symbol,
            sec_type=c.sec_type,
            expiry=c.expiry,
            strike=c.strike,
            right=c.right,
            raw=req.raw,
            contract=c,
        )
        self.orders.append(order)
        self._working[(order.client_id, order.order_id)] = order
        self._max_order_id[order.client_id] = max(
            self._max_order_id.get(order.client_id, 0), order.order_id
        )
        self._orders_by_key[(order.client_id, order.order_id)] = order
        return order

    def take_perm_id(self) -> int:
        perm_id = self._next_perm_id
        self._next_perm_id += 1
        return perm_id

    def order(self, client_id: int, order_id: int) -> ReceivedOrder | None:
        return self._orders_by_key.get((client_id, order_id))

    @property
    def received_orders(self) -> list[ReceivedOrder]:
        return list(self.orders)

    def _validate(
        self, session: Session, req: codec.PlaceOrder, info: ContractInfo | None
    ) -> tuple[int, str] | None:
        o = req.order
        if info is None:
            return 200, ERR_NO_SECURITY
        if self.config.calendar and expiry.is_expired(
            self, info.sec_type, info.expiry, self.clock.now()
        ):
            return 200, ERR_NO_SECURITY  # traded until the close of its expiry day only
        if o.account and o.account not in self.accounts:
            return (
                321,
                f"Error validating request.-'bN' : cause - The account code {o.account} is not managed by this gateway",
            )
        if not o.account and len(self.accounts) > 1:
            return (
                321,
                "Error validating request.-'bN' : cause - The account code is required for this operation",
            )
        for what, text, longest in (
            ("orderRef", o.order_ref, 128),
            ("extOperator", o.ext_operator, 32),
        ):
            if not is_wire_text(text, longest):
                return (
                    321,
                    f"Error validating request.-'bN' : cause - Invalid {what}: printable ASCII "
                    f"of at most {longest} characters",
                )
        if o.action.upper() not in ("BUY", "SELL"):
            return 321, f"Error validating request.-'bN' : cause - Invalid action {o.action}"
        if o.total_quantity <= 0:
            return 434, "The order size cannot be zero"
        if o.conditions or o.algo_strategy:
            return (
                321,
                "Error validating request.-'bN' : cause - Order conditions and algos are not supported by the simulator",
            )
        otype = o.order_type.upper()
        if otype not in ("MKT", "LMT"):
            return (
                387,
                f"Unsupported order type for this exchange and security type: {o.order_type}",
            )
        if (o.tif or "DAY").upper() not in ("DAY", "GTC"):
            return (
                321,
                f"Error validating request.-'bN' : cause - Unsupported time in force {o.tif}",
            )
        if otype == "LMT":
            if o.lmt_price is None or o.lmt_price <= 0:
                return (
                    321,
                    "Error validating request.-'bN' : cause - You must specify a positive limit price",
                )
            if off_tick(o.lmt_price, info.min_tick):
                return (
                    110,
                    "The price does not conform to the minimum price variation for this contract.",
                )
        if info.sec_type == "OPT" and not float(o.total_quantity).is_integer():
            return (
                321,
                "Error validating request.-'bN' : cause - Fractional quantities are not allowed for options",
            )
        if self.faults.reject_reason is not None:
            return 201, f"Order rejected - reason:{self.faults.reject_reason}"
        return None

    def _finish(self, order: ReceivedOrder, event: str, completed: str) -> list[Action]:
        order.status = transition(order.status, event)
        order.completed_time = f"{self.clock.now().astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern"
        order.completed_status = completed
        return self._status_msgs(order, open_order=False)

    def _place_order(self, session: Session, req: codec.PlaceOrder) -> list[Action]:
        assert session.client_id is not None
        cid = session.conn_id
        existing = self._orders_by_key.get((session.client_id, req.order_id))
        if existing is not None:
            if existing.is_done:
                return [Send(cid, codec.enc_error(req.order_id, 103, "Duplicate order id"))]
            return self._modify(existing, req)
        if req.order_id <= self.next_order_id(session.client_id) - 1 or req.order_id <= 0:
            return [Send(cid, codec.enc_error(req.order_id, 103, "Duplicate order id"))]
        info = self._resolve(req.contract)
        problem = self._validate(session, req, info)
        order = self._new_order(session, req, info)
        if problem is not None:
            code, text = problem
            event = "inactivate" if code in (321, 434, 387) else "reject"
            return [
                Send(cid, codec.enc_error(req.order_id, code, text)),
                *self._finish(order, event, f"Rejected: {text}"),
            ]
        assert info is not None
        if not order.account:
            order.account = self.config.accounts[0]
        market_open = self.calendar.is_open(self.clock.now())
        order.status = transition(order.status, "accept" if market_open else "accept_closed")
        order.due = self.wall() + self.config.fill_latency
        out = self._status_msgs(order)
        if self.faults.order_warning is not None:
            out += self.order_warning(order, *self.faults.order_warning)
        if market_open and self.config.fill_latency == 0:
            out += self._try_fill(order)
        return out

    def _modify(self, order: ReceivedOrder, req: codec.PlaceOrder) -> list[Action]:
        o = req.order
        if o.total_quantity <= order.filled:
            return [
                Send(
                    s.conn_id,
                    codec.enc_error(
                        order.order_id,
                        321,
                        "Error validating request.-'bN' : cause - quantity below filled",
                    ),
                )
                for s in self._client_sessions(order.client_id)
            ]
        if order.order_type == "LMT" and o.lmt_price is not None:
            info = self.catalog.by_con_id(order.con_id)
            if info is not None and off_tick(o.lmt_price, info.min_tick):
                return self._send_to_client(
                    order.client_id,
                    codec.enc_error(
                        order.order_id,
                        110,
                        "The price does not conform to the minimum price variation for this contract.",
                    ),
                )
            order.lmt_price = o.lmt_price
        order.total_quantity = o.total_quantity
        order.order_ref = o.order_ref
        order.status = transition(order.status, "modify")
        return self._status_msgs(order)

    def _cancel_order(self, session: Session, req: codec.CancelOrder) -> list[Action]:
        assert session.client_id is not None
        order = self._orders_by_key.get((session.client_id, req.order_id))
        cid = session.conn_id
        if order is None:
            text = f"OrderId {req.order_id} that needs to be cancelled is not found."
            return [Send(cid, codec.enc_error(req.order_id, 10147, text))]
        if order.is_done:
            text = f"OrderId {req.order_id} that needs to be cancelled cannot be cancelled, state: {order.status}."
            return [Send(cid, codec.enc_error(req.order_id, 10148, text))]
        return self._do_cancel(order)

    def _do_cancel(self, order: ReceivedOrder) -> list[Action]:
        order.status = transition(order.status, "cancel")
        out = self._finish(order, "cancelled", "Cancelled by Trader")
        out += self._send_to_client(
            order.client_id, codec.enc_error(order.order_id, 202, "Order Canceled - reason:")
        )
        return out

    def _req_global_cancel(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            out += self._do_cancel(order)
        return out
