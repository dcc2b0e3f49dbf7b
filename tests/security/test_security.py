"""Security properties: the paper interlock, loopback-only simulator, no account id in logs."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from ibkr_trader.integrations.exceptions import PaperInterlockError
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.logging import configure_logging
from ibkr_trader.models import ExecutionMode, OrderStatus, TradingState
from ibkr_trader.risk import RiskManager, load_risk_limits
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.strategies.selection import SelectionConfig, select_expiry
from ibkr_trader.testing import open_sim

LIVE_ACCOUNT = "U7654321"
PAPER_ACCOUNT = "DU1234567"
CONTEXT = {
    "strategy_id": "sec",
    "strategy_name": "Security",
    "risk_per_trade": 0.01,
    "take_profit_pct": 0.5,
    "stop_loss_pct": 0.4,
}


def _gateway(
    sim: SimulatedGateway, tmp: Path, mode: ExecutionMode, account: str = ""
) -> tuple[IBKRGateway, RiskManager, Journal]:
    clock = sim.clock
    journal = Journal.open(tmp / f"{mode.value}.sqlite", mode, clock)
    risk = RiskManager(load_risk_limits(env={}), journal, clock, kill_switch_path=tmp / "HALT")
    gw = IBKRGateway(
        GatewayConfig(host=sim.host, port=sim.port, client_id=51, account=account),
        risk,
        mode,
        journal=AsyncJournal(journal),
        clock=clock,
    )
    return gw, risk, journal


async def _signal(gw: IBKRGateway) -> dict[str, object]:
    data = await gw.get_market_data("SPY", 5.0)
    chain = await gw.contracts.option_chain("SPY", 5.0)
    expiry = select_expiry(chain.expirations, await gw.server_time(5.0), SelectionConfig())
    assert expiry is not None
    strike = min(chain.strikes, key=lambda s: abs(s - data.last_price))
    contract = await gw.contracts.qualify_option_contract("SPY", expiry, strike, "C", 5.0)
    quote, _ = await gw.pipeline.fetch_quote(contract, 5.0, server_check=False)
    assert quote.ask is not None
    return {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": 1,
        "order_type": "LMT",
        "limit_price": round(quote.ask + 0.5, 2),
        "expiry": expiry,
        "strike": strike,
        "right": "C",
        "strategy_id": "sec",
        "timestamp": await gw.server_time(5.0),
    }


async def test_paper_mode_against_a_live_account_halts_and_sends_nothing(tmp_path: Path) -> None:
    async with open_sim(accounts=(LIVE_ACCOUNT,)) as sim:
        gw, risk, journal = _gateway(sim, tmp_path, ExecutionMode.PAPER)
        try:
            with pytest.raises(PaperInterlockError):
                await gw.connect(5.0)
            assert risk.trading_state is TradingState.HALTED
            states = journal.trading_states()
            assert states and states[-1].state == TradingState.HALTED.value
            assert "paper interlock" in states[-1].cause
            # whatever the caller does next, nothing reaches the broker
            if gw.is_connected:
                result = await gw.submit_order(await _signal(gw), CONTEXT, timeout=5.0)
                assert result.status in (OrderStatus.REJECTED, OrderStatus.FAILED)
                assert result.rejection_reason
                closes = await gw.close_all_positions("MANUAL", timeout=5.0)
                assert all(c.status is not OrderStatus.FILLED for c in closes)
            assert sim.received_orders == []
        finally:
            await gw.disconnect()
            journal.close()


async def test_paper_mode_with_a_live_account_configured_explicitly_sends_nothing(
    tmp_path: Path,
) -> None:
    accounts = (PAPER_ACCOUNT, LIVE_ACCOUNT)
    async with open_sim(accounts=accounts) as sim:
        gw, risk, journal = _gateway(sim, tmp_path, ExecutionMode.PAPER, account=LIVE_ACCOUNT)
        try:
            with pytest.raises(PaperInterlockError):
                await gw.connect(5.0)
            assert risk.trading_state is TradingState.HALTED
            assert sim.received_orders == []
        finally:
            await gw.disconnect()
            journal.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_the_simulator_refuses_a_non_loopback_bind(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimulatedGateway(SimConfig(host=host))


def test_the_simulator_binds_elsewhere_only_when_told() -> None:
    SimulatedGateway(SimConfig(host="0.0.0.0", allow_non_loopback=True))  # constructed, not bound


def test_the_sim_command_refuses_a_non_loopback_host() -> None:
    from ibkr_trader.cli import app

    result = CliRunner().invoke(app, ["sim", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """structlog at INFO (the project's configuration) and ib_async's stdlib logs at INFO."""
    ours, theirs = io.StringIO(), io.StringIO()
    saved = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", ours)
    configure_logging("INFO")
    handler = logging.StreamHandler(theirs)
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(n) for n in ("ib_async", "ibkr_trader")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield ours, theirs
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
        structlog.configure(**saved)


async def _cycle(sim: SimulatedGateway, tmp: Path, mode: ExecutionMode) -> None:
    gw, _risk, journal = _gateway(sim, tmp, mode)
    try:
        await gw.connect(5.0)
        result = await gw.submit_order(await _signal(gw), CONTEXT, timeout=5.0)
        assert result.status in (OrderStatus.FILLED, OrderStatus.SIMULATED), result
        await gw.get_positions(5.0)
        await gw.close_all_positions("MANUAL", timeout=5.0)
    finally:
        await gw.disconnect()
        journal.close()


async def test_no_account_id_in_our_logs_at_info(
    tmp_path: Path, captured_logs: tuple[io.StringIO, io.StringIO]
) -> None:
    ours, _ = captured_logs
    async with open_sim() as sim:
        await _cycle(sim, tmp_path, ExecutionMode.DRY_RUN)
        await _cycle(sim, tmp_path, ExecutionMode.PAPER)
    text = ours.getvalue()
    assert "order sent" in text or "paper_order_done" in text  # the capture saw the cycle
    assert PAPER_ACCOUNT not in text


async def test_no_account_id_in_ib_async_logs_at_info(
    tmp_path: Path, captured_logs: tuple[io.StringIO, io.StringIO]
) -> None:
    _, theirs = captured_logs
    async with open_sim() as sim:
        sim.faults.never_fill()  # a cancelled order: ib_async logs the whole Trade
        gw, _risk, journal = _gateway(sim, tmp_path, ExecutionMode.PAPER)
        try:
            await gw.connect(5.0)
            await gw.submit_order(await _signal(gw), CONTEXT, timeout=1.0)
        finally:
            await gw.disconnect()
            journal.close()
    assert theirs.getvalue()  # ib_async did log
    assert PAPER_ACCOUNT not in theirs.getvalue()
