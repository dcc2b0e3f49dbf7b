"""The five alpha-learning regression tests of handoff 7.4 (and the rows of 8.5), each asserting
its specific violation against the real simulator."""

from __future__ import annotations

import pytest

from ibkr_trader.broker.market_data import MarketDataProvider
from ibkr_trader.broker.orders import OrderSpec
from ibkr_trader.integrations.exceptions import (
    AlphaLearningViolationError,
    BrokerTimeoutError,
    ContractQualificationError,
    GatewayError,
    SnapshotModeViolationError,
)
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.integrations.market_data_pipeline import check_history_minutes
from ibkr_trader.models import ContractSpec, ExecutionMode, OrderStatus
from ibkr_trader.sim import SimulatedGateway

from .conftest import CONTEXT, Rig, RigFactory, make_signal, select_expiry

MSG_REQ_MKT_DATA = 1
MSG_REQ_HISTORICAL_DATA = 20
MSG_REQ_CURRENT_TIME = 49


def _messages(sim: SimulatedGateway, client_id: int) -> int:
    return sum(sim.message_counts(client_id).values())


# ------------------------------------------------------------------ 11.1 snapshot=True


async def test_snapshot_mode_enforced(paper: Rig) -> None:
    gw = paper.gateway
    with pytest.raises(SnapshotModeViolationError):
        MarketDataProvider(gw.connection, gw.contracts, snapshot=False)
    provider = MarketDataProvider(gw.connection, gw.contracts)
    before = _messages(paper.sim, gw.config.client_id)
    with pytest.raises(SnapshotModeViolationError):
        await provider.get_quote("SPY", timeout=2.0, snapshot=False)
    assert _messages(paper.sim, gw.config.client_id) == before  # refused before sending
    # every quote the layer takes is a snapshot: nothing left standing at the gateway
    data = await gw.get_market_data("SPY", timeout=5.0)
    await gw.pipeline.fetch_quote("QQQ", timeout=5.0)
    assert data.last_price > 0
    assert paper.sim.standing_subscriptions() == 0


async def test_order_path_leaves_no_standing_subscription(paper: Rig) -> None:
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FILLED
    await paper.gateway.get_positions(timeout=5.0)
    assert paper.sim.standing_subscriptions() == 0


# ------------------------------------------------------------------ 11.2 one hour of history


async def test_historical_data_1_hour_limit(paper: Rig) -> None:
    gw = paper.gateway
    before = _messages(paper.sim, gw.config.client_id)
    with pytest.raises(AlphaLearningViolationError, match="1-hour limit: 120 minutes"):
        await gw.get_historical_data("SPY", duration_minutes=120, timeout=5.0)
    with pytest.raises(AlphaLearningViolationError):
        await gw.pipeline.fetch_historical_data("SPY", duration_minutes=61)
    with pytest.raises(AlphaLearningViolationError):
        await MarketDataProvider(gw.connection, gw.contracts).get_historical_bars(
            "SPY", duration=120
        )
    assert _messages(paper.sim, gw.config.client_id) == before  # nothing was sent
    bars = await gw.get_historical_data("SPY", duration_minutes=60, timeout=5.0)
    assert 0 < len(bars) <= 60


@pytest.mark.parametrize("bad", [0, -5, 61, 1.5, True, "60"])
def test_history_minutes_outside_1_to_60_are_violations(bad: object) -> None:
    with pytest.raises(AlphaLearningViolationError):
        check_history_minutes(bad)  # type: ignore[arg-type]


async def test_history_limit_is_checked_before_the_connection(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, connect=False)
    with pytest.raises(AlphaLearningViolationError):
        await rig.gateway.get_historical_data("SPY", duration_minutes=120)


# ------------------------------------------------------------------ 11.3 timeout propagation


@pytest.mark.timeout(15)
async def test_timeout_propagation(paper: Rig) -> None:
    gw = paper.gateway
    paper.sim.faults.delay(MSG_REQ_MKT_DATA, 3.0)
    with pytest.raises(TimeoutError) as caught:
        await gw.get_market_data("SPY", timeout=0.5)
    assert isinstance(caught.value, BrokerTimeoutError)
    paper.sim.faults.clear()
    paper.sim.faults.delay(MSG_REQ_HISTORICAL_DATA, 3.0)
    with pytest.raises(BrokerTimeoutError):
        await gw.get_historical_data("SPY", duration_minutes=30, timeout=0.5)
    paper.sim.faults.clear()
    paper.sim.faults.delay(MSG_REQ_CURRENT_TIME, 3.0)
    with pytest.raises(TimeoutError):
        await gw.server_time(timeout=0.5)


@pytest.mark.timeout(15)
async def test_timeout_reaches_the_order_path(paper: Rig) -> None:
    paper.sim.faults.delay(MSG_REQ_MKT_DATA, 3.0)
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=0.5)
    assert result.status is OrderStatus.TIMEOUT
    assert paper.orders == []


@pytest.mark.timeout(15)
async def test_timeout_reaches_positions(paper: Rig) -> None:
    paper.sim.seed_position(
        paper.sim.accounts[0],
        "SPY",
        1,
        500.0,
        sec_type="OPT",
        expiry=select_expiry(paper.sim),
        strike=600.0,
        right="C",
    )
    paper.sim.faults.delay(6, 3.0)  # reqAccountUpdates
    with pytest.raises(TimeoutError):
        await paper.gateway.get_positions(timeout=0.5)


# ------------------------------------------------------------------ 11.4 qualification


async def test_contract_qualification_required(paper: Rig) -> None:
    gw = paper.gateway
    unqualified = ContractSpec(
        symbol="SPY", expiry=select_expiry(paper.sim), strike=600.0, right="C"
    )
    order = OrderSpec(
        action="BUY",
        quantity=1,
        order_type="LMT",
        limit_price=1.0,
        order_ref="CSATSPRIM-x",
        ext_operator="CSATSPRIM",
        account=paper.sim.accounts[0],
    )
    with pytest.raises(ContractQualificationError):
        await gw.connection.place_order(unqualified, order, timeout=2.0)
    with pytest.raises(ContractQualificationError):
        await gw.contracts.qualify_option_contract("SPY", select_expiry(paper.sim), 9999.0, "C")
    result = await gw.submit_order(
        make_signal(paper.sim, strike=9999.0, limit_price=1.0), CONTEXT, timeout=5.0
    )
    assert result.status is OrderStatus.FAILED
    assert "Contract qualification failed" in (result.rejection_reason or "")
    assert paper.orders == []


# ------------------------------------------------------------------ 11.5 operator id


async def test_operator_id_on_all_orders(paper: Rig) -> None:
    gw = paper.gateway
    entry = await gw.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert entry.status is OrderStatus.FILLED and entry.operator_id == "CSATSPRIM"
    positions = await gw.get_positions(timeout=5.0)
    assert len(positions) == 1
    close = await gw.close_position(positions[0].position_id, "MANUAL", timeout=5.0)
    assert close.status is OrderStatus.FILLED and close.operator_id == "CSATSPRIM"
    assert len(paper.orders) == 2
    for order in paper.orders:
        assert "CSATSPRIM" in order.order_ref
        assert order.ext_operator == "CSATSPRIM"
        assert order.account == paper.sim.accounts[0]
    assert {o.action for o in paper.orders} == {"BUY", "SELL"}
    intents = [o.intent for o in paper.journal.orders()]
    assert [i.operator_id for i in intents] == ["CSATSPRIM", "CSATSPRIM"]


async def test_custom_operator_id_travels_on_the_order(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, operator_id="OPS42")
    result = await rig.gateway.submit_order(make_signal(sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FILLED
    assert sim.received_orders[0].ext_operator == "OPS42"
    assert "OPS42" in sim.received_orders[0].order_ref


@pytest.mark.parametrize("operator_id", ["", "   "])
async def test_missing_operator_id_is_refused_at_construction(
    sim: SimulatedGateway, rig_factory: RigFactory, operator_id: str
) -> None:
    rig = await rig_factory(sim, connect=False)
    with pytest.raises(GatewayError, match="operator_id"):
        IBKRGateway(
            GatewayConfig(host=sim.host, port=sim.port),
            rig.risk,
            ExecutionMode.PAPER,
            operator_id=operator_id,
            journal=rig.gateway.journal,
        )
