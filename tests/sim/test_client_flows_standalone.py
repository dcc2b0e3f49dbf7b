"""The three clients' whole flow against the standalone ``ibkr-trader sim`` (a subprocess),
on the NYSE calendar from a fixed market instant (``--at``, a Tuesday 10:30 New York)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable

import ib_async
import ib_insync
import pytest

from . import client_flows

FLOWS: dict[str, Callable[[int, int], client_flows.FlowResult]] = {
    "ib_async": lambda port, cid: client_flows.insync_flow(ib_async, port, cid),
    "ib_insync": lambda port, cid: client_flows.insync_flow(ib_insync, port, cid),
    "ibapi": client_flows.ibapi_flow,
}
VERSION = {"ib_async": 178, "ib_insync": 176, "ibapi": 178}


@pytest.fixture
async def standalone_port() -> AsyncIterator[int]:
    code = "from ibkr_trader.cli import main; main()"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "sim",
        "--port",
        "0",
        "--at",
        "2026-12-01 10:30",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        assert "(NYSE calendar)" in line, line
        match = re.search(r"127\.0\.0\.1:(\d+) ", line)
        assert match, line
        yield int(match.group(1))
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("client_name", list(FLOWS))
async def test_each_clients_flow_against_ibkr_trader_sim(
    client_name: str, standalone_port: int
) -> None:
    r = await asyncio.to_thread(FLOWS[client_name], standalone_port, 31)
    c = r.checks
    assert r.server_version == VERSION[client_name]
    assert [line for line in r.log if "202" not in line] == []  # no decoder error, no drop
    assert {code for _, code, _ in r.errors} <= {2104, 2106, 2158, 202}
    assert c["greeks"] is not None and 0 < c["greeks"][0] < 1
    assert c["bars"] == 60
    assert c["mkt"][:2] == ("Filled", 1.0) and c["lmt"] == "Cancelled"
    con_id = c["option"][0]
    assert [p[:2] for p in c["positions"]] == [(con_id, 1.0)]
    assert c["completed"] == [("Cancelled", True), ("Filled", True)]
    assert c["executions"] == [("BOT", 1.0, con_id)]
