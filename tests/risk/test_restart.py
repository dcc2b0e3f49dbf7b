"""A restart never resets a governor, forgets a day trade or lifts a halt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.models import ExecutionMode, TradingState
from ibkr_trader.risk import InMemoryRiskStateStore, RiskLimits, RiskManager, RiskStateStore

from .builders import EQUITY, START, TODAY, account, closing, entry, ny_datetime, position


def restarted(store: RiskStateStore, clock: ManualClock) -> RiskManager:
    return RiskManager(RiskLimits(), store, clock)


async def decisions(rm: RiskManager) -> list[tuple[bool, list[str]]]:
    await rm.sync_positions([position(quantity=1)])
    out = []
    for request in (entry(), entry(strike=560.0), closing(held=1)):
        result = await rm.validate_trade(request)
        out.append((result.approved, result.rejection_reasons))
    return out


async def _scenario_daily_governor(store: RiskStateStore, clock: ManualClock) -> None:
    rm = restarted(store, clock)
    rm.update_account(account(EQUITY))
    rm.update_account(account(EQUITY * 0.97))
    assert rm.trading_state is TradingState.REDUCING
    before = await decisions(rm)
    again = restarted(store, clock)
    assert again.trading_state is TradingState.REDUCING
    again.update_account(account(EQUITY))  # recovered equity: still REDUCING today
    assert again.trading_state is TradingState.REDUCING
    assert again.resume("operator") is TradingState.REDUCING
    assert [a for a, _ in await decisions(again)] == [a for a, _ in before] == [False, False, True]


async def test_restart_keeps_the_daily_loss_governor() -> None:
    await _scenario_daily_governor(InMemoryRiskStateStore(), ManualClock(START))


async def test_restart_keeps_start_of_day_equity_so_the_loss_still_counts() -> None:
    store, clock = InMemoryRiskStateStore(), ManualClock(START)
    restarted(store, clock).update_account(account(EQUITY))
    clock.advance(3600)
    rm = restarted(store, clock)
    rm.update_account(account(EQUITY * 0.975))  # the first update after the restart
    assert rm.trading_state is TradingState.REDUCING


async def test_restart_keeps_the_weeks_high() -> None:
    store, clock = InMemoryRiskStateStore(), ManualClock(START)
    restarted(store, clock).update_account(account(10_600))
    clock.set(ny_datetime(TODAY + timedelta(days=2)))
    rm = restarted(store, clock)
    rm.update_account(account(10_000))
    assert "WEEKLY_DRAWDOWN" in rm.state_cause


async def test_restart_keeps_day_trades_and_open_dates() -> None:
    store, clock = InMemoryRiskStateStore(), ManualClock(START)
    rm = restarted(store, clock)
    rm.update_account(account(EQUITY))
    key = entry().contract_key
    for i in range(2):
        store.record_day_trade(f"old{i}", "SPY", TODAY - timedelta(days=1))
    rm.on_fill(key, "SPY", 1, clock.now())  # opened before the restart
    again = restarted(store, clock)
    again.update_account(account(EQUITY))
    await again.sync_positions([position(quantity=1)])
    again.on_fill(key, "SPY", -1, clock.now())  # closed after it: the third day trade
    assert again.day_trades_used() == 3
    assert not (await again.validate_trade(entry())).approved


async def test_restart_keeps_a_halt() -> None:
    store, clock = InMemoryRiskStateStore(), ManualClock(START)
    restarted(store, clock).halt("operator")
    rm = restarted(store, clock)
    rm.update_account(account(EQUITY))
    assert rm.trading_state is TradingState.HALTED
    assert [a for a, _ in await decisions(rm)] == [False, False, False]


async def test_restart_on_a_new_day_lifts_only_the_daily_governor() -> None:
    store, clock = InMemoryRiskStateStore(), ManualClock(START)
    rm = restarted(store, clock)
    rm.update_account(account(EQUITY))
    rm.update_account(account(EQUITY * 0.97))
    clock.set(ny_datetime(TODAY + timedelta(days=1), 9))
    again = restarted(store, clock)
    assert again.trading_state is TradingState.ACTIVE
    again.update_account(account(EQUITY * 0.97))
    assert (await again.validate_trade(entry())).approved


def _journal_factory(tmp_path: Path) -> Callable[[ManualClock], Any]:
    journal_mod = pytest.importorskip("ibkr_trader.journal")

    def factory(clock: ManualClock) -> Any:
        return journal_mod.Journal.open(tmp_path / "journal.sqlite", ExecutionMode.DRY_RUN, clock)

    return factory


async def test_restart_on_a_real_journal_file_makes_the_same_decisions(tmp_path: Path) -> None:
    factory = _journal_factory(tmp_path)
    clock = ManualClock(START)
    first = factory(clock)
    try:
        rm = restarted(first, clock)
        rm.update_account(account(EQUITY))
        key = entry().contract_key
        rm.on_fill(key, "SPY", 1, clock.now())
        rm.on_fill(key, "SPY", -1, clock.now())
        rm.update_account(account(EQUITY * 0.97))
        before = await decisions(rm)
    finally:
        first.close()
    second = factory(clock)
    try:
        again = restarted(second, clock)
        assert again.trading_state is TradingState.REDUCING
        assert again.day_trades_used() == 1
        again.update_account(account(EQUITY))
        assert [a for a, _ in await decisions(again)] == [a for a, _ in before]
        assert [a for a, _ in before] == [False, False, True]
    finally:
        second.close()
