"""End to end: the integration layer against the real simulator over loopback, with a real
journal and a real RiskManager, and the command-line cycle in a subprocess."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.integrations.exceptions import GatewayError, PaperInterlockError
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus, TradingState
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.signals import StrategyContext, TradingSignal
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import (
    atm_strike,
    make_signal,
    open_sim,
    option_con_id,
    rig_instant,
    select_expiry,
)

CONTEXT = StrategyContext(
    strategy_id="e2e",
    strategy_name="End-to-end",
    risk_per_trade=0.02,
    take_profit_pct=0.5,
    stop_loss_pct=0.4,
)
_ids = itertools.count(301)


async def _gateway(
    sim: SimulatedGateway, tmp_path: Path, mode: ExecutionMode
) -> tuple[IBKRGateway, Journal, RiskManager]:
    n = next(_ids)
    clock = sim.clock
    journal = Journal.open(tmp_path / f"e2e-{n}.sqlite3", mode, clock)
    risk = RiskManager(RiskLimits(), journal, clock, kill_switch_path=tmp_path / f"HALT-{n}")
    gw = IBKRGateway(
        GatewayConfig(host=sim.host, port=sim.port, client_id=n, timeout=5.0),
        risk,
        mode,
        journal=AsyncJournal(journal),
        clock=clock,
    )
    return gw, journal, risk


def _signal(
    sim: SimulatedGateway, limit: float | None = None, signal_id: str = ""
) -> TradingSignal:
    return make_signal(sim, limit_price=limit, signal_id=signal_id, strategy_id="e2e")


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedGateway]:
    async with open_sim() as gw:
        yield gw


async def test_paper_cycle_journals_every_step_and_tags_every_order(
    sim: SimulatedGateway, tmp_path: Path
) -> None:
    gw, journal, _risk = await _gateway(sim, tmp_path, ExecutionMode.PAPER)
    try:
        await gw.connect(timeout=5.0)
        data = await gw.get_market_data("SPY", timeout=5.0)
        assert not data.is_stale and data.bars_used >= 21
        entry = await gw.submit_order(_signal(sim), CONTEXT, timeout=5.0, market_data=data)
        assert entry.status is OrderStatus.FILLED, entry.rejection_reason
        positions = await gw.get_positions(timeout=5.0)
        assert len(positions) == 1 and positions[0].quantity == 1
        close = await gw.close_position(positions[0].position_id, "STRATEGY_EXIT", 5.0)
        assert close.status is OrderStatus.FILLED and close.closure_reason == "STRATEGY_EXIT"
        assert await gw.get_positions(timeout=5.0) == []
        assert sim.standing_subscriptions() == 0
    finally:
        await gw.aclose()
    assert len(sim.received_orders) == 2
    for order in sim.received_orders:
        assert "CSATSPRIM" in order.order_ref and order.ext_operator == "CSATSPRIM"
    for result in (entry, close):
        explained = journal.explain(result.order_id)
        assert explained is not None
        assert explained.decision is not None and explained.decision.approved
        assert explained.intent.created_at <= explained.statuses[0].at  # intent before send
        assert explained.statuses[-1].status == "Filled"
        assert explained.fills and explained.results
    closure = journal.explain(close.order_id)
    assert closure is not None and closure.closure_reason == "STRATEGY_EXIT"
    journal.close()


async def test_paper_interlock_against_a_live_account(tmp_path: Path) -> None:
    async with open_sim(accounts=("U1234567",)) as live:
        gw, journal, risk = await _gateway(live, tmp_path, ExecutionMode.PAPER)
        with pytest.raises(PaperInterlockError):
            await gw.connect(timeout=5.0)
        assert risk.trading_state is TradingState.HALTED
        assert journal.trading_states()[-1].state == "HALTED"
        result = await gw.submit_order(_signal(live), CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.REJECTED
        assert live.received_orders == []
        await gw.aclose()
        journal.close()


@pytest.mark.parametrize("port", [4001, 7496])
def test_paper_refuses_live_ports(tmp_path: Path, port: int) -> None:
    clock = ManualClock(rig_instant())
    journal = Journal.open(tmp_path / "p.sqlite3", ExecutionMode.PAPER, clock)
    risk = RiskManager(RiskLimits(), journal, clock, kill_switch_path=tmp_path / "H")
    with pytest.raises(PaperInterlockError):
        IBKRGateway(GatewayConfig(port=port), risk, ExecutionMode.PAPER, journal=journal)
    with pytest.raises(GatewayError):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.LIVE, journal=journal)
    with pytest.raises(GatewayError):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.PAPER, "", journal=journal)
    journal.close()


async def test_forty_percent_loss_on_a_short_option_is_an_emergency_stop(
    sim: SimulatedGateway, tmp_path: Path
) -> None:
    expiry, strike = select_expiry(sim), atm_strike(sim)
    con_id = option_con_id(sim, expiry, strike)
    premium = sim.market.price(con_id)
    sim.seed_position(sim.accounts[0], "SPY", -1, premium * 100, con_id=con_id)
    gw, journal, _risk = await _gateway(sim, tmp_path, ExecutionMode.PAPER)
    try:
        await gw.connect(timeout=5.0)
        before = (await gw.get_positions(timeout=5.0))[0]
        assert before.quantity == -1 and before.closure_trigger is None
        sim.market.shock("SPY", 1.08)  # the underlying rallies: the short call's price rises
        after = (await gw.get_positions(timeout=5.0))[0]
        assert after.current_price > premium * 1.4
        assert after.unrealized_pnl < 0 and after.unrealized_pnl_pct <= -0.4
        assert after.should_close_emergency and after.closure_trigger == "EMERGENCY_STOP"
        result = await gw.close_position(after.position_id, after.closure_trigger, 5.0)
        assert result.status is OrderStatus.FILLED
        assert sim.received_orders[-1].action == "BUY"  # buy to close, never flip
        assert journal.closures()[-1].reason == "EMERGENCY_STOP"
    finally:
        await gw.aclose()
        journal.close()


async def test_stale_quote_is_flagged(sim: SimulatedGateway, tmp_path: Path) -> None:
    gw, journal, _risk = await _gateway(sim, tmp_path, ExecutionMode.PAPER)
    try:
        await gw.connect(timeout=5.0)
        sim.faults.stale_quotes(600)
        data = await gw.get_market_data("SPY", timeout=5.0)
        assert data.is_stale is True
    finally:
        await gw.aclose()
        journal.close()


async def test_duplicate_signal_sends_one_order(sim: SimulatedGateway, tmp_path: Path) -> None:
    gw, journal, _risk = await _gateway(sim, tmp_path, ExecutionMode.PAPER)
    try:
        await gw.connect(timeout=5.0)
        signal = _signal(sim)
        first = await gw.submit_order(signal, CONTEXT, timeout=5.0)
        second = await gw.submit_order(signal, CONTEXT, timeout=5.0)
        assert first.status is OrderStatus.FILLED and not first.duplicate
        assert second.duplicate is True and second.order_id == first.order_id
        assert len(sim.received_orders) == 1
    finally:
        await gw.aclose()
        journal.close()


async def test_dry_run_fills_at_the_quote_into_the_simulated_book(
    sim: SimulatedGateway, tmp_path: Path
) -> None:
    gw, journal, _risk = await _gateway(sim, tmp_path, ExecutionMode.DRY_RUN)
    try:
        await gw.connect(timeout=5.0)
        signal = _signal(sim)
        ask = sim.market.quote(option_con_id(sim, signal.expiry, signal.strike)).ask
        result = await gw.submit_order(signal, CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.SIMULATED
        assert result.fill_price == pytest.approx(ask, abs=0.02) and result.fill_price > 0
        book = journal.simulated_positions()
        # the book carries the commission (from the risk limits) in the cost, as IB does
        assert result.commission is not None and result.commission > 0
        assert len(book) == 1
        assert book[0].avg_price == pytest.approx(result.fill_price + result.commission / 100)
        # a limit the market does not reach rests, then times out like a paper order
        low = await gw.submit_order(_signal(sim, limit=0.01, signal_id="low"), CONTEXT, 1.0)
        assert low.status is OrderStatus.TIMEOUT and low.fill_price is None
        sim.faults.missing_bid_ask()
        none = await gw.submit_order(_signal(sim, signal_id="nobidask"), CONTEXT, 5.0)
        assert none.status in (OrderStatus.FAILED, OrderStatus.REJECTED)
        assert none.fill_price is None
        assert len(journal.simulated_positions()) == 1
        assert all(f.price > 0 for f in journal.fills())
        assert sim.received_orders == []
    finally:
        await gw.aclose()
        journal.close()


@pytest.mark.timeout(60)
def test_command_line_dry_run_cycle_prints_the_whole_flow(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["IBKR_TRADER_HOME"] = str(tmp_path / "home")
    env["IBKR_TRADER_KILL_SWITCH"] = str(tmp_path / "HALT")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ibkr_trader.testing.at",  # the subprocess runs at the rig's instant too
            rig_instant().isoformat(),
            "ibkr_trader.integrations.ibkr_gateway",
            "--mode=dry_run",
            "--symbol=SPY",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Market data: SPY" in out and "RSI 14" in out and "quality score" in out
    assert "signal: BUY 1 SPY" in out
    assert "SIMULATED" in out and "CSATSPRIM" in out
    assert "Positions" in out
    assert "journal:" in out and str(tmp_path / "home") in out.replace("\n", "")


@pytest.mark.parametrize("mode", ["dry_run", "paper"])
def test_demo_main_runs_the_cycle_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    from ibkr_trader import demo

    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IBKR_TRADER_KILL_SWITCH", str(tmp_path / "HALT"))
    monkeypatch.setenv("COLUMNS", "200")
    journal = tmp_path / f"demo-{mode}.sqlite3"
    assert demo.main([f"--mode={mode}", "--symbol=SPY", "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    expected = "SIMULATED" if mode == "dry_run" else "FILLED"
    assert expected in out and "Positions" in out and "journal:" in out
    assert journal.exists()


def test_demo_main_reports_an_unreachable_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from ibkr_trader import demo

    monkeypatch.setenv("IBKR_TRADER_KILL_SWITCH", str(tmp_path / "HALT"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = demo.main(
        ["--port", str(port), "--journal", str(tmp_path / "j.sqlite3"), "--timeout", "2"]
    )
    assert code == 1  # an operational failure (README policy), not a usage error
    assert "error:" in capsys.readouterr().out
