"""A trading rig for the orchestrator tests: the real simulator over loopback, a real journal
in tmp_path, a real RiskManager with its kill switch in tmp_path, a real IBKRGateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ibkr_trader.alerts import AlertHook
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.models import ExecutionMode
from ibkr_trader.orchestrator import TradingOrchestrator
from ibkr_trader.reconcile import Reconciler
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.strategies.base import Strategy


@dataclass
class Rig:
    sim: SimulatedGateway
    journal: Journal
    ajournal: AsyncJournal
    risk: RiskManager
    gateway: IBKRGateway
    kill_switch: Path
    reconciler: Reconciler
    alerts: AlertHook
    tmp: Path
    orchestrators: list[TradingOrchestrator] = field(default_factory=list)

    def orchestrator(self, strategies: Sequence[Strategy], **kwargs: Any) -> TradingOrchestrator:
        options: dict[str, Any] = {
            "risk": self.risk,
            "clock": self.sim.clock,
            "reconciler": self.reconciler,
            "alerts": self.alerts,
            "market_hours": MarketHours(self.sim.clock),
            "timeout": 10.0,
            "order_timeout": 5.0,
        }
        options.update(kwargs)
        orch = TradingOrchestrator(self.gateway, strategies, **options)
        self.orchestrators.append(orch)
        return orch


@contextlib.asynccontextmanager
async def trading_rig(
    tmp_path: Path,
    *,
    mode: ExecutionMode = ExecutionMode.PAPER,
    start: datetime | None = None,
    calendar: bool = True,
    limits: RiskLimits | None = None,
    alert_command: Sequence[str] = (),
    disconnect_minutes: float = 5.0,
    configure: Callable[[SimulatedGateway], None] | None = None,
) -> AsyncIterator[Rig]:
    sim_config = SimConfig(port=0, pacing=False, calendar=calendar, start=start)
    async with SimulatedGateway(sim_config) as sim:
        if configure is not None:
            configure(sim)
        clock = sim.clock
        journal = await asyncio.to_thread(
            Journal.open, tmp_path / f"journal-{mode.value}.sqlite3", mode, clock
        )
        ajournal = AsyncJournal(journal)
        kill_switch = tmp_path / "HALT"
        risk = RiskManager(limits or RiskLimits(), journal, clock, kill_switch_path=kill_switch)
        gateway = IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port, client_id=7, timeout=10.0),
            risk,
            mode,
            journal=ajournal,
            clock=clock,
            # the test moves the simulated clock by hours between cycles that are milliseconds
            # apart: IB's historical pacing and the bar cache follow the simulated time
            historical_pacer=HistoricalPacer(clock=sim.clock.timestamp),
            bars_max_age_seconds=0.0,
        )
        # quick reconnects for the disconnect scenarios
        gateway.connection.backoff_initial = 0.05
        gateway.connection.backoff_max = 0.2
        alerts = AlertHook(alert_command, 5.0, disconnect_minutes=disconnect_minutes)
        alerts.set_sink(ajournal.record_event)
        reconciler = Reconciler(gateway.connection, ajournal, risk, mode, clock)
        rig = Rig(sim, journal, ajournal, risk, gateway, kill_switch, reconciler, alerts, tmp_path)
        try:
            await gateway.connect(timeout=10.0)
            yield rig
        finally:
            for orch in rig.orchestrators:
                await orch.aclose()
            await alerts.aclose()
            await gateway.disconnect()
            await ajournal.aclose()
