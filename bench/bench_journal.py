"""Journal append latency (FULL vs NORMAL sync) and event-loop stall through AsyncJournal.

Usage: python bench/bench_journal.py [--n N] [--dir DIR]
Prints one JSON line, then one readable line. The journal lives in a temporary directory
under --dir (default: the current directory, i.e. the real disk, not a tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import (
    CheckResult,
    ExecutionMode,
    TradeRequest,
    TradingState,
    ValidationResult,
)


def _request(i: int) -> TradeRequest:
    return TradeRequest(
        symbol="SPY",
        action="BUY",
        quantity=1,
        order_type="LMT",
        limit_price=1.25,
        strategy_id="A",
        strategy_name="momentum",
        risk_per_trade=0.01,
        take_profit_pct=0.5,
        stop_loss_pct=0.4,
        expiry="20260320",
        strike=580.0,
        right="C",
        operator_id="CSATSPRIM",
        signal_id=f"sig-{i}",
    )


RESULT = ValidationResult(
    approved=True,
    risk_metrics={"premium_at_risk": 125.0},
    checks=tuple(CheckResult(f"check_{k}", True, k, 10) for k in range(12)),
    limits_hash="h",
    trading_state=TradingState.ACTIVE,
)


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 4),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 4),
    }


def _time(n: int, fn: Callable[[int], Any]) -> dict[str, float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return _stats(samples)


def bench_sync(base: Path, sync: str, n: int) -> dict[str, dict[str, float]]:
    path = base / f"bench-{sync}.sqlite3"
    with Journal.open(path, ExecutionMode.DRY_RUN, synchronous=sync) as j:
        out = {"risk_decision": _time(n, lambda i: j.record_risk_decision(_request(i), RESULT))}
        out["intent"] = _time(n, lambda i: j.record_intent(_request(i), decision_id=None))
        out["fill"] = _time(
            n,
            lambda i: j.record_fill(
                f"e{i}",
                client_order_id=None,
                symbol="SPY",
                contract_key="SPY:20260320:C:580",
                side="BUY",
                quantity=1,
                price=1.25,
            ),
        )
    return out


async def _with_ticker(work: Callable[[], Any]) -> tuple[float, list[float]]:
    """Run ``await work()`` while a 1 ms ticker records how late each tick wakes up."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        interval = 0.001
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(interval)
            lags.append(time.perf_counter() - before - interval)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return elapsed, sorted(lags)


async def bench_async(base: Path, n: int) -> dict[str, float]:
    """Loop lag: idle baseline, n decisions + intents via AsyncJournal, and called inline."""

    async def idle() -> None:
        await asyncio.sleep(0.5)

    _, idle_lags = await _with_ticker(idle)
    async with await AsyncJournal.open(base / "bench-async.sqlite3", ExecutionMode.DRY_RUN) as aj:

        async def through_async() -> None:
            for i in range(n):
                decision_id = await aj.record_risk_decision(_request(i), RESULT)
                await aj.record_intent(_request(i), decision_id=decision_id)

        elapsed, lags = await _with_ticker(through_async)
    with Journal.open(base / "bench-inline.sqlite3", ExecutionMode.DRY_RUN) as j:

        async def inline() -> None:
            for i in range(n):
                decision_id = j.record_risk_decision(_request(i), RESULT)
                j.record_intent(_request(i), decision_id=decision_id)
                await asyncio.sleep(0)

        _, inline_lags = await _with_ticker(inline)
    return {
        "appends": 2 * n,
        "round_trip_median_ms": round(elapsed / (2 * n) * 1000, 4),
        "loop_lag_max_ms": round(lags[-1] * 1000, 3),
        "loop_lag_p99_ms": round(lags[int(len(lags) * 0.99) - 1] * 1000, 3),
        "idle_loop_lag_max_ms": round(idle_lags[-1] * 1000, 3),
        "inline_sync_loop_lag_max_ms": round(inline_lags[-1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-journal-", dir=args.dir) as tmp:
        base = Path(tmp)
        full = bench_sync(base, "FULL", args.n)
        normal = bench_sync(base, "NORMAL", args.n)
        loop = asyncio.run(bench_async(base, args.n // 2))
    report = {
        "bench": "journal",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": args.n,
        "full": full,
        "normal": normal,
        "async_full": loop,
    }
    print(json.dumps(report))
    print(
        "journal append (synchronous=FULL) median/p99 ms: "
        + ", ".join(f"{k} {v['median_ms']}/{v['p99_ms']}" for k, v in full.items())
        + " | NORMAL: "
        + ", ".join(f"{k} {v['median_ms']}/{v['p99_ms']}" for k, v in normal.items())
        + f" | async path: max loop lag {loop['loop_lag_max_ms']} ms"
        f" (p99 {loop['loop_lag_p99_ms']} ms) over {loop['appends']} appends;"
        f" idle loop {loop['idle_loop_lag_max_ms']} ms;"
        f" sync calls inline on the loop {loop['inline_sync_loop_lag_max_ms']} ms"
    )


if __name__ == "__main__":
    main()
