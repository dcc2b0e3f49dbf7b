"""Issue 8's compressed trading day against the simulator in calendar mode (NYSE hours).

Monday 2026-11-16 to Friday 2026-11-20, with the simulator's clock moved by the test:

- 10:30 Mon: start-up reconciliation; A's entry on SPY is in flight when the socket drops
  (``faults.drop_on(3)``: the placeOrder never arrives); the connection comes back;
- 10:35 Mon: reconciliation first (the lost intent is marked lost, never resent), then entries
  under A (SPY call, momentum) and B (QQQ call, mean reversion after a drop);
- 11:00 Mon: QQQ shocked down: the 40% emergency stop closes the QQQ call (alert);
- 11:30 Mon: the kill switch: HALTED, no orders (alert); removed at 11:35: ACTIVE again;
- 15:50 Mon: within 15 minutes of the close: no entries;
- 10:30 Fri: the SPY call is at 3 days to expiry: closed with 3_DTE_RULE;
- 11:00 Fri: stale quotes for more than 5 minutes: DATA_QUARANTINE closes everything;
- 11:30 Fri: the account loses 3% of its equity: the daily loss governor (REDUCING) closes
  everything with DAILY_LOSS_LIMIT.

Every action is journaled with its reason, and every order the simulator received has a
journaled, approved risk decision.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibkr_trader.clock import NY
from ibkr_trader.models import ClosureReason, TradingState
from ibkr_trader.orchestrator import CycleReport, TradingOrchestrator
from ibkr_trader.strategies.selection import SelectionConfig
from ibkr_trader.strategies.strategy_a import StrategyA, StrategyAParams
from ibkr_trader.strategies.strategy_b import StrategyB, StrategyBParams
from ibkr_trader.strategies.strategy_c import StrategyC

from .helpers import Rig, trading_rig

MONDAY = datetime(2026, 11, 16, 10, 30, tzinfo=NY)
ONE = SelectionConfig(max_contracts=1)


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY).astimezone(UTC)


def actions(report: CycleReport, kind: str) -> list[str]:
    return [f"{a.symbol} {a.status} {a.reason}" for a in report.actions if a.kind == kind]


async def wait_until(predicate: object, seconds: float = 10.0) -> None:
    assert callable(predicate)
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def seed_option(rig: Rig, symbol: str, expiry: str) -> str:
    """A 1-lot call held from earlier, at its current mark (no closure flag)."""
    con_id = next(
        i.con_id
        for i in rig.sim.catalog.find(symbol=symbol, sec_type="OPT", expiry=expiry, right="C")
        if abs(i.strike - rig.sim.market.price(rig.sim.catalog.find(symbol=symbol)[0].con_id)) < 1.0
    )
    mark = rig.sim.market.price(con_id)
    rig.sim.seed_position(rig.sim.accounts[0], symbol, 1, mark * 100, con_id=con_id)
    return f"{symbol}_{con_id}"


@pytest.mark.timeout(600)  # a whole week of cycles: minutes on a loaded 2-core machine
async def test_a_compressed_trading_day(tmp_path: Path) -> None:
    alert_file = tmp_path / "alerts.txt"
    # each alert appends one line (O_APPEND: concurrent alerts never lose a line)
    writer = (
        "import sys; "
        f"f = open({str(alert_file)!r}, 'a'); "
        "f.write(sys.argv[1] + ' ' + sys.argv[2] + '\\n'); f.close()"
    )
    async with trading_rig(
        tmp_path,
        start=MONDAY.astimezone(UTC),
        alert_command=(sys.executable, "-c", writer),
        alert_timeout=60.0,  # the hook's own timeout is tested elsewhere; CI may be loaded
    ) as rig:
        sim, journal = rig.sim, rig.journal
        strategy_a = StrategyA(sim.clock, selection=ONE, params=StrategyAParams(0.0, 100.0))
        strategy_b = StrategyB(sim.clock, selection=ONE, params=StrategyBParams(99.9, 100.0))
        # the positions seeded below were "held from earlier": not opened by the bot, so
        # automatic closes touch them only with manage_foreign_positions on (issue 13)
        orch = rig.orchestrator(
            [strategy_a, strategy_b],
            symbols=("SPY", "QQQ"),
            entry_limit="ask",
            manage_foreign_positions=True,
        )
        # shape the market: SPY breaks out upwards (QQQ drops below its lower band at 10:35)
        spy = sim.market.price(sim.catalog.find(symbol="SPY")[0].con_id)
        qqq = sim.market.price(sim.catalog.find(symbol="QQQ")[0].con_id)
        sim.market.set_override("SPY", spy * 1.004)
        sim.clock.advance(120)

        # 10:32 Monday: the socket drops while A's order is on its way
        sim.faults.drop_on(3)
        first = await orch.run_cycle()
        assert first.reconciliation is not None and first.reconciliation.ok
        [in_flight] = [a for a in first.actions if a.kind == "entry"]
        assert in_flight.status == "pending" and "connection lost" in in_flight.reason
        await wait_until(lambda: rig.gateway.connection.is_connected and orch.needs_reconciliation)
        sim.faults.clear()
        assert sim.received_orders == []  # the placeOrder never arrived

        # 10:35: reconcile first (the in-flight intent is lost, not resent), then A and B enter
        sim.clock.set(at(16, 10, 35))
        sim.market.set_override("QQQ", qqq * 0.99)
        second = await orch.run_cycle()
        assert second.reconciliation is not None
        assert [r.outcome for r in second.reconciliation.resolved] == ["lost"]
        lost = journal.find_order(in_flight.order_id)
        assert lost is not None and lost.state.is_final and lost.state.status == "Lost"
        entries = {a.strategy: a for a in second.actions if a.kind == "entry"}
        assert set(entries) == {"A", "B"}, (second.actions, second.errors)
        assert all(a.status == "filled" for a in entries.values()), entries
        assert {a.symbol for a in entries.values()} == {"SPY", "QQQ"}
        assert in_flight.order_id not in {o.order_ref for o in sim.received_orders}
        held = {p.symbol: p for p in second.positions}
        assert set(held) == {"SPY", "QQQ"}
        spy_position = held["SPY"]
        assert spy_position.days_to_expiry == 7

        # 11:00: QQQ falls 3%: its call loses more than 40% -> emergency stop
        sim.clock.set(at(16, 11, 0))
        sim.market.shock("QQQ", 0.97)
        third = await orch.run_cycle()
        closes = [a for a in third.actions if a.kind == "close"]
        assert [(a.symbol, a.status) for a in closes] == [("QQQ", "filled")], third.actions
        assert closes[0].reason.startswith("EMERGENCY_STOP")
        assert {p.symbol for p in third.positions} == {"SPY"}

        # the rest of the day the gameplan is C: closures only
        orch.strategies = [StrategyC(reason="afternoon plan")]

        # 11:30: the kill switch halts everything; removing it lets trading go on
        sim.clock.set(at(16, 11, 30))
        rig.kill_switch.write_text("operator pulled the plug\n")
        halted = await orch.run_cycle()
        assert halted.trading_state == "HALTED" and not halted.entries_allowed
        assert "kill switch" in (halted.entry_block or "")
        assert not halted.orders_sent
        rig.kill_switch.unlink()
        sim.clock.set(at(16, 11, 35))
        resumed = await orch.run_cycle()
        assert resumed.trading_state == "ACTIVE"

        # 15:50: within 15 minutes of the close no entry is even considered
        sim.clock.set(at(16, 15, 50))
        orch.strategies = [strategy_a]
        late = await orch.run_cycle()
        assert "minutes of the close" in (late.entry_block or "")
        orch.strategies = [StrategyC(reason="afternoon plan")]

        # Friday 10:30: the SPY call is 3 days from expiry (kept in the money) -> closed
        sim.clock.set(at(20, 10, 30))
        sim.market.set_override("SPY", spy * 1.02)
        friday = await orch.run_cycle()
        closes = [a for a in friday.actions if a.kind == "close"]
        assert [(a.symbol, a.status) for a in closes] == [("SPY", "filled")], friday.actions
        assert closes[0].reason.startswith("3_DTE_RULE")
        assert closes[0].detail["days_to_expiry"] == 3
        assert friday.positions == []

        # 11:00: quotes go stale for 10 minutes -> DATA_QUARANTINE closes everything
        seed_option(rig, "SPY", "20261204")
        sim.clock.set(at(20, 11, 0))
        sim.faults.stale_quotes(600)
        quarantine = await orch.run_cycle()
        assert actions(quarantine, "quarantine"), quarantine.actions
        closed = [a for a in quarantine.actions if a.kind == "close_all"]
        assert [a.status for a in closed] == ["filled"], quarantine.actions
        assert closed[0].reason.startswith("DATA_QUARANTINE")
        sim.faults.clear()

        # 11:30: the account loses 3% of its equity -> daily loss governor -> close everything
        seed_option(rig, "QQQ", "20261204")
        sim.clock.set(at(20, 11, 30))
        sim.state.accounts[sim.accounts[0]].cash -= 30_000.0
        governed = await orch.run_cycle()
        assert governed.trading_state == "REDUCING"
        assert (governed.governor or "").startswith("DAILY_LOSS_LIMIT")
        closed = [a for a in governed.actions if a.kind == "close_all"]
        assert [a.status for a in closed] == ["filled"], governed.actions
        assert closed[0].reason.startswith("DAILY_LOSS_LIMIT")
        assert not governed.entries_allowed

        # ---- the journal tells the whole day, with reasons
        reasons = [c.reason for c in journal.closures()]
        assert reasons == [
            ClosureReason.EMERGENCY_STOP.value,
            ClosureReason.DTE_RULE.value,
            ClosureReason.DATA_QUARANTINE.value,
            ClosureReason.DAILY_LOSS_LIMIT.value,
        ]
        states = {s.state for s in journal.trading_states()}
        assert {"RECONCILING", "HALTED", "REDUCING", "ACTIVE"} <= states
        assert rig.risk.trading_state is TradingState.REDUCING
        kinds = [e.kind for e in journal.events(limit=500) if e.source == "connection"]
        assert "restored" in kinds and "disconnected" in kinds
        assert len(journal.events(kind="cycle", limit=50)) == orch.cycles
        assert journal.events(kind="emergency_close", limit=10)

        # ---- no order reached the simulator without a journaled, approved risk decision
        assert len(sim.received_orders) == 6  # 2 entries, 4 closes
        for order in sim.received_orders:
            row = journal.find_order(order.order_ref)
            assert row is not None, order.order_ref
            assert row.intent.decision_id is not None
            decision = journal.decision(row.intent.decision_id)
            assert decision is not None and decision.approved, order.order_ref
            assert order.ext_operator == "CSATSPRIM" or not order.ext_operator

        # ---- the operator was told: HALT and the emergency closes
        await orch.aclose()
        sent = {a.kind for a in rig.alerts.sent}
        assert {"HALT", "EMERGENCY_CLOSE"} <= sent
        assert all(a.ok for a in rig.alerts.sent), [a for a in rig.alerts.sent if not a.ok]
        text = alert_file.read_text()
        assert "HALT" in text and "EMERGENCY_CLOSE" in text
        assert journal.events(kind="alert", limit=20)


async def test_orchestrator_outside_regular_hours_defers_closures_and_blocks_entries(
    tmp_path: Path,
) -> None:
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=NY).astimezone(UTC)
    async with trading_rig(tmp_path, start=saturday) as rig:
        rig.sim.seed_position(
            rig.sim.accounts[0],
            "SPY",
            1,
            100.0,
            sec_type="OPT",
            expiry="20261123",
            strike=600.0,
            right="C",
        )
        # a seeded position is not the bot's: managed here only with the opt-in (issue 13)
        orch = rig.orchestrator(
            [StrategyA(rig.sim.clock)], symbols=("SPY",), manage_foreign_positions=True
        )
        report = await orch.run_cycle()
        assert not report.market_open and report.entry_block is not None
        assert "market closed" in report.entry_block
        [deferred] = [a for a in report.actions if a.kind == "deferred"]
        assert deferred.reason.startswith("3_DTE_RULE") or "EMERGENCY_STOP" in deferred.reason
        assert rig.sim.received_orders == []


async def test_runner_stops_cleanly_and_journals_the_stop(tmp_path: Path) -> None:
    from ibkr_trader.orchestrator import OrchestratorRunner

    async with trading_rig(tmp_path, start=MONDAY.astimezone(UTC)) as rig:
        orch: TradingOrchestrator = rig.orchestrator([StrategyC()], symbols=())
        runner = OrchestratorRunner(orch, interval=30.0)
        task = asyncio.create_task(runner.run())
        await wait_until(lambda: len(runner.reports) >= 1)
        runner.request_stop("SIGTERM")
        reports = await asyncio.wait_for(task, 10.0)
        assert len(reports) == 1 and runner.stopped_by == "SIGTERM"
        [stop] = rig.journal.events(kind="shutdown", limit=5)
        assert stop.detail["stopped_by"] == "SIGTERM" and stop.detail["cycles"] == 1


async def test_a_rehearsal_clock_faster_than_real_time_cycles_by_market_time(
    tmp_path: Path,
) -> None:
    """``run --at ... --speed 600``: the simulator's clock runs 600x; the loop cycles every
    ``interval`` seconds of market time (a tenth of a second of real time for 60 s)."""
    import time

    from ibkr_trader.orchestrator import OrchestratorRunner

    options = {"speed": 600.0}
    async with trading_rig(tmp_path, start=MONDAY.astimezone(UTC), sim_options=options) as rig:
        orch: TradingOrchestrator = rig.orchestrator([StrategyC()], symbols=())
        runner = OrchestratorRunner(orch, interval=60.0, speed=600.0)
        real = time.monotonic()
        task = asyncio.create_task(runner.run())
        await wait_until(lambda: len(runner.reports) >= 3)
        runner.request_stop("SIGTERM")
        reports = await asyncio.wait_for(task, 10.0)
        real = time.monotonic() - real
        gaps = [
            (b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(reports)
        ]
        assert all(gap >= 60.0 for gap in gaps), gaps  # at least one interval of market time
        assert real < 60.0  # ... in far less real time
        assert rig.sim.clock.speed == 600.0
