"""Fixtures for the integration layer: the real simulator on loopback, a real journal on
tmp_path and a real RiskManager (kill switch in tmp_path). No stand-ins for ib_async."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.clock import SystemClock, ny_date
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, StrategyContext, TradingSignal
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.sim import SimConfig, SimulatedGateway

_client_ids = itertools.count(31)

CONTEXT = StrategyContext(
    strategy_id="strat_a",
    strategy_name="Integration test strategy",
    risk_per_trade=0.02,
    take_profit_pct=0.5,
    stop_loss_pct=0.4,
)


def next_client_id() -> int:
    return next(_client_ids)


@dataclass
class Rig:
    """One trading stack: simulator, journal, risk manager and the gateway under test."""

    sim: SimulatedGateway
    journal: Journal
    risk: RiskManager
    gateway: IBKRGateway
    kill_switch: Path

    @property
    def orders(self) -> list[Any]:
        return self.sim.received_orders


def pick_expiry(sim: SimulatedGateway, min_days: int = 8, max_days: int = 30) -> str:
    """A listed SPY expiry ``min_days``..``max_days`` New York days out."""
    today = ny_date(sim.clock.now())
    for expiry in sim.catalog.expirations("SPY"):
        days = (datetime.strptime(expiry, "%Y%m%d").date() - today).days
        if min_days <= days <= max_days:
            return expiry
    raise AssertionError("no SPY expiry in range")  # pragma: no cover


def expiry_in(sim: SimulatedGateway, days: int) -> str:
    """The listed SPY expiry exactly ``days`` New York days out (0 = today)."""
    today: date = ny_date(sim.clock.now())
    wanted = (today + timedelta(days=days)).strftime("%Y%m%d")
    assert wanted in sim.catalog.expirations("SPY"), wanted
    return wanted


def atm_strike(sim: SimulatedGateway, symbol: str = "SPY") -> float:
    stock = sim.catalog.stock(symbol)
    assert stock is not None
    price = sim.market.price(stock.con_id)
    return float(min(sim.catalog.strikes(symbol), key=lambda s: (abs(s - price), s)))


def option_ask(sim: SimulatedGateway, expiry: str, strike: float, right: str = "C") -> float:
    found = sim.catalog.find(
        symbol="SPY", sec_type="OPT", expiry=expiry, strike=strike, right=right
    )
    assert len(found) == 1
    return float(sim.market.quote(found[0].con_id).ask)


def make_signal(
    sim: SimulatedGateway,
    *,
    action: str = "BUY",
    quantity: int = 1,
    order_type: str = "LMT",
    limit_price: float | None = None,
    expiry: str | None = None,
    strike: float | None = None,
    right: str = "C",
    symbol: str = "SPY",
    signal_id: str = "",
    strategy_id: str = "strat_a",
) -> TradingSignal:
    """A signal for a listed SPY option; LMT defaults to a marketable limit (ask + 5%)."""
    expiry = expiry or pick_expiry(sim)
    strike = strike if strike is not None else atm_strike(sim)
    if order_type == "LMT" and limit_price is None:
        limit_price = round(option_ask(sim, expiry, strike, right) * 1.05 + 0.05, 2)
    return TradingSignal(
        symbol=symbol,
        action=action,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        expiry=expiry,
        strike=strike,
        right=right,
        strategy_id=strategy_id,
        timestamp=datetime.now(UTC),
        signal_id=signal_id,
    )


def limits(**overrides: Any) -> RiskLimits:
    base: dict[str, Any] = {"min_days_to_expiry_entry": 4}
    base.update(overrides)
    return RiskLimits(**base)


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(SimConfig(pacing=False)) as gw:
        yield gw


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[RigFactory]:
    """Build rigs on a simulator; every gateway and journal is closed afterwards."""
    made: list[Rig] = []
    counter = itertools.count()

    async def factory(
        sim: SimulatedGateway,
        mode: ExecutionMode = ExecutionMode.PAPER,
        *,
        risk_limits: RiskLimits | None = None,
        connect: bool = True,
        account: str = "",
        timeout: float = 5.0,
        dry_run_starting_cash: float | None = None,
        **gateway_kwargs: Any,
    ) -> Rig:
        n = next(counter)
        clock = SystemClock()
        journal = Journal.open(tmp_path / f"journal-{n}-{mode.value}.sqlite3", mode, clock)
        kill_switch = tmp_path / f"HALT-{n}"
        risk = RiskManager(risk_limits or limits(), journal, clock, kill_switch_path=kill_switch)
        config = GatewayConfig(
            host=sim.host,
            port=sim.port,
            client_id=next_client_id(),
            timeout=timeout,
            account=account,
            dry_run_starting_cash=dry_run_starting_cash,
        )
        gateway = IBKRGateway(
            config, risk, mode, journal=AsyncJournal(journal), clock=clock, **gateway_kwargs
        )
        rig = Rig(sim, journal, risk, gateway, kill_switch)
        made.append(rig)
        if connect:
            await gateway.connect(timeout=timeout)
        return rig

    try:
        yield factory
    finally:
        for rig in made:
            await rig.gateway.aclose()
            await rig.gateway.journal.aclose()


@pytest.fixture
async def paper(sim: SimulatedGateway, rig_factory: RigFactory) -> Rig:
    return await rig_factory(sim, ExecutionMode.PAPER)


@pytest.fixture
async def dry(sim: SimulatedGateway, rig_factory: RigFactory) -> Rig:
    return await rig_factory(sim, ExecutionMode.DRY_RUN)
