"""Issue 17: dry-run is a venue, not a shortcut. One trading day in the calendar simulator,
run twice on the same price path (same seed, same start instant), once in paper (IB's order
book: the simulator's) and once in dry-run (the local matching engine on the gateway's quotes):

- 10:32 Monday: strategy A enters at the mid; the limit is below the ask, so the order rests
  (``rest_entries``) in both, reported as working with its reason;
- 10:40: the market comes down to the limit: the resting order fills on this later cycle;
- 11:00: a second entry (QQQ) at the mid that the market never reaches rests all day;
- 13:00: the underlying falls 3%: the 40% emergency stop closes the position;
- 16:01: the QQQ entry is over: a DAY order, cancelled at the close.

In paper the simulator fills the resting order the moment the market reaches it; the test
waits for that fill to reach the client before the next cycle, as it would have long before
the next cycle in a real session (the dry-run venue fills when it looks, at the cycle).

Then the two journals are compared: same decisions, same orders, fills within one tick, same
closures. The differences that remain are listed in the README ("Dry-run and paper").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.clock import NY
from ibkr_trader.models import ExecutionMode, OrderStatus
from ibkr_trader.orchestrator import CycleReport
from ibkr_trader.strategies.selection import SelectionConfig
from ibkr_trader.strategies.strategy_a import StrategyA, StrategyAParams
from ibkr_trader.strategies.strategy_c import StrategyC
from ibkr_trader.testing import trading_rig

TICK = 0.01
MONDAY = datetime(2026, 11, 16, 10, 30, tzinfo=NY).astimezone(UTC)


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 16, hour, minute, tzinfo=NY).astimezone(UTC)


@dataclass
class Day:
    """What one run of the day did, in comparable form."""

    decisions: list[list[tuple[str, str, str]]] = field(default_factory=list)
    orders: list[tuple[str, str, int, str, float | None]] = field(default_factory=list)
    fills: list[tuple[str, str, float, float]] = field(default_factory=list)
    closures: list[tuple[str, str, float]] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    book: list[tuple[str, float]] = field(default_factory=list)
    working_at_entry: int = 0
    sent_to_gateway: int = 0


def _decisions(report: CycleReport) -> list[tuple[str, str, str]]:
    return [(a.kind, a.symbol, a.status) for a in report.actions if a.kind != "reconcile"]


async def filled_at_the_gateway(rig: Any, coid: str) -> None:
    for _ in range(200):
        if any(o.order_ref == coid and o.status == "Filled" for o in rig.sim.received_orders):
            [order] = [o for o in rig.sim.received_orders if o.order_ref == coid]
            handle = rig.gateway.connection.trade_handle(order.order_id)
            if handle is not None and handle.is_done:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{coid} not filled at the gateway")


async def one_day(tmp_path: Path, mode: ExecutionMode) -> Day:
    day = Day()
    async with trading_rig(tmp_path / mode.value, mode=mode, at=MONDAY) as rig:
        sim = rig.sim
        one = SelectionConfig(max_contracts=1)
        strategy_a = StrategyA(sim.clock, selection=one, params=StrategyAParams(0.0, 100.0))
        orch = rig.orchestrator(
            [strategy_a],
            symbols=("SPY",),
            watch_symbols=("SPY", "QQQ"),
            entry_limit="mid",
            order_timeout=1.0,
            rest_entries=True,
        )
        spy_id = sim.catalog.find(symbol="SPY")[0].con_id
        spy = sim.market.price(spy_id)
        sim.market.set_override("SPY", spy * 1.004)  # a breakout: strategy A wants in
        sim.clock.set(at(10, 32))

        async def cycle(when: datetime) -> CycleReport:
            sim.clock.set(when)
            report = await orch.run_cycle()
            day.decisions.append(_decisions(report))
            return report

        entry = await cycle(at(10, 32))
        [first] = [a for a in entry.actions if a.kind == "entry"]
        day.reasons["entry"] = first.reason
        day.working_at_entry = len(rig.risk.exposure.working(ours=True))
        orch.strategies = [StrategyC(reason="closures only")]

        # 10:40: the market comes down to the limit: the resting entry fills now
        row = rig.journal.find_order(first.order_id)
        assert row is not None and row.intent.limit_price is not None
        con_id = row.intent.con_id
        sim.clock.set(at(10, 40))
        for factor in (0.999, 0.998, 0.997, 0.996, 0.995, 0.994):
            if sim.market.quote(con_id).ask <= row.intent.limit_price:
                break
            sim.market.set_override("SPY", spy * 1.004 * factor)
        if mode is ExecutionMode.PAPER:  # IB filled it when the market got there
            await filled_at_the_gateway(rig, row.intent.client_order_id)
        await cycle(at(10, 40))

        # 11:00: a QQQ entry that the market never reaches rests until the close
        qqq = sim.market.price(sim.catalog.find(symbol="QQQ")[0].con_id)
        sim.market.set_override("QQQ", qqq * 1.004)
        orch.strategies = [strategy_a]
        orch.symbols = ("QQQ",)
        await cycle(at(11, 0))
        orch.strategies = [StrategyC(reason="closures only")]
        sim.market.set_override("QQQ", qqq * 1.02)  # away from the buy limit, all day

        # 13:00: SPY falls 3%: the call loses over 40% -> the emergency stop closes it
        sim.clock.set(at(13, 0))
        sim.market.shock("SPY", 0.97)
        await cycle(at(13, 0))

        # after the close: the second entry expired as a DAY order
        await cycle(at(16, 1))
        await orch.aclose()

        journal = rig.journal
        for order in journal.orders():
            intent = order.intent
            day.orders.append(
                (
                    intent.contract_key,
                    intent.action,
                    intent.quantity,
                    intent.order_type,
                    intent.limit_price,
                )
            )
            results = journal.explain(intent.client_order_id)
            assert results is not None and results.results, intent.client_order_id
            day.results.append((intent.contract_key, results.results[-1].status.lower()))
            day.reasons[intent.client_order_id[-12:]] = results.results[-1].rejection_reason or ""
        day.fills = [(f.contract_key, f.side, f.quantity, f.price) for f in journal.fills()]
        day.closures = [(c.reason, c.contract_key, c.quantity) for c in journal.closures()]
        day.sent_to_gateway = len(sim.received_orders)
    return day


@pytest.mark.dates
async def test_one_day_dry_run_and_paper_trade_the_same(tmp_path: Path) -> None:
    paper = await one_day(tmp_path, ExecutionMode.PAPER)
    dry = await one_day(tmp_path, ExecutionMode.DRY_RUN)

    # the entry rests in both, with its reason, and counts as working exposure
    for day in (paper, dry):
        assert "working: limit" in day.reasons["entry"], day.reasons
        assert "rests as a DAY order until the close" in day.reasons["entry"]
        assert day.working_at_entry == 1

    # same decisions, cycle by cycle (kinds, symbols and statuses; a complete dry-run fill is
    # labelled SIMULATED where paper says FILLED)
    label = {"simulated": "filled"}
    assert [[(k, s, label.get(st, st)) for k, s, st in c] for c in dry.decisions] == (
        paper.decisions
    )
    kinds = [[kind for kind, _s, _st in cycle] for cycle in paper.decisions]
    assert kinds == [["entry"], ["working"], ["entry"], ["working", "close"], ["working"]]
    assert paper.decisions[1] == [("working", "SPY", "filled")]  # filled on a later cycle
    assert paper.decisions[4] == [("working", "QQQ", "cancelled")]  # DAY: gone at the close

    # same orders: contract, side, quantity, type, limit
    assert dry.orders == paper.orders and len(paper.orders) == 3

    # the same outcomes: the first entry filled on a later cycle, the second expired, the close
    assert [(k, label.get(s, s)) for k, s in dry.results] == paper.results
    assert [s for _k, s in paper.results] == ["filled", "cancelled", "filled"]
    expired = [r for k, r in paper.reasons.items() if "session closed" in r]
    assert len(expired) == 1 and expired == [r for r in dry.reasons.values() if "session" in r]

    # fills: same contracts, sides and sizes, prices within one tick
    assert [(k, s, q) for k, s, q, _p in dry.fills] == [(k, s, q) for k, s, q, _p in paper.fills]
    for (_k, _s, _q, p_dry), (_k2, _s2, _q2, p_paper) in zip(dry.fills, paper.fills, strict=True):
        assert abs(p_dry - p_paper) <= TICK + 1e-9, (dry.fills, paper.fills)

    # same closures, with their reasons
    assert dry.closures == paper.closures
    assert [r for r, _k, _q in paper.closures] == ["EMERGENCY_STOP"]

    # only where the order went differs
    assert paper.sent_to_gateway == 3 and dry.sent_to_gateway == 0


async def _an_entry_rests(rig: Any) -> tuple[float, Any]:
    """10:32: strategy A enters at the mid, below the ask: the entry rests. Returns SPY's
    price before the move up and the entry's cycle action."""
    sim = rig.sim
    spy = sim.market.price(sim.catalog.find(symbol="SPY")[0].con_id)
    sim.market.set_override("SPY", spy * 1.004)
    sim.clock.set(at(10, 32))
    strategy = StrategyA(
        sim.clock, selection=SelectionConfig(max_contracts=1), params=StrategyAParams(0.0, 100.0)
    )
    orch = rig.orchestrator(
        [strategy], symbols=("SPY",), entry_limit="mid", order_timeout=1.0, rest_entries=True
    )
    report = await orch.run_cycle()
    [entry] = [a for a in report.actions if a.kind == "entry"]
    assert entry.status == OrderStatus.PENDING.value and "working" in entry.reason
    return spy, entry


@pytest.mark.dates
async def test_a_resting_dry_run_order_survives_a_restart(tmp_path: Path) -> None:
    """The dry-run venue keeps its working orders in the journal: a restart reloads them
    (IB's gateway keeps a paper order the same way) and a later cycle fills them."""
    home = tmp_path / "dry"
    async with trading_rig(home, mode=ExecutionMode.DRY_RUN, at=MONDAY, name="restart") as rig:
        sim = rig.sim
        spy, entry = await _an_entry_rests(rig)
        await rig.aclose()

        # a new process: the same journal, a new gateway, executor and orchestrator
        from ibkr_trader.testing import build_rig

        again = await build_rig(sim, home, ExecutionMode.DRY_RUN, name="restart")
        try:
            orch2 = again.orchestrator(
                [StrategyC(reason="closures only")],
                symbols=("SPY",),
                order_timeout=1.0,
                rest_entries=True,
            )
            row = again.journal.find_order(entry.order_id)
            assert row is not None and row.intent.limit_price is not None
            sim.clock.set(at(10, 40))
            for factor in (0.999, 0.998, 0.997, 0.996, 0.995, 0.994):
                if sim.market.quote(row.intent.con_id).ask <= row.intent.limit_price:
                    break
                sim.market.set_override("SPY", spy * 1.004 * factor)
            later = await orch2.run_cycle()
            kinds: dict[str, Any] = {a.kind: a for a in later.actions}
            assert "working" in kinds, later.actions
            restored = [a for a in later.actions if a.reason == "restored from the journal"]
            assert [a.order_id for a in restored] == [entry.order_id]
            ended = [a for a in later.actions if a.kind == "working" and a.status]
            assert [a.status for a in ended] == ["simulated"], later.actions
            final = again.journal.find_order(entry.order_id)
            assert final is not None and final.state.is_final
            assert [p.quantity for p in again.journal.simulated_positions()] == [1]
            assert sim.received_orders == []
        finally:
            await again.aclose()


@pytest.mark.dates
async def test_a_resting_paper_order_adopted_after_a_restart_goes_on_resting(
    tmp_path: Path,
) -> None:
    """The paper twin of the test above. Before: reconciliation adopted the working entry
    with the deadline of an order that does not rest (intent + order_timeout), so the first
    cycle of the new process cancelled it; it rests until filled or the close, as it did
    before the restart."""
    home = tmp_path / "paper"
    async with trading_rig(home, mode=ExecutionMode.PAPER, at=MONDAY, name="restart") as rig:
        sim = rig.sim
        spy, entry = await _an_entry_rests(rig)
        client_id = rig.gateway.connection.client_id  # the same bot comes back: same id
        await rig.aclose()

        from ibkr_trader.testing import build_rig

        again = await build_rig(sim, home, ExecutionMode.PAPER, name="restart", client_id=client_id)
        try:
            orch2 = again.orchestrator(
                [StrategyC(reason="closures only")],
                symbols=("SPY",),
                order_timeout=1.0,
                rest_entries=True,
            )
            sim.clock.set(at(10, 36))  # minutes past intent + order_timeout
            first = await orch2.run_cycle()  # reconciliation adopts it
            assert first.reconciliation is not None and first.reconciliation.ok, first.errors
            [order] = [o for o in sim.received_orders if o.order_ref == entry.order_id]
            assert not order.is_done, f"the adopted entry was ended: {first.actions}"
            [adopted] = again.risk.exposure.working(ours=True)
            assert adopted.deadline is not None
            assert adopted.deadline.astimezone(NY).strftime("%H:%M") == "16:00"
            row = again.journal.find_order(entry.order_id)
            assert row is not None and row.intent.limit_price is not None
            sim.clock.set(at(10, 40))
            for factor in (0.999, 0.998, 0.997, 0.996, 0.995, 0.994):
                if sim.market.quote(row.intent.con_id).ask <= row.intent.limit_price:
                    break
                sim.market.set_override("SPY", spy * 1.004 * factor)
            for _ in range(200):
                if order.status == "Filled":
                    break
                await asyncio.sleep(0.05)
            assert order.status == "Filled"
            await asyncio.sleep(0.2)
            later = await orch2.run_cycle()
            assert not later.errors, later.errors
            final = again.journal.find_order(entry.order_id)
            assert final is not None and final.state.is_final, final
            assert final.state.filled == 1
        finally:
            await again.aclose()


@pytest.mark.dates
@pytest.mark.parametrize("mode", [ExecutionMode.DRY_RUN, ExecutionMode.PAPER])
async def test_one_entry_at_a_time_while_one_rests(tmp_path: Path, mode: ExecutionMode) -> None:
    async with trading_rig(tmp_path, mode=mode, at=MONDAY) as rig:
        sim = rig.sim
        spy = sim.market.price(sim.catalog.find(symbol="SPY")[0].con_id)
        sim.market.set_override("SPY", spy * 1.004)
        sim.clock.set(at(10, 32))
        strategy = StrategyA(
            sim.clock,
            selection=SelectionConfig(max_contracts=1),
            params=StrategyAParams(0.0, 100.0),
        )
        orch = rig.orchestrator(
            [strategy], symbols=("SPY",), entry_limit="mid", order_timeout=1.0, rest_entries=True
        )
        first = await orch.run_cycle()
        [entry] = [a for a in first.actions if a.kind == "entry"]
        assert entry.status == "pending" and "working" in entry.reason
        sim.clock.set(at(10, 33))
        second = await orch.run_cycle()
        assert [a for a in second.actions if a.kind == "entry"] == []
        [held] = [a for a in second.actions if a.kind == "no_entry"]
        assert "already working" in held.reason and entry.order_id in held.reason
        assert len(rig.journal.orders()) == 1
        working = rig.risk.exposure.working(ours=True)
        assert [o.ref for o in working] == [entry.order_id]
