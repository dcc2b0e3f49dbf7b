"""Fixtures for the simulated gateway: a gateway on port 0 and real ib_async clients."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from ib_async import IB

from ibkr_trader.sim import SimConfig, SimulatedGateway

_ERROR_CODE = re.compile(r"^Error (\d+), reqId")


class IbLog:
    """The ib_async log records of one test, with the checks the tests make."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def records(self, level: int = logging.ERROR) -> list[logging.LogRecord]:
        return [
            r for r in self.caplog.records if r.name.startswith("ib_async") and r.levelno >= level
        ]

    def decode_errors(self) -> list[str]:
        return [
            r.getMessage()
            for r in self.caplog.records
            if r.name.startswith("ib_async") and "Error handling fields" in r.getMessage()
        ]

    def error_codes(self) -> list[int]:
        codes = []
        for r in self.records():
            m = _ERROR_CODE.match(r.getMessage())
            if m:
                codes.append(int(m.group(1)))
        return codes

    def assert_clean(self, allowed_codes: Iterable[int] = (), allow: Iterable[str] = ()) -> None:
        """No ERROR from ib_async except IB errors with an allowed code / allowed text."""
        allowed = set(allowed_codes)
        texts = tuple(allow)
        bad = []
        for r in self.records():
            msg = r.getMessage()
            m = _ERROR_CODE.match(msg)
            if m and int(m.group(1)) in allowed:
                continue
            if any(t in msg for t in texts):
                continue
            bad.append(msg)
        assert not self.decode_errors()
        assert bad == []


@pytest.fixture
def iblog(caplog: pytest.LogCaptureFixture) -> IbLog:
    caplog.set_level(logging.INFO, logger="ib_async")
    return IbLog(caplog)


@pytest.fixture
async def gateway() -> AsyncIterator[SimulatedGateway]:
    async with SimulatedGateway(SimConfig(tick_interval=0.05, portfolio_interval=0.1)) as gw:
        yield gw


Connector = Callable[..., AbstractAsyncContextManager[IB]]


@pytest.fixture
def connect() -> Connector:
    """``async with connect(gw, client_id=1) as ib:`` a real ib_async client, always disconnected."""

    @asynccontextmanager
    async def _connect(
        gw: SimulatedGateway, client_id: int = 1, **kwargs: object
    ) -> AsyncIterator[IB]:
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5, **kwargs)
            yield ib
        finally:
            ib.disconnect()

    return _connect


@pytest.fixture
async def ib(gateway: SimulatedGateway, connect: Connector) -> AsyncIterator[IB]:
    async with connect(gateway) as client:
        yield client
