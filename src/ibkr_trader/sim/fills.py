"""Filling orders: the matcher, executions and commission reports, position arithmetic,
corrections.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from ibkr_trader.sim import codec
from ibkr_trader.sim.accounts import (
    AccountsPart,
    PositionRow,
)
from ibkr_trader.sim.config import (
    NY,
)
from ibkr_trader.sim.contracts import ContractInfo
from ibkr_trader.sim.history import (
    parse_end_time,
)
from ibkr_trader.sim.lifecycle import (
    Execution,
    ReceivedOrder,
    transition,
)
from ibkr_trader.sim.market_data import (
    contract_fields,
)
from ibkr_trader.sim.matching import match
from ibkr_trader.sim.sessions import (
    Action,
    Send,
    Session,
)


def commission_for(info: ContractInfo, shares: float, price: float) -> float:
    """IBKR Pro fixed-rate style: options 0.65/contract (min 1), stocks 0.005/share (min 1)."""
    if info.sec_type == "OPT":
        return round(max(1.0, 0.65 * shares), 2)
    return round(min(max(1.0, 0.005 * shares), 0.01 * shares * price), 2)


class FillsPart(AccountsPart):
    """The fills part of :class:`~ibkr_trader.sim.state.GatewayState`."""

    def _status_msgs(self, order: ReceivedOrder, open_order: bool = True) -> list[Action]:
        wire = order.wire()
        out: list[Action] = []
        if open_order:
            out += [
                Send(s.conn_id, codec.enc_open_order(wire, s.version))
                for s in self._client_sessions(order.client_id)
            ]
        out += self._send_to_client(order.client_id, codec.enc_order_status(wire))
        return out

    def _try_fill(self, order: ReceivedOrder) -> list[Action]:
        if self.faults.no_fills or order.is_done:
            return []
        if self.faults.partial_fraction is not None and order.partial_done:
            return []
        now = self.clock.now()
        if not self.calendar.is_open(now):
            return []
        out: list[Action] = []
        if order.status == "PreSubmitted":
            order.status = transition(order.status, "open")
            out += self._status_msgs(order)
        if self.faults.no_bid_ask:
            return out
        q = self.market.quote(order.con_id)
        got = match(order.action, order.order_type, order.lmt_price, order.remaining, q.bid, q.ask)
        if got is None:
            return out
        price, qty = got.price, got.quantity
        if self.faults.partial_fraction is not None:
            part = math.floor(order.total_quantity * self.faults.partial_fraction)
            qty = float(max(1, part)) if qty > 1 else qty
            qty = min(qty, order.remaining)
            order.partial_done = True
        return out + self._fill(order, qty, price, now)

    def _fill(self, order: ReceivedOrder, qty: float, price: float, now: datetime) -> list[Action]:
        info = self.catalog.by_con_id(order.con_id)
        assert info is not None
        commission = commission_for(info, qty, price)
        multiplier = float(info.multiplier_value)
        signed = qty if order.action == "BUY" else -qty
        realized = self._apply_position(order, info, signed, price, multiplier, commission, now)
        acct = self.accounts[order.account]
        acct.cash -= signed * price * multiplier + commission
        acct.commissions += commission
        if realized is not None:
            acct.realized_pnl += realized
        prev_value = order.avg_fill_price * order.filled
        order.filled += qty
        order.avg_fill_price = round((prev_value + qty * price) / order.filled, 6)
        order.last_fill_price = price
        order.commission = round(order.commission + commission, 2)
        execution = Execution(
            exec_id=self.next_exec_id(),
            order=order,
            time=now,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        event = "fill" if order.remaining <= 1e-9 else "partial_fill"
        order.status = transition(order.status, event)
        if order.status == "Filled":
            order.completed_time = f"{now.astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern"
            order.completed_status = f"Filled Size: {codec.fmt(order.filled)}"
        wire = order.wire()
        out: list[Action] = []
        for s in self._client_sessions(order.client_id):
            c = s.conn_id
            out.append(Send(c, codec.enc_exec_details(self._exec_wire(execution, -1), s.version)))
            out.append(Send(c, codec.enc_open_order(wire, s.version)))
            out.append(Send(c, codec.enc_order_status(wire)))
            out.append(
                Send(c, codec.enc_commission_report(execution.exec_id, commission, "USD", realized))
            )
        if self.faults.correct_fills:
            out += self.correct_execution(execution)
        out += self._after_fill(order.account, order.con_id)
        return out

    def order_warning(self, order: ReceivedOrder, code: int, text: str) -> list[Action]:
        """An order-level warning for a live order; its status does not change."""
        return self._send_to_client(order.client_id, codec.enc_error(order.order_id, code, text))

    def correct_execution(self, execution: Execution) -> list[Action]:
        """IB's correction of a fill: the same execution under the next exec id revision
        (``….01`` -> ``….02``), which replaces the earlier one in the execution record."""
        base, _, revision = execution.exec_id.rpartition(".")
        corrected = replace(execution, exec_id=f"{base}.{int(revision) + 1:02d}")
        self.executions = [corrected if e is execution else e for e in self.executions]
        out: list[Action] = []
        for s in self._client_sessions(execution.order.client_id):
            out += self._exec_msgs(s.conn_id, corrected, -1)
        return out

    def _apply_position(
        self,
        order: ReceivedOrder,
        info: ContractInfo,
        signed: float,
        price: float,
        multiplier: float,
        commission: float,
        now: datetime,
    ) -> float | None:
        key = (order.account, info.con_id)
        today = now.astimezone(NY).strftime("%Y%m%d")
        row = self.positions.get(key)
        if row is None:
            row = PositionRow(order.account, contract_fields(info), info.con_id, multiplier)
            self.positions[key] = row
        unit = price * multiplier
        per_unit_commission = commission / abs(signed)
        realized: float | None = None
        if row.quantity == 0 or (row.quantity > 0) == (signed > 0):
            cost = unit + per_unit_commission if signed > 0 else unit - per_unit_commission
            total = abs(row.quantity) * row.avg_cost + abs(signed) * cost
            if row.quantity == 0:
                row.opened_day = today
            row.quantity += signed
            row.avg_cost = total / abs(row.quantity)
        else:
            closing = min(abs(signed), abs(row.quantity))
            direction = 1.0 if row.quantity > 0 else -1.0
            realized = (unit - row.avg_cost) * closing * direction - commission
            row.realized_pnl += realized
            if row.opened_day == today:
                self.accounts[order.account].day_trades.append((today, info.con_id))
            row.quantity += signed
            if abs(row.quantity) < 1e-9:
                row.quantity = 0.0
            elif (row.quantity > 0) != (direction > 0):
                row.avg_cost = unit
                row.opened_day = today
        return realized

    def _after_fill(self, account: str, con_id: int) -> list[Action]:
        out: list[Action] = []
        row = self.positions[(account, con_id)]
        for s in self.ready_sessions():
            if s.positions:
                out.append(
                    Send(
                        s.conn_id,
                        codec.enc_position(account, row.contract, row.quantity, self._cost(row)),
                    )
                )
            if s.account_updates == account:
                out += [
                    a for a in self._portfolio_rows(s.conn_id, account) if self._is_row(a, con_id)
                ]
                out += self._account_values(s.conn_id, account)
                out.append(self._account_time(s.conn_id))
            for req_id, tags in s.summaries.items():
                out += self._summary_rows(s.conn_id, req_id, tags)
        if row.quantity == 0:
            del self.positions[(account, con_id)]
        return out

    @staticmethod
    def _is_row(action: Action, con_id: int) -> bool:
        return isinstance(action, Send) and action.fields[2] == con_id

    def _exec_wire(self, e: Execution, req_id: int) -> codec.ExecutionWire:
        o = e.order
        return codec.ExecutionWire(
            req_id=req_id,
            order_id=o.order_id,
            client_id=o.client_id,
            perm_id=o.perm_id,
            contract=o.contract,
            exec_id=e.exec_id,
            time=f"{e.time.astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern",
            account=o.account,
            exchange=o.contract.primary_exchange or "SMART",
            side=e.side,
            shares=e.shares,
            price=e.price,
            cum_qty=e.cum_qty,
            avg_price=e.avg_price,
            order_ref=o.order_ref,
        )

    def _exec_msgs(self, conn_id: int, e: Execution, req_id: int) -> list[Action]:
        return [
            Send(
                conn_id, codec.enc_exec_details(self._exec_wire(e, req_id), self._version(conn_id))
            ),
            Send(
                conn_id, codec.enc_commission_report(e.exec_id, e.commission, "USD", e.realized_pnl)
            ),
        ]

    def _req_executions(self, session: Session, req: codec.ReqExecutions) -> list[Action]:
        out: list[Action] = []
        since: datetime | None = None
        if req.time:
            try:
                since = parse_end_time(req.time, self.clock.now())
            except (ValueError, KeyError):
                since = None
        for e in self.executions:
            o = e.order
            if req.client_id and o.client_id != req.client_id:
                continue
            if req.account and o.account != req.account:
                continue
            if req.symbol and o.symbol != req.symbol.upper():
                continue
            if req.sec_type and o.sec_type != req.sec_type.upper():
                continue
            if req.side and e.side != {"BUY": "BOT", "SELL": "SLD"}.get(req.side.upper(), req.side):
                continue
            if since is not None and e.time < since:
                continue
            out += self._exec_msgs(session.conn_id, e, req.req_id)
        out.append(Send(session.conn_id, codec.enc_exec_details_end(req.req_id)))
        return out

    def next_exec_id(self) -> str:
        """IB's form ``<prefix>.<sequence>.01.01``; the last part is the revision."""
        self._exec_seq += 1
        return f"{self._exec_prefix}.{self._exec_seq:08x}.01.01"
