"""Soak: N trading cycles against the simulated gateway, resources at the start and the end.

``python bench/bench_soak.py [--cycles 10000] [--mode cycle|calls]``

* ``cycle`` (default when the orchestrator exists): ``TradingOrchestrator.run_cycle()`` in
  DRY_RUN (reconciliation, account, positions, market data, protection, strategies) plus a
  dry-run ``submit_order`` of a fresh signal every cycle;
* ``calls``: ``get_market_data`` + a dry-run ``submit_order`` + ``get_positions`` per cycle.

Measured after a warm-up of 20 cycles and at the end: resident memory (VmRSS), asyncio tasks,
standing market-data subscriptions at the simulator, open file descriptors. Prints JSON plus a
readable line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus
from ibkr_trader.risk import RiskManager, load_risk_limits
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.strategies.selection import SelectionConfig, select_expiry

try:
    from ibkr_trader.orchestrator import TradingOrchestrator
    from ibkr_trader.strategies.strategy_a import StrategyA
    from ibkr_trader.strategies.strategy_b import StrategyB

    HAVE_ORCHESTRATOR = True
except ImportError:  # pragma: no cover
    HAVE_ORCHESTRATOR = False

CONTEXT = {
    "strategy_id": "soak",
    "strategy_name": "Soak",
    "risk_per_trade": 0.01,
    "take_profit_pct": 0.5,
    "stop_loss_pct": 0.4,
}


def rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def sample(sim: SimulatedGateway, cycle: int) -> dict[str, Any]:
    return {
        "cycle": cycle,
        "rss_kib": rss_kib(),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "standing_subscriptions": sim.standing_subscriptions(),
        "open_fds": open_fds(),
    }


async def run(cycles: int, mode: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    async with SimulatedGateway(SimConfig(port=0, pacing=False)) as sim:
        clock = sim.clock
        journal = Journal.open(tmp / "soak.sqlite", ExecutionMode.DRY_RUN, clock)
        risk = RiskManager(load_risk_limits(env={}), journal, clock, kill_switch_path=tmp / "H")
        gw = IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port, client_id=71),
            risk,
            ExecutionMode.DRY_RUN,
            journal=AsyncJournal(journal),
            clock=clock,
        )
        await gw.connect(10.0)
        chain = await gw.contracts.option_chain("SPY", 10.0)
        expiry = select_expiry(chain.expirations, await gw.server_time(10.0), SelectionConfig())
        assert expiry is not None
        orch = None
        if mode == "cycle":
            orch = TradingOrchestrator(
                gw, [StrategyA(clock), StrategyB(clock)], clock=clock, timeout=10.0
            )
        statuses: dict[str, int] = {}
        errors = 0
        start: dict[str, Any] = {}
        t0 = time.monotonic()
        samples: list[dict[str, Any]] = []
        every = max(cycles // 10, 1)
        for i in range(cycles):
            if i == 20:
                start = sample(sim, i)
                t0 = time.monotonic()
            if i > 20 and i % every == 0:
                samples.append(sample(sim, i))  # the slope, not just the two ends
            try:
                if orch is not None:
                    report = await orch.run_cycle()
                    errors += len(report.errors)
                else:
                    await gw.get_market_data("SPY", 10.0)
                data = await gw.get_market_data("SPY", 10.0) if orch is not None else None
                last = data.last_price if data is not None else 600.0
                strike = min(chain.strikes, key=lambda s: abs(s - last))
                signal = {
                    "symbol": "SPY",
                    "action": "BUY",
                    "quantity": 1,
                    "order_type": "LMT",
                    "limit_price": 50.0,
                    "expiry": expiry,
                    "strike": strike,
                    "right": "C",
                    "strategy_id": "soak",
                    "timestamp": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                }
                result = await gw.submit_order(signal, CONTEXT, timeout=10.0)
                statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
                if orch is None:
                    await gw.get_positions(10.0)
                if result.status is OrderStatus.SIMULATED and i % 3 == 0:
                    await gw.close_all_positions("MANUAL", timeout=10.0)
            except Exception as exc:  # counted: a soak must survive its failures
                errors += 1
                print(f"cycle {i}: {exc!r}", file=sys.stderr)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.1)
        end = sample(sim, cycles)
        if orch is not None:
            await orch.aclose()
        await gw.disconnect()
        journal.close()
    measured = max(cycles - 20, 1)
    return {
        "mode": mode,
        "cycles": cycles,
        "seconds": round(elapsed, 1),
        "cycles_per_second": round(measured / max(elapsed, 1e-9), 2),
        "ms_per_cycle": round(1000 * elapsed / measured, 2),
        "order_statuses": statuses,
        "errors": errors,
        "start": start,
        "end": end,
        "rss_kib_along_the_way": [(x["cycle"], x["rss_kib"]) for x in samples],
        "rss_growth_kib": end["rss_kib"] - start.get("rss_kib", end["rss_kib"]),
        "journal_bytes": (tmp / "soak.sqlite").stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cycles", type=int, default=10_000)
    p.add_argument("--mode", choices=["cycle", "calls"], default=None)
    args = p.parse_args(argv)
    mode = args.mode or ("cycle" if HAVE_ORCHESTRATOR else "calls")
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    out = asyncio.run(run(max(args.cycles, 21), mode))
    print(json.dumps(out, indent=2))
    s, e = out["start"], out["end"]
    print(
        f"soak: {out['cycles']} {mode} cycles in {out['seconds']} s "
        f"({out['ms_per_cycle']} ms/cycle), RSS {s['rss_kib'] // 1024} -> "
        f"{e['rss_kib'] // 1024} MiB, tasks {s['asyncio_tasks']} -> {e['asyncio_tasks']}, "
        f"subscriptions {s['standing_subscriptions']} -> {e['standing_subscriptions']}, "
        f"fds {s['open_fds']} -> {e['open_fds']}, errors {out['errors']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
