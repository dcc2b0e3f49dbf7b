"""Found by an adversarial review of issue 18's journal changes (each test failed before its
fix): the day-trade state of a fill visible until its group commits, a write that fails for
another reason than the disk never blocks the journal, a landed fill never counted twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import AsyncJournal, JournalError
from ibkr_trader.models import ExecutionMode
from ibkr_trader.risk import RiskLimits, RiskManager
from risk.builders import START as RISK_START
from risk.builders import TODAY, account, entry

from .conftest import build_request, build_result

DRY = ExecutionMode.DRY_RUN
START = datetime(2025, 7, 8, 15, 0, tzinfo=UTC)


async def test_an_open_date_is_read_from_memory_until_its_group_commits(tmp_path: Path) -> None:
    clock = ManualClock(START)
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        rm = RiskManager(RiskLimits(), aj.journal, clock)
        key = "SPY:20250722:C:550"
        batch: list[Callable[[], object]] = []
        landed: list[Callable[[], None]] = []
        with rm.writes_into(batch, landed):
            rm.on_fill(key, "SPY", 1, clock.now(), exec_id="e-open")  # opening fill
        release = threading.Event()
        # the rest of the same group commit (more writes, the commit's fsync) still running
        aj.group("order_done", [*batch, lambda: release.wait(5)], landed=landed)
        await asyncio.sleep(0.05)
        seen = rm._day_state(f"open_date:{key}")
        threading.Timer(0.3, release.set).start()
        rm.on_fill(key, "SPY", -1, clock.now(), exec_id="e-close")  # a same-day exit
        await aj.drain()
        assert seen is not None
        assert rm.day_trades_used() == 1, "the round trip was not counted as a day trade"


async def test_the_pdt_reserve_holds_while_the_fill_group_commits(tmp_path: Path) -> None:
    clock = ManualClock(RISK_START)
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        rm = RiskManager(RiskLimits(), aj.journal, clock)
        rm.update_account(account(10_000.0))
        aj.journal.record_day_trade("SPY:A", "SPY", TODAY - timedelta(days=1))
        aj.journal.record_day_trade("SPY:B", "SPY", TODAY - timedelta(days=1))
        first = entry()
        rm.note_approved(first)
        batch: list[Callable[[], object]] = []
        landed: list[Callable[[], None]] = []
        with rm.writes_into(batch, landed):
            rm.on_fill(first.contract_key, "SPY", 1, clock.now(), exec_id="e1")
        rm.exposure.finish(first.client_order_id or "")
        release = threading.Event()
        aj.group("order_done", [*batch, lambda: release.wait(5)], landed=landed)
        await asyncio.sleep(0.05)
        inside = rm.evaluate_trade(entry(strike=555.0, signal_id="y"))
        release.set()
        await aj.drain()
        after = rm.evaluate_trade(entry(strike=555.0, signal_id="z"))
        assert not inside.approved, "approved inside the commit window: PDT reserve lost"
        assert not after.approved


async def test_a_grouped_write_that_fails_for_ever_never_blocks_later_decisions(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        store = aj.journal
        request = build_request(client_order_id="c-1", signal_id="s-1")
        await aj.record_decision_and_intent(request, build_result())
        fill = {
            "client_order_id": "c-1",
            "symbol": "SPY",
            "contract_key": request.contract_key,
            "side": "BUY",
            "quantity": 1,
            "price": 0.0,  # refused by the journal's checks (ValueError), not by the disk
        }
        aj.group("order_done", [lambda: store.record_fill("e-zero", **fill)])
        aj.group("x", [lambda: store.record_commission("e-1", float("nan"))])
        await aj.drain()
        following = build_request(client_order_id="c-2", signal_id="s-2")
        await asyncio.wait_for(aj.record_decision_and_intent(following, build_result()), 5.0)
        assert await aj.call(store.schema_version) >= 1  # an unrelated read works
        assert aj.owed == []  # the write that can never succeed was dropped (logged)


async def test_a_landed_fill_is_not_counted_again_when_another_write_is_owed(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock) as aj:
        store = aj.journal
        request = build_request(client_order_id="c-1", signal_id="s-1")
        await aj.record_decision_and_intent(request, build_result())
        key = request.contract_key

        def refused() -> None:
            raise JournalError("test: refused")

        aj.group(
            "order_done",
            [
                lambda: store.record_fill(
                    "e-1",
                    client_order_id="c-1",
                    symbol="SPY",
                    contract_key=key,
                    side="BUY",
                    quantity=1,
                    price=1.5,
                ),
                refused,  # the result row, say
            ],
            fills={"e-1": (key, 1)},
        )
        assert await aj.our_net_positions() == {key: 1}
        assert aj.owed  # the refused write waits


async def test_a_decision_queued_as_the_journal_closes_fails_instead_of_waiting(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    aj = await AsyncJournal.open(tmp_path / "j.sqlite3", DRY, clock)
    pending = asyncio.ensure_future(
        aj.record_decision_and_intent(build_request(client_order_id="c-9"), build_result())
    )
    await asyncio.sleep(0)  # queued; its submit runs at the loop's next turn
    aj._closed = True  # as aclose sets it
    with pytest.raises(JournalError):
        await asyncio.wait_for(pending, 5.0)
    aj._closed = False
    await aj.aclose()
