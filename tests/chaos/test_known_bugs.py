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

from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.models import OrderStatus
from ibkr_trader.risk import load_risk_limits
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import build_rig, open_sim, select_expiry


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[tuple[SimulatedGateway, IBKRGateway]]:
    async with open_sim() as sim:
        rig = await build_rig(sim, tmp_path, risk_limits=load_risk_limits(env={}), client_id=41)
        try:
            yield sim, rig.gateway
        finally:
            await rig.aclose()


async def _buy(gw: IBKRGateway, sim: SimulatedGateway, n: int) -> None:
    chain = await gw.contracts.option_chain("SPY", 5.0)
    expiry = select_expiry(sim)  # by rule (7-21 days out), never by list position
    assert expiry in chain.expirations
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
