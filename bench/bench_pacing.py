"""Pacing under a burst: close_all of 100 positions while market data refreshes (issue 18 P6).

``python bench/bench_pacing.py [--positions 100] [--runs 3]`` starts the simulated gateway in
its own process (``bench/simproc.py``), seeds N option positions there (PAPER account),
connects an IBKRGateway and runs ``close_all_positions`` while a second task keeps refreshing
market data for SPY, QQQ and IWM. Messages are counted twice: where they leave the client (its
socket writes) and where they arrive, at the simulator process, timestamped when it read them
(a receiver in another process, as IB counts). Reported (JSON plus a readable line):

* ``max_messages_in_sliding_second``: the most messages in any one-second window, sliding
  (must be <= 50, IB's limit), at the receiver and at the client;
* ``sustained_rate``: messages per second at the receiver from the END of the burst's first
  second to its last message (the first window may carry an unspent budget; target >= 45/s);
* ``closes_before_data``: whether every closing order arrived before the data requests that
  were made during the close (msg ids 1 / 20 received between the first and the last close).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ibkr_trader.clock import SystemClock
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus
from ibkr_trader.risk import RiskManager, load_risk_limits
from simproc import SimProcess

PLACE_ORDER, MKT_DATA, HISTORICAL = 3, 1, 20
CLIENT_ID = 61


async def run(sim: SimProcess, n_positions: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pacing-"))
    seeded = sim.command(f"seedmany {n_positions}")["seeded"]
    assert seeded == n_positions, f"only {seeded} contracts to seed"
    clock = SystemClock()
    journal = Journal.open(tmp / "j.sqlite", ExecutionMode.PAPER, clock)
    limits = load_risk_limits(env={}, section={"max_open_positions": 1000})
    risk = RiskManager(limits, journal, clock, kill_switch_path=tmp / "HALT")
    gw = IBKRGateway(
        GatewayConfig(host=sim.info["host"], port=sim.port, client_id=CLIENT_ID),
        risk,
        ExecutionMode.PAPER,
        journal=AsyncJournal(journal),
        clock=clock,
    )
    await gw.connect(10.0)
    sent: list[tuple[float, int]] = []
    wire = gw.connection.ib.client.conn
    original_send = wire.sendMsg

    def send(msg: bytes) -> None:
        sent.append((time.time(), int(msg[4:].split(b"\0", 1)[0] or 0)))
        original_send(msg)

    wire.sendMsg = send
    positions = await gw.get_positions(30.0)
    stop = asyncio.Event()
    data_calls = 0

    async def refresh() -> None:
        nonlocal data_calls
        while not stop.is_set():
            for symbol in ("SPY", "QQQ", "IWM"):
                with contextlib.suppress(Exception):  # measured, not judged here
                    await gw.get_market_data(symbol, 10.0)
                data_calls += 1

    await asyncio.sleep(1.1)  # a quiet second before the burst
    sim.command("clear")
    burst_start = time.time()
    refresher = asyncio.create_task(refresh())
    results = await gw.close_all_positions("EMERGENCY_STOP", timeout=120.0)
    burst_end = time.time()
    stop.set()
    await refresher
    await gw.disconnect()
    journal.close()
    arrivals = [(t, m) for t, m, _c in sim.arrivals() if burst_start <= t <= burst_end + 0.5]
    receiver_stall_ms = sim.command("stalls")["max_stall_ms"]
    out = _figures(arrivals, burst_start)
    out["at_client"] = _figures([(t, m) for t, m in sent if t >= burst_start], burst_start)
    out.update(
        {
            "positions": n_positions,
            "positions_seen": len(positions),
            "closes_filled": sum(1 for r in results if r.status is OrderStatus.FILLED),
            "data_refreshes_during_burst": data_calls,
            "burst_seconds": round(burst_end - burst_start, 3),
            "receiver_max_loop_stall_ms": receiver_stall_ms,
            "measured_at": "the simulator process (at_client: the client's socket writes)",
        }
    )
    return out


def _figures(burst: list[tuple[float, int]], burst_start: float) -> dict[str, Any]:
    times = sorted(t for t, _ in burst)
    window_max, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        window_max = max(window_max, i - j + 1)
    after_first = [t for t in times if t >= burst_start + 1.0]
    span = (after_first[-1] - (burst_start + 1.0)) if after_first else 0.0
    closes = [t for t, m in burst if m == PLACE_ORDER]
    data_between = (
        [t for t, m in burst if m in (MKT_DATA, HISTORICAL) and closes[0] < t < closes[-1]]
        if closes
        else []
    )
    return {
        "closes_sent": len(closes),
        "messages_in_burst": len(burst),
        "max_messages_in_sliding_second": window_max,
        "sustained_rate": round(len(after_first) / span, 1) if span > 0 else None,
        "data_requests_between_first_and_last_close": len(data_between),
        "closes_before_data": not data_between,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--positions", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    runs = []
    for _ in range(args.runs):
        with SimProcess() as sim:
            runs.append(asyncio.run(run(sim, args.positions)))
    out: dict[str, Any] = {
        "bench": "pacing",
        "runs": runs,
        "max_messages_in_sliding_second": max(r["max_messages_in_sliding_second"] for r in runs),
        "min_sustained_rate": min(r["sustained_rate"] or 0.0 for r in runs),
        "closes_before_data": all(r["closes_before_data"] for r in runs),
        "all_filled": all(r["closes_filled"] == r["positions"] for r in runs),
        "load_average": os.getloadavg(),
        "limit_max_per_second": 50,
        "target_sustained_rate": 45,
    }
    out["ok_max"] = out["max_messages_in_sliding_second"] <= 50
    out["ok_sustained"] = out["min_sustained_rate"] >= 45
    print(json.dumps(out, sort_keys=True))
    print(
        f"pacing ({args.runs} runs, load {out['load_average'][0]:.1f}): "
        f"{[r['closes_filled'] for r in runs]}/{args.positions} closed in "
        f"{[r['burst_seconds'] for r in runs]} s; at the receiver (separate process) max "
        f"{[r['max_messages_in_sliding_second'] for r in runs]} in a sliding second (limit 50; "
        f"at the client {[r['at_client']['max_messages_in_sliding_second'] for r in runs]}), "
        f"sustained after the first second {[r['sustained_rate'] for r in runs]}/s (target 45; "
        f"at the client {[r['at_client']['sustained_rate'] for r in runs]}), receiver loop "
        f"stalls up to {[r['receiver_max_loop_stall_ms'] for r in runs]} ms, "
        f"closes before data: {out['closes_before_data']}"
    )
    target = os.environ.get("BENCH_OUT")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / "pacing.json").write_text(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
