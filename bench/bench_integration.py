"""The order path against raw ib_async, measured side by side (issue 18).

The simulator runs in its own process (``bench/simproc.py``), like a real IB Gateway. In every
figure the baseline (raw ib_async on the same simulator) and our call ALTERNATE in one loop, so
both see the same load; medians, p99 and the ratio are reported.

* P1 ``submit_order`` (paper, instant fill, the caller's fresh data passed: the underlying's and the option's own quote) vs raw
  ``placeOrder`` -> Filled; warm (N in one process) and cold (the first order of a fresh
  process, a few processes each).
* P2 the fill's bytes at the client's socket (``data_received``) -> ``OrderResult`` returned,
  and the same for raw ib_async (bytes -> the Trade's Filled status seen by the waiter).
* back-to-back: orders per second, our ``submit_order`` one after the other, and the most client
  messages the simulator process counted in any sliding second.
* P3 ``close_all_positions`` of 20 at 200 ms fill latency vs one close, several samples, warm
  (one process) and cold (the close_all is the first order of a fresh process).
* P4 ``get_market_data`` vs raw snapshot + 60 bars (one symbol, and 10 symbols concurrently).

Usage: ``.venv/bin/python bench/bench_integration.py [--n 300] [--cold 3] [--samples 5]``.
Prints one JSON line and a readable table; writes the JSON to ``$BENCH_OUT/integration.json``
when ``BENCH_OUT`` is set (``make bench`` does; ``bench/report.py`` reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simproc import SimProcess

SYMBOLS10 = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL")


def _quiet() -> None:
    logging.disable(logging.CRITICAL)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def _ms(s: float) -> float:
    return round(s * 1000, 3)


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return {"median_ms": _ms(statistics.median(xs)), "p99_ms": _ms(p99), "n": len(xs)}


def _pair(ours: list[float], raw: list[float]) -> dict[str, Any]:
    o, r = _stats(ours), _stats(raw)
    return {
        "ours": o,
        "raw": r,
        "delta_median_ms": round(o["median_ms"] - r["median_ms"], 3),
        "delta_p99_ms": round(o["p99_ms"] - r["p99_ms"], 3),
        "ratio_median": round(o["median_ms"] / r["median_ms"], 3) if r["median_ms"] else None,
    }


class FillStamp:
    """The time the first bytes carrying an orderStatus Filled reached the client's socket."""

    def __init__(self, conn: Any) -> None:
        self.at: float | None = None
        original = conn.data_received

        def data_received(data: bytes) -> None:
            if self.at is None and b"\x00Filled\x00" in data:
                self.at = time.perf_counter()
            original(data)

        conn.data_received = data_received

    def reset(self) -> None:
        self.at = None


async def _gateway(info: dict[str, Any], tmp: Path, client_id: int, name: str) -> Any:
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
    from ibkr_trader.journal import AsyncJournal, Journal
    from ibkr_trader.models import ExecutionMode
    from ibkr_trader.risk import RiskLimits, RiskManager

    clock = SystemClock()
    journal = Journal.open(tmp / f"{name}.sqlite3", ExecutionMode.PAPER, clock)
    limits = RiskLimits(
        max_contracts_per_order=10,
        max_contracts_per_position=100_000,
        max_open_positions=1_000,
        max_risk_per_trade_pct=1.0,
        cash_allocation_pct=1.0,
    )
    risk = RiskManager(limits, journal, clock, kill_switch_path=tmp / "HALT")
    gw = IBKRGateway(
        GatewayConfig(
            host=info["host"],
            port=info["port"],
            client_id=client_id,
            timeout=10.0,
            account=info["account"],
        ),
        risk,
        ExecutionMode.PAPER,
        journal=AsyncJournal(journal),
        clock=clock,
    )
    await gw.connect(timeout=10.0)
    return gw


async def _raw(info: dict[str, Any], client_id: int) -> Any:
    from ib_async import IB

    raw = IB()
    await raw.connectAsync(info["host"], info["port"], clientId=client_id, timeout=10)
    return raw


class Orders:
    """Our submit_order and raw placeOrder on one contract, each returning its timings."""

    def __init__(self, info: dict[str, Any], gw: Any, raw: Any) -> None:
        self.info, self.gw, self.raw = info, gw, raw
        self.limit = round(info["ask"] * 1.2 + 0.1, 2)
        self.strike = info["strikes"][0]
        self.ours_stamp = FillStamp(gw.connection.ib.client.conn) if gw else None
        self.raw_stamp = FillStamp(raw.client.conn) if raw else None
        self.market_data: Any = None
        self.option: Any = None
        self.option_quote: Any = None
        self.data_at = 0.0
        self.contract: Any = None
        self.seq = 0

    async def prepare(self) -> None:
        from ib_async import Option

        if self.gw is not None:
            self.option = await self.gw.contracts.qualify_option_contract(
                "SPY", self.info["expiry"], self.strike, "C", 10.0
            )
            await self._refresh_data()
        if self.raw is not None:
            self.contract = Option(
                "SPY", self.info["expiry"], self.strike, "C", "SMART", currency="USD"
            )
            await self.raw.qualifyContractsAsync(self.contract)

    async def ours(self) -> tuple[float, float]:
        from ibkr_trader.models import OrderStatus
        from ibkr_trader.signals import StrategyContext, TradingSignal

        self.seq += 1
        signal = TradingSignal(
            symbol="SPY",
            action="BUY",
            quantity=1,
            order_type="LMT",
            limit_price=self.limit,
            expiry=self.info["expiry"],
            strike=self.strike,
            right="C",
            strategy_id="bench",
            timestamp=datetime.now(UTC),
            signal_id=f"bench-{os.getpid()}-{self.seq}",
        )
        context = StrategyContext(
            strategy_id="bench",
            strategy_name="bench",
            risk_per_trade=1.0,
            take_profit_pct=0.5,
            stop_loss_pct=0.4,
        )
        assert self.ours_stamp is not None
        if time.monotonic() - self.data_at > 2.0:  # a strategy's data is fresh (untimed)
            await self._refresh_data()
        self.ours_stamp.reset()
        start = time.perf_counter()
        result = await self.gw.submit_order(
            signal,
            context,
            timeout=10.0,
            market_data=self.market_data,
            contract_quote=self.option_quote,
        )
        done = time.perf_counter()
        assert result.status is OrderStatus.FILLED, result.rejection_reason
        assert self.ours_stamp.at is not None
        return done - start, done - self.ours_stamp.at

    async def _refresh_data(self) -> None:
        """What a strategy holds when it prices an option order: the underlying's data and the
        option's own snapshot (refreshed every 2 s, untimed)."""
        self.market_data = await self.gw.get_market_data("SPY", timeout=10.0)
        self.option_quote, _quality = await self.gw.pipeline.fetch_quote(self.option, 10.0)
        self.data_at = time.monotonic()

    async def raw_order(self) -> tuple[float, float]:
        from ib_async import LimitOrder

        assert self.raw_stamp is not None
        self.raw_stamp.reset()
        start = time.perf_counter()
        # raw trades its own paper account: on ours its fills would be another trader's, and
        # every one of our entries would (rightly) read the gateway's view again
        order = LimitOrder("BUY", 1, self.limit, account=self.info["accounts"][-1], tif="DAY")
        trade = self.raw.placeOrder(self.contract, order)
        filled = asyncio.Event()
        trade.filledEvent += lambda _t: filled.set()
        if trade.orderStatus.status != "Filled":
            await asyncio.wait_for(filled.wait(), 10.0)
        done = time.perf_counter()
        assert self.raw_stamp.at is not None
        return done - start, done - self.raw_stamp.at


ACCOUNTS = ("DU1234567", "DU7654321")  # ours, raw's
PAIR_SECONDS = 0.03  # a pause before each pair: at most ~25 orders a second per client


def _sliding_max(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def bench_orders(n: int, tmp: Path) -> dict[str, Any]:
    with SimProcess(accounts=ACCOUNTS) as sim:
        info = sim.info
        gw = await _gateway(info, tmp, 301, "orders")
        raw = await _raw(info, 302)
        orders = Orders(info, gw, raw)
        await orders.prepare()
        await orders.ours()
        await orders.raw_order()
        ours_total, ours_fill, raw_total, raw_fill = [], [], [], []
        for i in range(n):
            # P1/P2 are latencies: the pairs are paced (untimed) at PAIR_SECONDS so that
            # neither client runs into IB's 50 messages a second (ours would wait on its
            # budget, raw on ib_async's throttle); the rate is the back-to-back row's
            await asyncio.sleep(PAIR_SECONDS)
            # alternate which goes first, so neither always follows the other
            if i % 2:
                rt, rf = await orders.raw_order()
                ot, of = await orders.ours()
            else:
                ot, of = await orders.ours()
                rt, rf = await orders.raw_order()
            ours_total.append(ot)
            ours_fill.append(of)
            raw_total.append(rt)
            raw_fill.append(rf)
        # back-to-back: ours alone, as fast as the path allows, counted at the simulator
        await asyncio.sleep(1.1)
        sim.command("clear")
        count = max(120, n // 2)
        start = time.perf_counter()
        for _ in range(count):
            await orders.ours()
        elapsed = time.perf_counter() - start
        arrivals = [t for t, _m, _c in sim.arrivals()]
        raw_start = time.perf_counter()
        for _ in range(count):
            await orders.raw_order()
        raw_elapsed = time.perf_counter() - raw_start
        raw.disconnect()
        await gw.aclose()
    return {
        "p1_submit_vs_place": _pair(ours_total, raw_total),
        "p2_fill_bytes_to_result": _pair(ours_fill, raw_fill),
        "back_to_back": {
            "orders": count,
            "orders_per_second": round(count / elapsed, 1),
            "raw_orders_per_second": round(count / raw_elapsed, 1),
            "messages_at_sim": len(arrivals),
            "messages_per_order": round(len(arrivals) / count, 2),
            "max_messages_in_sliding_second_at_sim": _sliding_max(arrivals),
        },
    }


async def bench_close_all(samples: int, tmp: Path) -> dict[str, Any]:
    from ibkr_trader.models import OrderStatus

    with SimProcess(fill_latency=0.2) as sim:
        gw = await _gateway(sim.info, tmp, 311, "close_all")
        alls, ones = [], []
        for _ in range(samples):
            assert sim.command("seed 20")["seeded"] == 20
            start = time.perf_counter()
            results = await gw.close_all_positions("MANUAL", timeout=30.0)
            alls.append(time.perf_counter() - start)
            bad = [
                (r.status, r.rejection_reason)
                for r in results
                if r.status is not OrderStatus.FILLED
            ]
            assert len(results) == 20 and not bad, (len(results), bad[:3])
            sim.command("seed 1")
            positions = [p for p in await gw.get_positions(timeout=10.0) if p.quantity]
            start = time.perf_counter()
            one = await gw.close_position(positions[0].position_id, "MANUAL", timeout=10.0)
            ones.append(time.perf_counter() - start)
            assert one.status is OrderStatus.FILLED, one.rejection_reason
        await gw.aclose()
    a, o = _stats(alls), _stats(ones)
    return {
        "close_all_20": a,
        "close_one": o,
        "ratio_median": round(a["median_ms"] / o["median_ms"], 3),
        "samples": samples,
    }


async def bench_market_data(n: int, tmp: Path) -> dict[str, Any]:
    from ib_async import Stock

    with SimProcess() as sim:
        info = sim.info
        gw = await _gateway(info, tmp, 321, "market_data")
        raw = await _raw(info, 322)
        stocks = {s: Stock(s, "SMART", "USD") for s in SYMBOLS10}
        await raw.qualifyContractsAsync(*stocks.values())

        async def raw_one(symbol: str) -> None:
            tickers, bars = await asyncio.gather(
                asyncio.wait_for(raw.reqTickersAsync(stocks[symbol]), 10.0),
                raw.reqHistoricalDataAsync(
                    stocks[symbol], "", "3600 S", "1 min", "TRADES", True, formatDate=2, timeout=10
                ),
            )
            assert len(bars) == 60 and tickers

        async def ours_one(symbol: str) -> None:
            data = await gw.get_market_data(symbol, timeout=10.0)
            assert data.last_price

        async def timed(fn: Callable[[], Any]) -> float:
            start = time.perf_counter()
            await fn()
            return time.perf_counter() - start

        for s in SYMBOLS10:
            await ours_one(s)
            await raw_one(s)
        one_ours, one_raw, ten_ours, ten_raw = [], [], [], []
        rounds10 = max(30, n // 10)
        for i in range(n):
            sym = "SPY"
            if i % 2:
                one_raw.append(await timed(lambda s=sym: raw_one(s)))  # type: ignore[misc]
                one_ours.append(await timed(lambda s=sym: ours_one(s)))  # type: ignore[misc]
            else:
                one_ours.append(await timed(lambda s=sym: ours_one(s)))  # type: ignore[misc]
                one_raw.append(await timed(lambda s=sym: raw_one(s)))  # type: ignore[misc]
        for _ in range(rounds10):
            ten_raw.append(await timed(lambda: asyncio.gather(*(raw_one(s) for s in SYMBOLS10))))
            ten_ours.append(await timed(lambda: asyncio.gather(*(ours_one(s) for s in SYMBOLS10))))
        raw.disconnect()
        await gw.aclose()
    return {
        "p4_one_symbol": _pair(one_ours, one_raw),
        "p4_ten_symbols": _pair(ten_ours, ten_raw),
        "note": (
            "get_market_data as shipped: its 15 s bar cache serves repeats (IB paces an "
            "identical historical request within 15 s); raw fetches the bars every time"
        ),
    }


# ---------------------------------------------------------------- cold: fresh processes


async def _child(kind: str, info: dict[str, Any], client_id: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="cold-"))
    gw = await _gateway(info, tmp, client_id, "cold") if kind != "raw" else None
    raw = await _raw(info, client_id) if kind == "raw" else None
    if kind in ("ours", "raw"):
        orders = Orders(info, gw, raw)
        await orders.prepare()
        took = (await orders.ours())[0] if kind == "ours" else (await orders.raw_order())[0]
    else:
        start = time.perf_counter()
        if kind == "close_all":
            await gw.close_all_positions("MANUAL", timeout=30.0)
        else:
            positions = [p for p in await gw.get_positions(timeout=10.0) if p.quantity]
            start = time.perf_counter()
            await gw.close_position(positions[0].position_id, "MANUAL", timeout=10.0)
        took = time.perf_counter() - start
    if gw is not None:
        await gw.aclose()
    if raw is not None:
        raw.disconnect()
    return took


def _spawn(kind: str, info: dict[str, Any], client_id: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--info",
            json.dumps(info),
            "--cid",
            str(client_id),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def bench_cold(processes: int) -> dict[str, Any]:
    ours, raw, alls, ones = [], [], [], []
    with SimProcess() as sim:
        for i in range(processes):
            ours.append(_spawn("ours", sim.info, 400 + 2 * i))
            raw.append(_spawn("raw", sim.info, 401 + 2 * i))
    with SimProcess(fill_latency=0.2) as sim:
        for i in range(processes):
            sim.command("seed 20")
            alls.append(_spawn("close_all", sim.info, 500 + 2 * i))
            sim.command("seed 1")
            ones.append(_spawn("close_one", sim.info, 501 + 2 * i))
    a, o = _stats(alls), _stats(ones)
    return {
        "p1_cold_first_order": _pair(ours, raw),
        "p3_cold": {
            "close_all_20": a,
            "close_one": o,
            "ratio_median": round(a["median_ms"] / o["median_ms"], 3),
            "processes": processes,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--cold", type=int, default=3)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--child", choices=("ours", "raw", "close_all", "close_one"))
    p.add_argument("--info")
    p.add_argument("--cid", type=int, default=0)
    args = p.parse_args(argv)
    _quiet()
    if args.child:
        took = asyncio.run(_child(args.child, json.loads(args.info), args.cid))
        print(json.dumps({"seconds": took}))
        return 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        out: dict[str, Any] = {"bench": "integration", "n": args.n}
        out.update(asyncio.run(bench_orders(args.n, tmp)))
        out["p3_warm"] = asyncio.run(bench_close_all(args.samples, tmp))
        out.update(asyncio.run(bench_market_data(args.n, tmp)))
        out.update(bench_cold(args.cold))
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, sort_keys=True))
    p1, p2, bb = out["p1_submit_vs_place"], out["p2_fill_bytes_to_result"], out["back_to_back"]
    cold = out["p1_cold_first_order"]
    print(
        f"integration (N={args.n}, load {out['load_average'][0]:.1f}): "
        f"P1 submit_order {p1['ours']['median_ms']:.2f} ms vs raw {p1['raw']['median_ms']:.2f} ms "
        f"(+{p1['delta_median_ms']:.2f} median, +{p1['delta_p99_ms']:.2f} p99); cold first order "
        f"{cold['ours']['median_ms']:.1f} vs {cold['raw']['median_ms']:.1f} ms; "
        f"P2 bytes->result {p2['ours']['median_ms']:.2f} ms (raw {p2['raw']['median_ms']:.2f}); "
        f"back-to-back {bb['orders_per_second']}/s ({bb['messages_per_order']} msg/order, max "
        f"{bb['max_messages_in_sliding_second_at_sim']}/s at the sim); "
        f"P3 close_all x{out['p3_warm']['ratio_median']:.2f} warm, "
        f"x{out['p3_cold']['ratio_median']:.2f} cold; P4 x{out['p4_one_symbol']['ratio_median']:.2f} "
        f"one, x{out['p4_ten_symbols']['ratio_median']:.2f} ten symbols"
    )
    target = os.environ.get("BENCH_OUT")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / "integration.json").write_text(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
