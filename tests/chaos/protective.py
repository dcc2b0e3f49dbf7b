"""Issue 14's faults in the seeded chaos engine: each one a short drill inside a scenario.

Total loss of market data for minutes, a failing gateway clock, no bid on held options, a
full disk under the journal, a day boundary during a run and a reconnect to a live-style
account. They happen among the engine's other faults and steps, so every invariant of the
engine is checked under them too; each adds the protective check that is its point:

- ``data_loss``: no quote at all (354 on every request) for 5.5-7 minutes of simulated time:
  the cycle after that closes every position of ours (the quarantine);
- ``clock_fail``: reqCurrentTime never answers in time: the cycle goes on on our own clock,
  and no entry goes out that cycle;
- ``no_bid``: held options quote an ask only: a long is worth 0, the emergency stop closes it;
- ``journal_full``: every journal write fails as on a full disk for one step: no entry goes
  out, a close may (an unrecorded close over an unreduced risk), and once the disk is back the
  journal learns of it: the engine's end-of-scenario invariants (journal == broker) still hold;
- ``day_boundary``: the clock jumps to the next session's morning between two steps;
- ``live_reconnect``: the gateway comes back logged in to a ``U…`` account: nothing at all is
  sent while it is (the operator's resume included), and trading is HALTED.

The data-loss and no-bid drills clear the other faults first: their check is that protection
acts under that one fault (a close on the wire), not whether a rejection or a drop came too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from ibkr_trader.clock import NY
from ibkr_trader.journal import Journal, JournalError
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.models import TradingState
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.sim.accounts import Account
from ibkr_trader.testing.faults import journal_disk_full

PROTECTIVE_FAULTS: Final = (
    "data_loss",
    "clock_fail",
    "no_bid",
    "journal_full",
    "day_boundary",
    "live_reconnect",
)
LIVE_ACCOUNT: Final = "U7654321"
REQ_MKT_DATA: Final = 1
REQ_CURRENT_TIME: Final = 49

Step = Callable[[str, Awaitable[Any]], Awaitable[Any]]


def held_longs(sim: SimulatedGateway, journal: Journal) -> dict[int, float]:
    """con_id -> contracts, every long option at the simulator that is ours by the journal
    (its own fills account for it): what the automatic closes are for (foreign positions are
    left alone, and a position whose fills the journal has not learnt yet is not ours yet:
    the end-of-scenario invariants hold the journal to the gateway)."""
    account = sim.accounts[0]
    ours = journal.our_net_positions()
    out: dict[int, float] = {}
    for (acct, con_id), row in sim.state.positions.items():
        c = row.contract
        if acct != account or c.sec_type != "OPT" or row.quantity <= 0:
            continue
        mine = ours.get(f"{c.symbol}:{c.expiry}:{c.right}:{c.strike:g}", 0)
        if mine > 0:
            out[con_id] = min(float(row.quantity), float(mine))
    return out


def _working_sells(sim: SimulatedGateway) -> dict[int, float]:
    out: dict[int, float] = {}
    for o in sim.received_orders:
        if o.order_ref and not o.is_done and o.action == "SELL" and o.sec_type == "OPT":
            out[o.con_id] = out.get(o.con_id, 0.0) + o.remaining
    return out


def _unclosed(
    sim: SimulatedGateway, journal: Journal, before: dict[int, float], since: int
) -> list[str]:
    """Longs held before a protective cycle that no close of ours covers after it."""
    working = _working_sells(sim)
    still = held_longs(sim, journal)
    sent = {o.con_id for o in sim.received_orders[since:] if o.action == "SELL" and o.order_ref}
    return [
        f"{qty:g} x con_id {con_id}"
        for con_id, qty in before.items()
        if con_id not in sent and working.get(con_id, 0.0) < qty and con_id in still
    ]


def next_session_morning(sim: SimulatedGateway) -> datetime:
    """10:00 New York on the next NYSE session after the simulator's day."""
    hours = MarketHours(sim.clock)
    day = sim.clock.now().astimezone(NY).date()
    for _ in range(10):
        day += timedelta(days=1)
        morning = datetime(day.year, day.month, day.day, 10, 0, tzinfo=NY)
        if hours.session(morning) is not None:
            return morning
    raise AssertionError("no session in ten days")


@dataclass
class Drill:
    """What a protective fault acts on and reports to (the engine's scenario)."""

    stack: Any
    sim: SimulatedGateway
    violations: list[str]
    steps: list[str]
    rng: random.Random
    run_step: Step
    wait_connected: Callable[[Any, float], Awaitable[bool]]


async def protective_fault(kind: str, drill: Drill) -> None:
    """Run one of :data:`PROTECTIVE_FAULTS` (module docstring) and check what it is for."""
    stack, sim, violations, steps = drill.stack, drill.sim, drill.violations, drill.steps
    rng, run_step, wait_connected = drill.rng, drill.run_step, drill.wait_connected
    gw, orch, risk = stack.gw, stack.orch, stack.risk
    faults = sim.faults
    if kind == "day_boundary":
        sim.clock.set(next_session_morning(sim))
        steps.append(f"day_boundary: {sim.clock.now().isoformat()}")
        return
    if kind == "live_reconnect":
        await _live_reconnect(drill)
        return
    if kind == "journal_full":
        with journal_disk_full(stack.journal):
            if orch is not None and rng.random() < 0.6:
                await run_step("journal_full cycle", orch.run_cycle())
            else:
                await _close_all_on_a_full_disk(gw, risk, sim, violations, run_step)
        return
    if orch is None:
        return
    if kind == "clock_fail":
        faults.delay(REQ_CURRENT_TIME, 30.0)
        try:
            since = len(sim.received_orders)
            report = await run_step("clock_fail cycle", orch.run_cycle())
            buys = [o.order_ref for o in sim.received_orders[since:] if o.action == "BUY"]
            if report is not None and buys:
                violations.append(f"clock_fail: entries {buys} sent without the gateway's clock")
        finally:
            faults.delay(REQ_CURRENT_TIME, 0)
        return
    # data_loss / no_bid: that fault alone, connected, then the protective cycle(s)
    faults.clear()
    if not await wait_connected(gw, 5.0):
        return
    if kind == "data_loss":
        faults.error_every(REQ_MKT_DATA, 354, "Requested market data is not subscribed.")
        try:
            await run_step("data_loss cycle", orch.run_cycle())
            sim.clock.advance(rng.choice([330.0, 420.0]))
            await _protective_cycle("data_loss", orch, risk, sim, violations, run_step)
        finally:
            faults.errors_on.pop(REQ_MKT_DATA, None)
    elif kind == "no_bid":
        faults.missing_bid()
        try:
            await _protective_cycle("no_bid", orch, risk, sim, violations, run_step)
        finally:
            faults.missing_bid(False)


async def _close_all_on_a_full_disk(
    gw: Any, risk: Any, sim: SimulatedGateway, violations: list[str], run_step: Step
) -> None:
    """An emergency close-all while no journal write succeeds: every long of ours still gets
    its close on the wire (nothing it needs can fail on the disk)."""
    before = held_longs(sim, gw.journal.journal)
    since = len(sim.received_orders)
    connected = gw.connection.is_connected
    try:
        results = await gw.close_all_positions("EMERGENCY_STOP", 2.0, only_ours=True)
    except JournalError as exc:
        violations.append(f"journal_full: close_all raised {exc!r}: protection stopped by a disk")
        return
    except Exception as exc:  # the engine's own step reports what else may be raised
        await run_step("journal_full close_all", _raise(exc))
        return
    filled = {
        f"{o.symbol}:{o.expiry}:{o.right}:{o.strike:g}"
        for o in sim.received_orders[since:]
        if o.action == "SELL" and o.filled > 0
    }
    violations += [
        f"journal_full: the close of {r.contract_key} reported {r.status.value} though it "
        f"filled ({r.rejection_reason})"
        for r in results
        if r.status.value in ("failed", "rejected") and r.contract_key in filled
    ]
    if connected and gw.connection.is_connected and risk.trading_state is not TradingState.HALTED:
        missing = _unclosed(sim, gw.journal.journal, before, since)
        if missing:
            violations.append(f"journal_full: no close on the wire for {missing}")


async def _raise(exc: BaseException) -> None:
    raise exc


async def _protective_cycle(
    name: str,
    orch: Any,
    risk: Any,
    sim: SimulatedGateway,
    violations: list[str],
    run_step: Step,
) -> None:
    before = held_longs(sim, orch.gateway.journal.journal)
    state = risk.trading_state
    since = len(sim.received_orders)
    report = await run_step(f"{name} cycle", orch.run_cycle())
    other_errors = [e for e in (report.errors if report else []) if "market data" not in e]
    if report is None or not report.market_open or other_errors or not report.connected:
        return  # nothing to hold it to: another step failed (reported), the market closed
    if state is TradingState.HALTED or report.trading_state == TradingState.HALTED.value:
        return  # the kill switch stops closes too (README)
    missing = _unclosed(sim, orch.gateway.journal.journal, before, since)
    if missing:
        violations.append(f"{name}: no close on the wire for {missing} ({report.actions[:4]})")


async def _live_reconnect(drill: Drill) -> None:
    sim, violations, steps, run_step = drill.sim, drill.violations, drill.steps, drill.run_step
    gw, orch, risk = drill.stack.gw, drill.stack.orch, drill.stack.risk
    wait_connected = drill.wait_connected
    sim.state.accounts.setdefault(LIVE_ACCOUNT, Account(LIVE_ACCOUNT, 1_000_000.0))
    sim.faults.log_in_as(LIVE_ACCOUNT)
    since = len(sim.received_orders)
    try:
        await sim.restart(down_for=0.05)
        await wait_connected(gw, 5.0)
        await asyncio.sleep(0.2)  # the reconnect's interlock runs
        if orch is not None:
            await run_step("live_reconnect cycle", orch.run_cycle())
        if risk.trading_state is not TradingState.HALTED:
            violations.append(
                f"live_reconnect: trading {risk.trading_state.value} on a live-style account"
            )
        if drill.rng.random() < 0.5:  # an operator resumes by mistake: the last check still holds
            risk.resume("chaos: operator resume on a live account")
            steps.append("live_reconnect: resumed")
        method = gw.close_all_positions
        await run_step("live_reconnect close_all", method("EMERGENCY_STOP", 2.0, only_ours=True))
        if orch is not None:
            await run_step("live_reconnect cycle", orch.run_cycle())
        sent = [o.order_ref or str(o.order_id) for o in sim.received_orders[since:]]
        if sent:
            violations.append(f"live_reconnect: {sent} sent while logged in to {LIVE_ACCOUNT}")
    finally:
        sim.faults.log_in_as()
        await sim.restart(down_for=0.05)
        await wait_connected(gw, 5.0)
