"""MarketData packaging: indicators from bars, and the data-quality assessment (handoff 8.2)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from ibkr_trader.integrations.errors import InsufficientDataError
from ibkr_trader.integrations.indicators import bollinger, ema, rsi
from ibkr_trader.integrations.market_data_types import (
    DataQuality,
    IndicatorSet,
    MarketData,
    assess_quality,
    compute_indicators,
    session_bars,
)

SERVER_TIME = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 New York


@dataclass(frozen=True)
class FakeBar:
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class UntimedBar:
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class FakeQuote:
    bid: float | None = 100.0
    ask: float | None = 100.1
    last: float | None = 100.05
    volume: float | None = 12_345.0
    close: float | None = 99.0
    last_trade_time: datetime | None = SERVER_TIME - timedelta(seconds=2)
    market_data_type: int = 1
    missing_fields: tuple[str, ...] = ()


def make_bars(closes: list[float], start: datetime, volume: float = 1000.0) -> list[FakeBar]:
    return [
        FakeBar(start + timedelta(minutes=i), c, c + 0.5, c - 0.5, c, volume)
        for i, c in enumerate(closes)
    ]


GOOD_INDICATORS = IndicatorSet(
    ema_fast=101.0,
    ema_slow=100.0,
    rsi=55.0,
    vwap=100.0,
    bollinger_upper=102.0,
    bollinger_lower=98.0,
    bollinger_middle=100.0,
    bars_used=60,
)


# --- compute_indicators ---------------------------------------------------------------------


def test_fewer_than_21_bars_raises_insufficient_data() -> None:
    bars = make_bars([100.0 + i for i in range(20)], SERVER_TIME - timedelta(minutes=30))
    with pytest.raises(InsufficientDataError, match="at least 21 bars"):
        compute_indicators(bars)
    with pytest.raises(InsufficientDataError):
        compute_indicators([])


def test_indicators_use_the_standard_definitions_on_the_closes() -> None:
    closes = [100.0 + (i % 7) - (i % 3) * 0.4 for i in range(60)]
    bars = make_bars(closes, SERVER_TIME - timedelta(minutes=60))
    result = compute_indicators(bars)
    assert result.ema_fast == pytest.approx(ema(closes, 8))
    assert result.ema_slow == pytest.approx(ema(closes, 21))
    assert result.rsi == pytest.approx(rsi(closes, 14))
    upper, lower, middle = bollinger(closes, 20, 2.0)
    bands = (result.bollinger_upper, result.bollinger_lower, result.bollinger_middle)
    assert bands == pytest.approx((upper, lower, middle))
    # Typical price of each bar equals its close here, with equal volumes.
    assert result.vwap == pytest.approx(sum(closes) / len(closes))
    assert result.bars_used == 60
    assert result.vwap_bars == 60
    assert result.last_bar_time == bars[-1].time


def test_vwap_uses_only_the_last_new_york_session() -> None:
    # Yesterday's last 30 minutes at 200, today's first 30 minutes at 100 (RTH bars, 1 hour).
    yesterday = make_bars([200.0] * 30, datetime(2026, 11, 23, 20, 30, tzinfo=UTC))
    today = make_bars([100.0] * 30, datetime(2026, 11, 24, 14, 30, tzinfo=UTC))
    result = compute_indicators(yesterday + today)
    assert result.vwap == pytest.approx(100.0)
    assert result.vwap_bars == 30
    assert result.bars_used == 60


def test_session_split_uses_new_york_dates_not_utc_dates() -> None:
    # 23:30 UTC on the 24th is 18:30 New York on the 24th: the same session as 15:00 UTC.
    early = make_bars([1.0], datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    late = make_bars([2.0], datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    assert len(session_bars(early + late)) == 2


def test_untimed_bars_are_one_session() -> None:
    bars = [UntimedBar(c, c + 1, c - 1, c, 10.0) for c in range(100, 125)]
    result = compute_indicators(bars)
    assert result.vwap_bars == 25
    assert result.last_bar_time is None


def test_bars_without_volume_give_a_nan_vwap_flagged_by_quality() -> None:
    bars = make_bars([100.0 + i * 0.1 for i in range(30)], SERVER_TIME, volume=0.0)
    result = compute_indicators(bars)
    assert math.isnan(result.vwap)
    quality = assess_quality(FakeQuote(), result, SERVER_TIME)
    assert quality.missing_fields == ("vwap",)
    assert quality.score == pytest.approx(0.9)


def test_nan_price_in_bars_is_flagged_in_missing_fields() -> None:
    closes = [100.0 + i * 0.1 for i in range(30)]
    closes[-3] = math.nan
    result = compute_indicators(make_bars(closes, SERVER_TIME - timedelta(minutes=30)))
    quality = assess_quality(FakeQuote(), result, SERVER_TIME)
    assert set(quality.missing_fields) == {
        "ema_fast",
        "ema_slow",
        "rsi",
        "vwap",
        "bollinger_upper",
        "bollinger_lower",
        "bollinger_middle",
    }
    assert quality.score == pytest.approx(0.3)


# --- assess_quality -------------------------------------------------------------------------


def test_fresh_complete_quote_scores_one() -> None:
    quality = assess_quality(FakeQuote(), GOOD_INDICATORS, SERVER_TIME)
    assert quality == DataQuality(
        is_stale=False,
        staleness_seconds=2.0,
        missing_fields=(),
        score=1.0,
        is_delayed=False,
        market_data_type=1,
        server_time=SERVER_TIME,
        last_trade_time=SERVER_TIME - timedelta(seconds=2),
    )


def test_last_trade_older_than_five_minutes_is_stale_and_loses_half_the_score() -> None:
    quote = FakeQuote(last_trade_time=SERVER_TIME - timedelta(seconds=301))
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    assert quality.is_stale
    assert quality.staleness_seconds == pytest.approx(301.0)
    assert quality.score == pytest.approx(0.5)


def test_exactly_the_threshold_is_not_yet_stale() -> None:
    quote = FakeQuote(last_trade_time=SERVER_TIME - timedelta(seconds=300))
    assert not assess_quality(quote, GOOD_INDICATORS, SERVER_TIME).is_stale


def test_staleness_is_measured_on_the_gateway_clock_not_the_local_clock() -> None:
    # The quote's last trade is 10 minutes before the gateway's time; a local clock that is
    # 10 minutes behind would call it fresh. Only server_time is consulted.
    gateway_now = SERVER_TIME + timedelta(minutes=10)
    quality = assess_quality(FakeQuote(), GOOD_INDICATORS, gateway_now)
    assert quality.is_stale
    assert quality.staleness_seconds == pytest.approx(602.0)


def test_custom_threshold_is_honoured() -> None:
    quote = FakeQuote(last_trade_time=SERVER_TIME - timedelta(seconds=61))
    assert assess_quality(quote, GOOD_INDICATORS, SERVER_TIME, threshold_s=60).is_stale


def test_quote_without_last_trade_time_is_stale_with_infinite_staleness() -> None:
    quality = assess_quality(FakeQuote(last_trade_time=None), GOOD_INDICATORS, SERVER_TIME)
    assert quality.is_stale
    assert math.isinf(quality.staleness_seconds)
    assert quality.last_trade_time is None


def test_last_trade_after_server_time_counts_as_fresh() -> None:
    quote = FakeQuote(last_trade_time=SERVER_TIME + timedelta(seconds=3))
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    assert quality.staleness_seconds == 0.0
    assert not quality.is_stale


def test_missing_bid_and_ask_are_named_in_missing_fields() -> None:
    quote = FakeQuote(bid=0.0, ask=0.0)
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    assert quality.missing_fields == ("bid", "ask")
    assert quality.score == pytest.approx(0.8)


@pytest.mark.parametrize("bad", [None, math.nan, 0.0, -1.0])
def test_none_nan_zero_or_negative_values_are_missing(bad: float | None) -> None:
    quote = FakeQuote(bid=bad, ask=bad, last=bad, volume=bad)
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    assert quality.missing_fields == ("bid", "ask", "last", "volume")
    assert quality.score == pytest.approx(0.6)


@pytest.mark.parametrize("data_type", [3, 4])
def test_delayed_data_is_flagged_and_costs_score(data_type: int) -> None:
    quality = assess_quality(FakeQuote(market_data_type=data_type), GOOD_INDICATORS, SERVER_TIME)
    assert quality.is_delayed
    assert quality.missing_fields == ("delayed",)
    assert quality.score == pytest.approx(0.9)


@pytest.mark.parametrize("data_type", [1, 2])
def test_live_and_frozen_data_are_not_delayed(data_type: int) -> None:
    quality = assess_quality(FakeQuote(market_data_type=data_type), GOOD_INDICATORS, SERVER_TIME)
    assert not quality.is_delayed


def test_score_is_floored_at_zero() -> None:
    nan = math.nan
    nan_indicators = IndicatorSet(nan, nan, nan, nan, nan, nan, nan)
    quote = FakeQuote(bid=None, ask=None, last=None, volume=None, last_trade_time=None)
    quality = assess_quality(quote, nan_indicators, SERVER_TIME)
    assert quality.score == 0.0
    assert len(quality.missing_fields) == 11


def test_naive_server_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        assess_quality(FakeQuote(), GOOD_INDICATORS, datetime(2026, 11, 24, 15, 0))


# --- MarketData -----------------------------------------------------------------------------


def test_market_data_packages_quote_indicators_and_quality() -> None:
    quote = FakeQuote(bid=0.0, market_data_type=3)
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    data = MarketData.from_parts("SPY", quote, GOOD_INDICATORS, quality, con_id=756733)
    assert data.symbol == "SPY"
    assert data.timestamp == SERVER_TIME
    assert data.last_price == 100.05
    assert data.bid == 0.0
    assert data.ema_fast == 101.0
    assert data.bollinger_middle == 100.0
    assert data.missing_fields == ("bid", "delayed")
    assert data.is_delayed
    assert data.market_data_type == 3
    assert data.bars_used == 60
    assert data.con_id == 756733
    assert data.data_quality_score == pytest.approx(0.8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.last_price = 1.0  # type: ignore[misc]


def test_market_data_turns_absent_prices_into_nan() -> None:
    quote = FakeQuote(last=None, volume=None)
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    data = MarketData.from_parts("SPY", quote, GOOD_INDICATORS, quality)
    assert math.isnan(data.last_price)
    assert math.isnan(data.volume)


def test_market_data_needs_an_aware_timestamp() -> None:
    quality = replace(assess_quality(FakeQuote(), GOOD_INDICATORS, SERVER_TIME), server_time=None)
    with pytest.raises(ValueError, match="timestamp"):
        MarketData.from_parts("SPY", FakeQuote(), GOOD_INDICATORS, quality)
    with pytest.raises(ValueError, match="aware"):
        MarketData.from_parts(
            "SPY", FakeQuote(), GOOD_INDICATORS, quality, timestamp=datetime(2026, 1, 1)
        )


def test_quote_check_carries_staleness_delay_and_missing_fields() -> None:
    quote = FakeQuote(ask=None, market_data_type=3)
    quality = assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)
    check = MarketData.from_parts("SPY", quote, GOOD_INDICATORS, quality).to_quote_check()
    assert check.bid == 100.0
    assert check.ask is None
    assert check.last == 100.05
    assert check.is_delayed
    assert not check.is_stale
    assert check.missing_fields == ("ask", "delayed")
    assert check.as_of == SERVER_TIME - timedelta(seconds=2)


def test_the_broker_quote_and_bar_types_feed_the_pure_steps() -> None:
    from ibkr_trader.broker.market_data import Bar, Quote

    start = SERVER_TIME - timedelta(minutes=30)
    bars: list[Bar] = [
        Bar(start + timedelta(minutes=i), 100.0, 100.5, 99.5, 100.0 + i * 0.01, 500.0, 100.0, 9)
        for i in range(30)
    ]
    quote = Quote(
        symbol="SPY",
        con_id=756733,
        bid=None,
        ask=100.4,
        last=100.3,
        bid_size=None,
        ask_size=3.0,
        last_size=1.0,
        volume=1e6,
        close=99.0,
        last_trade_time=SERVER_TIME - timedelta(seconds=400),
        request_time=SERVER_TIME,
        receipt_time=SERVER_TIME,
        market_data_type=1,
        missing_fields=("bid",),
    )
    indicators = compute_indicators(bars)
    quality = assess_quality(quote, indicators, SERVER_TIME)
    data = MarketData.from_parts("SPY", quote, indicators, quality, con_id=quote.con_id)
    assert data.missing_fields == ("bid",)
    assert data.is_stale
    assert data.data_quality_score == pytest.approx(0.4)
    assert data.bars_used == 30


def test_naive_last_trade_time_is_refused() -> None:
    quote = FakeQuote(last_trade_time=datetime(2026, 11, 24, 14, 59))
    with pytest.raises(ValueError, match="last_trade_time"):
        assess_quality(quote, GOOD_INDICATORS, SERVER_TIME)


def test_session_bars_of_nothing_is_nothing() -> None:
    assert list(session_bars([])) == []
