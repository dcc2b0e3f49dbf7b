"""Fixtures: a simulated gateway on loopback and a broker connection to it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.market_data import MarketDataProvider
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import open_sim

_client_ids = itertools.count(11)


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with open_sim() as gw:
        yield gw


@pytest.fixture
async def conn(gateway: SimulatedGateway) -> AsyncIterator[IBKRConnection]:
    connection = IBKRConnection(
        gateway.host,
        gateway.port,
        client_id=next(_client_ids),
        timeout=5.0,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    await connection.connect(5.0)
    try:
        yield connection
    finally:
        await connection.disconnect()


@pytest.fixture
def contracts(conn: IBKRConnection) -> ContractManager:
    return ContractManager(conn)


@pytest.fixture
def provider(conn: IBKRConnection, contracts: ContractManager) -> MarketDataProvider:
    return MarketDataProvider(conn, contracts)
