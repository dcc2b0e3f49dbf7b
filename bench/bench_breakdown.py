"""Where one order's time goes: perf-counter stamps along ``submit_order`` (issue 18).

The simulator in its own process (``bench/simproc.py``), raw ib_async on its own account in
the same loop (as in ``bench_integration.py``), the pairs paced 30 ms apart; the stamps wrap
the order path's steps (no profiler: a wrapper costs about a microsecond). Prints one JSON line
and one readable line per step (median of N orders, ``--n``, default 200).

Usage: ``.venv/bin/python bench/bench_breakdown.py [--n 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_integration import ACCOUNTS, PAIR_SECONDS, Orders, _gateway, _quiet, _raw
from simproc import SimProcess

STEPS = (
    ("s0", "r0", "before the exposure check (account settled, signal, idempotency)"),
    ("r0", "r1", "exposure check (the view's in-memory tests, the journal watermark)"),
    ("e0", "e1", "RiskManager.evaluate_trade"),
    ("e1", "d1", "decision + intent, durable (the loop waits)"),
    ("j0", "j1", "  of which the worker's transaction"),
    ("d1", "p0", "to the send"),
    ("p0", "p1", "send -> acknowledged (placeOrder, the gateway's answer)"),
    ("p1", "f0", "acknowledged -> done"),
    ("f0", "f1", "the order's end (outcome, ledger, group commit queued)"),
    ("f1", "s9", "back to the caller"),
)


def _instrument(stamps: dict[str, float]) -> None:
    from ibkr_trader.execution import venues
    from ibkr_trader.integrations import ibkr_gateway, order_executor
    from ibkr_trader.journal import store
    from ibkr_trader.risk import manager

    def around(cls: Any, name: str, start: str, end: str) -> None:
        original: Callable[..., Any] = getattr(cls, name)
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                stamps[start] = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    stamps[end] = time.perf_counter()

            setattr(cls, name, wrapped_async)
            return

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            stamps[start] = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                stamps[end] = time.perf_counter()

        setattr(cls, name, wrapped)

    around(ibkr_gateway.IBKRGateway, "submit_order", "s0", "s9")
    around(order_executor.OrderExecutor, "_refresh_exposure", "r0", "r1")
    around(manager.RiskManager, "evaluate_trade", "e0", "e1")
    around(order_executor.OrderExecutor, "_decide", "d0", "d1")
    around(store.Journal, "record_decision_and_intent", "j0", "j1")
    around(venues.PaperVenue, "place", "p0", "p1")
    around(order_executor.OrderExecutor, "_finish", "f0", "f1")


async def run(n: int) -> dict[str, Any]:
    stamps: dict[str, float] = {}
    _instrument(stamps)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, SimProcess(accounts=ACCOUNTS) as sim:
        gw = await _gateway(sim.info, Path(tmp), 331, "breakdown")
        raw = await _raw(sim.info, 332)
        orders = Orders(sim.info, gw, raw)
        await orders.prepare()
        await orders.ours()
        await orders.raw_order()
        for _ in range(n):
            await asyncio.sleep(PAIR_SECONDS)
            stamps.clear()
            await orders.ours()
            rows.append(dict(stamps))
            await orders.raw_order()
        raw.disconnect()
        await gw.aclose()
    steps = []
    for start, end, label in STEPS:
        values = [(r[end] - r[start]) * 1e3 for r in rows if start in r and end in r]
        steps.append({"step": label, "median_ms": round(statistics.median(values), 3)})
    total = statistics.median((r["s9"] - r["s0"]) * 1e3 for r in rows)
    return {"bench": "breakdown", "n": n, "steps": steps, "total_median_ms": round(total, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    _quiet()
    out = asyncio.run(run(args.n))
    out["load_average"] = list(os.getloadavg())
    print(json.dumps(out, sort_keys=True))
    for step in out["steps"]:
        print(f"{step['median_ms']:8.3f} ms  {step['step']}")
    print(f"{out['total_median_ms']:8.3f} ms  submit_order in all (median of {args.n})")
    if os.environ.get("BENCH_OUT"):
        Path(os.environ["BENCH_OUT"], "breakdown.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
