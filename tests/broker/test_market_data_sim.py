"""ContractManager and MarketDataProvider against the simulated gateway."""

from __future__ import annotations

import asyncio

import pytest

from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    BrokerTimeoutError,
    ContractQualificationError,
    PacingViolationError,
    SnapshotModeViolationError,
)
from ibkr_trader.broker.market_data import MarketDataProvider
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.models import ContractSpec
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import open_sim

pytestmark = pytest.mark.timeout(30)

MSG_REQ_MKT_DATA = 1
MSG_REQ_CONTRACT_DETAILS = 9
MSG_REQ_HISTORICAL_DATA = 20


def _total_messages(gateway: SimulatedGateway, client_id: int) -> int:
    return sum(gateway.message_counts(client_id).values())


async def test_qualify_stock_and_option(contracts: ContractManager) -> None:
    spy = await contracts.qualify_stock("SPY", 2.0)
    assert spy.con_id == 756733 and spy.sec_type == "STK"
    chain = await contracts.option_chain("SPY", 10.0)
    assert chain.expirations and chain.strikes
    strike = chain.strikes[len(chain.strikes) // 2]
    option = await contracts.qualify_option_contract(
        "SPY", chain.expirations[1], strike, "CALL", 2.0
    )
    assert option.con_id > 0 and option.right == "C" and option.multiplier == 100
    assert option.expiry == chain.expirations[1]


async def test_qualified_contracts_are_cached(
    gateway: SimulatedGateway, conn: IBKRConnection, contracts: ContractManager
) -> None:
    first = await contracts.qualify_stock("AAPL", 2.0)
    before = _total_messages(gateway, conn.client_id)
    assert await contracts.qualify_stock("AAPL", 2.0) == first
    assert _total_messages(gateway, conn.client_id) == before


async def test_unknown_contract_is_a_qualification_error_and_negatively_cached(
    gateway: SimulatedGateway, conn: IBKRConnection, contracts: ContractManager
) -> None:
    with pytest.raises(ContractQualificationError) as info:
        await contracts.qualify_stock("NOSUCH", 2.0)
    assert info.value.code == 200
    before = _total_messages(gateway, conn.client_id)
    with pytest.raises(ContractQualificationError):
        await contracts.qualify_stock("NOSUCH", 2.0)
    assert _total_messages(gateway, conn.client_id) == before


async def test_unknown_option_strike_is_a_qualification_error(
    contracts: ContractManager,
) -> None:
    chain = await contracts.option_chain("SPY", 10.0)
    with pytest.raises(ContractQualificationError):
        await contracts.qualify_option_contract("SPY", chain.expirations[0], 0.5, "P", 2.0)


async def test_quote_is_fresh_immutable_and_leaves_no_subscription(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    quote = await provider.get_quote("SPY", 3.0)
    assert quote.bid and quote.ask and quote.last and quote.volume
    assert quote.bid <= quote.ask
    assert quote.missing_fields == ()
    assert quote.market_data_type == 1 and not quote.is_delayed
    assert quote.receipt_time >= quote.request_time
    with pytest.raises(AttributeError):
        quote.bid = 1.0  # type: ignore[misc]
    assert gateway.standing_subscriptions() == 0


async def test_an_option_quote_carries_the_model_delta(
    contracts: ContractManager, provider: MarketDataProvider
) -> None:
    stock = await provider.get_quote("SPY", 3.0)
    assert stock.delta is None and stock.implied_vol is None
    chain = await contracts.option_chain("SPY", 10.0)
    assert stock.last is not None
    strike = min(chain.strikes, key=lambda k: abs(k - (stock.last or 0.0)))
    call = await contracts.qualify_option_contract("SPY", chain.expirations[1], strike, "C", 2.0)
    put = await contracts.qualify_option_contract("SPY", chain.expirations[1], strike, "P", 2.0)
    call_quote = await provider.get_quote(call, 3.0)
    put_quote = await provider.get_quote(put, 3.0)
    assert call_quote.delta is not None and put_quote.delta is not None
    assert 0.2 < call_quote.delta < 0.8 and -0.8 < put_quote.delta < -0.2
    assert call_quote.delta - put_quote.delta == pytest.approx(1.0, abs=1e-6)  # parity
    assert call_quote.implied_vol is not None and 0.05 < call_quote.implied_vol < 1.0


async def test_second_quote_never_shows_the_previous_snapshots_values(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    first = await provider.get_quote("SPY", 3.0)
    assert first.bid is not None
    gateway.faults.missing_bid_ask()
    second = await provider.get_quote("SPY", 3.0)
    assert second.bid is None and second.ask is None
    assert "bid" in second.missing_fields and "ask" in second.missing_fields
    assert second is not first


async def test_quote_follows_a_price_change(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    await provider.get_quote("AAPL", 3.0)
    gateway.market.set_override("AAPL", 123.45)
    quote = await provider.get_quote("AAPL", 3.0)
    assert quote.last == pytest.approx(123.45, abs=0.5)


async def test_delayed_data_is_flagged_as_delayed(
    gateway: SimulatedGateway, conn: IBKRConnection, contracts: ContractManager
) -> None:
    provider = MarketDataProvider(conn, contracts, market_data_type=3)
    quote = await provider.get_quote("SPY", 3.0)
    assert quote.market_data_type == 3
    assert quote.is_delayed
    assert quote.bid is not None


async def test_stale_last_trade_time_is_reported(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    gateway.faults.stale_quotes(600)
    quote = await provider.get_quote("SPY", 3.0)
    assert quote.last_trade_time is not None
    assert (quote.request_time - quote.last_trade_time).total_seconds() > 500


async def test_snapshot_false_is_refused_everywhere(
    conn: IBKRConnection, contracts: ContractManager, provider: MarketDataProvider
) -> None:
    with pytest.raises(SnapshotModeViolationError):
        MarketDataProvider(conn, contracts, snapshot=False)
    with pytest.raises(SnapshotModeViolationError):
        await provider.get_quote("SPY", 2.0, snapshot=False)


async def test_unqualified_contract_never_reaches_a_market_data_request(
    gateway: SimulatedGateway, conn: IBKRConnection, provider: MarketDataProvider
) -> None:
    before = _total_messages(gateway, conn.client_id)
    with pytest.raises(ContractQualificationError):
        await provider.get_quote(ContractSpec("SPY", "STK"), 2.0)
    with pytest.raises(ContractQualificationError):
        await provider.get_historical_bars(ContractSpec("SPY", "STK"), 60, timeout=2.0)
    assert _total_messages(gateway, conn.client_id) == before


async def test_slow_snapshot_times_out_and_is_cancelled_at_the_gateway(
    gateway: SimulatedGateway, conn: IBKRConnection, provider: MarketDataProvider
) -> None:
    spy = await provider._contracts.qualify_stock("SPY", 2.0)
    gateway.faults.delay(MSG_REQ_MKT_DATA, 2.0)
    with pytest.raises(BrokerTimeoutError):
        await provider.get_quote(spy, 0.3)
    assert not conn.wrapper.reqId2Ticker
    await asyncio.sleep(2.2)  # the delayed request lands after our cancel
    assert gateway.standing_subscriptions() == 0


async def test_market_data_error_for_the_request_is_raised_not_logged(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    spy = await provider._contracts.qualify_stock("SPY", 2.0)
    gateway.faults.error_next(MSG_REQ_MKT_DATA, 354, "Requested market data is not subscribed")
    with pytest.raises(Exception) as info:
        await provider.get_quote(spy, 2.0)
    assert type(info.value).__name__ == "MarketDataError"
    assert getattr(info.value, "code", None) == 354


async def test_sixty_minute_bars(provider: MarketDataProvider) -> None:
    bars = await provider.get_historical_bars("SPY", "3600 S", timeout=5.0)
    assert len(bars) == 60
    assert all(b.time.tzinfo is not None for b in bars)
    assert bars == sorted(bars, key=lambda b: b.time)
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


@pytest.mark.parametrize(("duration", "bar_size"), [(120, "1 min"), ("1800 S", "15 secs")])
async def test_long_history_is_refused_before_anything_is_sent(
    gateway: SimulatedGateway,
    conn: IBKRConnection,
    provider: MarketDataProvider,
    duration: str | int,
    bar_size: str,
) -> None:
    before = _total_messages(gateway, conn.client_id)
    with pytest.raises(AlphaLearningViolationError):
        await provider.get_historical_bars("SPY", duration, bar_size, timeout=2.0)
    assert _total_messages(gateway, conn.client_id) == before


async def test_historical_timeout_raises_instead_of_returning_an_empty_list(
    gateway: SimulatedGateway, conn: IBKRConnection, provider: MarketDataProvider
) -> None:
    await provider._contracts.qualify_stock("SPY", 2.0)
    gateway.faults.delay(MSG_REQ_HISTORICAL_DATA, 3.0)
    with pytest.raises(TimeoutError):
        await provider.get_historical_bars("SPY", 30, timeout=0.4)
    assert all(isinstance(k, str) for k in conn.wrapper._futures)  # nothing left pending


async def test_error_162_is_a_pacing_violation(
    gateway: SimulatedGateway, provider: MarketDataProvider
) -> None:
    gateway.faults.error_next(
        MSG_REQ_HISTORICAL_DATA,
        162,
        "Historical Market Data Service error message:Historical data request pacing violation",
    )
    with pytest.raises(PacingViolationError) as info:
        await provider.get_historical_bars("SPY", 30, timeout=3.0)
    assert info.value.code == 162


async def test_pacer_keeps_a_burst_inside_ib_pacing_rules() -> None:
    async with open_sim(pacing=True) as gateway:
        conn = IBKRConnection(gateway.host, gateway.port, client_id=31, reconnect=False)
        await conn.connect(5.0)
        try:
            provider = MarketDataProvider(conn, ContractManager(conn))
            # six different requests for one contract: the sixth must wait ~2 s, not fail
            results = [
                await provider.get_historical_bars("SPY", minutes, timeout=10.0)
                for minutes in (5, 10, 15, 20, 25, 30)
            ]
            assert [len(r) for r in results] == [5, 10, 15, 20, 25, 30]
        finally:
            await conn.disconnect()


async def test_without_the_pacer_the_gateway_answers_162() -> None:
    async with open_sim(pacing=True) as gateway:
        conn = IBKRConnection(gateway.host, gateway.port, client_id=32, reconnect=False)
        await conn.connect(5.0)
        try:
            permissive = HistoricalPacer(identical_interval=0, contract_limit=1000, margin=0)
            provider = MarketDataProvider(conn, ContractManager(conn), pacer=permissive)
            await provider.get_historical_bars("SPY", 5, timeout=3.0)
            with pytest.raises(PacingViolationError):
                await provider.get_historical_bars("SPY", 5, timeout=3.0)
        finally:
            await conn.disconnect()
