"""Broker layer vs raw ib_async on the same simulated gateway, in one run.

Measures (median over N rounds): one snapshot quote and one request of 60 one-minute bars,
through ``ibkr_trader.broker`` and through raw ib_async; prints the ratio. Then a burst of
quotes through each, and the most messages the simulator counted in any one second.

The broker side uses a permissive historical pacer here (the same request repeated N times
would otherwise wait 15 s each, by design); the simulator runs with pacing off.
Prints one JSON line and one readable line.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB, Stock

from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.market_data import MarketDataProvider
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.sim import SimConfig, SimulatedGateway

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
BURST = 120


async def _median(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    await fn()  # warm-up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def main() -> dict[str, Any]:
    async with SimulatedGateway(SimConfig(pacing=False)) as gw:
        conn = IBKRConnection(gw.host, gw.port, client_id=101, reconnect=False)
        await conn.connect(10.0)
        contracts = ContractManager(conn)
        pacer = HistoricalPacer(
            identical_interval=0.0, contract_limit=10**6, global_limit=10**6, margin=0.0
        )
        provider = MarketDataProvider(conn, contracts, pacer=pacer)
        spy = await contracts.qualify_stock("SPY", 10.0)

        raw = IB()
        await raw.connectAsync(gw.host, gw.port, clientId=102, timeout=10)
        raw_spy = Stock("SPY", "SMART", "USD")
        await raw.qualifyContractsAsync(raw_spy)

        async def broker_quote() -> None:
            await provider.get_quote(spy, 10.0)

        async def raw_quote() -> None:
            await asyncio.wait_for(raw.reqTickersAsync(raw_spy), 10.0)

        async def broker_bars() -> None:
            bars = await provider.get_historical_bars(spy, "3600 S", timeout=10.0)
            assert len(bars) == 60

        async def raw_bars() -> None:
            bars = await raw.reqHistoricalDataAsync(
                raw_spy, "", "3600 S", "1 min", "TRADES", True, formatDate=2, timeout=10
            )
            assert len(bars) == 60

        result: dict[str, Any] = {"rounds": ROUNDS}
        for name, ours, theirs in (
            ("quote", broker_quote, raw_quote),
            ("bars60", broker_bars, raw_bars),
        ):
            broker_s = await _median(ours, ROUNDS)
            raw_s = await _median(theirs, ROUNDS)
            result[f"{name}_broker_ms"] = round(broker_s * 1000, 3)
            result[f"{name}_raw_ms"] = round(raw_s * 1000, 3)
            result[f"{name}_ratio"] = round(broker_s / raw_s, 3)

        await asyncio.sleep(1.1)  # a clean second for the burst counters
        start = time.perf_counter()
        await asyncio.gather(*(provider.get_quote(spy, 30.0) for _ in range(BURST)))
        result["burst_quotes"] = BURST
        result["burst_broker_s"] = round(time.perf_counter() - start, 3)
        result["burst_broker_max_msgs_per_s"] = gw.max_messages_per_second(101)
        result["burst_broker_rate_violations"] = gw.rate_violations(101)
        start = time.perf_counter()
        await asyncio.gather(
            *(asyncio.wait_for(raw.reqTickersAsync(raw_spy), 30.0) for _ in range(BURST))
        )
        result["burst_raw_s"] = round(time.perf_counter() - start, 3)
        result["burst_raw_max_msgs_per_s"] = gw.max_messages_per_second(102)
        result["standing_subscriptions_after"] = gw.standing_subscriptions()

        raw.disconnect()
        await conn.disconnect()
        return result


if __name__ == "__main__":
    res = asyncio.run(main())
    print(json.dumps({"bench": "broker", **res}, sort_keys=True))
    print(
        f"broker vs raw ib_async (median of {res['rounds']}): quote "
        f"{res['quote_broker_ms']:.2f} ms vs {res['quote_raw_ms']:.2f} ms "
        f"(x{res['quote_ratio']:.2f}); 60 bars {res['bars60_broker_ms']:.2f} ms vs "
        f"{res['bars60_raw_ms']:.2f} ms (x{res['bars60_ratio']:.2f}); burst of "
        f"{res['burst_quotes']} quotes: max {res['burst_broker_max_msgs_per_s']} msgs/s "
        f"(broker, {res['burst_broker_s']:.1f}s) vs {res['burst_raw_max_msgs_per_s']} msgs/s "
        f"(raw ib_async), limit 50"
    )
