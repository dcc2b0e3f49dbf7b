"""Wiring: from an AppConfig to a connected gateway, a risk manager, a journal, an orchestrator.

```python
async with open_runtime(load_config(path)) as rt:
    report = await rt.orchestrator.run_cycle()
```

No ``[gateway] port`` means an in-process simulated gateway on loopback. Its clock replays NYSE
regular hours: when the market is open now (and has been for more than an hour, so a full hour
of one-minute bars exists) the simulated time is now; otherwise it starts at 11:30 New York on
the most recent trading day. The orchestrator, the risk manager and the journal then read the
simulator's clock, so a dry-run cycle works on a Saturday night exactly as on a Tuesday morning.
Against a real gateway everything reads the system clock (and the gateway's, for market hours).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ibkr_trader.alerts import AlertHook
from ibkr_trader.clock import Clock, SystemClock, ny_date
from ibkr_trader.config import AppConfig, ConfigError
from ibkr_trader.integrations.feature_flags import IntegrationFeatureFlags
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.models import ExecutionMode
from ibkr_trader.orchestrator import TradingOrchestrator, build_strategy
from ibkr_trader.orchestrator.protection import ProtectionPolicy
from ibkr_trader.orders.reconcile import Reconciler
from ibkr_trader.risk import LimitLoosenError, RiskConfigError, RiskManager
from ibkr_trader.strategies.gameplan import GameplanLoad, load_gameplan

__all__ = [
    "GatewayIdentityError",
    "Runtime",
    "check_gateway_identity",
    "journal_path_for",
    "open_runtime",
    "protection_policy",
    "replay_start",
]

_log = get_logger("ibkr_trader.runtime")
_REPLAY_AFTER_OPEN = timedelta(hours=2)  # 11:30 New York: a full hour of bars behind it
_MIN_BARS_AFTER_OPEN = timedelta(minutes=65)


def replay_start(now: datetime) -> datetime | None:
    """When the in-process simulator's clock should start: None (now) while the market has
    been open for over an hour, else 11:30 New York of the most recent trading day."""
    hours = MarketHours(SystemClock())
    session = hours.session(now)
    if session is not None and session.open + _MIN_BARS_AFTER_OPEN <= now < session.close:
        return None
    for back in range(0, 15):
        day = now - timedelta(days=back)
        s = hours.session(day)
        if s is not None and s.open + _REPLAY_AFTER_OPEN <= now:
            return s.open + _REPLAY_AFTER_OPEN
    return None


def journal_path_for(config: AppConfig) -> Path:
    return config.journal_path()


def protection_policy(config: AppConfig) -> ProtectionPolicy:
    """Strategy C's settings from ``[protection]``, on the loop's interval."""
    return ProtectionPolicy(**config.protection.as_dict(), cycle_seconds=float(config.run.interval))


@dataclass
class Runtime:
    """Everything a command needs, opened and connected."""

    config: AppConfig
    mode: ExecutionMode
    clock: Clock
    journal: Journal
    ajournal: AsyncJournal
    risk: RiskManager
    gateway: IBKRGateway
    orchestrator: TradingOrchestrator
    gameplan: GameplanLoad
    alerts: AlertHook
    simulator: Any = None  # the in-process SimulatedGateway, when there is one

    @property
    def target(self) -> str:
        where = "in-process simulated gateway" if self.simulator is not None else "gateway"
        return f"{where} {self.gateway.config.host}:{self.gateway.config.port}"


def _gameplan(config: AppConfig, clock: Clock, risk: RiskManager) -> GameplanLoad:
    loaded = load_gameplan(config.paths.gameplan, today=ny_date(clock.now()))
    plan = loaded.gameplan
    if loaded.ok and plan.hard_limits:
        try:
            risk.apply_hard_limits(plan.hard_limits)
        except Exception as exc:  # a plan comes from outside: any failure is strategy C
            from ibkr_trader.strategies.gameplan import DailyGameplan

            why = str(exc) if isinstance(exc, LimitLoosenError | RiskConfigError) else repr(exc)
            message = (
                f"{loaded.source}: hard limits refused ({why}); trading strategy C "
                "(capital preservation: no entries)"
            )
            return GameplanLoad(
                DailyGameplan.fallback(), ok=False, message=message, source=loaded.source
            )
    return loaded


class GatewayIdentityError(ConnectionError):
    """The journal belongs to another account (or a simulator's): never mix the two books."""


IDENTITY_KEY = "gateway_identity"


async def check_gateway_identity(rt: Runtime) -> str:
    """Record the connected account in a paper journal; refuse one that holds another's.

    A paper journal's day-loss anchor, positions and orders are one account's: a simulator's
    1,000,000 USD must never become a real paper account's start-of-day equity.
    """
    identity = f"account={rt.gateway.account}"
    if rt.mode is not ExecutionMode.PAPER or not rt.gateway.account:
        return identity
    stored = await asyncio.to_thread(rt.journal.get_risk_state, IDENTITY_KEY)
    if stored is None or stored[0] in (None, ""):
        await asyncio.to_thread(rt.journal.put_risk_state, IDENTITY_KEY, identity, None)
        await rt.ajournal.record_event("gateway_identity", {"identity": identity, "new": True})
        return identity
    if stored[0] != identity:
        from ibkr_trader.logging import redact

        raise GatewayIdentityError(
            f"the journal {rt.journal.path} belongs to {redact(str(stored[0]))}, but the gateway "
            f"at {rt.gateway.config.host}:{rt.gateway.config.port} is {redact(identity)}: "
            "refusing to mix two accounts in one journal (use another [paths] journal)"
        )
    return identity


@contextlib.asynccontextmanager
async def _simulator(
    config: AppConfig, start: datetime | None, speed: float = 1.0
) -> AsyncIterator[Any]:
    if config.gateway.port is not None:
        yield None
        return
    if config.run.mode != ExecutionMode.DRY_RUN.value:
        raise ConfigError(
            f"{config.run.mode} mode needs an explicit gateway port ([gateway] port, "
            "IBKR_TRADER__GATEWAY__PORT or --port: 4002 for IB Gateway paper, or the port of "
            "`ibkr-trader sim`); it never trades against an in-process simulator"
        )
    from ibkr_trader.sim import SimConfig, SimulatedGateway  # only for the in-process default

    sim_config = SimConfig(
        host="127.0.0.1",
        port=0,
        pacing=False,
        calendar=True,
        start=start if start is not None else replay_start(SystemClock().now()),
        speed=speed,
    )
    async with SimulatedGateway(sim_config) as sim:
        yield sim


@contextlib.asynccontextmanager
async def open_runtime(
    config: AppConfig,
    *,
    connect: bool = True,
    alerts: AlertHook | None = None,
    clock: Clock | None = None,
    client_id: int | None = None,
    start: datetime | None = None,
    speed: float = 1.0,
) -> AsyncIterator[Runtime]:
    """Open the journal, build risk + gateway + orchestrator, connect; close all on exit.

    Raises ConfigError / RiskConfigError (configuration), JournalError, and the gateway's
    connection errors (GatewayConnectionError, PaperInterlockError, GatewayIdentityError).
    ``client_id``: another client id than ``[gateway] client_id`` (a second connection while
    ``run`` holds it). ``start``: the in-process simulator's market instant (``--at``);
    ``speed``: how many of its seconds pass in a real one (``--speed``).
    """
    mode = ExecutionMode(config.run.mode)
    limits = config.risk
    async with _simulator(config, start, speed) as sim:
        the_clock: Clock = clock or (sim.clock if sim is not None else SystemClock())
        journal = await asyncio.to_thread(Journal.open, journal_path_for(config), mode, the_clock)
        ajournal = AsyncJournal(journal)
        gateway: IBKRGateway | None = None
        orchestrator: TradingOrchestrator | None = None
        try:
            kill_switch = config.kill_switch_path()
            risk = RiskManager(limits, journal, the_clock, kill_switch_path=kill_switch)
            host = sim.host if sim is not None else config.gateway.host
            port = sim.port if sim is not None else int(config.gateway.port or 0)
            gateway = IBKRGateway(
                GatewayConfig(
                    host=host,
                    port=port,
                    client_id=config.gateway.client_id if client_id is None else client_id,
                    timeout=config.gateway.timeout,
                    account=config.gateway.account,
                ),
                risk,
                mode,
                operator_id=config.run.operator_id,
                journal=ajournal,
                clock=the_clock,
                flags=IntegrationFeatureFlags.from_config(config.flags),
            )
            gameplan = _gameplan(config, the_clock, risk)
            hook = alerts or AlertHook(
                config.alerts.command,
                config.alerts.timeout,
                disconnect_minutes=config.alerts.disconnect_minutes,
            )
            plan = gameplan.gameplan
            strategy = build_strategy(plan, the_clock, risk.limits)
            orchestrator = TradingOrchestrator(
                gateway,
                [strategy],
                risk=risk,
                clock=the_clock,
                symbols=plan.symbols if plan.allows_entries else (),
                watch_symbols=plan.symbols or config.run.symbols,
                gameplan=gameplan,
                reconciler=Reconciler(
                    gateway.connection,
                    ajournal,
                    risk,
                    mode,
                    the_clock,
                    order_timeout=config.run.order_timeout,
                ),
                alerts=hook,
                market_hours=MarketHours(the_clock),
                no_entry_minutes_before_close=config.run.no_entry_minutes_before_close,
                entry_limit=config.run.entry_limit,
                timeout=config.gateway.timeout,
                order_timeout=config.run.order_timeout,
                rest_entries=config.run.rest_entries,
                manage_foreign_positions=config.run.manage_foreign_positions,
                policy=protection_policy(config),
            )
            await ajournal.record_event(
                "gameplan",
                {"ok": gameplan.ok, "message": gameplan.message, "strategy": plan.strategy},
            )
            if connect:
                await gateway.connect(timeout=config.gateway.timeout)
            runtime = Runtime(
                config=config,
                mode=mode,
                clock=the_clock,
                journal=journal,
                ajournal=ajournal,
                risk=risk,
                gateway=gateway,
                orchestrator=orchestrator,
                gameplan=gameplan,
                alerts=hook,
                simulator=sim,
            )
            if connect:
                await check_gateway_identity(runtime)
            yield runtime
        finally:
            if orchestrator is not None:
                await orchestrator.aclose()
            if gateway is not None:
                await gateway.disconnect()
            await ajournal.aclose()
