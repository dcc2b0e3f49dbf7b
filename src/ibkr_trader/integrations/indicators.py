"""Technical indicators as pure numpy functions, with the standard definitions.

These are the definitions TA-Lib and the charting platforms use (a deliberate departure from
the handoff's shortcuts, see ``shared/seed/README.md``), so a strategy sees the numbers a trader
sees on a chart:

- **EMA**: smoothing factor ``2 / (period + 1)``, seeded with the simple average of the first
  ``period`` values (TA-Lib's default), then ``ema = alpha * price + (1 - alpha) * ema``.
- **RSI**: Wilder's smoothing. The first average gain and loss are the simple averages of the
  first ``period`` changes; every later change updates them as
  ``avg = (avg * (period - 1) + x) / period``. ``RSI = 100 * avg_gain / (avg_gain + avg_loss)``.
- **Bollinger bands**: middle = simple average of the last ``period`` values, bands at
  ``num_std`` *population* standard deviations (``ddof=0``) either side.
- **VWAP**: the volume-weighted average of the typical price ``(high + low + close) / 3`` over
  the bars in hand (the caller passes the session's bars).

Edge cases, chosen and documented here:

- Fewer points than an indicator needs -> :class:`InsufficientDataError` (a ``ValueError``).
- RSI with no movement at all (average gain and loss both 0) -> **50.0**, the neutral value.
  TA-Lib returns 0.0 there and TradingView 100.0; either would read as an extreme (deeply
  oversold / overbought) and could trigger a mean-reversion entry on a market that did not move.
  Only gains -> 100.0, only losses -> 0.0, as everywhere.
- VWAP with no volume (a total of 0) -> **NaN**, not the last close as the
  handoff sketched: a chart shows no VWAP without volume, and a NaN indicator is flagged by the
  data-quality check (``missing_fields``), so "last above VWAP" can never be decided on a
  made-up number. Negative volumes (IB sends -1 for "not available") count as 0.
- NaN in the input propagates to the output; the data-quality check flags it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ibkr_trader.integrations.errors import InsufficientDataError

__all__ = [
    "InsufficientDataError",
    "bollinger",
    "ema",
    "ema_series",
    "rsi",
    "sma",
    "vwap",
]

FloatArray = npt.NDArray[np.float64]
Prices = Sequence[float] | FloatArray

RSI_NO_MOVEMENT = 50.0


def _as_array(values: Prices, name: str = "prices") -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _check_period(period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")


def _require(array: FloatArray, needed: int, what: str) -> None:
    if len(array) < needed:
        raise InsufficientDataError(f"{what} needs at least {needed} values, got {len(array)}")


def sma(prices: Prices, period: int) -> float:
    """Simple moving average of the last ``period`` values."""
    _check_period(period)
    array = _as_array(prices)
    _require(array, period, f"SMA({period})")
    return float(np.mean(array[-period:]))


def ema_series(prices: Prices, period: int) -> FloatArray:
    """EMA at every point, aligned with ``prices``.

    The first ``period - 1`` entries are NaN (not enough data yet, as TA-Lib's lookback); entry
    ``period - 1`` is the simple average of the first ``period`` prices, the seed.
    """
    _check_period(period)
    array = _as_array(prices)
    _require(array, period, f"EMA({period})")
    alpha = 2.0 / (period + 1.0)
    out = np.full(len(array), np.nan, dtype=np.float64)
    value = float(np.mean(array[:period]))
    out[period - 1] = value
    for i in range(period, len(array)):
        value = alpha * float(array[i]) + (1.0 - alpha) * value
        out[i] = value
    return out


def ema(prices: Prices, period: int) -> float:
    """The latest EMA value (SMA-seeded, see the module docstring)."""
    return float(ema_series(prices, period)[-1])


def rsi(prices: Prices, period: int = 14) -> float:
    """The latest RSI with Wilder's smoothing; needs ``period + 1`` prices."""
    _check_period(period)
    array = _as_array(prices)
    _require(array, period + 1, f"RSI({period})")
    deltas = np.diff(array)
    gains = np.where(deltas > 0, deltas, 0.0)
    losses = np.where(deltas < 0, -deltas, 0.0)
    # NaN changes must stay NaN (np.where above turns a NaN comparison into 0).
    nan_mask = np.isnan(deltas)
    gains[nan_mask] = np.nan
    losses[nan_mask] = np.nan

    avg_gain = float(np.mean(gains[:period]))
    avg_loss = float(np.mean(losses[:period]))
    for i in range(period, len(deltas)):
        avg_gain = (avg_gain * (period - 1) + float(gains[i])) / period
        avg_loss = (avg_loss * (period - 1) + float(losses[i])) / period

    if math.isnan(avg_gain) or math.isnan(avg_loss):
        return math.nan
    total = avg_gain + avg_loss
    if total == 0.0:
        return RSI_NO_MOVEMENT
    return 100.0 * avg_gain / total


def bollinger(prices: Prices, period: int = 20, num_std: float = 2.0) -> tuple[float, float, float]:
    """Bollinger bands over the last ``period`` values: ``(upper, lower, middle)``.

    The width uses the population standard deviation (``ddof=0``), as Bollinger defined it and
    as TA-Lib and the charting platforms compute it.
    """
    _check_period(period)
    if not math.isfinite(num_std) or num_std < 0:
        raise ValueError(f"num_std must be a finite number >= 0, got {num_std!r}")
    array = _as_array(prices)
    _require(array, period, f"Bollinger({period})")
    recent = array[-period:]
    middle = float(np.mean(recent))
    deviation = float(np.std(recent, ddof=0))
    return middle + num_std * deviation, middle - num_std * deviation, middle


def vwap(highs: Prices, lows: Prices, closes: Prices, volumes: Prices) -> float:
    """Volume-weighted average of the typical price over the bars given.

    Pass the current session's bars only. No volume -> NaN (see the module docstring).
    """
    high = _as_array(highs, "highs")
    low = _as_array(lows, "lows")
    close = _as_array(closes, "closes")
    volume = _as_array(volumes, "volumes")
    if not len(high) == len(low) == len(close) == len(volume):
        raise ValueError(
            "highs, lows, closes and volumes must have the same length, got "
            f"{len(high)}, {len(low)}, {len(close)}, {len(volume)}"
        )
    _require(close, 1, "VWAP")
    volume = np.where(volume > 0, volume, np.where(np.isnan(volume), np.nan, 0.0))
    total_volume = float(np.sum(volume))
    if math.isnan(total_volume):
        return math.nan
    if total_volume <= 0.0:
        return math.nan
    typical = (high + low + close) / 3.0
    return float(np.sum(typical * volume) / total_volume)
