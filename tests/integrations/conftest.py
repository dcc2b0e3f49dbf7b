"""Fixtures for the integration layer, on the one test rig (:mod:`ibkr_trader.testing`): the
real simulator on loopback at the rig's fixed instant, a real journal on tmp_path and a real
RiskManager (kill switch in tmp_path). No stand-ins for ib_async."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.models import ExecutionMode
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import (
    CONTEXT,
    Rig,
    atm_strike,
    build_rig,
    limits,
    make_signal,
    next_client_id,
    open_sim,
    option_ask,
    select_expiry,
)

__all__ = [
    "CONTEXT",
    "Rig",
    "RigFactory",
    "atm_strike",
    "limits",
    "make_signal",
    "next_client_id",
    "option_ask",
    "select_expiry",
]

RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedGateway]:
    async with open_sim() as gw:
        yield gw


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[RigFactory]:
    """Build rigs on a simulator; every gateway and journal is closed afterwards."""
    made: list[Rig] = []

    async def factory(
        sim: SimulatedGateway, mode: ExecutionMode = ExecutionMode.PAPER, **options: Any
    ) -> Rig:
        rig = await build_rig(sim, tmp_path, mode, **options)
        made.append(rig)
        return rig

    try:
        yield factory
    finally:
        for rig in made:
            await rig.aclose()


@pytest.fixture
async def paper(sim: SimulatedGateway, rig_factory: RigFactory) -> Rig:
    return await rig_factory(sim, ExecutionMode.PAPER)


@pytest.fixture
async def dry(sim: SimulatedGateway, rig_factory: RigFactory) -> Rig:
    return await rig_factory(sim, ExecutionMode.DRY_RUN)
