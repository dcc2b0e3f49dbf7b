"""MarketDataPipeline: handoff 8.2 (data quality issues) against the simulator, and the
pipeline's own logic (gateway clock, bar cache, one deadline) with fakes of OUR interfaces."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ibkr_trader.broker.market_data import Bar, Quote
from ibkr_trader.integrations.exceptions import BrokerTimeoutError, InsufficientDataError
from ibkr_trader.integrations.market_data_pipeline import MarketDataPipeline
from ibkr_trader.models import ContractSpec, OrderStatus

from .conftest import CONTEXT, Rig, make_signal

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------ 8.2 against the simulator


async def test_fresh_quote_is_complete_and_scores_one(paper: Rig) -> None:
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    assert not data.is_stale and data.missing_fields == ()
    assert data.data_quality_score == 1.0
    assert data.bid <= data.last_price <= data.ask or data.bid <= data.ask
    assert data.bars_used >= 21
    assert all(math.isfinite(v) for v in (data.ema_fast, data.ema_slow, data.rsi, data.vwap))
    assert data.bollinger_lower <= data.bollinger_middle <= data.bollinger_upper
    assert data.server_time is not None and data.symbol == "SPY"


async def test_stale_quote_is_flagged_against_the_gateway_clock(paper: Rig) -> None:
    paper.sim.faults.stale_quotes(600)
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    assert data.is_stale is True
    assert data.staleness_seconds >= 300
    assert data.data_quality_score < 1.0
    assert data.to_quote_check().is_stale


async def test_stale_underlying_blocks_an_entry_through_the_data_gate(paper: Rig) -> None:
    paper.sim.faults.stale_quotes(900)
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    result = await paper.gateway.submit_order(
        make_signal(paper.sim), CONTEXT, timeout=5.0, market_data=data
    )
    assert result.status is OrderStatus.REJECTED
    assert "stale" in (result.rejection_reason or "").lower()
    assert paper.orders == []


async def test_missing_bid_ask_is_listed_in_missing_fields(paper: Rig) -> None:
    paper.sim.faults.missing_bid_ask()
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    assert "bid" in data.missing_fields and "ask" in data.missing_fields
    assert math.isnan(data.bid) and math.isnan(data.ask)
    assert data.data_quality_score < 1.0


async def test_bars_are_reused_within_the_cache_window(paper: Rig) -> None:
    client_id = paper.gateway.config.client_id
    await paper.gateway.get_market_data("SPY", timeout=5.0)
    before = sum(paper.sim.message_counts(client_id).values())
    second = await paper.gateway.get_market_data("SPY", timeout=5.0)
    sent = sum(paper.sim.message_counts(client_id).values()) - before
    assert second.bars_used >= 21
    assert sent <= 3  # quote + current time (+ cancel): no second historical request


async def test_fetch_quote_for_an_option_reports_its_quality(paper: Rig) -> None:
    expiry = make_signal(paper.sim).expiry
    contract = await paper.gateway.contracts.qualify_option_contract("SPY", expiry, 600.0, "C")
    quote, quality = await paper.gateway.pipeline.fetch_quote(contract, timeout=5.0)
    assert quote.con_id == contract.con_id and quote.bid is not None
    assert quality is not None and quality.server_time is not None


# ------------------------------------------------------------------ pipeline logic with fakes


def _bars(n: int, *, volume: float = 1000.0, start: datetime = T0) -> list[Bar]:
    out = []
    for i in range(n):
        price = 100.0 + math.sin(i / 3.0) + i * 0.05
        out.append(
            Bar(
                time=start + timedelta(minutes=i),
                open=price,
                high=price + 0.2,
                low=price - 0.2,
                close=price,
                volume=volume,
                wap=price,
                bar_count=10,
            )
        )
    return out


def _quote(last_trade: datetime | None, **overrides: object) -> Quote:
    base = Quote(
        symbol="SPY",
        con_id=756733,
        bid=101.0,
        ask=101.02,
        last=101.01,
        bid_size=10.0,
        ask_size=12.0,
        last_size=1.0,
        volume=1e6,
        close=100.0,
        last_trade_time=last_trade,
        request_time=T0,
        receipt_time=T0,
        market_data_type=1,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class FakeSource:
    """A MarketDataSource (our protocol) with canned answers."""

    def __init__(self, quote: Quote, bars: list[Bar], delay: float = 0.0) -> None:
        self.quote = quote
        self.bars = bars
        self.delay = delay
        self.quote_calls: list[bool] = []
        self.bar_calls: list[tuple[object, str, bool]] = []

    async def get_quote(
        self, symbol_or_contract: str | ContractSpec, timeout: float = 30.0, snapshot: bool = True
    ) -> Quote:
        self.quote_calls.append(snapshot)
        await asyncio.sleep(self.delay)
        return self.quote

    async def get_historical_bars(
        self,
        symbol: str | ContractSpec,
        duration: str | int = "3600 S",
        bar_size: str = "1 min",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        timeout: float = 30.0,
    ) -> list[Bar]:
        self.bar_calls.append((duration, bar_size, use_rth))
        return self.bars


class FakeServerClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    async def server_time(self, timeout: float | None = None) -> datetime:
        return self.now


async def test_staleness_is_measured_on_the_gateway_clock_not_the_local_one() -> None:
    # the quote is fresh by the local clock, but the gateway says 400 s have passed
    local_now = T0
    source = FakeSource(_quote(local_now), _bars(30))
    pipeline = MarketDataPipeline(source, FakeServerClock(local_now + timedelta(seconds=400)))
    data = await pipeline.fetch_market_data("SPY", timeout=1.0)
    assert data.is_stale and data.staleness_seconds == pytest.approx(400.0)
    fresh = MarketDataPipeline(source, FakeServerClock(local_now + timedelta(seconds=299)))
    assert not (await fresh.fetch_market_data("SPY", timeout=1.0)).is_stale


async def test_quote_without_a_last_trade_time_is_stale() -> None:
    pipeline = MarketDataPipeline(FakeSource(_quote(None), _bars(30)), FakeServerClock(T0))
    data = await pipeline.fetch_market_data("SPY", timeout=1.0)
    assert data.is_stale and math.isinf(data.staleness_seconds)


async def test_nan_indicator_is_flagged_in_missing_fields() -> None:
    # zero volume in every bar: the session VWAP is undefined (NaN), and is flagged
    source = FakeSource(_quote(T0), _bars(30, volume=0.0))
    data = await MarketDataPipeline(source, FakeServerClock(T0)).fetch_market_data("SPY", 1.0)
    assert math.isnan(data.vwap) and "vwap" in data.missing_fields
    assert data.data_quality_score < 1.0


async def test_twenty_bars_are_insufficient_and_twenty_one_enough() -> None:
    few = MarketDataPipeline(FakeSource(_quote(T0), _bars(20)), FakeServerClock(T0))
    with pytest.raises(InsufficientDataError):
        await few.fetch_market_data("SPY", timeout=1.0)
    with pytest.raises(ValueError):  # also a ValueError for pure callers
        await few.fetch_market_data("QQQ", timeout=1.0)
    enough = MarketDataPipeline(FakeSource(_quote(T0), _bars(21)), FakeServerClock(T0))
    assert (await enough.fetch_market_data("SPY", timeout=1.0)).bars_used == 21


async def test_delayed_data_is_flagged() -> None:
    source = FakeSource(_quote(T0, market_data_type=3), _bars(30))
    data = await MarketDataPipeline(source, FakeServerClock(T0)).fetch_market_data("SPY", 1.0)
    assert data.is_delayed and "delayed" in data.missing_fields


async def test_pipeline_asks_for_snapshots_and_one_hour_of_rth_minute_bars() -> None:
    source = FakeSource(_quote(T0), _bars(30))
    pipeline = MarketDataPipeline(source, FakeServerClock(T0), bars_max_age_seconds=0.0)
    await pipeline.fetch_market_data("SPY", timeout=1.0)
    await pipeline.fetch_quote("SPY", timeout=1.0, server_check=False)
    await pipeline.fetch_historical_data("SPY", duration_minutes=45, timeout=1.0)
    assert source.quote_calls == [True, True]
    assert source.bar_calls[0] == (60, "1 min", True)
    assert source.bar_calls[-1] == (45, "1 min", True)


async def test_bar_cache_expires_and_clears() -> None:
    source = FakeSource(_quote(T0), _bars(30))
    pipeline = MarketDataPipeline(source, FakeServerClock(T0), bars_max_age_seconds=60.0)
    await pipeline.fetch_market_data("SPY", timeout=1.0)
    await pipeline.fetch_market_data("SPY", timeout=1.0)
    assert len(source.bar_calls) == 1
    pipeline.clear_cache()
    await pipeline.fetch_market_data("SPY", timeout=1.0)
    assert len(source.bar_calls) == 2


@pytest.mark.timeout(10)
async def test_one_deadline_covers_the_whole_fetch() -> None:
    source = FakeSource(_quote(T0), _bars(30), delay=5.0)
    pipeline = MarketDataPipeline(source, FakeServerClock(T0))
    with pytest.raises(BrokerTimeoutError, match="SPY"):
        await pipeline.fetch_market_data("SPY", timeout=0.2)
    with pytest.raises(BrokerTimeoutError):
        await pipeline.fetch_quote("SPY", timeout=0.2)


def test_staleness_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarketDataPipeline(FakeSource(_quote(T0), []), FakeServerClock(T0), 0)
