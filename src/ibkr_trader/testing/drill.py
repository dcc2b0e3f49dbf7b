"""The protection drill (issue 14): for each protective trigger under each fault, the time
from the trigger to the close order on the wire, at the simulator.

One drill = one fresh stack (:func:`~ibkr_trader.testing.trading_rig`, NYSE calendar, the
simulator's clock moved by the drill): a position the bot manages, a warm-up cycle (start-up
reconciliation), the fault, then the trigger half-way between two cycles, then cycles every
``interval`` simulated seconds until the close reaches the simulator (or ``max_cycles``).

The time to the wire is ``(start of the cycle that closed - the trigger)`` in simulated time
plus the wall time from the start of that cycle to the simulator's receipt of the placeOrder.
For the quarantine by missing data it is measured from the last usable data. Targets: one
cycle plus 1 s; the quarantine within 5 minutes of the last usable data; 0 closes lost. A
reconnect to a live-style account must send NOTHING (a close there is a live order): its
expected outcome is a HALT with no order.

Used by ``tests/chaos/test_protection_faults.py`` and ``bench/bench_protection.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ibkr_trader.clock import NY
from ibkr_trader.models import TradingState
from ibkr_trader.orchestrator.protection import ProtectionPolicy
from ibkr_trader.risk import RiskLimits
from ibkr_trader.sim.state import Account
from ibkr_trader.strategies.strategy_c import StrategyC
from ibkr_trader.testing.faults import journal_disk_full
from ibkr_trader.testing.rig import Rig, atm_strike, option_con_id, select_expiry, trading_rig

__all__ = ["FAULTS", "TRIGGERS", "DrillResult", "run_drill"]

TRIGGERS: Final = (
    "emergency_stop",
    "dte",
    "stale_data",
    "missing_data",
    "daily_loss",
    "weekly_drawdown",
)
FAULTS: Final = (
    "none",
    "market_data_loss",
    "clock",
    "no_bid",
    "journal_full",
    "day_boundary",
    "live_reconnect",
)
REQ_MKT_DATA: Final = 1
REQ_CURRENT_TIME: Final = 49
_START = datetime(2026, 11, 18, 11, 0, tzinfo=NY).astimezone(UTC)  # a Wednesday
_DAY_BOUNDARY_START = datetime(2026, 11, 17, 15, 58, tzinfo=NY).astimezone(UTC)
_NEXT_MORNING = datetime(2026, 11, 18, 10, 0, tzinfo=NY).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DrillResult:
    trigger: str
    fault: str
    expected_close: bool
    closed: bool
    reason: str
    cycles: int
    seconds_to_wire: float | None
    target_seconds: float
    trading_state: str
    ok: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hold(rig: Rig, *, expiry: str | None = None) -> None:
    sim = rig.sim
    if expiry is None:
        expiry = select_expiry(sim)
        con_id = option_con_id(sim, expiry, atm_strike(sim), "C")
        mark = sim.market.price(con_id)
        sim.seed_position(sim.accounts[0], "SPY", 1, round(mark * 100, 2), con_id=con_id)
        return
    sim.seed_position(
        sim.accounts[0],
        "SPY",
        1,
        100.0,
        sec_type="OPT",
        expiry=expiry,
        strike=atm_strike(sim),
        right="C",
    )


@contextlib.contextmanager
def _no_fault() -> Iterator[None]:
    yield


async def run_drill(
    trigger: str,
    fault: str,
    tmp: Path,
    *,
    interval: float = 60.0,
    max_cycles: int = 8,
) -> DrillResult:
    """One drill (module docstring)."""
    if trigger not in TRIGGERS or fault not in FAULTS:
        raise ValueError(f"unknown drill {trigger}/{fault}")
    start = _DAY_BOUNDARY_START if fault == "day_boundary" else _START
    limits = RiskLimits(daily_loss_limit_pct=0.5) if trigger == "weekly_drawdown" else None
    options: dict[str, Any] = {"timeout": 2.0, "client_id": 7, "name": f"{trigger}-{fault}"}
    if limits is not None:
        options["risk_limits"] = limits
    async with trading_rig(tmp, at=start, **options) as rig:
        return await _drill(rig, trigger, fault, interval, max_cycles)


async def _drill(
    rig: Rig, trigger: str, fault: str, interval: float, max_cycles: int
) -> DrillResult:
    sim = rig.sim
    expiry_soon = None
    if trigger == "dte":
        expiry_soon = _two_sessions_out(rig)
    if trigger != "dte":
        _hold(rig)
    orch = rig.orchestrator(
        [StrategyC(reason="protection drill")],
        symbols=(),
        watch_symbols=("SPY",),
        manage_foreign_positions=True,
        timeout=2.0,
        order_timeout=2.0,
        policy=ProtectionPolicy(cycle_seconds=interval, open_delay_seconds=0.0),
    )
    warm = await orch.run_cycle()  # start-up reconciliation, the day's equity anchors
    t0 = sim.clock.now()
    journal_fault: contextlib.AbstractContextManager[None] = _no_fault()
    note = ""
    if fault == "market_data_loss":
        sim.faults.error_every(REQ_MKT_DATA, 354, "Requested market data is not subscribed")
    elif fault == "clock":
        sim.faults.delay(REQ_CURRENT_TIME, 30.0)
    elif fault == "no_bid":
        sim.faults.missing_bid()
    elif fault == "journal_full":
        journal_fault = journal_disk_full(rig.journal)
    elif fault == "live_reconnect":
        sim.faults.log_in_as("U7654321")
        sim.state.accounts.setdefault("U7654321", Account("U7654321", 1_000_000.0))
        sim.faults.drop_after(0)
        with contextlib.suppress(Exception):
            await rig.gateway.server_time(2.0)
        for _ in range(200):
            if rig.gateway.connection.is_connected and orch.needs_reconciliation:
                break
            await asyncio.sleep(0.05)
    elif fault == "day_boundary":
        t0 = _NEXT_MORNING  # the loop runs on through the night into the next session
        sim.clock.set(t0)
        await orch.run_cycle()
    last_usable = t0
    trigger_at = t0 + timedelta(seconds=interval / 2)
    sim.clock.set(trigger_at)
    _trigger(rig, trigger, fault)
    if trigger == "dte" and expiry_soon is not None:
        _hold(rig, expiry=expiry_soon)  # a position due under the 3-DTE rule appears
    seen = len(sim.received_orders)
    expected_close = fault != "live_reconnect"
    # with no market data at all, stale data cannot even be seen: the missing-data quarantine
    # is the protection, measured from the last usable data
    by_missing = trigger == "missing_data" or (
        trigger == "stale_data" and fault == "market_data_loss"
    )
    closed_at: float | None = None
    reason = ""
    cycles = 0
    with journal_fault:
        for k in range(1, max_cycles + 1):
            cycle_start = t0 + timedelta(seconds=k * interval)
            sim.clock.set(cycle_start)
            wall0 = time.monotonic()
            watcher = asyncio.get_running_loop().create_task(_first_order(rig, seen))
            report = await orch.run_cycle()
            cycles = k
            arrived = await _settle(watcher)
            if arrived is not None:
                sim_gap = cycle_start - (last_usable if by_missing else trigger_at)
                closed_at = sim_gap.total_seconds() + max(arrived - wall0, 0.0)
                reason = next(
                    (a.reason for a in report.actions if a.kind in ("close", "close_all")), ""
                )
                break
    target = ProtectionPolicy().quarantine_after_seconds if by_missing else interval + 1.0
    state = rig.risk.trading_state.value
    if expected_close:
        ok = closed_at is not None and closed_at <= target
    else:
        ok = closed_at is None and rig.risk.trading_state is TradingState.HALTED
        note = "a close on a live account is a live order: HALTED, nothing sent"
    if warm.errors and not note:
        note = f"warm-up: {warm.errors[0]}"
    return DrillResult(
        trigger=trigger,
        fault=fault,
        expected_close=expected_close,
        closed=closed_at is not None,
        reason=reason[:120],
        cycles=cycles,
        seconds_to_wire=round(closed_at, 3) if closed_at is not None else None,
        target_seconds=target,
        trading_state=state,
        ok=ok,
        note=note,
    )


def _two_sessions_out(rig: Rig) -> str:
    """An expiry date whose expiry session is two trading sessions after today's."""
    from ibkr_trader.market_hours import MarketHours

    hours = MarketHours(rig.clock)
    day = rig.clock.now().astimezone(NY).date()
    sessions = 0
    while True:
        day += timedelta(days=1)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=NY)
        if hours.session(noon) is not None:
            sessions += 1
            if sessions == 2:
                return str(day.strftime("%Y%m%d"))


def _trigger(rig: Rig, trigger: str, fault: str) -> None:
    sim = rig.sim
    if trigger == "emergency_stop":
        sim.market.shock("SPY", 0.97)  # the call loses more than 40%
    elif trigger == "stale_data":
        sim.faults.stale_quotes(600)
    elif trigger == "missing_data":
        sim.faults.error_every(REQ_MKT_DATA, 354, "Requested market data is not subscribed")
    elif trigger == "daily_loss":
        sim.state.accounts[sim.accounts[0]].cash -= 60_000.0  # > 2% of the day's equity
    elif trigger == "weekly_drawdown":
        sim.state.accounts[sim.accounts[0]].cash -= 120_000.0  # > 5% from the week's high


async def _first_order(rig: Rig, seen: int) -> float:
    while len(rig.sim.received_orders) <= seen:  # noqa: ASYNC110 - the simulator has no event
        await asyncio.sleep(0.002)
    return time.monotonic()


async def _settle(watcher: asyncio.Task[float]) -> float | None:
    if watcher.done():
        return watcher.result()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return None
