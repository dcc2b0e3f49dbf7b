"""The dry-run simulated book: cash and positions move together, once per exec id."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibkr_trader.journal import Journal, JournalError
from ibkr_trader.models import ContractSpec, ExecutionMode

CALL = ContractSpec(symbol="SPY", expiry="20260320", strike=580.0, right="C", con_id=7)


def test_initial_cash_is_seeded_once(journal: Journal) -> None:
    assert journal.simulated_cash() is None
    assert journal.seed_simulated_cash(10_000.0) is True
    assert journal.seed_simulated_cash(50_000.0) is False
    assert journal.simulated_cash() == 10_000.0
    assert journal.simulated_initial_cash() == 10_000.0


def test_fill_before_seeding_is_refused(journal: Journal) -> None:
    with pytest.raises(JournalError, match="seed"):
        journal.apply_simulated_fill(
            exec_id="s1", client_order_id=None, contract=CALL, action="BUY", quantity=1, price=1.0
        )


def test_buy_then_partial_sell_updates_cash_position_and_realized_pnl(journal: Journal) -> None:
    journal.seed_simulated_cash(10_000.0)
    buy = journal.apply_simulated_fill(
        exec_id="s1",
        client_order_id=None,
        contract=CALL,
        action="BUY",
        quantity=2,
        price=1.50,
        commission=1.30,
    )
    assert buy.cash == pytest.approx(10_000 - 300 - 1.30)
    # IB's convention (ibkr_trader.book): the average cost carries the opening commission
    assert buy.position_quantity == 2
    assert buy.avg_price == pytest.approx(1.5 + 1.30 / 200)

    add = journal.apply_simulated_fill(
        exec_id="s2", client_order_id=None, contract=CALL, action="BUY", quantity=2, price=2.50
    )
    assert add.avg_price == pytest.approx((2 * 1.5065 + 2 * 2.5) / 4)

    sell = journal.apply_simulated_fill(
        exec_id="s3", client_order_id=None, contract=CALL, action="SELL", quantity=3, price=3.0
    )
    assert sell.realized_pnl == pytest.approx((3.0 - 2.00325) * 3 * 100)
    assert sell.position_quantity == 1
    (pos,) = journal.simulated_positions()
    assert (pos.quantity, pos.multiplier, pos.con_id) == (1, 100, 7)
    assert pos.avg_price == pytest.approx(2.00325)
    assert pos.contract.key == CALL.key
    assert journal.simulated_cash() == pytest.approx(10_000 - 1.30 - 300 - 500 + 900)
    assert [f.simulated for f in journal.fills()] == [True, True, True]


def test_closing_to_flat_removes_the_position(journal: Journal) -> None:
    journal.seed_simulated_cash(1_000.0)
    journal.apply_simulated_fill(
        exec_id="a", client_order_id=None, contract=CALL, action="BUY", quantity=1, price=1.0
    )
    out = journal.apply_simulated_fill(
        exec_id="b", client_order_id=None, contract=CALL, action="SELL", quantity=1, price=0.5
    )
    assert out.realized_pnl == pytest.approx(-50.0)
    assert journal.simulated_positions() == []
    assert journal.simulated_cash() == pytest.approx(950.0)


def test_short_position_flip_opens_remainder_at_fill_price(journal: Journal) -> None:
    journal.seed_simulated_cash(1_000.0)
    journal.apply_simulated_fill(
        exec_id="a", client_order_id=None, contract=CALL, action="SELL", quantity=1, price=2.0
    )
    out = journal.apply_simulated_fill(
        exec_id="b", client_order_id=None, contract=CALL, action="BUY", quantity=3, price=3.0
    )
    assert out.realized_pnl == pytest.approx(-100.0)  # short at 2, covered at 3
    assert (out.position_quantity, out.avg_price) == (2, 3.0)


def test_duplicate_simulated_exec_id_changes_nothing(journal: Journal) -> None:
    journal.seed_simulated_cash(1_000.0)
    kwargs = {"client_order_id": None, "contract": CALL, "action": "BUY", "quantity": 1}
    journal.apply_simulated_fill(exec_id="a", price=1.0, **kwargs)  # type: ignore[arg-type]
    again = journal.apply_simulated_fill(exec_id="a", price=1.0, **kwargs)  # type: ignore[arg-type]
    assert again.duplicate is True
    assert journal.simulated_cash() == pytest.approx(900.0)
    assert journal.simulated_positions()[0].quantity == 1


def test_zero_price_simulated_fill_is_refused_and_book_untouched(journal: Journal) -> None:
    journal.seed_simulated_cash(1_000.0)
    with pytest.raises(ValueError):
        journal.apply_simulated_fill(
            exec_id="z", client_order_id=None, contract=CALL, action="BUY", quantity=1, price=0.0
        )
    assert journal.simulated_cash() == 1_000.0
    assert journal.fills() == []


def test_paper_journal_has_no_simulated_book(tmp_path: Path) -> None:
    with (
        Journal.open(tmp_path / "p.sqlite3", ExecutionMode.PAPER) as paper,
        pytest.raises(JournalError, match="dry_run"),
    ):
        paper.apply_simulated_fill(
            exec_id="x", client_order_id=None, contract=CALL, action="BUY", quantity=1, price=1
        )
