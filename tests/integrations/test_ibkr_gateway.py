"""IBKRGateway: construction refusals, handoff 8.1 (connection failures), the paper interlock,
account refresh and the lifecycle, against the simulator on loopback."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from ibkr_trader.broker.connection import ConnectionState, IBKRConnection
from ibkr_trader.clock import ManualClock
from ibkr_trader.integrations.exceptions import (
    BrokerError,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayError,
    GatewayNotConnectedError,
    PaperInterlockError,
)
from ibkr_trader.integrations.feature_flags import IntegrationFeatureFlags
from ibkr_trader.integrations.ibkr_gateway import (
    LIVE_PORTS,
    GatewayConfig,
    IBKRGateway,
    is_paper_account,
)
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import ExecutionMode, OrderStatus, TradingState
from ibkr_trader.risk import RiskManager
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import open_sim, rig_instant

from .conftest import CONTEXT, Rig, RigFactory, limits, make_signal, next_client_id

MSG_START_API = 71
MSG_REQ_HISTORICAL_DATA = 20


def _risk(tmp_path: Path, mode: ExecutionMode) -> tuple[RiskManager, Journal]:
    clock = ManualClock(rig_instant())
    journal = Journal.open(tmp_path / f"j-{mode.value}.sqlite3", mode, clock)
    return RiskManager(limits(), journal, clock, tmp_path / "HALT"), journal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ construction


def test_paper_accounts_start_with_du() -> None:
    assert is_paper_account("DU1234567") and is_paper_account("du42")
    assert not is_paper_account("U1234567") and not is_paper_account("")


@pytest.mark.parametrize("port", sorted(LIVE_PORTS))
def test_paper_mode_refuses_live_ports_at_construction(tmp_path: Path, port: int) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.PAPER)
    with pytest.raises(PaperInterlockError, match=str(port)):
        IBKRGateway(GatewayConfig(port=port), risk, ExecutionMode.PAPER, journal=journal)
    journal.close()


def test_live_trading_config_is_refused_in_paper_mode(tmp_path: Path) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.PAPER)
    assert GatewayConfig.live_trading().port == 4001
    assert GatewayConfig.paper_trading(client_id=5).port == 4002
    with pytest.raises(PaperInterlockError):
        IBKRGateway(GatewayConfig.live_trading(), risk, ExecutionMode.PAPER, journal=journal)
    journal.close()


def test_live_mode_is_blocked(tmp_path: Path) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.PAPER)
    with pytest.raises(GatewayError, match="Live trading blocked"):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.LIVE, journal=journal)
    with pytest.raises(GatewayError, match="Live trading blocked"):
        IBKRGateway(GatewayConfig(), risk, "live", journal=journal)  # type: ignore[arg-type]
    journal.close()


@pytest.mark.parametrize("operator_id", ["", "  "])
def test_empty_operator_id_is_refused(tmp_path: Path, operator_id: str) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.DRY_RUN)
    with pytest.raises(GatewayError, match="operator_id"):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.DRY_RUN, operator_id, journal=journal)
    journal.close()


def test_disabled_integration_layer_refuses_to_construct(tmp_path: Path) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.DRY_RUN)
    flags = IntegrationFeatureFlags(ENABLE_INTEGRATION_LAYER=False)
    with pytest.raises(GatewayError, match="ENABLE_INTEGRATION_LAYER"):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.DRY_RUN, journal=journal, flags=flags)
    journal.close()


def test_journal_of_another_mode_is_refused(tmp_path: Path) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.DRY_RUN)
    with pytest.raises(GatewayError, match="journal is for dry_run"):
        IBKRGateway(GatewayConfig(), risk, ExecutionMode.PAPER, journal=journal)
    journal.close()


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"port": 70000}, {"timeout": 0}])
def test_gateway_config_validates(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GatewayConfig(**kwargs)  # type: ignore[arg-type]


def test_gateway_config_repr_redacts_the_account() -> None:
    text = repr(GatewayConfig(account="DU1234567"))
    assert "DU1234567" not in text and "port=4002" in text


async def test_operations_before_connect_raise_not_connected(tmp_path: Path) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.DRY_RUN)
    gw = IBKRGateway(GatewayConfig(), risk, ExecutionMode.DRY_RUN, journal=journal)
    assert not gw.is_connected and gw.account == ""
    assert gw.execution_mode is ExecutionMode.DRY_RUN
    with pytest.raises(GatewayNotConnectedError):
        await gw.get_market_data("SPY")
    with pytest.raises(GatewayNotConnectedError):
        await gw.get_positions()
    with pytest.raises(GatewayNotConnectedError):
        await gw.close_all_positions("MANUAL")
    with pytest.raises(GatewayNotConnectedError):
        await gw.close_position("x", "MANUAL")
    with pytest.raises(GatewayNotConnectedError):
        await gw.refresh_account()
    with pytest.raises(GatewayNotConnectedError):
        await gw.server_time()
    with pytest.raises(GatewayNotConnectedError):
        await gw.submit_order({}, CONTEXT)
    await gw.aclose()
    journal.close()


async def test_gateway_opens_and_closes_its_own_journal(
    tmp_path: Path, sim: SimulatedGateway
) -> None:
    risk, store = _risk(tmp_path, ExecutionMode.DRY_RUN)
    path = tmp_path / "own.sqlite3"
    config = GatewayConfig(
        host=sim.host, port=sim.port, client_id=next_client_id(), journal_path=path
    )
    async with IBKRGateway(config, risk, ExecutionMode.DRY_RUN) as gw:
        assert gw.journal_path == path
        await gw.connect(timeout=5.0)
        assert gw.is_connected
    assert gw.journal.journal.closed
    store.close()


# ------------------------------------------------------------------ 8.1 connection failures


async def test_gateway_not_running_raises_connection_error(
    tmp_path: Path, rig_factory: RigFactory
) -> None:
    risk, journal = _risk(tmp_path, ExecutionMode.PAPER)
    port = _free_port()
    gw = IBKRGateway(
        GatewayConfig(port=port, client_id=next_client_id()),
        risk,
        ExecutionMode.PAPER,
        journal=journal,
    )
    with pytest.raises(GatewayConnectionError, match="connection refused") as caught:
        await gw.connect(timeout=2.0)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert not gw.is_connected
    await gw.aclose()
    journal.close()


@pytest.mark.timeout(15)
async def test_network_timeout_raises_timeout_error(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    sim.faults.delay(MSG_START_API, 3.0)
    rig = await rig_factory(sim, connect=False)
    with pytest.raises(TimeoutError) as caught:
        await rig.gateway.connect(timeout=0.5)
    assert isinstance(caught.value, GatewayConnectionError)
    assert not rig.gateway.is_connected


async def test_refused_handshake_is_an_authentication_error(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    sim.faults.refuse_handshake()
    rig = await rig_factory(sim, connect=False)
    with pytest.raises(GatewayAuthenticationError):
        await rig.gateway.connect(timeout=2.0)


async def test_client_id_in_use_is_an_authentication_error(
    sim: SimulatedGateway, rig_factory: RigFactory, paper: Rig
) -> None:
    clash = await rig_factory(sim, connect=False)
    object.__setattr__(clash.gateway.config, "client_id", paper.gateway.config.client_id)
    clash.gateway.connection.client_id = paper.gateway.config.client_id
    with pytest.raises(GatewayAuthenticationError, match="client id"):
        await clash.gateway.connect(timeout=2.0)
    assert paper.gateway.is_connected  # the first session is unaffected


@pytest.mark.timeout(20)
async def test_disconnect_mid_operation_errors_then_reconnects(
    sim: SimulatedGateway, rig_factory: RigFactory, tmp_path: Path
) -> None:
    connection = IBKRConnection(
        sim.host,
        sim.port,
        client_id=next_client_id(),
        timeout=5.0,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    rig = await rig_factory(sim, connection=connection)
    states: list[ConnectionState] = []
    restored = asyncio.Event()

    def listen(state: ConnectionState) -> None:
        states.append(state)
        if state is ConnectionState.RESTORED:
            restored.set()

    def broken(_state: ConnectionState) -> None:
        raise RuntimeError("a listener's failure is logged, never raised")

    rig.gateway.add_state_listener(listen)
    rig.gateway.add_state_listener(broken)
    sim.faults.drop_on(MSG_REQ_HISTORICAL_DATA)
    with pytest.raises(BrokerError):
        await rig.gateway.get_market_data("SPY", timeout=3.0)
    sim.faults.clear()
    # (an identical historical request within 15 s would wait on IB's pacing rule: use QQQ)
    await asyncio.wait_for(restored.wait(), 10.0)
    assert ConnectionState.DISCONNECTED in states and states[-1] is ConnectionState.RESTORED
    data = await rig.gateway.get_market_data("QQQ", timeout=5.0)
    assert data.last_price > 0


async def test_market_data_farm_broken_refuses_to_connect(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    connection = IBKRConnection(sim.host, sim.port, client_id=next_client_id(), timeout=5.0)
    await connection.connect(5.0)
    await sim.broadcast_error(2103, "Market data farm connection is broken:usfarm")
    for _ in range(50):
        if any(v == "broken" for v in connection._farms.values()):
            break
        await asyncio.sleep(0.02)
    rig = await rig_factory(sim, connect=False, connection=connection)
    with pytest.raises(GatewayError, match="market data unavailable"):
        await rig.gateway.connect(timeout=5.0)
    assert not rig.gateway.is_connected


# ------------------------------------------------------------------ the paper interlock


async def test_paper_interlock_against_a_live_account_halts_and_journals(
    rig_factory: RigFactory,
) -> None:
    async with open_sim(accounts=("U1234567",)) as live:
        rig = await rig_factory(live, connect=False)
        with pytest.raises(PaperInterlockError, match="not a paper account"):
            await rig.gateway.connect(timeout=5.0)
        assert rig.risk.trading_state is TradingState.HALTED
        last = rig.journal.trading_states()[-1]
        assert last.state == "HALTED" and "paper interlock" in last.cause
        assert rig.journal.events(kind="paper_interlock")
        assert "U1234567" not in str(rig.journal.events(kind="paper_interlock")[0].detail)
        # even if trading were resumed, nothing reaches the live account
        result = await rig.gateway.submit_order(make_signal(live), CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.REJECTED
        rig.risk.resume("operator resumes by mistake")
        result = await rig.gateway.submit_order(
            make_signal(live, signal_id="again"), CONTEXT, timeout=5.0
        )
        assert result.status is OrderStatus.FAILED
        assert "paper" in (result.rejection_reason or "")
        assert live.received_orders == []
        await rig.gateway.aclose()


async def test_dry_run_against_a_live_account_never_sends(rig_factory: RigFactory) -> None:
    async with open_sim(accounts=("U1234567",)) as live:
        rig = await rig_factory(live, ExecutionMode.DRY_RUN)
        assert rig.gateway.account == "U1234567"
        result = await rig.gateway.submit_order(make_signal(live), CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.SIMULATED
        assert live.received_orders == []
        with pytest.raises(GatewayError, match="never sends"):
            rig.gateway._trading_account()
        await rig.gateway.aclose()


async def test_paper_with_several_accounts_needs_a_choice(rig_factory: RigFactory) -> None:
    async with open_sim(accounts=("DU111", "DU222")) as multi:
        rig = await rig_factory(multi, connect=False)
        with pytest.raises(PaperInterlockError, match="2 accounts"):
            await rig.gateway.connect(timeout=5.0)
        chosen = await rig_factory(multi, account="DU222")
        assert chosen.gateway.account == "DU222"
        result = await chosen.gateway.submit_order(make_signal(multi), CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.FILLED
        assert multi.received_orders[0].account == "DU222"
        # a session on its own account setting, so that the interlock sees the choice
        session = IBKRConnection(multi.host, multi.port, client_id=next_client_id(), timeout=5.0)
        wrong = await rig_factory(multi, connect=False, account="DU999", connection=session)
        with pytest.raises(PaperInterlockError, match="not managed"):
            await wrong.gateway.connect(timeout=5.0)
        for r in (rig, chosen, wrong):
            await r.gateway.aclose()


async def test_paper_account_guard_before_connect_refuses(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, connect=False)
    with pytest.raises(PaperInterlockError, match="connect"):
        rig.gateway._trading_account()


# ------------------------------------------------------------------ account, lifecycle


async def test_refresh_account_feeds_the_risk_manager(paper: Rig) -> None:
    snapshot = await paper.gateway.refresh_account(timeout=5.0)
    assert snapshot.account == paper.sim.accounts[0]
    assert snapshot.net_liquidation > 0 and snapshot.available_funds > 0
    assert paper.gateway.connection.managed_accounts == list(paper.sim.accounts)
    assert (await paper.gateway.server_time(5.0)).tzinfo is not None


async def test_dry_run_account_is_the_simulated_book(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, ExecutionMode.DRY_RUN, dry_run_starting_cash=50_000.0)
    snapshot = await rig.gateway.refresh_account(timeout=5.0)
    assert snapshot.account == "SIMULATED"
    assert snapshot.cash == pytest.approx(50_000.0)
    result = await rig.gateway.submit_order(make_signal(sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.SIMULATED
    rig.gateway.positions.clear_cache()
    after = await rig.gateway.refresh_account(timeout=5.0)
    assert after.cash < 50_000.0
    assert after.net_liquidation == pytest.approx(50_000.0, rel=0.01)


async def test_disconnect_clears_caches_and_is_journaled(paper: Rig) -> None:
    await paper.gateway.get_market_data("SPY", timeout=5.0)
    await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    await paper.gateway.get_positions(timeout=5.0)
    assert paper.gateway.positions.cached()
    await paper.gateway.disconnect()
    assert not paper.gateway.is_connected
    assert paper.gateway.positions.cached() == []
    assert paper.gateway.positions.last_sync is None
    kinds = [e.kind for e in paper.journal.events()]
    assert "connected" in kinds and "disconnected" in kinds
    await paper.gateway.disconnect()  # twice is harmless


async def test_connect_survives_an_account_refresh_failure(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    session = IBKRConnection(sim.host, sim.port, client_id=next_client_id(), timeout=5.0)
    await session.connect(5.0)
    sim.faults.delay(6, 1.0)  # reqAccountUpdates answered too late
    rig = await rig_factory(sim, connect=False, connection=session)
    assert await rig.gateway.connect(timeout=0.5) is True
    assert rig.gateway.is_connected


async def test_the_gateway_exposes_its_parts(paper: Rig) -> None:
    gw = paper.gateway
    assert gw.executor.mode is ExecutionMode.PAPER and gw.executor.operator_id == "CSATSPRIM"
    assert gw.pipeline.staleness_threshold_seconds == 300.0
    assert gw.contracts is not None and gw.connection.is_connected
    assert isinstance(gw.journal, AsyncJournal)
