"""Issue 13, items 1-7: each one reproduced through the simulator over a real socket.

Every test here failed on the code before issue 13 (the docstring of each says how), except
the 404 and 2109 cases of the warning-code test: those codes are in ib_async's own warning
list (the order becomes ValidationError, not Cancelled), and they pin that they stay harmless.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.clock import NY, ny_date
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.models import ContractSpec, ExecutionMode, OrderStatus, TradingState
from ibkr_trader.orders.reconcile import Reconciler
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.strategies.strategy_c import StrategyC
from orchestrator.helpers import Rig, trading_rig
from orchestrator.orders import near_money_option

MONDAY = datetime(2026, 11, 16, 10, 30, tzinfo=NY).astimezone(UTC)
ROOMY = RiskLimits(max_contracts_per_order=4, max_contracts_per_position=4)
CONTEXT = {
    "strategy_id": "t13",
    "strategy_name": "issue 13",
    "risk_per_trade": 0.01,
    "take_profit_pct": 0.5,
    "stop_loss_pct": 0.4,
}


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def held(sim: SimulatedGateway, con_id: int) -> float:
    row = sim.state.positions.get((sim.accounts[0], con_id))
    return float(row.quantity) if row is not None else 0.0


def signal(contract: ContractSpec, n: int, qty: int, limit: float) -> dict[str, Any]:
    return {
        "symbol": contract.symbol,
        "action": "BUY",
        "quantity": qty,
        "order_type": "LMT",
        "limit_price": round(limit, 2),
        "expiry": contract.expiry,
        "strike": contract.strike,
        "right": contract.right,
        "strategy_id": CONTEXT["strategy_id"],
        "timestamp": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
    }


async def ask_of(gw: IBKRGateway, contract: ContractSpec) -> float:
    quote, _ = await gw.pipeline.fetch_quote(contract, 5.0, server_check=False)
    assert quote.ask is not None
    return float(quote.ask)


async def buy(
    rig: Rig,
    contract: ContractSpec,
    n: int,
    qty: int,
    *,
    marketable: bool = True,
    context: dict[str, Any] | None = None,
) -> Any:
    ask = await ask_of(rig.gateway, contract)
    limit = ask + 0.5 if marketable else max(0.05, round(ask * 0.5, 2))
    return await rig.gateway.submit_order(
        signal(contract, n, qty, limit), context or CONTEXT, timeout=5.0
    )


def our_orders(sim: SimulatedGateway) -> list[Any]:
    return [o for o in sim.received_orders if o.order_ref]


# ----------------------------------------------------------------------------- item 1


async def test_a_partly_filled_close_still_working_is_not_closed_again(tmp_path: Path) -> None:
    """Before: the restart turned the close PENDING, the sync freed its reservation, the next
    close (a new client order id: it contains the quantity) sold 2 more -> short."""
    async with trading_rig(tmp_path, start=MONDAY, limits=ROOMY) as rig:
        sim, gw = rig.sim, rig.gateway
        contract = await near_money_option(gw, sim.clock.now())
        assert (await buy(rig, contract, 1, 3)).status is OrderStatus.FILLED
        assert held(sim, contract.con_id) == 3
        [position] = await gw.get_positions(5.0)

        sim.faults.partial_fill(0.34)  # the close fills 1 of 3; 2 keep working
        close = asyncio.create_task(gw.close_position(position.position_id, "EMERGENCY_STOP", 5.0))
        await wait_until(lambda: held(sim, contract.con_id) == 2)
        await sim.restart()  # the gateway restarts mid-fill
        first = await close
        assert first.status is OrderStatus.PENDING, first
        await wait_until(lambda: gw.connection.is_connected)
        report = await rig.reconciler.reconcile("reconnect", 10.0)
        assert report.error is None
        assert [r.outcome for r in report.resolved] == ["working"]

        positions = await gw.get_positions(5.0)
        assert [p.quantity for p in positions] == [2]
        again = await gw.close_position(positions[0].position_id, "EMERGENCY_STOP", 5.0)
        assert again.status is OrderStatus.PENDING and "already being closed" in str(
            again.rejection_reason
        )
        sells = [o for o in our_orders(sim) if o.action == "SELL"]
        assert len(sells) == 1  # the one close, never a second
        sim.faults.clear()  # the working close fills its rest
        await wait_until(lambda: held(sim, contract.con_id) == 0)
        await asyncio.sleep(0.2)
        assert held(sim, contract.con_id) == 0  # flat, never short


# ----------------------------------------------------------------------------- item 2


async def test_an_entry_left_working_counts_and_its_deadline_cancels_it(tmp_path: Path) -> None:
    """Before: positions read 0, so a second entry of 3 was approved against a limit of 4, and
    the adopted order was never cancelled (no handle, order_timeout never applied)."""
    async with trading_rig(tmp_path, start=MONDAY, limits=ROOMY) as rig:
        sim, gw = rig.sim, rig.gateway
        rig.reconciler.order_timeout = 5.0
        contract = await near_money_option(gw, sim.clock.now())
        entry = asyncio.create_task(buy(rig, contract, 1, 3, marketable=False))
        await wait_until(lambda: len(our_orders(sim)) == 1)
        await sim.restart()
        assert (await entry).status is OrderStatus.PENDING
        await wait_until(lambda: gw.connection.is_connected)
        orch = rig.orchestrator([StrategyC()], symbols=())
        orch.needs_reconciliation, orch.reconcile_trigger = True, "reconnect"
        cycle = await orch.run_cycle()
        assert cycle.reconciliation is not None
        assert [r.outcome for r in cycle.reconciliation.resolved] == ["working"]
        [working] = rig.risk.exposure.working(ours=True)
        assert working.remaining == 3 and working.sent

        second = await buy(rig, contract, 2, 3)
        assert second.status is OrderStatus.REJECTED
        assert any("contracts" in r for r in second.risk_validation.rejection_reasons)  # type: ignore[union-attr]
        assert len(our_orders(sim)) == 1

        sim.clock.advance(30)  # past the intent's deadline (5 s)
        later = await orch.run_cycle()
        assert [a.kind for a in later.actions if a.kind == "cancel"] == ["cancel"], later.actions
        [order] = our_orders(sim)
        assert order.status == "Cancelled"
        row = rig.journal.find_order(order.order_ref)
        assert row is not None and row.state.is_final
        assert rig.risk.exposure.working() == []


# ----------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("code", [10349, 404, 2109])
async def test_a_warning_code_on_a_live_order_is_not_a_rejection(tmp_path: Path, code: int) -> None:
    """Before: ib_async marked the live order Cancelled on 10349, the executor journaled
    Rejected without asking the gateway; the order filled anyway."""

    def slow_fills(sim: SimulatedGateway) -> None:
        sim.state.config = dataclasses.replace(sim.state.config, fill_latency=0.3)  # warned first

    async with trading_rig(tmp_path, start=MONDAY, configure=slow_fills) as rig:
        sim, gw = rig.sim, rig.gateway
        sim.faults.warn_orders(code)
        contract = await near_money_option(gw, sim.clock.now())
        result = await buy(rig, contract, 1, 1)
        assert result.status is OrderStatus.FILLED, result
        await gw.journal.drain()  # what follows the fill is journaled off the critical path
        [order] = our_orders(sim)
        row = rig.journal.find_order(order.order_ref)
        assert row is not None and row.state.status == "Filled"
        statuses = [s.status for s in rig.journal.explain(order.order_ref).statuses]  # type: ignore[union-attr]
        assert "Rejected" not in statuses
        # the next submission of the same signal sends nothing more
        again = await buy(rig, contract, 1, 1)
        assert again.duplicate and len(our_orders(sim)) == 1


async def test_a_resting_order_warned_keeps_working_until_its_deadline(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        sim.faults.warn_orders(10349)
        contract = await near_money_option(gw, sim.clock.now())
        result = await buy(rig, contract, 1, 1, marketable=False)
        assert result.status is OrderStatus.TIMEOUT, result
        [order] = our_orders(sim)
        assert order.status == "Cancelled"  # cancelled by us at the deadline, not "rejected"
        assert rig.risk.exposure.working() == []


# ----------------------------------------------------------------------------- item 4


async def test_automatic_closes_leave_positions_the_bot_did_not_open(tmp_path: Path) -> None:
    """Before: one minute of stale data sold 500 AAPL and 200 MSFT at market."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim = rig.sim
        sim.seed_position(sim.accounts[0], "AAPL", 500, 180.0)
        sim.seed_position(sim.accounts[0], "MSFT", 200, 400.0)
        orch = rig.orchestrator([StrategyC()], symbols=("SPY",))
        sim.faults.stale_quotes(600)
        report = await orch.run_cycle()
        assert any(a.kind == "quarantine" for a in report.actions), report.actions
        assert sim.received_orders == []
        assert {p.symbol for p in report.positions} == {"AAPL", "MSFT"}
        assert rig.risk.exposure.foreign_positions()  # reported as not ours
        # ... and a person is told, once per position: the report, an alert, the journal
        foreign = [a.reason for a in report.actions if a.kind == "foreign"]
        assert sorted(r.split()[1].rstrip(":") for r in foreign if "did not open" in r) == [
            "AAPL:STK",
            "MSFT:STK",
        ], foreign
        await wait_until(lambda: len([a for a in rig.alerts.sent if a.kind == "FOREIGN"]) == 2)
        assert len(rig.journal.events(kind="foreign_position")) == 2
        await orch.run_cycle()  # the same positions: no second alert
        await asyncio.sleep(0.05)
        assert len([a for a in rig.alerts.sent if a.kind == "FOREIGN"]) == 2
        assert len(rig.journal.events(kind="foreign_position")) == 2


async def test_a_position_partly_foreign_is_alerted_and_only_our_part_closed(
    tmp_path: Path,
) -> None:
    """A manual trade added 2 to the 1 contract the bot bought: the 2 are reported and
    alerted as not ours, and an automatic close sells our 1 only."""
    async with trading_rig(tmp_path, start=MONDAY, limits=ROOMY) as rig:
        sim, gw = rig.sim, rig.gateway
        contract = await near_money_option(gw, sim.clock.now())
        assert (await buy(rig, contract, 1, 1)).status is OrderStatus.FILLED
        sim.seed_position(sim.accounts[0], "SPY", 3, 100.0, con_id=contract.con_id)
        orch = rig.orchestrator([StrategyC()], symbols=("SPY",), quarantine_after_seconds=0)
        sim.faults.stale_quotes(600)
        report = await orch.run_cycle()
        foreign = [a.reason for a in report.actions if a.kind == "foreign"]
        assert foreign == [
            f"+2 of +3 {contract.key}: not opened by the bot, left alone (ours: +1)"
        ], report.actions
        await wait_until(lambda: [a.kind for a in rig.alerts.sent].count("FOREIGN") == 1)
        [event] = rig.journal.events(kind="foreign_position")
        assert event.detail["foreign"] == 2
        sim.faults.clear()
        results = await gw.close_all_positions("EMERGENCY_STOP", 5.0, only_ours=True)
        assert [r.status for r in results] == [OrderStatus.FILLED], results
        assert held(sim, contract.con_id) == 2  # our 1 sold, the 2 left alone
        sells = [o for o in our_orders(sim) if o.action == "SELL"]
        assert [o.total_quantity for o in sells] == [1]


async def test_a_resting_entry_partly_filled_is_ours_at_once(tmp_path: Path) -> None:
    """Before: the fills of a resting entry were journaled only when it ended, so its filled
    part looked foreign and an emergency close-all left it alone (chaos seed 5, with resting
    entries)."""
    async with trading_rig(tmp_path, start=MONDAY, limits=ROOMY) as rig:
        sim, gw = rig.sim, rig.gateway
        gw.executor.rest_entries = True
        contract = await near_money_option(gw, sim.clock.now())
        sim.faults.partial_fill(0.5)  # 1 of 2 fills, the rest keeps working
        result = await buy(rig, contract, 1, 2)
        assert result.status is OrderStatus.PENDING and result.fill_quantity == 1, result
        assert rig.journal.our_net_positions() == {contract.key: 1}
        sim.faults.clear()
        closes = await gw.close_all_positions("EMERGENCY_STOP", 5.0, only_ours=True)
        assert [(r.status, r.fill_quantity) for r in closes] == [(OrderStatus.FILLED, 1)], closes


# ----------------------------------------------------------------------------- item 5


async def test_halt_cancels_a_working_entry(tmp_path: Path) -> None:
    """Before: an entry resting when the kill switch engaged went on working (and filled)."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        contract = await near_money_option(gw, sim.clock.now())
        entry = asyncio.create_task(buy(rig, contract, 1, 1, marketable=False))
        await wait_until(lambda: len(our_orders(sim)) == 1)
        rig.kill_switch.write_text("operator: news\n")
        result = await entry
        assert result.status in (OrderStatus.TIMEOUT, OrderStatus.CANCELLED), result
        [order] = our_orders(sim)
        assert order.status == "Cancelled" and order.filled == 0
        assert rig.risk.refresh() is TradingState.HALTED
        assert rig.journal.events(kind="entry_cancelled_on_halt", limit=5)


async def _an_adopted_entry(rig: Rig) -> Any:
    """A resting entry left working when the gateway restarted, adopted by the first cycle's
    reconciliation (its deadline an hour away). Returns the orchestrator."""
    sim, gw = rig.sim, rig.gateway
    rig.reconciler.order_timeout = 3600.0
    contract = await near_money_option(gw, sim.clock.now())
    entry = asyncio.create_task(buy(rig, contract, 1, 1, marketable=False))
    await wait_until(lambda: len(our_orders(sim)) == 1)
    await sim.restart()
    assert (await entry).status is OrderStatus.PENDING
    await wait_until(lambda: gw.connection.is_connected)
    orch = rig.orchestrator([StrategyC()], symbols=())
    await orch.run_cycle()
    return orch


async def test_halt_cancels_an_adopted_working_entry(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim = rig.sim
        orch = await _an_adopted_entry(rig)
        assert our_orders(sim)[0].status == "Submitted"
        rig.kill_switch.write_text("halt\n")
        halted = await orch.run_cycle()
        assert halted.trading_state == "HALTED"
        assert any(a.kind == "cancel" for a in halted.actions), halted.actions
        assert our_orders(sim)[0].status == "Cancelled"


async def test_a_journal_error_right_after_the_send_does_not_abandon_the_order(
    tmp_path: Path,
) -> None:
    """Before: a failed journal write right after placeOrder raised out of submit_order; the
    order filled at the gateway, its fill waited for a later reconciliation and the position
    looked foreign meanwhile (chaos seed 630). The write is logged and the order followed."""
    from ibkr_trader.journal import JournalError

    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        contract = await near_money_option(gw, sim.clock.now())
        store = rig.journal
        original = store.attach_broker_ids

        def failing(*args: Any, **kwargs: Any) -> Any:
            store.attach_broker_ids = original  # type: ignore[method-assign]
            raise JournalError("disk I/O error")

        failing.__name__ = "attach_broker_ids"
        store.attach_broker_ids = failing  # type: ignore[method-assign]
        result = await buy(rig, contract, 1, 1)
        assert result.status is OrderStatus.FILLED, result
        [order] = our_orders(sim)
        assert await gw.journal.our_net_positions() == {contract.key: 1}  # ours, at once
        await gw.journal.drain()  # what follows the fill is journaled off the critical path
        assert [f.client_order_id for f in rig.journal.fills()] == [order.order_ref]


async def test_halt_cancels_an_entry_whose_broker_id_was_never_learnt(tmp_path: Path) -> None:
    """Before: an entry of ours whose send answer never came (no order id in the ledger) could
    not be cancelled; the cycle's reconciliation then learnt its id, but the cancel waited for
    the next cycle (chaos seed 117). Now it is cancelled in the same HALTED cycle."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim = rig.sim
        orch = await _an_adopted_entry(rig)
        [working] = rig.risk.exposure.working(ours=True)
        rig.risk.exposure.update(working.ref, order_id=0, perm_id=0, client_id=0)  # lost
        rig.kill_switch.write_text("halt\n")
        halted = await orch.run_cycle()
        assert halted.trading_state == "HALTED"
        assert our_orders(sim)[0].status == "Cancelled", halted.actions


async def test_reducing_cancels_a_working_entry_and_closes_still_go_out(tmp_path: Path) -> None:
    """REDUCING is closes only: an entry of ours left working would add exposure if it filled
    (an unknown order found by reconciliation, a loss governor). The next cycle cancels it."""
    async with trading_rig(tmp_path, start=MONDAY, limits=ROOMY) as rig:
        sim, gw = rig.sim, rig.gateway
        rig.reconciler.order_timeout = 3600.0
        contract = await near_money_option(gw, sim.clock.now())
        assert (await buy(rig, contract, 1, 1)).status is OrderStatus.FILLED  # a position
        entry = asyncio.create_task(buy(rig, contract, 2, 1, marketable=False))
        await wait_until(lambda: len(our_orders(sim)) == 2)
        await sim.restart()
        assert (await entry).status is OrderStatus.PENDING
        await wait_until(lambda: gw.connection.is_connected)
        orch = rig.orchestrator([StrategyC()], symbols=())
        await orch.run_cycle()
        assert our_orders(sim)[1].status == "Submitted"
        rig.risk.set_trading_state(TradingState.REDUCING, "an unknown broker order")
        reduced = await orch.run_cycle()
        assert reduced.trading_state == "REDUCING"
        cancels = [a for a in reduced.actions if a.kind == "cancel"]
        assert cancels and "REDUCING" in cancels[0].reason, reduced.actions
        assert our_orders(sim)[1].status == "Cancelled"
        [position] = await gw.get_positions(5.0)  # and a close still goes out
        closed = await gw.close_position(position.position_id, "EMERGENCY_STOP", 5.0)
        assert closed.status is OrderStatus.FILLED, closed
        assert held(sim, contract.con_id) == 0


# ----------------------------------------------------------------------------- item 6


async def test_a_client_id_change_adopts_the_previous_ids_live_order(tmp_path: Path) -> None:
    """Before: reconciliation on the new client id marked the old id's live order Lost."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        sim.faults.never_fill()
        contract = await near_money_option(gw, sim.clock.now())
        entry = asyncio.create_task(buy(rig, contract, 1, 2))
        await wait_until(lambda: len(our_orders(sim)) == 1)
        await gw.disconnect()
        assert (await entry).status is OrderStatus.PENDING
        risk = RiskManager(ROOMY, rig.journal, sim.clock, kill_switch_path=rig.kill_switch)
        other = IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port, client_id=8, timeout=10.0),
            risk,
            ExecutionMode.PAPER,
            journal=rig.ajournal,
            clock=sim.clock,
        )
        await other.connect(10.0)
        try:
            rec = Reconciler(other.connection, rig.ajournal, risk, ExecutionMode.PAPER, sim.clock)
            report = await rec.reconcile("client id change", 10.0)
            assert [r.outcome for r in report.resolved] == ["working"], report.resolved
            assert not report.unknown_orders
            [working] = risk.exposure.working(ours=True)
            assert working.client_id == 7 and working.remaining == 2
            sim.faults.clear()
            await wait_until(lambda: held(sim, contract.con_id) == 2)
            report = await rec.reconcile("later", 10.0)
            [order] = our_orders(sim)
            row = rig.journal.find_order(order.order_ref)
            assert row is not None and row.state.status == "Filled" and row.state.filled == 2
            assert sum(f.quantity for f in rig.journal.fills()) == 2
        finally:
            await other.disconnect()


async def test_an_execution_correction_replaces_the_fill_it_corrects(tmp_path: Path) -> None:
    """Before: the .02 revision was journaled as a second fill (journal 4 bought, broker 2)."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        sim.faults.correct_executions()
        contract = await near_money_option(gw, sim.clock.now())
        assert (await buy(rig, contract, 1, 2)).status is OrderStatus.FILLED
        await asyncio.sleep(0.2)
        report = await rig.reconciler.reconcile("after", 10.0)
        assert report.error is None
        fills = rig.journal.fills()
        assert sum(f.quantity for f in fills) == 2 == held(sim, contract.con_id)
        assert all(f.exec_id.endswith(".02") for f in fills)
        assert len({f.exec_id for f in fills}) == len(fills)


async def test_a_perm_id_alone_does_not_match_another_order(tmp_path: Path) -> None:
    """Before: a manual stock order with the permId journaled for an option order was taken
    for it ("Filled 1 @ 0.0")."""
    async with trading_rig(tmp_path, start=MONDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        contract = await near_money_option(gw, sim.clock.now())
        from orchestrator.orders import journal_intent, place_raw

        intent = journal_intent(rig.journal, contract, "perm-alone")
        stock = await gw.contracts.qualify_stock("SPY", 5.0)
        manual = await place_raw(gw, stock, "")  # a manual order: no orderRef
        rig.journal.attach_broker_ids(intent.intent.client_order_id, 999_999, manual.perm_id)
        report = await rig.reconciler.reconcile("restart", 10.0)
        assert [u.perm_id for u in report.unknown_orders] == [manual.perm_id]
        row = rig.journal.find_order(intent.intent.client_order_id)
        assert row is not None and row.state.filled == 0
        assert [r.outcome for r in report.resolved] == ["lost"]


async def test_a_dry_run_crash_after_the_simulated_fill_is_not_lost(tmp_path: Path) -> None:
    """Before: marked "Lost, without a simulated fill" while fills, cash and positions had it."""
    async with trading_rig(tmp_path, start=MONDAY, mode=ExecutionMode.DRY_RUN) as rig:
        gw = rig.gateway
        contract = await near_money_option(gw, rig.sim.clock.now())
        from orchestrator.orders import journal_intent

        intent = journal_intent(rig.journal, contract, "crash")
        rig.journal.apply_simulated_fill(
            exec_id=f"SIM-{intent.intent.client_order_id}",
            client_order_id=intent.intent.client_order_id,
            contract=contract,
            action="BUY",
            quantity=1,
            price=2.5,
            commission=1.0,
        )  # ... and the process died here
        report = await rig.reconciler.reconcile("start-up", 10.0)
        assert [r.outcome for r in report.resolved] == ["filled"]
        row = rig.journal.find_order(intent.intent.client_order_id)
        assert row is not None and row.state.is_final and row.state.status == "Filled"


# ----------------------------------------------------------------------------- item 7


async def test_pdt_an_entry_keeps_the_same_day_exits_of_todays_positions(tmp_path: Path) -> None:
    """Before: with 2 day trades used a second entry was approved; both exits then used a day
    trade each (4 in 5 days on a sub-25k account)."""
    limits = RiskLimits(max_risk_per_trade_pct=0.5)
    context = {**CONTEXT, "risk_per_trade": 0.5}

    def small_account(sim: SimulatedGateway) -> None:
        sim.state.accounts[sim.accounts[0]].cash = 20_000.0  # PDT applies

    async with trading_rig(tmp_path, start=MONDAY, limits=limits, configure=small_account) as rig:
        sim, gw = rig.sim, rig.gateway
        await gw.refresh_account(5.0)
        assert rig.risk.equity is not None and rig.risk.equity < 25_000
        today = ny_date(sim.clock.now())
        rig.journal.record_day_trade("X:1", "SPY", today)
        rig.journal.record_day_trade("X:2", "SPY", today)
        contract = await near_money_option(gw, sim.clock.now())
        first = await buy(rig, contract, 1, 1, context=context)
        assert first.status is OrderStatus.FILLED, first
        chain = await gw.contracts.option_chain("SPY", 5.0)
        other_strike = min(s for s in chain.strikes if s > contract.strike)
        other = await gw.contracts.qualify_option_contract(
            "SPY", contract.expiry, other_strike, "C", 5.0
        )
        second = await buy(rig, other, 2, 1, context=context)
        assert second.status is OrderStatus.REJECTED, second
        assert any("same-day exits" in r for r in second.risk_validation.rejection_reasons)  # type: ignore[union-attr]
        assert len(our_orders(sim)) == 1
