"""Issue 18's journal: one transaction for several writes (each a savepoint), decisions and
intents that queue up sharing one commit, group commits queued off the critical path, and
what a refused group write becomes (owed, retried, still counted as ours)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import AsyncJournal, Journal, JournalError
from ibkr_trader.models import ExecutionMode, TradeRequest, ValidationResult

DRY = ExecutionMode.DRY_RUN


def test_a_write_that_fails_inside_a_transaction_is_undone_alone(journal: Journal) -> None:
    with journal.transaction("test"):
        journal.record_event("kept", {"n": 1})
        with pytest.raises(JournalError):
            journal.record_status("no-such-order", "Submitted")  # no intent: refused
        journal.record_event("kept", {"n": 2})
    assert [e.detail["n"] for e in journal.events(kind="kept")] == [1, 2]


def test_an_error_out_of_a_transaction_undoes_all_of_it(journal: Journal) -> None:
    with pytest.raises(RuntimeError), journal.transaction("test"):
        journal.record_event("gone", {"n": 1})
        raise RuntimeError("boom")
    assert journal.events(kind="gone") == []


def test_decision_and_intent_are_one_transaction(
    journal: Journal,
    make_request: Callable[..., TradeRequest],
    make_result: Callable[..., ValidationResult],
) -> None:
    request = make_request()
    decision_id, intent = journal.record_decision_and_intent(request, make_result(), con_id=7)
    assert not intent.existed and intent.intent.decision_id == decision_id
    again_id, again = journal.record_decision_and_intent(request, make_result())
    assert again.existed and again_id != decision_id  # a second decision; the intent is the first


async def test_decisions_that_queue_up_share_one_commit_and_fail_alone(
    tmp_path: Path,
    clock: ManualClock,
    make_request: Callable[..., TradeRequest],
    make_result: Callable[..., ValidationResult],
) -> None:
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        commits = 0
        original = aj.journal.run_group

        def counting(op: str, writes: Callable[[], object]) -> None:
            nonlocal commits
            commits += 1
            original(op, writes)

        aj.journal.run_group = counting  # type: ignore[method-assign]
        requests = [make_request(signal_id=f"s{i}", client_order_id=f"c{i}") for i in range(20)]
        bad = make_request(signal_id="bad", client_order_id="bad", operator_id=" ")
        outcomes = await asyncio.gather(
            *(aj.record_decision_and_intent(r, make_result()) for r in [*requests, bad]),
            return_exceptions=True,
        )
        assert commits == 1
        assert isinstance(outcomes[-1], ValueError)  # an intent needs an operator id
        assert all(isinstance(o, tuple) for o in outcomes[:-1])
        assert {r.intent.client_order_id for r in aj.journal.orders()} == {
            f"c{i}" for i in range(20)
        }


async def test_a_group_lands_before_the_next_call_and_a_refused_write_is_owed(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        refused = True

        def flaky() -> None:
            if refused:
                raise JournalError("test: the disk is full")
            aj.journal.record_event("late", {})

        aj.group("test", [lambda: aj.journal.record_event("now", {}), flaky])
        assert [e.kind for e in await aj.call(aj.journal.events)] == ["now"]
        assert aj.owed  # the refused write waits
        refused = False
        await aj.call(lambda: None)  # the next call pays it first
        assert aj.owed == []
        assert sorted(e.kind for e in aj.journal.events()) == ["late", "now"]


async def test_fills_not_landed_yet_are_ours(tmp_path: Path, clock: ManualClock) -> None:
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:

        def refused() -> None:
            raise JournalError("test: the disk is full")

        aj.group("fill", [refused], fills={"e1": ("SPY:20260320:C:580", 2)})
        assert await aj.our_net_positions() == {"SPY:20260320:C:580": 2}
