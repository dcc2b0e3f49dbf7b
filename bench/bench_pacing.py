"""Pacing under a burst: close_all of 100 positions while market data refreshes.

``python bench/bench_pacing.py [--positions 100]`` seeds N option positions at the simulated
gateway (PAPER account), connects an IBKRGateway, and runs ``close_all_positions`` while a
second task keeps refreshing market data for SPY, QQQ and IWM. The simulator records every
client message. Reported (JSON plus a readable line):

* ``max_messages_in_one_second``: the most messages in any one wall-clock second (must be
  <= 50, IB's limit);
* ``sustained_rate``: messages per second over the burst, from its first to its last second
  (target >= 45/s);
* ``closes_before_data``: whether every closing order arrived before the data requests that
  were made during the close (msg ids 1 / 20 received between the first and the last close).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus
from ibkr_trader.risk import RiskManager, load_risk_limits
from ibkr_trader.sim import SimConfig, SimulatedGateway

PLACE_ORDER, MKT_DATA, HISTORICAL = 3, 1, 20
CLIENT_ID = 61


def _seed(sim: SimulatedGateway, n: int) -> None:
    account = sim.accounts[0]
    seeded = 0
    for symbol in ("SPY", "QQQ", "IWM"):
        params = sim.catalog.option_params(symbol)
        assert params is not None
        expiries = [e for e in params.expirations][2:6]
        mid = len(params.strikes) // 2
        strikes = params.strikes[mid - 5 : mid + 5]
        for expiry in expiries:
            for strike in strikes:
                for right in ("C", "P"):
                    if seeded >= n:
                        return
                    sim.seed_position(
                        account,
                        symbol,
                        1,
                        500.0,
                        sec_type="OPT",
                        expiry=expiry,
                        strike=strike,
                        right=right,
                    )
                    seeded += 1
    raise SystemExit(f"only {seeded} contracts to seed")


async def run(n_positions: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pacing-"))
    async with SimulatedGateway(SimConfig(port=0, pacing=False)) as sim:
        _seed(sim, n_positions)
        arrivals: list[tuple[float, int]] = []
        original = sim.state.handle

        def handle(conn_id: int, fields: Any) -> Any:
            arrivals.append((time.time(), int(fields[0])))
            return original(conn_id, fields)

        sim.state.handle = handle  # type: ignore[method-assign]
        clock = sim.clock
        journal = Journal.open(tmp / "j.sqlite", ExecutionMode.PAPER, clock)
        limits = load_risk_limits(env={}, section={"max_open_positions": 1000})
        risk = RiskManager(limits, journal, clock, kill_switch_path=tmp / "HALT")
        gw = IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port, client_id=CLIENT_ID),
            risk,
            ExecutionMode.PAPER,
            journal=AsyncJournal(journal),
            clock=clock,
        )
        await gw.connect(10.0)
        # what leaves the client, timestamped at the socket write (the simulator shares this
        # process's event loop, so its arrival times bunch up whenever the client is busy)
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
        burst_start = time.time()
        refresher = asyncio.create_task(refresh())
        results = await gw.close_all_positions("EMERGENCY_STOP", timeout=120.0)
        burst_end = time.time()
        stop.set()
        await refresher
        await gw.disconnect()
        journal.close()

    out = _figures(
        [(t, m) for t, m in sent if burst_start <= t <= burst_end], burst_start, burst_end
    )
    arrived = _figures(
        [(t, m) for t, m in arrivals if burst_start <= t <= burst_end], burst_start, burst_end
    )
    out.update(
        {
            "positions": n_positions,
            "positions_seen": len(positions),
            "closes_filled": sum(1 for r in results if r.status is OrderStatus.FILLED),
            "data_refreshes_during_burst": data_calls,
            "sim_max_messages_per_second": sim.max_messages_per_second(CLIENT_ID),
            "sim_rate_violations": sim.rate_violations(CLIENT_ID),
            "arrivals_at_sim": arrived,
            "measured_at": "client socket writes (arrivals_at_sim: the in-process simulator)",
        }
    )
    return out


def _figures(
    burst: list[tuple[float, int]], burst_start: float, burst_end: float
) -> dict[str, Any]:
    per_second: dict[int, int] = {}
    for t, _ in burst:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    # sliding one-second window as well as calendar seconds
    times = sorted(t for t, _ in burst)
    window_max, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        window_max = max(window_max, i - j + 1)
    duration = max(burst_end - burst_start, 1e-9)
    closes = [t for t, m in burst if m == PLACE_ORDER]
    data_between = (
        [t for t, m in burst if m in (MKT_DATA, HISTORICAL) and closes[0] < t < closes[-1]]
        if closes
        else []
    )
    return {
        "closes_sent": len(closes),
        "burst_seconds": round(duration, 3),
        "messages_in_burst": len(burst),
        "max_messages_in_one_second": max(per_second.values(), default=0),
        "max_messages_in_sliding_second": window_max,
        "sustained_rate": round(len(burst) / duration, 1),
        "data_requests_between_first_and_last_close": len(data_between),
        "closes_before_data": not data_between,
        "limit_max_per_second": 50,
        "target_sustained_rate": 45,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--positions", type=int, default=100)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    out = asyncio.run(run(args.positions))
    out["ok_max"] = out["max_messages_in_sliding_second"] <= 50
    out["ok_sustained"] = out["sustained_rate"] >= 45
    print(json.dumps(out, indent=2))
    print(
        f"pacing: {out['closes_filled']}/{out['positions']} closed in {out['burst_seconds']} s; "
        f"max {out['max_messages_in_one_second']} msg/s (sliding "
        f"{out['max_messages_in_sliding_second']}, limit 50; at the in-process simulator "
        f"{out['arrivals_at_sim']['max_messages_in_sliding_second']}), sustained "
        f"{out['sustained_rate']} msg/s (target 45), closes before data: "
        f"{out['closes_before_data']} ({out['data_requests_between_first_and_last_close']} "
        "data requests interleaved)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
