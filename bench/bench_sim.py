"""Benchmark of the simulated gateway: placeOrder -> Filled round trip and message throughput.

Run: ``.venv/bin/python bench/bench_sim.py [orders]``. Prints one JSON line and one readable line.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from ib_async import IB, MarketOrder, Stock

from ibkr_trader.sim import SimConfig, SimulatedGateway


async def _round_trips(ib: IB, n: int) -> list[float]:
    [aapl] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    times: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        trade = ib.placeOrder(aapl, MarketOrder("BUY" if i % 2 == 0 else "SELL", 1))
        await asyncio.wait_for(trade.filledEvent, 5)
        times.append(time.perf_counter() - started)
    return times


async def _throughput(gw: SimulatedGateway, ib: IB, n: int) -> float:
    """Requests/s answered: n reqCurrentTime sent at once (ib_async throttle off)."""
    ib.client.MaxRequests = 0
    answered = 0
    done = asyncio.Event()

    def on_time(*_: object) -> None:
        nonlocal answered
        answered += 1
        if answered == n:
            done.set()

    ib.wrapper.currentTime = on_time  # count every answer, not just the awaited one
    started = time.perf_counter()
    for _ in range(n):
        ib.client.reqCurrentTime()
    await asyncio.wait_for(done.wait(), 60)
    return n / (time.perf_counter() - started)


async def main(n_orders: int = 200, n_messages: int = 20_000) -> dict[str, float]:
    config = SimConfig(fill_latency=0.0, rate_limit=10**9, pacing=False)
    async with SimulatedGateway(config) as gw:
        ib = IB()
        try:
            started = time.perf_counter()
            await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
            connect_s = time.perf_counter() - started
            trips = sorted(await _round_trips(ib, n_orders))
            rate = await _throughput(gw, ib, n_messages)
        finally:
            ib.disconnect()
    return {
        "connect_ms": round(connect_s * 1000, 3),
        "orders": n_orders,
        "fill_round_trip_median_ms": round(statistics.median(trips) * 1000, 3),
        "fill_round_trip_p95_ms": round(trips[int(0.95 * (len(trips) - 1))] * 1000, 3),
        "messages": n_messages,
        "messages_per_second": round(rate),
    }


if __name__ == "__main__":
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    result = asyncio.run(main(orders))
    print(json.dumps({"bench": "sim", **result}))
    print(
        f"sim: connect {result['connect_ms']} ms; placeOrder->Filled median "
        f"{result['fill_round_trip_median_ms']} ms, p95 {result['fill_round_trip_p95_ms']} ms "
        f"over {orders} orders; {result['messages_per_second']} requests/s answered"
    )
