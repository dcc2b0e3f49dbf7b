"""One simulated gateway and one PAPER IBKRGateway for a whole fuzz module.

Hypothesis calls a test body hundreds of times; starting a simulator per example would cost
seconds, so the stack lives on one :class:`asyncio.Runner` for the module and each example
runs its coroutine on it (``stack.run(coro)``). The sim keeps serving between examples.

``IBKR_TRADER_FUZZ_EXAMPLES`` sets the example count (default 200 in ``make test``; the long
run uses 10,000 or more).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.orders import OrderSpec
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ContractSpec, ExecutionMode, OptionRight
from ibkr_trader.risk import RiskManager, load_risk_limits
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.strategies.selection import SelectionConfig, select_expiry
from ibkr_trader.testing import sim_config

T = TypeVar("T")

FUZZ_EXAMPLES = int(os.environ.get("IBKR_TRADER_FUZZ_EXAMPLES", "200"))


def fuzz_settings(share: float = 1.0, minimum: int = 10) -> settings:
    """Hypothesis settings for ``share`` of the configured example count."""
    return settings(
        max_examples=max(minimum, int(FUZZ_EXAMPLES * share)),
        deadline=None,
        derandomize=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
        database=None,
    )


@dataclass
class Stack:
    """The simulator, the PAPER gateway on it, and a valid, approvable signal to mutate."""

    runner: asyncio.Runner
    sim: SimulatedGateway
    gateway: IBKRGateway
    journal: Journal
    flattener: IBKRConnection
    base_signal: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    counter: int = 0
    last_data: Any = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def orders_at_sim(self) -> int:
        return len(self.sim.received_orders)

    def fresh_signal(self) -> dict[str, Any]:
        """The base signal with a unique timestamp (a new signal id, so a new orderRef)."""
        self.counter += 1
        stamp = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=self.counter)
        return {**self.base_signal, "timestamp": stamp}

    async def flatten(self) -> None:
        """Close whatever the simulator holds, from a second client (an operator in TWS).

        Not through the gateway: a second same-day close of the same size is swallowed as a
        duplicate by the PositionManager (tests/chaos/test_known_bugs.py), which would leave
        the book growing from one example to the next. The gateway still sees the fills in
        its portfolio updates.
        """
        for row in [p for p in self.sim.state.positions.values() if p.quantity]:
            c = row.contract
            spec = ContractSpec(
                symbol=c.symbol,
                sec_type=c.sec_type,
                expiry=c.expiry,
                strike=c.strike,
                right=c.right,
                con_id=row.con_id,
            )
            order = OrderSpec(
                action="SELL" if row.quantity > 0 else "BUY",
                quantity=int(abs(row.quantity)),
                order_type="MKT",
                order_ref=f"FLATTEN-{self.counter}-{row.con_id}",
            )
            handle = await self.flattener.place_order(spec, order, timeout=5.0)
            await handle.wait_done(5.0)
        left = [p for p in self.sim.state.positions.values() if p.quantity]
        assert not left, left


CONTEXT = {
    "strategy_id": "fuzz",
    "strategy_name": "Fuzz",
    "risk_per_trade": 0.01,
    "take_profit_pct": 0.5,
    "stop_loss_pct": 0.4,
}


async def _start(
    tmp: Path,
) -> tuple[SimulatedGateway, IBKRGateway, Journal, IBKRConnection, dict[str, Any]]:
    sim = SimulatedGateway(sim_config())
    await sim.start()
    clock = sim.clock
    journal = Journal.open(tmp / "fuzz.sqlite", ExecutionMode.PAPER, clock)
    risk = RiskManager(load_risk_limits(env={}), journal, clock, kill_switch_path=tmp / "HALT")
    connection = IBKRConnection(
        sim.host, sim.port, client_id=31, timeout=5.0, backoff_initial=0.05, backoff_max=0.2
    )
    gateway = IBKRGateway(
        GatewayConfig(host=sim.host, port=sim.port, client_id=31),
        risk,
        ExecutionMode.PAPER,
        journal=AsyncJournal(journal),
        clock=clock,
        connection=connection,
    )
    await gateway.connect(timeout=5.0)
    flattener = IBKRConnection(sim.host, sim.port, client_id=32, timeout=5.0)
    await flattener.connect(5.0)
    data = await gateway.get_market_data("SPY", timeout=5.0)
    chain = await gateway.contracts.option_chain("SPY", 5.0)
    now = await gateway.server_time(5.0)
    expiry = select_expiry(chain.expirations, now, SelectionConfig())
    assert expiry is not None and math.isfinite(data.last_price)
    strike = min(chain.strikes, key=lambda s: (abs(s - data.last_price), s))
    contract = await gateway.contracts.qualify_option_contract(
        "SPY", expiry, strike, OptionRight.CALL.value, 5.0
    )
    quote, _ = await gateway.pipeline.fetch_quote(contract, 5.0, server_check=False)
    assert quote.ask is not None
    base = {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": round(quote.ask + 0.5, 2),  # marketable with room for the path to move
        "expiry": expiry,
        "strike": strike,
        "right": "C",
        "signal_strength": 1.0,
        "strategy_id": CONTEXT["strategy_id"],
    }
    return sim, gateway, journal, flattener, base


async def _stop(stack: Stack) -> None:
    await stack.gateway.aclose()
    await stack.flattener.disconnect()
    stack.journal.close()
    await stack.sim.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    runner = asyncio.Runner()
    tmp = tmp_path_factory.mktemp("fuzz")
    sim, gateway, journal, flattener, base = runner.run(_start(tmp))
    s = Stack(runner, sim, gateway, journal, flattener, base, dict(CONTEXT))
    try:
        yield s
    finally:
        runner.run(_stop(s))
        runner.close()
