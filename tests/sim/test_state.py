"""The sans-IO gateway state in memory: start-up, order lifecycle, fills, limits, pacing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ibkr_trader.sim import codec
from ibkr_trader.sim.clock import MarketCalendar, SimClock
from ibkr_trader.sim.contracts import ContractCatalog
from ibkr_trader.sim.faults import FaultInjector
from ibkr_trader.sim.market import MarketModel
from ibkr_trader.sim.state import (
    ORDER_TRANSITIONS,
    Close,
    GatewayState,
    InvalidTransition,
    Send,
    SimConfig,
    parse_end_time,
    transition,
)

START = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York


class Wall:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def make_state(**config: object) -> tuple[GatewayState, Wall]:
    cfg = SimConfig(**config)  # type: ignore[arg-type]
    clock = SimClock(START, frozen=True)
    calendar = MarketCalendar(cfg.calendar)
    catalog = ContractCatalog(clock, calendar)
    market = MarketModel(catalog, clock, calendar, cfg.seed)
    wall = Wall()
    state = GatewayState(
        cfg,
        clock=clock,
        catalog=catalog,
        market=market,
        calendar=calendar,
        faults=FaultInjector(),
        wall=wall,
    )
    return state, wall


def ids(actions: list[Send | Close]) -> list[int]:
    return [int(a.fields[0]) if isinstance(a, Send) else -99 for a in actions]


def start(state: GatewayState, conn: int = 1, client_id: int = 1) -> list[Send | Close]:
    state.open_session(conn)
    return state.handle(conn, ["71", "2", str(client_id), ""])


def place(state: GatewayState, order_id: int, **kw: str) -> list[Send | Close]:
    spy = state.catalog.stock("SPY")
    assert spy is not None
    fields = [""] * 114
    fields[0], fields[1], fields[2] = "3", str(order_id), str(spy.con_id)
    fields[3], fields[4] = "SPY", "STK"
    fields[16] = kw.get("action", "BUY")
    fields[17] = kw.get("qty", "10")
    fields[18] = kw.get("type", "MKT")
    fields[19] = kw.get("lmt", "")
    fields[21] = "DAY"
    fields[23] = kw.get("account", "DU1234567")
    fields[26] = kw.get("ref", "r1")
    fields[89] = "0"
    fields[97] = kw.get("ext", "op")
    return state.handle(1, fields)


def test_start_api_sends_accounts_then_next_id_then_farm_notices() -> None:
    state, _ = make_state()
    out = start(state)
    assert ids(out) == [15, 9, 4, 4, 4]
    assert [a.fields[3] for a in out[2:] if isinstance(a, Send)] == [2104, 2106, 2158]


def test_requests_before_start_api_are_ignored_and_a_taken_client_id_is_closed() -> None:
    state, _ = make_state()
    state.open_session(1)
    assert state.handle(1, ["49", "1"]) == []
    start(state, conn=1, client_id=3)
    out = start(state, conn=2, client_id=3)
    assert ids(out) == [4, -99]
    assert isinstance(out[1], Close)


def test_transition_table_refuses_what_ib_would_not_do() -> None:
    assert transition("PendingSubmit", "accept") == "Submitted"
    assert transition("Submitted", "cancel") == "PendingCancel"
    with pytest.raises(InvalidTransition):
        transition("Filled", "cancel")
    assert all(
        new in {"Submitted", "PreSubmitted", "Cancelled", "Inactive", "Filled", "PendingCancel"}
        for new in ORDER_TRANSITIONS.values()
    )


def test_market_order_sequence_is_the_one_ib_sends() -> None:
    state, _ = make_state()
    start(state)
    state.handle(1, ["61", "1"])
    state.handle(1, ["6", "2", "1", "DU1234567"])
    out = place(state, 1)
    # accepted, then execDetails, openOrder(Filled), orderStatus, commission, then updates
    assert ids(out)[:6] == [5, 3, 11, 5, 3, 59]
    assert 61 in ids(out) and 7 in ids(out) and 6 in ids(out)
    status = [a.fields for a in out if isinstance(a, Send) and a.fields[0] == 3][-1]
    assert (status[2], status[9]) == ("Filled", 1)  # client id echoed
    order = state.received_orders[0]
    assert (order.order_ref, order.ext_operator, order.filled) == ("r1", "op", 10.0)


def test_buy_then_sell_books_cash_commission_and_realized_pnl() -> None:
    state, _ = make_state()
    start(state)
    place(state, 1, qty="100")
    place(state, 2, qty="100", action="SELL")
    acct = state.accounts["DU1234567"]
    assert state.positions == {}
    assert acct.commissions == 2.0
    spread = state.executions[0].price - state.executions[1].price
    assert acct.realized_pnl == pytest.approx(-spread * 100 - 2.0)
    assert acct.cash == pytest.approx(1_000_000 + acct.realized_pnl)
    assert len(acct.day_trades) == 1


def test_limit_order_rests_and_the_matcher_fills_it_when_marketable() -> None:
    state, wall = make_state()
    start(state)
    spy = state.catalog.stock("SPY")
    assert spy is not None
    limit = round(state.market.quote(spy.con_id).bid - 5, 2)
    place(state, 1, type="LMT", lmt=str(limit))
    assert state.received_orders[0].status == "Submitted"
    assert ids(state.poll()) == [] or 11 not in ids(state.poll())
    state.market.set_override("SPY", limit - 1)
    wall.t += 1
    assert 11 in ids(state.poll())
    assert state.received_orders[0].status == "Filled"


@pytest.mark.parametrize(
    ("kw", "code", "status"),
    [
        ({"account": "DU0000000"}, 321, "Inactive"),
        ({"qty": "0"}, 434, "Inactive"),
        ({"type": "LMT", "lmt": "100.001"}, 110, "Cancelled"),
        ({"type": "STP"}, 387, "Inactive"),
    ],
)
def test_invalid_orders_get_ibs_code_and_a_final_status(
    kw: dict[str, str], code: int, status: str
) -> None:
    state, _ = make_state()
    start(state)
    out = place(state, 1, **kw)
    assert out[0].fields[3] == code  # type: ignore[union-attr]
    assert state.received_orders[0].status == status


def test_duplicate_and_lower_order_ids_get_103() -> None:
    state, _ = make_state()
    start(state)
    place(state, 5)
    assert place(state, 5)[0].fields[3] == 103  # type: ignore[union-attr]
    assert place(state, 4)[0].fields[3] == 103  # type: ignore[union-attr]


def test_rate_limit_counts_messages_per_second() -> None:
    state, wall = make_state()
    start(state)
    codes = [a.fields[3] for _ in range(60) for a in state.handle(1, ["49", "1"]) if a.fields[0] == 4]  # type: ignore[union-attr]
    assert codes == [100]
    assert state.rate_violations[1] == 11  # startApi counts too: 61 messages this second
    assert state.max_messages_per_second(1) == 61
    wall.t += 1
    assert all(a.fields[0] == 49 for a in state.handle(1, ["49", "1"]))  # type: ignore[union-attr]


def test_pacing_six_requests_for_one_contract_in_two_seconds() -> None:
    state, wall = make_state()
    start(state)
    spy = state.catalog.stock("SPY")
    assert spy is not None

    def hist(duration: str) -> int:
        fields = [
            "20",
            "9",
            str(spy.con_id),
            "SPY",
            "STK",
            "",
            "0",
            "",
            "",
            "SMART",
            "",
            "USD",
            "",
            "",
            "0",
            "",
            "1 min",
            duration,
            "1",
            "TRADES",
            "2",
            "0",
            "",
        ]
        return int(state.handle(1, fields)[0].fields[0])  # type: ignore[union-attr]

    assert [hist(f"{60 * (i + 1)} S") for i in range(6)] == [17, 17, 17, 17, 17, 4]
    wall.t += 16
    assert hist("60 S") == 17


def test_end_times_in_ib_formats() -> None:
    now = datetime(2025, 1, 2, 12, tzinfo=UTC)
    assert parse_end_time("", now) == now
    assert parse_end_time("20250102 16:00:00 UTC", now) == datetime(2025, 1, 2, 16, tzinfo=UTC)
    assert parse_end_time("20250102-16:00:00", now) == datetime(2025, 1, 2, 16, tzinfo=UTC)
    assert parse_end_time("20250102 11:00:00 US/Eastern", now) == datetime(
        2025, 1, 2, 16, tzinfo=UTC
    )
    assert parse_end_time("20250102", now) == datetime(2025, 1, 3, 4, 59, 59, tzinfo=UTC)


def test_calendar_mode_holds_orders_presubmitted_while_closed() -> None:
    state, _ = make_state(calendar=True)
    state.clock.set(datetime(2025, 3, 8, 15, 0, tzinfo=UTC))  # Saturday
    start(state)
    place(state, 1)
    assert state.received_orders[0].status == "PreSubmitted"
    state.clock.set(datetime(2025, 3, 10, 15, 0, tzinfo=UTC))  # Monday 11:00 New York
    state.poll()
    assert state.received_orders[0].status == "Filled"


def test_option_avg_cost_is_per_contract_with_commission() -> None:
    state, _ = make_state()
    start(state)
    opt = state.catalog.find(
        symbol="SPY", sec_type="OPT", right="C", expiry=state.catalog.expirations("SPY")[2]
    )[40]
    fields = [""] * 114
    fields[:13] = [
        "3",
        "1",
        str(opt.con_id),
        "SPY",
        "OPT",
        opt.expiry,
        codec.fmt(opt.strike),
        "C",
        "100",
        "SMART",
        "",
        "USD",
        "",
    ]
    fields[16], fields[17], fields[18], fields[21], fields[23], fields[89] = (
        "BUY",
        "2",
        "MKT",
        "DAY",
        "",
        "0",
    )
    state.handle(1, fields)
    row = state.positions[("DU1234567", opt.con_id)]
    price = state.executions[0].price
    assert row.avg_cost == pytest.approx(price * 100 + 1.30 / 2)
    assert state.account_values("DU1234567")["OptionMarketValue"] == pytest.approx(
        2 * state.market.price(opt.con_id) * 100, abs=0.02
    )


def test_poll_and_next_order_id_read_only_the_working_orders() -> None:
    state, wall = make_state()
    start(state)
    for order_id in range(1, 301):
        place(state, order_id)  # market orders: filled at once
    spy = state.catalog.stock("SPY")
    assert spy is not None
    limit = round(state.market.quote(spy.con_id).bid - 5, 2)
    place(state, 500, type="LMT", lmt=str(limit))
    assert len(state.received_orders) == 301
    assert [o.order_id for o in state.working_orders()] == [500]
    assert len(state._working) == 1  # the filled ones were dropped, not walked every poll
    assert state.next_order_id(1) == 501
    assert state.next_order_id(2) == 1
    state.poll()
    state.handle(1, ["4", "1", "500", ""])  # cancel
    assert state.working_orders() == [] and state._working == {}
    wall.t += 1
    assert ids(state.poll()) == []


def test_perm_ids_and_exec_ids_are_unique_across_restarts() -> None:
    first, wall = make_state()
    start(first)
    for order_id in range(1, 51):
        place(first, order_id)
    wall.t += 5  # a restarted simulator, five seconds later, with the same seed
    clock = first.clock
    second = GatewayState(
        first.config,
        clock=clock,
        catalog=first.catalog,
        market=first.market,
        calendar=first.calendar,
        faults=FaultInjector(),
        wall=wall,
    )
    start(second)
    for order_id in range(1, 51):
        place(second, order_id)
    perms = [o.perm_id for o in first.received_orders + second.received_orders]
    execs = [e.exec_id for e in first.executions + second.executions]
    assert len(set(perms)) == len(perms) == 100
    assert len(set(execs)) == len(execs) == 100
    assert all(0 < p < 2**31 for p in perms)
    fixed, _ = make_state(first_perm_id=42)
    start(fixed)
    place(fixed, 1)
    assert fixed.received_orders[0].perm_id == 42


def test_a_limit_below_one_tick_and_unprintable_order_text_are_refused() -> None:
    from ibkr_trader.sim.state import off_tick

    assert off_tick(1e-9, 0.01) and off_tick(0.004, 0.01) and not off_tick(0.01, 0.01)
    state, _ = make_state()
    start(state)
    out = place(state, 1, type="LMT", lmt="0.000000001")
    assert out[0].fields[3] == 110  # type: ignore[union-attr]
    out = place(state, 2, ref="ref\x01")
    assert out[0].fields[3] == 321  # type: ignore[union-attr]
    out = place(state, 3, ext="op\x7f")
    assert out[0].fields[3] == 321  # type: ignore[union-attr]
    assert [o.status for o in state.received_orders] == ["Cancelled", "Inactive", "Inactive"]


def test_a_nul_in_an_order_field_is_answered_for_that_order() -> None:
    state, _ = make_state()
    start(state)
    spy = state.catalog.stock("SPY")
    assert spy is not None
    fields = [""] * 114
    fields[0], fields[1], fields[2], fields[3], fields[4] = "3", "7", str(spy.con_id), "SPY", "STK"
    fields[16], fields[17], fields[18], fields[21], fields[89] = "BUY", "1", "MKT", "DAY", "0"
    fields[26] = "ref\0shifted"  # what ib_async puts on the wire for such an orderRef
    wire = "\0".join(fields).split("\0")
    out = state.handle(1, wire)
    assert [(a.fields[2], a.fields[3]) for a in out if isinstance(a, Send)] == [(7, 320)]
    assert state.received_orders == []
