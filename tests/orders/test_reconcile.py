"""Reconciliation against the real simulator, a real journal and a real RiskManager."""

from __future__ import annotations

from pathlib import Path

from ibkr_trader.models import ExecutionMode, TradingState
from orchestrator.helpers import trading_rig
from orchestrator.orders import journal_intent, near_money_option, place_raw


async def test_startup_reconciliation_on_a_clean_journal_returns_to_active(
    tmp_path: Path,
) -> None:
    async with trading_rig(tmp_path, calendar=False) as rig:
        report = await rig.reconciler.reconcile("start-up")
        assert report.ok and not report.halted
        assert rig.risk.trading_state is TradingState.ACTIVE
        states = [s.state for s in rig.journal.trading_states()]
        assert states[-2:] == ["RECONCILING", "ACTIVE"]
        assert rig.journal.events(kind="reconciliation")


async def test_intent_unknown_to_the_gateway_is_marked_lost_and_never_resent(
    tmp_path: Path,
) -> None:
    async with trading_rig(tmp_path, calendar=False) as rig:
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        intent = journal_intent(rig.journal, contract, "crashed-before-send").intent
        report = await rig.reconciler.reconcile("start-up")
        [resolved] = report.resolved
        assert resolved.client_order_id == intent.client_order_id
        assert resolved.outcome == "lost"
        order = rig.journal.find_order(intent.client_order_id)
        assert order is not None and order.state.is_final and order.state.status == "Lost"
        assert rig.sim.received_orders == []
        again = await rig.reconciler.reconcile("reconnect")
        assert again.resolved == ()
        assert rig.sim.received_orders == []


async def test_fill_while_away_is_recorded_once_and_fed_to_the_risk_manager(
    tmp_path: Path,
) -> None:
    async with trading_rig(tmp_path, calendar=False) as rig:
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        intent = journal_intent(rig.journal, contract, "filled-while-away").intent
        await place_raw(rig.gateway, contract, intent.client_order_id)
        assert rig.journal.fills() == []

        report = await rig.reconciler.reconcile("reconnect")
        assert len(report.fills_recorded) == 1
        assert [r.outcome for r in report.resolved] == ["filled"]
        [fill] = rig.journal.fills()
        assert fill.client_order_id == intent.client_order_id and fill.quantity == 1
        assert rig.risk.snapshot().positions == {contract.key: 1}
        order = rig.journal.find_order(intent.client_order_id)
        assert order is not None and order.state.is_final

        again = await rig.reconciler.reconcile("reconnect")
        assert again.fills_recorded == ()
        assert len(rig.journal.fills()) == 1


async def test_order_still_working_at_the_gateway_is_left_working(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, calendar=False) as rig:
        rig.sim.faults.never_fill()
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        intent = journal_intent(rig.journal, contract, "working").intent
        await place_raw(rig.gateway, contract, intent.client_order_id, wait=False)
        report = await rig.reconciler.reconcile("start-up")
        assert [r.outcome for r in report.resolved] == ["working"]
        order = rig.journal.find_order(intent.client_order_id)
        assert order is not None and not order.state.is_final
        assert order.state.perm_id
        assert rig.risk.trading_state is TradingState.ACTIVE


async def test_broker_order_unknown_to_the_journal_reduces_paper_trading(tmp_path: Path) -> None:
    # issue 14, item 10 changed this decision: an unknown order REDUCES (closes allowed, no
    # entries) instead of HALTING (which stopped every protective close until a person acted)
    async with trading_rig(tmp_path, calendar=False) as rig:
        rig.sim.faults.never_fill()
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        await place_raw(rig.gateway, contract, "MANUAL-ORDER-1", wait=False)
        report = await rig.reconciler.reconcile("start-up")
        assert not report.ok and report.reduced and not report.halted
        assert [u.order_ref for u in report.unknown_orders] == ["MANUAL-ORDER-1"]
        assert rig.risk.trading_state is TradingState.REDUCING
        assert "unknown to the journal" in rig.risk.state_cause
        assert "REDUCING" in report.summary()
        # the operator's resume lifts it
        rig.risk.resume("looked at it")
        assert rig.risk.trading_state is TradingState.ACTIVE
        assert rig.journal.events(kind="reconciliation_unknown_orders")


async def test_dry_run_reports_unknown_broker_orders_without_halting(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, calendar=False, mode=ExecutionMode.DRY_RUN) as rig:
        rig.sim.faults.never_fill()
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        await place_raw(rig.gateway, contract, "SOMEONE-ELSE", wait=False)
        report = await rig.reconciler.reconcile("start-up")
        assert len(report.unknown_orders) == 1 and not report.halted
        assert rig.risk.trading_state is TradingState.ACTIVE


async def test_dry_run_intent_without_a_simulated_fill_is_settled(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, calendar=False, mode=ExecutionMode.DRY_RUN) as rig:
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        intent = journal_intent(rig.journal, contract, "dry-crash").intent
        report = await rig.reconciler.reconcile("start-up")
        assert [r.client_order_id for r in report.resolved] == [intent.client_order_id]
        assert [r.outcome for r in report.resolved] == ["lost"]
        assert "dry-run" in report.resolved[0].reason
        assert rig.journal.unresolved_intents() == []


async def test_failed_reconciliation_reports_the_error_and_leaves_reconciling(
    tmp_path: Path,
) -> None:
    async with trading_rig(tmp_path, calendar=False) as rig:
        await rig.gateway.disconnect()
        report = await rig.reconciler.reconcile("reconnect", timeout=2.0)
        assert report.error is not None and not report.ok
        assert rig.risk.trading_state is TradingState.ACTIVE
        assert "failed" in rig.risk.state_cause


async def test_a_fill_the_positions_already_hold_is_not_counted_twice(tmp_path: Path) -> None:
    """Before: a fill of ours while we were away, already in the positions the ledger had
    synced, was added once more when reconciliation recorded it (a long of 1 read 2; a close
    filled away read short, so a working entry looked like a close and a REDUCING cycle left
    it working: chaos seed 56)."""
    async with trading_rig(tmp_path, calendar=False) as rig:
        contract = await near_money_option(rig.gateway, rig.sim.clock.now())
        intent = journal_intent(rig.journal, contract, "filled-while-away").intent
        await place_raw(rig.gateway, contract, intent.client_order_id)  # the executor never saw it
        await rig.gateway.get_positions(5.0)  # the ledger syncs the broker's positions: 1
        assert rig.risk.exposure.position(contract.key) == 1
        report = await rig.reconciler.reconcile("reconnect")
        assert report.fills_recorded  # the execution is journaled ...
        assert rig.risk.exposure.position(contract.key) == 1  # ... and counted once
