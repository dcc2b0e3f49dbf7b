"""The trading process of the kill -9 chaos scenario (run as a subprocess, then SIGKILLed).

``python driver.py --port P --journal J --kill-switch K --seed S --steps N --at T [--final]``
connects to the simulator in PAPER mode on client id 7, reconciles the journal with the
gateway first (as a restarted process must), then submits a deterministic sequence of signals
(the same seed gives the same signal ids, so a restarted driver replays the very same orders,
which must not be sent twice) with a close of everything now and then. ``--final`` reconciles
once more at the end; any reconciliation problem is printed as ``VIOLATION ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.engine import CONTEXT, EXPECTED, build_stack, contract_terms, signal_for
from ibkr_trader.orders.reconcile import Reconciler
from ibkr_trader.sim.clock import SimClock


async def main(args: argparse.Namespace) -> int:
    import logging

    import structlog

    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    # the simulator's time, passed in, ticking from there: never this machine's date
    clock = SimClock(datetime.fromisoformat(args.at))
    journal, risk, gw = await build_stack(
        "127.0.0.1", args.port, Path(args.journal), Path(args.kill_switch), 7, clock
    )
    rng = random.Random(args.seed * 7919)
    try:
        await gw.connect(timeout=10.0)
        reconciler = Reconciler(gw.connection, gw.journal, risk, gw.mode, clock)
        report = await reconciler.reconcile("start-up", 10.0)
        if report.error is not None or report.unknown_orders:
            print(f"VIOLATION start-up reconciliation: {report.summary()}", flush=True)
        expiry, strike, ask, bid = await contract_terms(gw)
        for i in range(args.steps):
            action = rng.choice(["submit", "submit", "rest", "close_all"])
            try:
                if action == "close_all":
                    await gw.close_all_positions("MANUAL", timeout=2.0)
                else:
                    limit = ask + 0.5 if action == "submit" else max(0.01, bid - 1.0)
                    sig = signal_for(args.seed * 100 + i, expiry, strike, limit, rng.choice([1, 2]))
                    await gw.submit_order(sig, CONTEXT, timeout=rng.choice([0.2, 0.6]))
            except EXPECTED as exc:
                print(f"step {i} {action}: {type(exc).__name__}", flush=True)
            print(f"step {i} {action} done", flush=True)
        if args.final:
            await asyncio.sleep(0.2)
            report = await reconciler.reconcile("final", 10.0)
            if report.error is not None or report.unknown_orders:
                print(f"VIOLATION final reconciliation: {report.summary()}", flush=True)
        return 0
    finally:
        await gw.disconnect()
        journal.close()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--journal", required=True)
    p.add_argument("--kill-switch", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--final", action="store_true")
    p.add_argument("--at", required=True, help="the simulator's current time (ISO, aware)")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
