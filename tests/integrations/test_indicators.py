"""Indicators: known values, an independent plain-Python reference, and properties."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_trader.integrations.errors import InsufficientDataError
from ibkr_trader.integrations.indicators import bollinger, ema, ema_series, rsi, sma, vwap

# The classic RSI worked example (Wilder's method as StockCharts teaches it), 33 closes.
WILDER_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89,
    46.03, 45.61, 46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25,
    45.71, 46.45, 45.78, 45.35, 44.03, 44.18, 44.22, 44.57, 43.42, 42.66, 43.13,
]  # fmt: skip
# StockCharts' published column, computed with rounded intermediate averages (hence ~0.07 off).
STOCKCHARTS_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38,
    54.71, 50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


# --- plain-Python references, written from the textbook definitions -------------------------


def ref_ema(prices: list[float], period: int) -> float:
    alpha = 2 / (period + 1)
    value = sum(prices[:period]) / period
    for price in prices[period:]:
        value = alpha * price + (1 - alpha) * value
    return value


def ref_rsi(prices: list[float], period: int = 14) -> float:
    changes = [b - a for a, b in itertools.pairwise(prices)]
    avg_gain = sum(max(c, 0.0) for c in changes[:period]) / period
    avg_loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    for change in changes[period:]:
        avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
    if avg_loss == 0:
        return 100.0 if avg_gain > 0 else 50.0
    return 100 - 100 / (1 + avg_gain / avg_loss)


prices_strategy = st.lists(
    st.floats(min_value=1.0, max_value=1000.0, allow_nan=False, allow_infinity=False),
    min_size=30,
    max_size=80,
)


# --- EMA -----------------------------------------------------------------------------------


def test_ema_is_seeded_with_the_sma_of_its_first_period() -> None:
    # seed = (1+2+3)/3 = 2; alpha = 0.5: 0.5*4 + 0.5*2 = 3; 0.5*5 + 0.5*3 = 4
    assert ema([1, 2, 3, 4, 5], 3) == pytest.approx(4.0)
    assert ema([1, 2, 3], 3) == pytest.approx(2.0)


def test_ema_series_is_nan_before_the_seed_and_aligned_with_prices() -> None:
    series = ema_series([1, 2, 3, 4, 5], 3)
    assert len(series) == 5
    assert np.isnan(series[:2]).all()
    assert series[2:].tolist() == pytest.approx([2.0, 3.0, 4.0])


def test_ema_differs_from_the_handoff_first_price_seed() -> None:
    # Seeding with the first price (the handoff's shortcut) would give a different number.
    prices = [10.0, 11.0, 12.0, 13.0, 14.0]
    alpha = 2 / 4
    first_price_seeded = prices[0]
    for p in prices[1:]:
        first_price_seeded = alpha * p + (1 - alpha) * first_price_seeded
    assert ema(prices, 3) == pytest.approx(13.0)
    assert ema(prices, 3) != pytest.approx(first_price_seeded)


def test_ema_matches_reference_on_wilder_closes() -> None:
    for period in (8, 21):
        assert ema(WILDER_CLOSES, period) == pytest.approx(ref_ema(WILDER_CLOSES, period), abs=1e-9)


def test_ema_with_too_few_prices_raises_insufficient_data() -> None:
    with pytest.raises(InsufficientDataError, match="at least 21"):
        ema([1.0] * 20, 21)


def test_insufficient_data_error_is_a_value_error() -> None:
    assert issubclass(InsufficientDataError, ValueError)


@pytest.mark.parametrize("period", [0, -1, 2.5, True])
def test_invalid_period_is_refused(period: object) -> None:
    with pytest.raises(ValueError, match="period"):
        ema([1.0, 2.0, 3.0], period)  # type: ignore[arg-type]


def test_two_dimensional_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        ema(np.ones((3, 3)), 2)


@settings(max_examples=150, deadline=None)
@given(prices=prices_strategy, period=st.integers(min_value=1, max_value=30))
def test_ema_lies_within_the_price_range(prices: list[float], period: int) -> None:
    value = ema(prices, period)
    assert min(prices) - 1e-9 <= value <= max(prices) + 1e-9
    assert value == pytest.approx(ref_ema(prices, period), rel=1e-9)


# --- RSI -----------------------------------------------------------------------------------


def test_rsi_first_value_of_the_wilder_example_is_hand_computable() -> None:
    # First 14 changes: gains sum 3.34, losses sum 1.40 -> RSI = 100 * 3.34 / 4.74
    assert rsi(WILDER_CLOSES[:15]) == pytest.approx(100 * 3.34 / 4.74, abs=1e-6)
    assert rsi(WILDER_CLOSES[:15]) == pytest.approx(70.46413502, abs=1e-6)


def test_rsi_follows_wilder_smoothing_across_the_example() -> None:
    for n, published in zip(range(15, len(WILDER_CLOSES) + 1), STOCKCHARTS_RSI, strict=True):
        value = rsi(WILDER_CLOSES[:n])
        assert value == pytest.approx(ref_rsi(WILDER_CLOSES[:n]), abs=1e-6)
        assert value == pytest.approx(published, abs=0.1)


def test_rsi_uses_wilder_smoothing_not_a_plain_mean_of_the_last_changes() -> None:
    changes = np.diff(WILDER_CLOSES)[-14:]
    gains = changes[changes > 0].sum() / 14
    losses = -changes[changes < 0].sum() / 14
    plain = 100 - 100 / (1 + gains / losses)
    assert abs(rsi(WILDER_CLOSES) - plain) > 1.0


def test_rsi_with_only_gains_is_100_and_only_losses_is_0() -> None:
    assert rsi([float(i) for i in range(1, 30)]) == 100.0
    assert rsi([float(i) for i in range(30, 1, -1)]) == 0.0


def test_rsi_with_no_movement_is_neutral_50() -> None:
    assert rsi([100.0] * 20) == 50.0


def test_rsi_needs_period_plus_one_prices() -> None:
    with pytest.raises(InsufficientDataError, match="at least 15"):
        rsi([1.0] * 14)
    assert rsi([1.0] * 15) == 50.0


def test_rsi_with_a_nan_price_is_nan() -> None:
    prices = [float(i % 5) + 10 for i in range(20)]
    prices[7] = math.nan
    assert math.isnan(rsi(prices))


@settings(max_examples=150, deadline=None)
@given(prices=prices_strategy)
def test_rsi_stays_between_0_and_100_and_matches_reference(prices: list[float]) -> None:
    value = rsi(prices)
    assert 0.0 <= value <= 100.0
    assert value == pytest.approx(ref_rsi(prices), abs=1e-6)


# --- Bollinger -----------------------------------------------------------------------------


def test_bollinger_uses_the_population_standard_deviation() -> None:
    prices = [float(i) for i in range(1, 21)]
    upper, lower, middle = bollinger(prices)
    sigma = statistics.pstdev(prices)  # sqrt((20**2 - 1) / 12) = 5.766281...
    assert sigma == pytest.approx(math.sqrt(399 / 12))
    assert middle == pytest.approx(10.5)
    assert upper == pytest.approx(10.5 + 2 * sigma)
    assert lower == pytest.approx(10.5 - 2 * sigma)
    assert upper != pytest.approx(10.5 + 2 * statistics.stdev(prices))


def test_bollinger_uses_only_the_last_period_values() -> None:
    prices = [1000.0] * 10 + [5.0] * 20
    assert bollinger(prices) == pytest.approx((5.0, 5.0, 5.0))


def test_bollinger_with_too_few_prices_raises() -> None:
    with pytest.raises(InsufficientDataError):
        bollinger([1.0] * 19)


def test_bollinger_refuses_negative_width() -> None:
    with pytest.raises(ValueError, match="num_std"):
        bollinger([1.0] * 20, num_std=-1.0)


@settings(max_examples=150, deadline=None)
@given(prices=prices_strategy, num_std=st.floats(min_value=0.0, max_value=4.0))
def test_bollinger_bands_are_ordered_around_the_middle(prices: list[float], num_std: float) -> None:
    upper, lower, middle = bollinger(prices, 20, num_std)
    assert lower <= middle + 1e-9
    assert middle <= upper + 1e-9
    assert upper - middle == pytest.approx(middle - lower, abs=1e-6)
    assert middle == pytest.approx(statistics.fmean(prices[-20:]), rel=1e-9)


# --- VWAP ----------------------------------------------------------------------------------


def test_vwap_weights_the_typical_price_by_volume() -> None:
    # typical prices: (12+8+10)/3 = 10, (23+17+20)/3 = 20; volumes 100 and 300 -> 17.5
    assert vwap([12, 23], [8, 17], [10, 20], [100, 300]) == pytest.approx(17.5)


def test_vwap_without_volume_is_nan_not_the_last_close() -> None:
    assert math.isnan(vwap([12, 23], [8, 17], [10, 20], [0, 0]))


def test_vwap_counts_negative_volume_as_zero() -> None:
    assert vwap([12, 23], [8, 17], [10, 20], [-1, 300]) == pytest.approx(20.0)


def test_vwap_with_a_nan_volume_is_nan() -> None:
    assert math.isnan(vwap([12, 23], [8, 17], [10, 20], [math.nan, 300]))


def test_vwap_refuses_mismatched_lengths_and_empty_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        vwap([1, 2], [1], [1, 2], [1, 2])
    with pytest.raises(InsufficientDataError):
        vwap([], [], [], [])


@settings(max_examples=150, deadline=None)
@given(
    bars=st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=500.0),
            st.floats(min_value=0.0, max_value=10.0),
            st.floats(min_value=0.0, max_value=1.0),
            st.integers(min_value=1, max_value=1_000_000),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_vwap_lies_between_the_lowest_low_and_highest_high(
    bars: list[tuple[float, float, float, int]],
) -> None:
    lows = [low for low, _, _, _ in bars]
    highs = [low + rng for low, rng, _, _ in bars]
    closes = [low + rng * pos for low, rng, pos, _ in bars]
    volumes = [v for _, _, _, v in bars]
    value = vwap(highs, lows, closes, volumes)
    assert min(lows) - 1e-9 <= value <= max(highs) + 1e-9


def test_sma_of_last_period() -> None:
    assert sma([1, 2, 3, 4], 2) == pytest.approx(3.5)
    with pytest.raises(InsufficientDataError):
        sma([1], 2)
