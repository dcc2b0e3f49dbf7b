"""The simulated gateway in its own process, for the benchmarks (like a real IB Gateway).

``python bench/simproc.py '{"fill_latency": 0.2, "pacing": false}'`` starts a
:class:`SimulatedGateway` on a free loopback port and prints one JSON line: the port, the paper
account and a few listed contracts (a SPY expiry 8-30 days out, the strikes nearest the money,
the ask of the first call). Then it reads commands, one per line on stdin, and answers each with
one JSON line on stdout:

* ``seed N`` - N one-lot SPY option positions (for close_all), answers how many;
* ``seedmany N`` - N one-lot option positions over SPY, QQQ and IWM (the pacing bench);
* ``arrivals`` - every client message received so far as ``[wall time, msg id, conn id]``,
  timestamped when this process read it (a receiver in another process, as IB counts);
* ``stalls`` - the longest this process's event loop woke up late since the last clear
  (the receiver's own scheduling: arrivals it timestamps bunch up by as much);
* ``clear`` - forget the arrivals and stalls;
* ``quit`` - stop.

:class:`SimProcess` drives it from a benchmark.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.testing import select_expiry


def _scenario(sim: SimulatedGateway) -> dict[str, Any]:
    expiry = select_expiry(sim, min_dte=8, max_dte=30)
    stock = sim.catalog.stock("SPY")
    assert stock is not None
    price = sim.market.price(stock.con_id)
    strikes = sorted(sim.catalog.strikes("SPY"), key=lambda s: abs(s - price))[:60]
    first = sim.catalog.find(
        symbol="SPY", sec_type="OPT", expiry=expiry, strike=strikes[0], right="C"
    )
    ask = sim.market.quote(first[0].con_id).ask
    return {
        "port": sim.port,
        "host": sim.host,
        "account": sim.accounts[0],
        "accounts": list(sim.accounts),
        "expiry": expiry,
        "strikes": strikes,
        "ask": ask,
    }


def _seed_many(sim: SimulatedGateway, n: int) -> int:
    """N one-lot option positions over SPY, QQQ and IWM (calls and puts, four expiries)."""
    account = sim.accounts[0]
    seeded = 0
    for symbol in ("SPY", "QQQ", "IWM"):
        params = sim.catalog.option_params(symbol)
        assert params is not None
        mid = len(params.strikes) // 2
        for expiry in list(params.expirations)[2:6]:
            for strike in params.strikes[mid - 5 : mid + 5]:
                for right in ("C", "P"):
                    if seeded >= n:
                        return seeded
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
    return seeded


async def _serve(config: dict[str, Any]) -> None:
    sim = SimulatedGateway(
        SimConfig(
            pacing=bool(config.get("pacing", False)),
            fill_latency=float(config.get("fill_latency", 0.0)),
            accounts=tuple(config.get("accounts", ("DU1234567",))),
        )
    )
    await sim.start()
    arrivals: list[tuple[float, int, int]] = []
    original = sim.state.handle

    def handle(conn_id: int, fields: Any) -> Any:
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError):
            msg_id = -1
        arrivals.append((time.time(), msg_id, conn_id))
        return original(conn_id, fields)

    sim.state.handle = handle  # type: ignore[method-assign]
    stalls: list[float] = []  # how late this process's loop woke up (its own scheduling)

    async def lag_monitor() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - before - 0.01)

    monitor = asyncio.get_running_loop().create_task(lag_monitor())
    scenario = _scenario(sim)
    print(json.dumps(scenario), flush=True)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, "quit")

    threading.Thread(target=reader, daemon=True).start()
    seeded = 0
    while True:
        line = await lines.get()
        cmd, _, arg = line.partition(" ")
        if cmd == "seed":
            count = int(arg)
            pairs = [(k, r) for k in scenario["strikes"] for r in ("C", "P")]
            chosen = pairs[seeded : seeded + count]
            seeded += count
            for strike, right in chosen:
                found = sim.catalog.find(
                    symbol="SPY",
                    sec_type="OPT",
                    expiry=scenario["expiry"],
                    strike=strike,
                    right=right,
                )
                con_id = found[0].con_id
                sim.seed_position(
                    scenario["account"], "SPY", 1, sim.market.price(con_id) * 100, con_id=con_id
                )
            print(json.dumps({"seeded": len(chosen)}), flush=True)
        elif cmd == "seedmany":
            print(json.dumps({"seeded": _seed_many(sim, int(arg))}), flush=True)
        elif cmd == "arrivals":
            print(json.dumps({"arrivals": arrivals}), flush=True)
        elif cmd == "stalls":
            print(
                json.dumps({"max_stall_ms": round(max(stalls, default=0.0) * 1000, 1)}), flush=True
            )
        elif cmd == "clear":
            arrivals.clear()
            stalls.clear()
            print(json.dumps({"cleared": True}), flush=True)
        elif cmd == "quit":
            break
    monitor.cancel()
    await sim.close()


class SimProcess:
    """A simulator subprocess: ``with SimProcess(fill_latency=0.2) as sim: sim.port``."""

    def __init__(self, **config: Any) -> None:
        self._config = config
        self._proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SimProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, json.dumps(self._config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.info = json.loads(self._proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            try:
                self.command("quit", answer=False)
                self._proc.wait(timeout=10)
            except Exception:
                self._proc.kill()
                self._proc.wait()

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def command(self, line: str, *, answer: bool = True) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        if not answer:
            return {}
        return dict(json.loads(self._proc.stdout.readline()))

    def arrivals(self) -> list[tuple[float, int, int]]:
        return [tuple(a) for a in self.command("arrivals")["arrivals"]]  # type: ignore[misc]


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)
    asyncio.run(_serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
