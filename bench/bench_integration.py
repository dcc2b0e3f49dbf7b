"""Integration layer vs raw ib_async on the simulated gateway, side by side in one run.

1. submit_order (PAPER, instant fill; risk validation, journal, qualification, quote) against
   raw ib_async placeOrder -> Filled (median over N);
2. the delay between the fill message arriving (ib_async's orderStatus Filled) and
   IBKRGateway.submit_order returning its OrderResult (median over N);
3. close_all_positions of 20 positions with a 200 ms fill latency against one close;
4. get_market_data (quote + 60 bars + server time + indicators; bars fetched every time, and
   with the 15 s bar cache warm) against raw ib_async snapshot plus bars.

Usage: ``.venv/bin/python bench/bench_integration.py [N]``. Prints one JSON line and one
readable line. The simulator runs with pacing off; the cold market-data case uses a permissive
historical pacer (an identical request would otherwise wait 15 s, by design).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ib_async import IB, LimitOrder, Option, Stock

from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.market_data import MarketDataProvider
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.integrations.market_data_pipeline import MarketDataPipeline
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.logging import configure_logging
from ibkr_trader.models import ExecutionMode, OrderStatus, StrategyContext, TradingSignal
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.testing import select_expiry

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
CLOSE_N = 20
CONTEXT = StrategyContext(
    strategy_id="bench",
    strategy_name="bench",
    risk_per_trade=1.0,
    take_profit_pct=0.5,
    stop_loss_pct=0.4,
)
LOOSE = RiskLimits(
    max_contracts_per_order=10,
    max_contracts_per_position=10_000,
    max_open_positions=1_000,
    max_risk_per_trade_pct=1.0,
    cash_allocation_pct=1.0,
)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _expiry(sim: SimulatedGateway) -> str:
    """A listed SPY expiry 8-30 days out on the simulator's date (by rule, not position)."""
    return select_expiry(sim, min_dte=8, max_dte=30)


def _strikes(sim: SimulatedGateway, count: int) -> list[float]:
    stock = sim.catalog.stock("SPY")
    assert stock is not None
    price = sim.market.price(stock.con_id)
    return sorted(sim.catalog.strikes("SPY"), key=lambda s: abs(s - price))[:count]


def _con_id(sim: SimulatedGateway, expiry: str, strike: float) -> int:
    found = sim.catalog.find(symbol="SPY", sec_type="OPT", expiry=expiry, strike=strike, right="C")
    return found[0].con_id


async def _gateway(
    sim: SimulatedGateway, tmp: Path, client_id: int, name: str
) -> tuple[IBKRGateway, Journal]:
    clock = sim.clock
    journal = Journal.open(tmp / f"{name}.sqlite3", ExecutionMode.PAPER, clock)
    risk = RiskManager(LOOSE, journal, clock, kill_switch_path=tmp / "HALT")
    gw = IBKRGateway(
        GatewayConfig(host=sim.host, port=sim.port, client_id=client_id, timeout=10.0),
        risk,
        ExecutionMode.PAPER,
        journal=AsyncJournal(journal),
        clock=clock,
    )
    await gw.connect(timeout=10.0)
    return gw, journal


async def bench_orders(tmp: Path) -> dict[str, Any]:
    async with SimulatedGateway(SimConfig(pacing=False)) as sim:
        gw, journal = await _gateway(sim, tmp, 201, "orders")
        expiry = _expiry(sim)
        strike = _strikes(sim, 1)[0]
        ask = sim.market.quote(_con_id(sim, expiry, strike)).ask
        limit = round(ask * 1.2 + 0.1, 2)

        fill_seen: dict[str, float] = {}

        def on_status(trade: Any) -> None:
            if trade.orderStatus.status == "Filled":
                fill_seen.setdefault(trade.order.orderRef, time.perf_counter())

        gw.connection.ib.orderStatusEvent += on_status

        def signal(i: int) -> TradingSignal:
            return TradingSignal(
                symbol="SPY",
                action="BUY",
                quantity=1,
                order_type="LMT",
                limit_price=limit,
                expiry=expiry,
                strike=strike,
                right="C",
                strategy_id="bench",
                timestamp=sim.clock.now(),
                signal_id=f"bench-{i}",
            )

        ours: list[float] = []
        delays: list[float] = []
        warm = await gw.submit_order(signal(-1), CONTEXT, timeout=10.0)
        assert warm.status is OrderStatus.FILLED, warm.rejection_reason
        for i in range(N):
            start = time.perf_counter()
            result = await gw.submit_order(signal(i), CONTEXT, timeout=10.0)
            done = time.perf_counter()
            assert result.status is OrderStatus.FILLED, result.rejection_reason
            ours.append(done - start)
            delays.append(done - fill_seen[result.order_id])

        raw = IB()
        await raw.connectAsync(sim.host, sim.port, clientId=202, timeout=10)
        contract = Option("SPY", expiry, strike, "C", "SMART", currency="USD")
        await raw.qualifyContractsAsync(contract)
        account = sim.accounts[0]

        async def raw_order() -> None:
            order = LimitOrder("BUY", 1, limit, account=account, tif="DAY")
            trade = raw.placeOrder(contract, order)
            filled = asyncio.Event()
            trade.filledEvent += lambda _t: filled.set()
            if trade.orderStatus.status != "Filled":
                await asyncio.wait_for(filled.wait(), 10.0)

        await raw_order()
        theirs: list[float] = []
        for _ in range(N):
            start = time.perf_counter()
            await raw_order()
            theirs.append(time.perf_counter() - start)
        raw.disconnect()
        await gw.aclose()
        journal.close()
    ours_med, raw_med = statistics.median(ours), statistics.median(theirs)
    return {
        "submit_order_ms": _ms(ours_med),
        "submit_order_p90_ms": _ms(statistics.quantiles(ours, n=10)[-1]),
        "raw_place_filled_ms": _ms(raw_med),
        "submit_vs_raw_ratio": round(ours_med / raw_med, 2),
        "fill_to_result_ms": _ms(statistics.median(delays)),
        "fill_to_result_max_ms": _ms(max(delays)),
    }


async def bench_close_all(tmp: Path) -> dict[str, Any]:
    async with SimulatedGateway(SimConfig(pacing=False, fill_latency=0.2)) as sim:
        expiry = _expiry(sim)
        strikes = _strikes(sim, CLOSE_N + 1)
        account = sim.accounts[0]
        for strike in strikes[:CLOSE_N]:
            con_id = _con_id(sim, expiry, strike)
            sim.seed_position(account, "SPY", 1, sim.market.price(con_id) * 100, con_id=con_id)
        gw, journal = await _gateway(sim, tmp, 211, "close_all")
        start = time.perf_counter()
        results = await gw.close_all_positions("MANUAL", timeout=30.0)
        all_s = time.perf_counter() - start
        assert len(results) == CLOSE_N, results
        assert all(r.status is OrderStatus.FILLED for r in results), results

        con_id = _con_id(sim, expiry, strikes[CLOSE_N])
        sim.seed_position(account, "SPY", 1, sim.market.price(con_id) * 100, con_id=con_id)
        positions = await gw.get_positions(timeout=10.0)
        start = time.perf_counter()
        one = await gw.close_position(positions[0].position_id, "MANUAL", timeout=10.0)
        one_s = time.perf_counter() - start
        assert one.status is OrderStatus.FILLED
        start = time.perf_counter()
        await gw.get_positions(timeout=10.0)
        refresh_s = time.perf_counter() - start
        await gw.aclose()
        journal.close()
    return {
        "close_all_20_ms": _ms(all_s),
        "close_one_ms": _ms(one_s),
        "close_all_vs_one_ratio": round(all_s / one_s, 2),
        "positions_refresh_ms": _ms(refresh_s),
        "fill_latency_ms": 200,
    }


async def _median(fn: Callable[[], Awaitable[Any]], rounds: int) -> float:
    await fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def bench_market_data(tmp: Path) -> dict[str, Any]:
    async with SimulatedGateway(SimConfig(pacing=False)) as sim:
        gw, journal = await _gateway(sim, tmp, 221, "market_data")
        permissive = HistoricalPacer(
            identical_interval=0.0, contract_limit=10**6, global_limit=10**6, margin=0.0
        )
        contracts = ContractManager(gw.connection)
        cold = MarketDataPipeline(
            MarketDataProvider(gw.connection, contracts, pacer=permissive),
            gw.connection,
            bars_max_age_seconds=0.0,
        )

        async def ours_cold() -> None:
            data = await cold.fetch_market_data("SPY", timeout=10.0)
            assert data.bars_used == 60

        async def ours_warm() -> None:
            await gw.get_market_data("SPY", timeout=10.0)

        raw = IB()
        await raw.connectAsync(sim.host, sim.port, clientId=222, timeout=10)
        spy = Stock("SPY", "SMART", "USD")
        await raw.qualifyContractsAsync(spy)

        async def theirs() -> None:
            tickers, bars = await asyncio.gather(
                asyncio.wait_for(raw.reqTickersAsync(spy), 10.0),
                raw.reqHistoricalDataAsync(
                    spy, "", "3600 S", "1 min", "TRADES", True, formatDate=2, timeout=10
                ),
            )
            assert len(bars) == 60 and tickers

        rounds = max(10, N // 2)
        cold_s = await _median(ours_cold, rounds)
        warm_s = await _median(ours_warm, rounds)
        raw_s = await _median(theirs, rounds)
        raw.disconnect()
        await gw.aclose()
        journal.close()
    return {
        "market_data_cold_ms": _ms(cold_s),
        "market_data_warm_ms": _ms(warm_s),
        "raw_snapshot_bars_ms": _ms(raw_s),
        "market_data_cold_vs_raw_ratio": round(cold_s / raw_s, 2),
    }


async def main() -> dict[str, Any]:
    configure_logging("ERROR")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        result: dict[str, Any] = {"rounds": N}
        result.update(await bench_orders(tmp))
        result.update(await bench_close_all(tmp))
        result.update(await bench_market_data(tmp))
        return result


if __name__ == "__main__":
    res = asyncio.run(main())
    print(json.dumps({"bench": "integration", **res}, sort_keys=True))
    print(
        f"integration (median of {res['rounds']}): submit_order {res['submit_order_ms']:.1f} ms "
        f"vs raw placeOrder->Filled {res['raw_place_filled_ms']:.1f} ms "
        f"(x{res['submit_vs_raw_ratio']:.1f}); fill message -> OrderResult "
        f"{res['fill_to_result_ms']:.2f} ms (max {res['fill_to_result_max_ms']:.1f}); "
        f"close_all of {CLOSE_N} at 200 ms fill latency {res['close_all_20_ms']:.0f} ms vs one "
        f"close {res['close_one_ms']:.0f} ms (x{res['close_all_vs_one_ratio']:.2f}); "
        f"get_market_data {res['market_data_cold_ms']:.1f} ms cold / "
        f"{res['market_data_warm_ms']:.1f} ms with cached bars vs raw snapshot+bars "
        f"{res['raw_snapshot_bars_ms']:.1f} ms"
    )
