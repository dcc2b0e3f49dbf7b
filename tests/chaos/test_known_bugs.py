"""Regression tests for bugs the chaos and fuzz runs found (each one fixed since).

- a re-opened position closed again the same day got the first close's client order id and
  was never closed;
- an order acknowledged late (its cancel overtook it) was journaled as final Cancelled without
  the gateway's confirmation, while it worked or filled: the executor now reports it PENDING
  and reconciliation settles it, or corrects a final state the gateway contradicts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibkr_trader.clock import SystemClock
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus
from ibkr_trader.risk import RiskManager, load_risk_limits
from ibkr_trader.sim import SimConfig, SimulatedGateway


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[tuple[SimulatedGateway, IBKRGateway]]:
    async with SimulatedGateway(SimConfig(port=0, pacing=False)) as sim:
        clock = SystemClock()
        journal = Journal.open(tmp_path / "j.sqlite", ExecutionMode.PAPER, clock)
        risk = RiskManager(load_risk_limits(env={}), journal, clock, tmp_path / "HALT")
        gw = IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port, client_id=41),
            risk,
            ExecutionMode.PAPER,
            journal=AsyncJournal(journal),
            clock=clock,
        )
        await gw.connect(5.0)
        try:
            yield sim, gw
        finally:
            await gw.disconnect()
            journal.close()


async def _buy(gw: IBKRGateway, sim: SimulatedGateway, n: int) -> None:
    chain = await gw.contracts.option_chain("SPY", 5.0)
    expiry = sorted(chain.expirations)[3]
    data = await gw.get_market_data("SPY", 5.0)
    strike = min(chain.strikes, key=lambda s: abs(s - data.last_price))
    signal = {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": 1,
        "order_type": "MKT",
        "limit_price": None,
        "expiry": expiry,
        "strike": strike,
        "right": "C",
        "strategy_id": "bugs",
        "timestamp": datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC),
    }
    context = {
        "strategy_id": "bugs",
        "strategy_name": "bugs",
        "risk_per_trade": 0.01,
        "take_profit_pct": 0.5,
        "stop_loss_pct": 0.4,
    }
    # market entries are refused by default; a limit well above the ask is marketable
    quote = await gw.pipeline.fetch_quote(
        await gw.contracts.qualify_option_contract("SPY", expiry, strike, "C", 5.0),
        5.0,
        server_check=False,
    )
    assert quote[0].ask is not None
    signal.update(order_type="LMT", limit_price=round(quote[0].ask + 0.5, 2))
    result = await gw.submit_order(signal, context, timeout=5.0)
    assert result.status is OrderStatus.FILLED, result


async def test_a_reopened_position_closed_again_the_same_day_is_really_closed(
    paper: tuple[SimulatedGateway, IBKRGateway],
) -> None:
    sim, gw = paper
    await _buy(gw, sim, 1)
    first = await gw.close_all_positions("EMERGENCY_STOP", timeout=5.0)
    assert [r.status for r in first] == [OrderStatus.FILLED]
    await _buy(gw, sim, 2)
    second = await gw.close_all_positions("EMERGENCY_STOP", timeout=5.0)
    assert [r.duplicate for r in second] == [False]
    assert [p.quantity for p in sim.state.positions.values() if p.quantity] == []


@pytest.mark.parametrize("seed", [144, 466])
async def test_a_late_acknowledged_order_is_reconciled_to_the_brokers_state(
    seed: int, tmp_path: Path
) -> None:
    from chaos.engine import run_scenario

    result = await run_scenario(seed, tmp_path / f"s{seed}")
    assert result.violations == []
