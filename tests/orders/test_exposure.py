"""The exposure ledger on its own (pure: no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ibkr_trader.models import OrderStatus
from ibkr_trader.orders import ExposureLedger, Phase, WorkingOrder, exec_id_base, outcome
from ibkr_trader.orders.ids import exec_revision
from ibkr_trader.orders.lifecycle import is_done_status, is_warning_code, phase_of

KEY = "SPY:20261204:C:600"
NOW = datetime(2026, 11, 16, 15, 30, tzinfo=UTC)


def order(ref: str, action: str = "BUY", qty: int = 2, **kw: object) -> WorkingOrder:
    return WorkingOrder(ref=ref, contract_key=KEY, symbol="SPY", action=action, quantity=qty, **kw)  # type: ignore[arg-type]


def test_a_close_may_take_only_what_working_closes_leave() -> None:
    ledger = ExposureLedger()
    ledger.sync_positions({KEY: 3})
    ledger.add(order("c1", "SELL", 3, is_closing=True))
    assert ledger.closable(KEY) == 0
    ledger.on_fill("c1", KEY, -1)
    assert ledger.position(KEY) == 2 and ledger.closing_remaining(KEY) == 2
    assert ledger.closable(KEY) == 0
    ledger.sync_positions({KEY: 2})  # a sync never frees a working close
    assert ledger.closable(KEY) == 0
    ledger.finish("c1")
    assert ledger.closable(KEY) == 2


def test_working_entries_and_their_cost_count() -> None:
    ledger = ExposureLedger()
    ledger.add(order("e1", qty=3, unit_cost=250.0))
    ledger.add(order("f1", qty=1, ours=False))
    assert ledger.entry_remaining() == {KEY: 4}
    assert ledger.working_entry_cost() == 750.0
    ledger.on_fill("e1", KEY, 1)
    assert ledger.entry_remaining() == {KEY: 3} and ledger.position(KEY) == 1


def test_a_refresh_keeps_what_this_process_is_handling() -> None:
    ledger = ExposureLedger()
    ledger.add(order("approved", sent=False))
    ledger.add(order("inflight", local=True))
    ledger.add(order("gone"))
    ledger.replace_broker_view([order("broker:1", ours=False)])
    assert {o.ref for o in ledger.working()} == {"approved", "inflight", "broker:1"}


def test_deadlines_and_foreign_parts() -> None:
    ledger = ExposureLedger()
    ledger.add(order("mine", deadline=NOW - timedelta(seconds=1)))
    ledger.add(order("later", deadline=NOW + timedelta(seconds=60)))
    ledger.add(order("theirs", ours=False, deadline=NOW - timedelta(seconds=1)))
    assert [o.ref for o in ledger.expired(NOW)] == ["mine"]
    ledger.sync_positions({KEY: 5, "AAPL:STK": 500}, ours={KEY: 2})
    assert ledger.ours_quantity(KEY) == 2 and ledger.foreign_quantity(KEY) == 3
    assert ledger.foreign_positions() == {KEY: 3, "AAPL:STK": 500}
    assert ledger.status()["foreign_positions"]["AAPL:STK"] == 500


def test_one_status_table_and_one_outcome() -> None:
    assert phase_of("ValidationError") is Phase.WORKING
    assert phase_of("PendingCancel") is Phase.WORKING
    assert outcome("Filled", 2, 2) == (Phase.FILLED, OrderStatus.FILLED)
    assert outcome("Cancelled", 1, 2) == (Phase.PARTIAL, OrderStatus.PARTIAL)
    assert outcome("Inactive", 0, 2) == (Phase.FAILED, OrderStatus.FAILED)
    assert outcome("ApiCancelled", 0, 2) == (Phase.CANCELLED, OrderStatus.CANCELLED)
    assert outcome("Submitted", 0, 2) == (Phase.WORKING, None)
    assert outcome("Unconfirmed", 0, 2) == (Phase.UNKNOWN, None)
    assert is_done_status("Lost") and not is_done_status("Unknown")
    assert is_warning_code(10349) and is_warning_code(2109) and not is_warning_code(201)


def test_exec_revisions() -> None:
    assert exec_id_base("0000e0d5.00000004.01.02") == "0000e0d5.00000004.01"
    assert exec_revision("0000e0d5.00000004.01.02") == 2
    assert exec_id_base("SIM-x") == "SIM-x" and exec_revision("SIM-x") == 1
