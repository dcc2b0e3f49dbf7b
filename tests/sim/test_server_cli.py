"""``ibkr-trader sim`` (through click's CliRunner, and as a process) and the command-line fault
specs."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest
from click.testing import CliRunner
from ib_async import IB, MarketOrder, Stock

from ibkr_trader.cli import app
from ibkr_trader.sim.faults import FaultInjector, parse_fault

#: ``ibkr-trader ...`` in a subprocess (the console script's ``main``, as the entry point runs it)
COMMAND_LINE = (sys.executable, "-c", "from ibkr_trader.cli import main; main()")


@pytest.mark.parametrize(
    "args",
    [
        ["sim", "--host", "10.1.2.3"],
        ["sim", "--port", "7497"],
        ["sim", "--port", "0", "--fault", "explode"],
        ["sim", "--port", "0", "--account", ""],
    ],
)
def test_sim_command_refuses_unsafe_or_bad_arguments(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2


def test_fault_specs_apply_to_an_injector() -> None:
    faults = FaultInjector()
    for spec in (
        "delay:20=2.0",
        "drop_after:50",
        "drop_on:3",
        "refuse_handshake",
        "error_next:20=162",
        "reject_orders",
        "never_fill",
        "partial_fill:0.5",
        "stale_quotes:600",
        "missing_bid_ask",
    ):
        faults.apply(spec)
    assert faults.delays == {20: 2.0}
    assert (faults.drop_after_messages, faults.drop_on_ids, faults.refuse) == (50, {3}, True)
    assert faults.next_errors[20][0] == 162
    assert faults.reject_reason and faults.no_fills and faults.no_bid_ask
    assert (faults.partial_fraction, faults.stale_age) == (0.5, 600.0)
    faults.clear()
    assert faults == FaultInjector()


@pytest.mark.parametrize(
    "spec", ["delay:20", "drop_after:x", "never_fill:1", "partial_fill:2", "nope"]
)
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(spec)(FaultInjector())


async def test_standalone_sim_prints_its_port_and_serves_ib_async() -> None:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND_LINE,
        "sim",
        "--port",
        "0",
        "--account",
        "DU7654321",
        "--at",  # a fixed market instant, never the machine's clock
        "2026-11-18 11:00",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        match = re.search(r"127\.0\.0\.1:(\d+) accounts DU7654321", line)
        assert match, line
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", int(match.group(1)), clientId=1, timeout=5)
            assert ib.managedAccounts() == ["DU7654321"]
        finally:
            ib.disconnect()
    finally:
        proc.terminate()
        await proc.wait()


def test_at_is_new_york_time_and_bad_at_is_refused() -> None:
    from datetime import UTC, datetime

    from ibkr_trader.cli.common import parse_at

    assert parse_at("2026-12-01 10:30") == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert parse_at("2026-07-01T09:30:15") == datetime(2026, 7, 1, 13, 30, 15, tzinfo=UTC)
    result = CliRunner().invoke(app, ["sim", "--port", "0", "--at", "tomorrow"])
    assert result.exit_code == 2


async def test_standalone_sim_follows_the_calendar_from_the_instant_at_gives() -> None:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND_LINE,
        "sim",
        "--port",
        "0",
        "--at",
        "2026-11-28 10:30",  # a Saturday: the market is closed
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        assert "market 2026-11-28 10:30 New York (NYSE calendar)" in line, line
        match = re.search(r"127\.0\.0\.1:(\d+) ", line)
        assert match, line
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", int(match.group(1)), clientId=1, timeout=5)
            now = await ib.reqCurrentTimeAsync()
            assert now.strftime("%Y-%m-%d %H") == "2026-11-28 15"
            [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
            trade = ib.placeOrder(spy, MarketOrder("BUY", 1))
            await asyncio.sleep(0.3)
            assert trade.orderStatus.status == "PreSubmitted"  # waits for Monday's open
        finally:
            ib.disconnect()
    finally:
        proc.terminate()
        await proc.wait()
