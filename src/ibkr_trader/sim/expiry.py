"""Option expiry at the close of the last trading day, as IB does it (calendar mode).

At the close of an option's expiry day every position in it goes away:

- out of the money (by less than IB's 0.01 threshold): it expires worthless;
- in the money, long: exercised into ``multiplier x quantity`` shares at the strike (a call
  buys them, a put sells them);
- in the money, short: assigned (a short call sells the shares, a short put buys them).

Each step is booked like a fill (cash, position, realized P&L) and reported as IB reports it:
execDetails (reqId -1, order id 0, no commission) for the option leg at price 0 and for the
share leg at the strike, then position, portfolio and account updates to every subscriber.
Working orders on the expired contract are cancelled (202), and a new order for it is refused
with 200 (no security definition) from the close on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from ibkr_trader.sim import codec

if TYPE_CHECKING:
    from ibkr_trader.sim.contracts import ContractInfo
    from ibkr_trader.sim.orders import OrdersPart
    from ibkr_trader.sim.state import Action, PositionRow, ReceivedOrder

NY: Final = ZoneInfo("America/New_York")
ITM_THRESHOLD: Final = 0.01  # IB exercises what is in the money by at least this much


@dataclass(frozen=True)
class Settlement:
    """What happened to one option position at expiry."""

    account: str
    con_id: int
    quantity: float  # the option position, signed
    outcome: str  # "expired", "exercised" or "assigned"
    underlying_price: float
    shares: float = 0.0  # signed shares received (+) or delivered (-)


def expiry_close(state: OrdersPart, expiry: str) -> datetime:
    """When an option with this expiry (YYYYMMDD) stops trading: the session's close."""
    found = state._expiry_closes.get(expiry)
    if found is None:
        day = datetime.strptime(expiry[:8], "%Y%m%d").date()
        session = state.calendar.session_for_day(day) if state.calendar.calendar else None
        found = (
            session.close
            if session is not None
            else datetime(day.year, day.month, day.day, 16, 0, tzinfo=NY)
        )
        state._expiry_closes[expiry] = found
    return found


def is_expired(state: OrdersPart, sec_type: str, expiry: str, now: datetime) -> bool:
    return sec_type == "OPT" and bool(expiry) and now >= expiry_close(state, expiry)


def settle(state: OrdersPart, now: datetime) -> list[Action]:
    """Expire every option position and working order whose expiry close has passed."""
    out: list[Action] = []
    for order in state.working_orders():
        if is_expired(state, order.sec_type, order.expiry, now):
            out += state._do_cancel(order)
    due = [
        row
        for row in state.positions.values()
        if row.quantity and is_expired(state, row.contract.sec_type, row.contract.expiry, now)
    ]
    for row in due:
        out += _settle_one(state, row)
    return out


def _settle_one(state: OrdersPart, row: PositionRow) -> list[Action]:
    info = state.catalog.by_con_id(row.con_id, include_expired=True)
    if info is None:  # pragma: no cover - a position is always on a contract we listed
        return []
    close = expiry_close(state, info.expiry)
    u = state.catalog.underlying_of(info)
    stock = state.catalog.by_con_id(u.con_id)
    assert stock is not None
    spot = float(state.market.underlying_price(u.symbol, close))
    call = info.right == "C"
    intrinsic = spot - info.strike if call else info.strike - spot
    qty = row.quantity
    itm = intrinsic >= ITM_THRESHOLD
    outcome = "expired" if not itm else ("exercised" if qty > 0 else "assigned")
    out: list[Action] = []
    # the option leg: the position closes at 0 (the premium is the realized P&L)
    out += _book(state, row.account, info, -qty, 0.0, close, outcome)
    shares = 0.0
    if itm:
        shares = qty * row.multiplier * (1.0 if call else -1.0)
        out += _book(state, row.account, stock, shares, info.strike, close, outcome)
    state.settlements.append(Settlement(row.account, row.con_id, qty, outcome, spot, shares))
    out += state._after_fill(row.account, info.con_id)
    if itm:
        out += state._after_fill(row.account, stock.con_id)
    return out


def _book(
    state: OrdersPart,
    account: str,
    info: ContractInfo,
    signed: float,
    price: float,
    when: datetime,
    outcome: str,
) -> list[Action]:
    """Book one leg like a fill without an order (order id 0) and report its execution."""
    from ibkr_trader.sim.state import Execution, ReceivedOrder, Send, contract_fields

    contract = contract_fields(info)
    order: ReceivedOrder = ReceivedOrder(
        order_id=0,
        client_id=0,
        perm_id=state.take_perm_id(),
        account=account,
        action="BUY" if signed > 0 else "SELL",
        total_quantity=abs(signed),
        order_type="MKT",
        lmt_price=None,
        tif="DAY",
        order_ref=outcome,
        ext_operator="",
        con_id=info.con_id,
        symbol=info.symbol,
        sec_type=info.sec_type,
        expiry=info.expiry,
        strike=info.strike,
        right=info.right,
        status="Filled",
        filled=abs(signed),
        avg_fill_price=price,
        last_fill_price=price,
        contract=contract,
    )
    multiplier = float(info.multiplier_value)
    realized = state._apply_position(order, info, signed, price, multiplier, 0.0, when)
    acct = state.accounts[account]
    acct.cash -= signed * price * multiplier
    if realized is not None:
        acct.realized_pnl += realized
    execution = Execution(
        exec_id=state.next_exec_id(),
        order=order,
        time=when,
        side="BOT" if signed > 0 else "SLD",
        shares=abs(signed),
        price=price,
        cum_qty=abs(signed),
        avg_price=price,
        commission=0.0,
        realized_pnl=realized,
    )
    state.executions.append(execution)
    out: list[Action] = []
    for s in state.ready_sessions():
        wire = state._exec_wire(execution, -1)
        out.append(Send(s.conn_id, codec.enc_exec_details(wire, s.version)))
        out.append(
            Send(s.conn_id, codec.enc_commission_report(execution.exec_id, 0.0, "USD", realized))
        )
    return out
