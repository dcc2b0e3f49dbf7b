"""RiskManager: decisions, trading states, governors, PDT bookkeeping, the kill switch."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.models import AccountSnapshot, TradingState
from ibkr_trader.risk import InMemoryRiskStateStore, RiskLimits, RiskManager, killswitch
from ibkr_trader.risk.config import LimitLoosenError

from .builders import (
    EQUITY,
    START,
    TODAY,
    account,
    closing,
    entry,
    make_manager,
    ny_datetime,
    position,
)


async def test_valid_entry_is_approved_and_journaled_with_its_id() -> None:
    rm, store, _ = make_manager()
    result = await rm.validate_trade(entry())
    assert result.approved, result.rejection_reasons
    assert result.rejection_reasons == []
    assert result.decision_id == 1
    assert result.limits_hash == RiskLimits().limits_hash()
    assert result.trading_state is TradingState.ACTIVE
    recorded = store.decisions[0]
    assert recorded.request == entry() and recorded.result.approved
    assert all(c.passed for c in result.checks)


async def test_rejection_lists_every_reason_with_the_limit() -> None:
    rm, store, _ = make_manager()
    result = await rm.validate_trade(entry(quantity=3, symbol="TSLA"))
    assert not result.approved
    assert any("limit of 2" in r for r in result.rejection_reasons)
    assert any("allowlist" in r for r in result.rejection_reasons)
    assert store.decisions[0].result.approved is False
    assert result.decision_id == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"quantity": math.nan},
        {"quantity": -3},
        {"quantity": "2"},
        {"limit_price": math.inf},
        {"strike": "abc"},
        {"action": None},
        {"risk_per_trade": math.nan},
        {"expiry": 20250722},
        {"symbol": None},
        {"multiplier": "100"},
    ],
)
async def test_malformed_request_is_rejected_never_raises(changes: dict[str, Any]) -> None:
    rm, _, _ = make_manager()
    result = await rm.validate_trade(entry(**changes))
    assert not result.approved
    assert result.rejection_reasons


async def test_something_that_is_not_a_request_is_rejected() -> None:
    rm, _, _ = make_manager()
    result = await rm.validate_trade({"symbol": "SPY"})  # type: ignore[arg-type]
    assert not result.approved and "not a TradeRequest" in result.rejection_reasons[0]


async def test_a_store_that_cannot_journal_turns_approval_into_rejection() -> None:
    class BrokenStore(InMemoryRiskStateStore):
        def record_risk_decision(self, request: Any, result: Any) -> int:
            raise OSError("disk full")

    rm, _, _ = make_manager(store=BrokenStore())
    result = await rm.validate_trade(entry())
    assert not result.approved
    assert "could not be journaled" in result.rejection_reasons[-1]
    assert result.decision_id is None


async def test_entry_without_account_data_is_refused() -> None:
    rm, _, _ = make_manager(equity=None)
    result = await rm.validate_trade(entry())
    assert not result.approved
    assert any("no account data" in r for r in result.rejection_reasons)


# ----------------------------------------------------------------- trading states


@pytest.mark.parametrize(
    ("state", "entry_ok", "close_ok"),
    [
        (TradingState.ACTIVE, True, True),
        (TradingState.REDUCING, False, True),
        (TradingState.RECONCILING, False, True),
        (TradingState.HALTED, False, False),
    ],
)
async def test_each_state_gates_entries_and_closes(
    state: TradingState, entry_ok: bool, close_ok: bool
) -> None:
    rm, store, _ = make_manager()
    await rm.sync_positions([position(quantity=2)])
    rm.set_trading_state(state, "test")
    assert rm.trading_state is state
    assert (await rm.validate_trade(entry())).approved is entry_ok
    assert (await rm.validate_trade(closing(held=2))).approved is close_ok
    if state is not TradingState.ACTIVE:
        assert store.trading_states[-1] == (state, "test")


async def test_halt_and_resume_are_journaled_with_their_cause() -> None:
    rm, store, _ = make_manager()
    rm.halt("operator says stop")
    assert rm.trading_state is TradingState.HALTED
    assert rm.resume("operator says go") is TradingState.ACTIVE
    assert store.trading_states[-2:] == [
        (TradingState.HALTED, "operator says stop"),
        (TradingState.ACTIVE, "operator says go"),
    ]


async def test_reconciliation_returns_to_the_previous_state() -> None:
    rm, _, _ = make_manager()
    rm.set_trading_state(TradingState.REDUCING, "operator reduces")
    rm.begin_reconciliation()
    assert rm.trading_state is TradingState.RECONCILING
    rm.begin_reconciliation()  # a second begin keeps the original prior state
    assert rm.end_reconciliation() is TradingState.REDUCING


async def test_reconciliation_does_not_lift_a_halt() -> None:
    rm, store, _ = make_manager()
    rm.halt("unknown broker orders")
    assert rm.begin_reconciliation() is TradingState.HALTED
    assert rm.end_reconciliation() is TradingState.HALTED
    assert store.events_of("reconciliation_while_halted")


async def test_halt_during_reconciliation_survives_its_end() -> None:
    rm, _, _ = make_manager()
    rm.begin_reconciliation()
    rm.halt("broker order the journal does not know")
    assert rm.end_reconciliation() is TradingState.HALTED


# ----------------------------------------------------------------- governors


async def test_daily_loss_limit_turns_reducing_with_cause_and_lasts_the_day() -> None:
    rm, store, clock = make_manager()
    rm.update_account(account(EQUITY * 0.979))
    assert rm.trading_state is TradingState.REDUCING
    assert "DAILY_LOSS_LIMIT" in rm.state_cause
    assert store.events_of("governor_tripped")[0]["governor"] == "daily_loss_tripped"
    result = await rm.validate_trade(entry())
    assert not result.approved and result.risk_metrics["daily_pnl_pct"] < -0.02
    # equity recovers: still REDUCING for the rest of the day, and resume cannot override it
    rm.update_account(account(EQUITY))
    assert rm.resume("operator") is TradingState.REDUCING
    assert not (await rm.validate_trade(entry())).approved
    # next New York day: ACTIVE again
    clock.set(ny_datetime(TODAY + timedelta(days=1), 10))
    rm.update_account(account(EQUITY))
    assert rm.trading_state is TradingState.ACTIVE
    assert (await rm.validate_trade(entry())).approved


async def test_start_of_day_equity_is_the_first_update_of_the_new_york_day() -> None:
    rm, store, clock = make_manager(equity=10_000)
    rm.update_account(account(10_500))
    clock.set(ny_datetime(TODAY, 23))  # 23:00 New York is already the next day in UTC
    rm.update_account(account(10_300))
    assert store.get_risk_state("start_of_day_equity") == (10_000.0, TODAY)
    clock.set(ny_datetime(TODAY + timedelta(days=1), 9))
    rm.update_account(account(10_300))
    assert store.get_risk_state("start_of_day_equity") == (10_300.0, TODAY + timedelta(days=1))


async def test_weekly_drawdown_reduces_until_next_week() -> None:
    rm, _, clock = make_manager(equity=10_000)
    rm.update_account(account(10_600))  # the week's high
    clock.set(ny_datetime(TODAY + timedelta(days=1), 10))  # Wednesday
    rm.update_account(account(10_060))  # -5.1% from the high, -0% on the day
    assert rm.trading_state is TradingState.REDUCING
    assert "WEEKLY_DRAWDOWN" in rm.state_cause
    clock.set(ny_datetime(TODAY + timedelta(days=3), 10))  # Friday
    rm.update_account(account(10_300))
    assert rm.resume("operator") is TradingState.REDUCING
    clock.set(ny_datetime(TODAY + timedelta(days=6), 10))  # next Monday
    rm.update_account(account(10_300))
    assert rm.trading_state is TradingState.ACTIVE


async def test_governor_does_not_lift_an_operator_reducing() -> None:
    rm, _, clock = make_manager()
    rm.set_trading_state(TradingState.REDUCING, "operator wants exits only")
    clock.set(ny_datetime(TODAY + timedelta(days=1), 10))
    rm.update_account(account(EQUITY))
    assert rm.trading_state is TradingState.REDUCING


async def test_governor_trip_while_halted_applies_after_resume() -> None:
    rm, _, _ = make_manager()
    rm.halt("manual")
    rm.update_account(account(EQUITY * 0.95))
    assert rm.trading_state is TradingState.HALTED
    assert rm.resume("manual over") is TradingState.REDUCING


async def test_invalid_account_snapshot_blocks_entries() -> None:
    rm, store, _ = make_manager()
    rm.update_account(
        AccountSnapshot(account="DU1", net_liquidation=math.nan, available_funds=1.0, cash=1.0)
    )
    assert store.events_of("account_snapshot_rejected")
    assert not (await rm.validate_trade(entry())).approved


# ----------------------------------------------------------------- PDT


async def test_round_trip_on_the_same_new_york_day_is_a_day_trade() -> None:
    rm, store, clock = make_manager()
    key = entry().contract_key
    assert (await rm.validate_trade(entry(quantity=2, limit_price=0.9))).approved
    rm.on_fill(key, "SPY", 2, clock.now())
    assert (await rm.validate_trade(closing(held=2, quantity=1))).approved
    rm.on_fill(key, "SPY", -1, clock.now())
    rm.on_fill(key, "SPY", -1, clock.now())  # partial fills of one exit count once
    assert store.day_trades == [(key, "SPY", TODAY)]
    assert rm.day_trades_used() == 1


class _FullDiskStore(InMemoryRiskStateStore):
    """The in-memory store, whose writes fail as on a full disk while ``full``."""

    full = False

    def record_day_trade(self, contract_key: str, symbol: str, trade_date: date) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        super().record_day_trade(contract_key, symbol, trade_date)

    def put_risk_state(self, key: str, value: float | str | None, as_of: date | None) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        super().put_risk_state(key, value, as_of)


async def test_a_day_trade_a_full_disk_refused_still_counts_and_is_written_later() -> None:
    """A close filled while the store refuses writes: the fill is not an error (the close
    was reported FAILED before), PDT counts the day trade at once, the store gets it later."""
    store = _FullDiskStore()
    rm, _, clock = make_manager(store)
    key = entry().contract_key
    rm.on_fill(key, "SPY", 2, clock.now())
    store.full = True
    rm.on_fill(key, "SPY", -2, clock.now())  # must not raise
    assert store.day_trades == []
    assert rm.day_trades_used() == 1  # counted from memory
    store.full = False
    assert rm.day_trades_used() == 1  # now from the store, not twice
    assert store.day_trades == [(key, "SPY", TODAY)]
    assert store.risk_state[f"day_trade_marked:{key}"][0] == TODAY.isoformat()


async def test_no_day_trade_in_two_weeks_needs_no_calendar() -> None:
    """``status`` answers fast: with no day trade in the last 14 days the count is 0 without
    loading the NYSE calendar (pandas); with one, the calendar's window counts it."""
    from ibkr_trader.risk import checks

    rm, store, _clock = make_manager()
    checks._xnys.cache_clear()
    assert rm.day_trades_used() == 0
    assert checks._xnys.cache_info().misses == 0
    store.record_day_trade("SPY:X", "SPY", TODAY - timedelta(days=1))
    assert rm.day_trades_used() == 1
    assert checks._xnys.cache_info().misses == 1


async def test_close_on_a_later_day_is_not_a_day_trade() -> None:
    rm, store, clock = make_manager()
    key = entry().contract_key
    rm.on_fill(key, "SPY", 1, clock.now())
    clock.set(ny_datetime(TODAY + timedelta(days=1)))
    rm.on_fill(key, "SPY", -1, clock.now())
    assert store.day_trades == []


async def test_evening_fill_uses_the_new_york_date() -> None:
    rm, store, _ = make_manager()
    key = entry().contract_key
    rm.on_fill(key, "SPY", 1, ny_datetime(TODAY, 15))
    rm.on_fill(key, "SPY", -1, ny_datetime(TODAY, 21))  # 01:00 UTC next day
    assert store.day_trades == [(key, "SPY", TODAY)]


async def test_two_round_trips_are_two_day_trades() -> None:
    rm, store, clock = make_manager()
    key = entry().contract_key
    for _ in range(2):
        rm.on_fill(key, "SPY", 1, clock.now())
        rm.on_fill(key, "SPY", -1, clock.now())
    assert len(store.day_trades) == 2


async def test_full_close_reported_after_a_sync_is_still_a_day_trade() -> None:
    rm, store, clock = make_manager()
    key = entry().contract_key
    await rm.sync_positions([position(quantity=1)])
    rm.on_fill(key, "SPY", 1, clock.now())  # add one today
    await rm.validate_trade(closing(held=2, quantity=2))
    await rm.sync_positions([])  # the broker already shows the position flat
    rm.on_fill(key, "SPY", -2, clock.now())
    assert store.day_trades == [(key, "SPY", TODAY)]


async def test_pdt_blocks_new_entry_after_three_day_trades_but_not_closes() -> None:
    rm, store, _ = make_manager()
    for i in range(3):
        store.record_day_trade(f"SPY:{i}", "SPY", TODAY - timedelta(days=i))
    await rm.sync_positions([position(quantity=1)])
    result = await rm.validate_trade(entry())
    assert not result.approved
    assert result.risk_metrics["day_trades_used"] == 3
    assert result.risk_metrics["day_trades_remaining"] == 0
    assert (await rm.validate_trade(closing(held=1))).approved


async def test_day_trades_older_than_five_business_days_do_not_count() -> None:
    rm, store, _ = make_manager()
    # Tuesday 8 July 2025: the window starts Tuesday 1 July (4 July is a holiday).
    store.record_day_trade("a", "SPY", TODAY - timedelta(days=8))
    store.record_day_trade("b", "SPY", TODAY - timedelta(days=7))
    assert rm.day_trades_used() == 1


async def test_pdt_disagreement_with_ib_is_journaled_and_stricter_wins() -> None:
    rm, store, _ = make_manager()
    rm.update_account(account(EQUITY, day_trades_remaining=1))
    rm.update_account(account(EQUITY, day_trades_remaining=1))
    events = store.events_of("pdt_disagreement")
    assert len(events) == 1
    assert events[0]["journal_remaining"] == 3 and events[0]["ib_remaining"] == 1
    result = await rm.validate_trade(entry())
    assert result.approved and result.risk_metrics["day_trades_remaining"] == 1
    rm.update_account(account(EQUITY, day_trades_remaining=0))
    assert not (await rm.validate_trade(entry())).approved


async def test_pdt_does_not_apply_to_large_accounts() -> None:
    rm, store, _ = make_manager(equity=30_000)
    for i in range(4):
        store.record_day_trade(f"k{i}", "SPY", TODAY)
    assert (await rm.validate_trade(entry())).approved


# ----------------------------------------------------------------- positions and closes


async def test_open_positions_limit_uses_synced_positions() -> None:
    rm, _, _ = make_manager()
    others = [position(entry(strike=500.0 + i), quantity=1) for i in range(3)]
    await rm.sync_positions(others)
    result = await rm.validate_trade(entry())
    assert not result.approved
    assert any("open positions" in r for r in result.rejection_reasons)


async def test_close_of_more_than_held_is_refused_as_a_flip() -> None:
    rm, _, _ = make_manager()
    await rm.sync_positions([position(quantity=1)])
    result = await rm.validate_trade(closing(held=1, quantity=2))
    assert not result.approved
    assert any("flip" in r for r in result.rejection_reasons)


async def test_concurrent_closes_cannot_together_flip_a_position() -> None:
    rm, _, _ = make_manager()
    await rm.sync_positions([position(quantity=2)])
    assert (await rm.validate_trade(closing(held=2))).approved
    assert not (await rm.validate_trade(closing(held=2))).approved
    # a position sync alone does not free the first close: it may still be working (issue 13)
    await rm.sync_positions([position(quantity=2)])
    assert not (await rm.validate_trade(closing(held=2))).approved
    # the broker says the first close ended without a fill: a new close may go
    (first,) = rm.exposure.working(closing=True)
    rm.exposure.finish(first.ref)
    assert (await rm.validate_trade(closing(held=2))).approved


async def test_close_is_approved_under_every_entry_limit() -> None:
    limits = RiskLimits(max_open_positions=1, symbol_allowlist=("QQQ",))
    rm, store, _ = make_manager(limits=limits, equity=EQUITY)
    for i in range(3):
        store.record_day_trade(f"x{i}", "SPY", TODAY)
    rm.update_account(account(EQUITY * 0.9, available=0.0))  # both governors trip
    await rm.sync_positions([position(quantity=2), position(entry(strike=600.0), quantity=1)])
    assert rm.trading_state is TradingState.REDUCING
    result = await rm.validate_trade(closing(held=2, order_type="MKT", limit_price=None))
    assert result.approved, result.rejection_reasons


async def test_close_is_still_sanity_checked() -> None:
    rm, _, _ = make_manager()
    await rm.sync_positions([position(quantity=2)])
    result = await rm.validate_trade(closing(held=2, limit_price=1.234, operator_id=""))
    assert not result.approved
    assert len(result.rejection_reasons) == 2


# ----------------------------------------------------------------- kill switch


async def test_kill_switch_file_halts_with_its_reason_and_lifts_when_removed(
    tmp_path: Path,
) -> None:
    switch = tmp_path / "HALT"
    rm, store, _ = make_manager(kill_switch_path=switch)
    await rm.sync_positions([position(quantity=2)])
    killswitch.engage(switch, "fire drill", START)
    result = await rm.validate_trade(closing(held=2))
    assert not result.approved and result.trading_state is TradingState.HALTED
    assert "fire drill" in store.trading_states[-1][1]
    assert rm.resume("try") is TradingState.HALTED
    assert store.events_of("resume_refused")
    killswitch.disengage(switch)
    assert rm.refresh() is TradingState.ACTIVE
    assert (await rm.validate_trade(entry())).approved


async def test_kill_switch_lift_restores_reconciling(tmp_path: Path) -> None:
    switch = tmp_path / "HALT"
    rm, _, _ = make_manager(kill_switch_path=switch)
    rm.begin_reconciliation()
    switch.touch()
    assert rm.refresh() is TradingState.HALTED
    switch.unlink()
    assert rm.refresh() is TradingState.RECONCILING


async def test_kill_switch_lift_does_not_lift_an_operator_halt(tmp_path: Path) -> None:
    switch = tmp_path / "HALT"
    rm, _, _ = make_manager(kill_switch_path=switch)
    rm.halt("operator")
    switch.touch()
    rm.refresh()
    switch.unlink()
    assert rm.refresh() is TradingState.HALTED


async def test_state_written_by_another_process_is_adopted() -> None:
    rm, store, _ = make_manager()
    store.record_trading_state(TradingState.HALTED, "operator halt via CLI")
    assert not (await rm.validate_trade(entry())).approved
    assert rm.trading_state is TradingState.HALTED
    store.record_trading_state(TradingState.ACTIVE, "operator resume via CLI")
    assert (await rm.validate_trade(entry())).approved


# ----------------------------------------------------------------- gameplan limits


async def test_gameplan_hard_limits_tighten_from_the_base_limits() -> None:
    rm, store, _ = make_manager()
    rm.apply_hard_limits({"max_contracts_per_order": 1})
    assert not (await rm.validate_trade(entry(quantity=2))).approved
    rm.apply_hard_limits({})  # next day's gameplan starts from the configured limits
    assert (await rm.validate_trade(entry(quantity=1))).approved
    assert rm.limits == RiskLimits()
    assert store.events_of("risk_limits_tightened")


async def test_gameplan_cannot_loosen() -> None:
    rm, _, _ = make_manager()
    with pytest.raises(LimitLoosenError):
        rm.apply_hard_limits({"max_open_positions": 50})
    assert rm.limits == RiskLimits()


async def test_status_summarises_the_state() -> None:
    rm, _, _ = make_manager()
    status = rm.status()
    assert status["trading_state"] == "ACTIVE"
    assert status["day_trades_remaining"] == 3
    assert status["equity"] == EQUITY


def test_manager_satisfies_the_store_protocol_with_the_in_memory_store() -> None:
    from ibkr_trader.risk import InMemoryRiskStateStore, RiskStateStore

    assert isinstance(InMemoryRiskStateStore(), RiskStateStore)
    assert isinstance(RiskManager(RiskLimits(), InMemoryRiskStateStore(), _Clock()), RiskManager)


class _Clock:
    def now(self) -> Any:
        return START


async def test_one_execution_moves_the_ledger_once_whoever_reports_it() -> None:
    """Chaos seed 5: with a full journal, a resting entry's fill was fed to the ledger again
    at every cycle (the journal could not say it was known); an exec id is applied once."""
    rm, _store, clock = make_manager()
    key = "SPY:20260320:C:580"
    rm.on_fill(key, "SPY", 2, clock.now(), ref="o1", exec_id="e1")
    rm.on_fill(key, "SPY", 2, clock.now(), ref="o1", exec_id="e1")  # reconciliation, again
    assert rm.exposure.position(key) == 2
    rm.on_fill(key, "SPY", -1, clock.now(), exec_id="e2")
    assert rm.exposure.position(key) == 1


async def test_an_opening_fill_in_a_batch_is_read_from_memory_until_it_lands() -> None:
    rm, store, clock = make_manager()
    key = "SPY:20260320:C:580"
    batch: list[Any] = []
    landed: list[Any] = []
    with rm.writes_into(batch, landed):
        rm.on_fill(key, "SPY", 1, clock.now(), exec_id="e1")
    assert batch and landed  # the open date waits for the caller's group commit
    assert store.get_risk_state(f"open_date:{key}") is None
    assert rm._day_state(f"open_date:{key}") == (TODAY.isoformat(), TODAY)
    for write in batch:
        write()
    for callback in landed:  # after the commit
        callback()
    assert store.get_risk_state(f"open_date:{key}") == (TODAY.isoformat(), TODAY)
    assert rm._day_state(f"open_date:{key}") == (TODAY.isoformat(), TODAY)
