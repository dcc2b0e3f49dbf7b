"""Protection drill: for each protective trigger under each fault, the time from the trigger
to the close order on the wire (at the simulator).

``python bench/bench_protection.py [--interval 60] [--json-only]`` runs
:func:`ibkr_trader.testing.drill.run_drill` for every trigger (40% emergency stop, 3-DTE,
quarantine by stale data and by missing data, daily loss, weekly drawdown) under every fault
(none, total loss of market data, a failing gateway clock, no bid on held options, a full disk
under the journal, a day boundary during the run, a reconnect to a live-style account), each
on a fresh in-process simulator with the NYSE calendar and the drill's simulated clock.

Targets: one cycle plus 1 s from the trigger (the quarantine by missing data: 5 minutes from
the last usable data); 0 protective closes lost; on a live-style account NOTHING is sent (a
close there is a live order) and trading is HALTED. Prints one JSON document, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from ibkr_trader.testing.drill import FAULTS, TRIGGERS, DrillResult, run_drill


async def run_all(interval: float) -> list[DrillResult]:
    results: list[DrillResult] = []
    for trigger in TRIGGERS:
        for fault in FAULTS:
            with tempfile.TemporaryDirectory(prefix="bench-protection-") as tmp:
                results.append(await run_drill(trigger, fault, Path(tmp), interval=interval))
    return results


def summary(results: list[DrillResult], seconds: float, interval: float) -> dict[str, Any]:
    expected = [r for r in results if r.expected_close]
    lost = [r for r in expected if not r.closed]
    timed = [r.seconds_to_wire for r in expected if r.seconds_to_wire is not None]
    return {
        "interval_seconds": interval,
        "drills": len(results),
        "all_ok": all(r.ok for r in results),
        "closes_expected": len(expected),
        "closes_lost": len(lost),
        "max_seconds_to_wire": max(timed) if timed else None,
        "live_account_orders": sum(1 for r in results if not r.expected_close and r.closed),
        "wall_seconds": round(seconds, 1),
        "results": [r.to_dict() for r in results],
    }


def table(results: list[DrillResult]) -> str:
    lines = [
        f"{'trigger':<16} {'fault':<17} {'closed':<7} {'s to wire':>9} {'target':>7} "
        f"{'cycles':>6}  {'state':<9} ok",
    ]
    for r in results:
        wire = f"{r.seconds_to_wire:.3f}" if r.seconds_to_wire is not None else "-"
        closed = "yes" if r.closed else ("no (ok)" if not r.expected_close else "NO")
        lines.append(
            f"{r.trigger:<16} {r.fault:<17} {closed:<7} {wire:>9} {r.target_seconds:>7.0f} "
            f"{r.cycles:>6}  {r.trading_state:<9} {'ok' if r.ok else 'FAIL'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=60.0, help="cycle interval (s)")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    t0 = time.monotonic()
    results = asyncio.run(run_all(args.interval))
    report = summary(results, time.monotonic() - t0, args.interval)
    print(json.dumps(report, indent=2))
    if not args.json_only:
        print(table(results), file=sys.stderr)
        print(
            f"closes lost: {report['closes_lost']} of {report['closes_expected']}; "
            f"max to the wire {report['max_seconds_to_wire']} s; all ok: {report['all_ok']}",
            file=sys.stderr,
        )
    return 0 if report["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
