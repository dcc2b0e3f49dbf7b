"""One trading stack for tests: the simulated gateway on loopback, a real journal, a real
RiskManager (kill switch in a temporary folder) and the IBKRGateway under test, all on the
simulator's clock, which starts at a fixed instant (:func:`rig_instant`).

```python
async with open_sim() as sim:                 # the simulator alone, at the rig's instant
    rig = await build_rig(sim, tmp_path)      # + journal, risk, gateway (connected)
    ...
    await rig.aclose()

async with trading_rig(tmp_path, calendar=True) as rig:   # both, closed on exit
    orch = rig.orchestrator([StrategyC(...)])
```

Contracts are chosen by rule on the rig's date, never by list position:
:func:`select_expiry` takes the nearest listed expiry in a days-to-expiry window (7-21 New
York days by default, the strategies' own window).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ibkr_trader.alerts import AlertHook
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.clock import days_to_expiry
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.signals import StrategyContext, TradingSignal
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.testing.instants import rig_instant

if TYPE_CHECKING:  # the orchestrator is only needed by the tests that drive cycles
    from ibkr_trader.orchestrator import TradingOrchestrator
    from ibkr_trader.orders.reconcile import Reconciler
    from ibkr_trader.strategies.base import Strategy

__all__ = [
    "CONTEXT",
    "Rig",
    "atm_strike",
    "build_rig",
    "limits",
    "make_signal",
    "next_client_id",
    "open_sim",
    "option_ask",
    "option_con_id",
    "select_expiry",
    "sim_config",
    "trading_rig",
]

_client_ids = itertools.count(101)

#: A strategy context every order test can use.
CONTEXT = StrategyContext(
    strategy_id="strat_a",
    strategy_name="Integration test strategy",
    risk_per_trade=0.02,
    take_profit_pct=0.5,
    stop_loss_pct=0.4,
)


def next_client_id() -> int:
    """A client id no other rig of this process uses."""
    return next(_client_ids)


def sim_config(
    at: datetime | None = None, *, calendar: bool = False, pacing: bool = False, **kwargs: Any
) -> SimConfig:
    """A SimConfig on loopback, port 0, starting at ``at`` (default: the rig's instant).

    ``calendar=False`` (the default) trades around the clock with a listed expiry every
    NYSE trading day; ``calendar=True`` keeps NYSE hours, holidays and early closes.
    """
    return SimConfig(
        port=kwargs.pop("port", 0),
        pacing=pacing,
        calendar=calendar,
        start=at if at is not None else rig_instant(),
        **kwargs,
    )


@contextlib.asynccontextmanager
async def open_sim(
    at: datetime | None = None, *, calendar: bool = False, pacing: bool = False, **kwargs: Any
) -> AsyncIterator[SimulatedGateway]:
    """A simulated gateway on loopback at the rig's instant (see :func:`sim_config`)."""
    async with SimulatedGateway(sim_config(at, calendar=calendar, pacing=pacing, **kwargs)) as sim:
        yield sim


@dataclass
class Rig:
    """One trading stack: simulator, journal, risk manager and the gateway under test."""

    sim: SimulatedGateway
    journal: Journal
    ajournal: AsyncJournal
    risk: RiskManager
    gateway: IBKRGateway
    kill_switch: Path
    alerts: AlertHook
    tmp: Path
    orchestrators: list[TradingOrchestrator] = field(default_factory=list)
    _reconciler: Reconciler | None = None

    @property
    def clock(self) -> Any:
        """The simulator's clock, which every component of the rig reads."""
        return self.sim.clock

    @property
    def orders(self) -> list[Any]:
        """Every placeOrder the simulator received."""
        return self.sim.received_orders

    @property
    def reconciler(self) -> Reconciler:
        if self._reconciler is None:
            from ibkr_trader.orders.reconcile import Reconciler

            self._reconciler = Reconciler(
                self.gateway.connection, self.ajournal, self.risk, self.gateway.mode, self.clock
            )
        return self._reconciler

    def orchestrator(self, strategies: Sequence[Strategy], **kwargs: Any) -> TradingOrchestrator:
        """An orchestrator on the rig's gateway and clock (closed with the rig)."""
        from ibkr_trader.market_hours import MarketHours
        from ibkr_trader.orchestrator import TradingOrchestrator

        options: dict[str, Any] = {
            "risk": self.risk,
            "clock": self.clock,
            "reconciler": self.reconciler,
            "alerts": self.alerts,
            "market_hours": MarketHours(self.clock),
            "timeout": 10.0,
            "order_timeout": 5.0,
        }
        options.update(kwargs)
        orch = TradingOrchestrator(self.gateway, strategies, **options)
        self.orchestrators.append(orch)
        return orch

    async def aclose(self) -> None:
        """Close orchestrators, alerts, the gateway and the journal (idempotent)."""
        for orch in self.orchestrators:
            await orch.aclose()
        self.orchestrators.clear()
        await self.alerts.aclose()
        await self.gateway.aclose()
        await self.ajournal.aclose()


_rig_numbers = itertools.count()


async def build_rig(
    sim: SimulatedGateway,
    tmp: Path,
    mode: ExecutionMode = ExecutionMode.PAPER,
    *,
    risk_limits: RiskLimits | None = None,
    connect: bool = True,
    account: str = "",
    client_id: int | None = None,
    timeout: float = 5.0,
    dry_run_starting_cash: float | None = None,
    alert_command: Sequence[str] = (),
    alert_timeout: float = 5.0,
    disconnect_minutes: float = 5.0,
    follow_sim_time: bool = False,
    name: str | None = None,
    **gateway_kwargs: Any,
) -> Rig:
    """A journal, risk manager and gateway on ``sim``'s clock; connected unless told not to.

    ``follow_sim_time=True`` keeps IB's historical pacing and the bar cache on the simulated
    clock, for tests that move it by hours between cycles milliseconds apart.
    """
    n = next(_rig_numbers)
    label = name or f"{n}-{mode.value}"
    clock = sim.clock
    journal = await asyncio.to_thread(Journal.open, tmp / f"journal-{label}.sqlite3", mode, clock)
    ajournal = AsyncJournal(journal)
    kill_switch = tmp / f"HALT-{label}"
    risk = RiskManager(risk_limits or limits(), journal, clock, kill_switch_path=kill_switch)
    if follow_sim_time:
        gateway_kwargs.setdefault("historical_pacer", HistoricalPacer(clock=clock.timestamp))
        gateway_kwargs.setdefault("bars_max_age_seconds", 0.0)
    config = GatewayConfig(
        host=sim.host,
        port=sim.port,
        client_id=client_id if client_id is not None else next_client_id(),
        timeout=timeout,
        account=account,
        dry_run_starting_cash=dry_run_starting_cash,
    )
    own_connection = "connection" not in gateway_kwargs
    gateway = IBKRGateway(config, risk, mode, journal=ajournal, clock=clock, **gateway_kwargs)
    if own_connection:  # quick reconnects for the disconnect scenarios
        gateway.connection.backoff_initial = 0.05
        gateway.connection.backoff_max = 0.2
    alerts = AlertHook(alert_command, alert_timeout, disconnect_minutes=disconnect_minutes)
    alerts.set_sink(ajournal.record_event)
    rig = Rig(sim, journal, ajournal, risk, gateway, kill_switch, alerts, tmp)
    if connect:
        try:
            await gateway.connect(timeout=timeout)
        except BaseException:
            await rig.aclose()
            raise
    return rig


@contextlib.asynccontextmanager
async def trading_rig(
    tmp: Path,
    *,
    mode: ExecutionMode = ExecutionMode.PAPER,
    at: datetime | None = None,
    calendar: bool = True,
    configure: Callable[[SimulatedGateway], None] | None = None,
    sim_options: dict[str, Any] | None = None,
    **rig_options: Any,
) -> AsyncIterator[Rig]:
    """A simulator (NYSE calendar by default) and a rig on it, both closed on exit."""
    rig_options.setdefault("timeout", 10.0)
    rig_options.setdefault("follow_sim_time", True)
    async with open_sim(at, calendar=calendar, **(sim_options or {})) as sim:
        if configure is not None:
            configure(sim)
        rig = await build_rig(sim, tmp, mode, **rig_options)
        try:
            yield rig
        finally:
            await rig.aclose()


# --------------------------------------------------------------------------- contracts


def select_expiry(
    sim: SimulatedGateway, symbol: str = "SPY", min_dte: int = 7, max_dte: int = 21
) -> str:
    """The nearest listed expiry of ``symbol`` ``min_dte``..``max_dte`` New York days out
    on the simulator's date (the strategies' own 7-21 DTE window by default)."""
    now = sim.clock.now()
    best: tuple[int, str] | None = None
    for expiry in sim.catalog.expirations(symbol):
        dte = days_to_expiry(expiry, now)
        if dte is not None and min_dte <= dte <= max_dte and (best is None or dte < best[0]):
            best = (dte, expiry)
    if best is None:
        raise LookupError(f"no {symbol} expiry {min_dte}-{max_dte} days out on {now:%Y-%m-%d}")
    return best[1]


def atm_strike(sim: SimulatedGateway, symbol: str = "SPY") -> float:
    """The listed strike nearest the underlying's simulated price (the lower on a tie)."""
    stock = sim.catalog.stock(symbol)
    if stock is None:
        raise LookupError(f"{symbol} is not listed")
    price = sim.market.price(stock.con_id)
    return float(min(sim.catalog.strikes(symbol), key=lambda s: (abs(s - price), s)))


def option_con_id(
    sim: SimulatedGateway, expiry: str, strike: float, right: str = "C", symbol: str = "SPY"
) -> int:
    """The conId of one listed option."""
    found = sim.catalog.find(
        symbol=symbol, sec_type="OPT", expiry=expiry, strike=strike, right=right
    )
    if len(found) != 1:
        raise LookupError(f"{symbol} {expiry} {strike} {right}: {len(found)} contracts")
    return int(found[0].con_id)


def option_ask(
    sim: SimulatedGateway, expiry: str, strike: float, right: str = "C", symbol: str = "SPY"
) -> float:
    """The simulator's current ask of one listed option."""
    ask = sim.market.quote(option_con_id(sim, expiry, strike, right, symbol)).ask
    return float(ask)


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
    """A signal for a listed option, stamped with the simulator's time; LMT defaults to a
    marketable limit (ask + 5% + 0.05)."""
    expiry = expiry or select_expiry(sim, symbol)
    strike = strike if strike is not None else atm_strike(sim, symbol)
    if order_type == "LMT" and limit_price is None:
        limit_price = round(option_ask(sim, expiry, strike, right, symbol) * 1.05 + 0.05, 2)
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
        timestamp=sim.clock.now(),
        signal_id=signal_id,
    )


def limits(**overrides: Any) -> RiskLimits:
    """Risk limits for tests: the defaults, with overrides."""
    return RiskLimits(**overrides)
