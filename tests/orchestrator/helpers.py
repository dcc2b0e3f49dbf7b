"""The orchestrator tests' rig is the one test rig (:mod:`ibkr_trader.testing`): the real
simulator over loopback in calendar mode, a real journal in tmp_path, a real RiskManager with
its kill switch in tmp_path, a real IBKRGateway, all on the simulator's clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ibkr_trader.models import ExecutionMode
from ibkr_trader.risk import RiskLimits
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import Rig
from ibkr_trader.testing import trading_rig as _trading_rig

__all__ = ["Rig", "trading_rig"]


@contextlib.asynccontextmanager
async def trading_rig(
    tmp_path: Path,
    *,
    mode: ExecutionMode = ExecutionMode.PAPER,
    start: datetime | None = None,
    calendar: bool = True,
    limits: RiskLimits | None = None,
    alert_command: Sequence[str] = (),
    alert_timeout: float = 5.0,
    disconnect_minutes: float = 5.0,
    configure: Callable[[SimulatedGateway], None] | None = None,
    sim_options: dict[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    async with _trading_rig(
        tmp_path,
        mode=mode,
        at=start,
        calendar=calendar,
        configure=configure,
        sim_options=sim_options,
        risk_limits=limits or RiskLimits(),
        alert_command=alert_command,
        alert_timeout=alert_timeout,
        disconnect_minutes=disconnect_minutes,
        client_id=7,
        name=mode.value,
    ) as rig:
        yield rig
