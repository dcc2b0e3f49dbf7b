"""What a strategy sees: MarketData, IndicatorSet, DataQuality, and the pure steps behind them.

``MarketDataPipeline`` (``market_data_pipeline.py``) fetches a quote and bars through the broker
and calls the two pure functions here:

- :func:`compute_indicators` turns one-minute bars into an :class:`IndicatorSet` (EMA 8 and 21,
  RSI 14, Bollinger 20 / 2σ, session VWAP), with the standard definitions of
  :mod:`ibkr_trader.integrations.indicators`. Fewer than 21 bars -> ``InsufficientDataError``.
- :func:`assess_quality` grades the quote and the indicators into a :class:`DataQuality`.

Nothing here does I/O or imports ib_async: the quote and the bars are read through small
protocols (:class:`QuoteLike`, :class:`BarLike`) that ``broker.market_data.Quote`` / ``Bar`` and
ib_async's ``BarData`` all satisfy, so strategies may import this module freely.

Data-quality rules (handoff 3.2 and 8.2, with the fixes of issue 7):

- **Staleness** = ``server_time - quote.last_trade_time``, where ``server_time`` is the
  *gateway's* clock (``reqCurrentTime``), not the local one, so a skewed local clock cannot
  make old data look fresh. Stale when strictly more than ``threshold_s`` (300 s). A quote
  without a last-trade time is stale with ``staleness_seconds = inf``. A last-trade time ahead
  of the server clock counts as 0 s.
- **Missing fields**: ``bid``, ``ask``, ``volume`` (the handoff's) and also ``last`` (the
  strategies compare it with the indicators) when None, NaN or <= 0; every indicator that is NaN
  under its field name (``ema_fast`` ... ``bollinger_middle``); and ``"delayed"`` when the quote
  is delayed data (IB market data type 3 or 4; ``is_delayed`` is set too).
- **Score** as the handoff: 1.0, -0.5 when stale, -0.1 per missing field, floored at 0.0.
- ``missing_fields`` is a tuple (the types are frozen); compare with ``("bid", "ask")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ibkr_trader.clock import ny_date
from ibkr_trader.integrations.errors import InsufficientDataError
from ibkr_trader.integrations.indicators import bollinger, ema, rsi, vwap
from ibkr_trader.models import QuoteCheck

__all__ = [
    "BB_NUM_STD",
    "BB_PERIOD",
    "DEFAULT_STALENESS_THRESHOLD_S",
    "DELAYED_MARKET_DATA_TYPES",
    "EMA_FAST_PERIOD",
    "EMA_SLOW_PERIOD",
    "MIN_BARS",
    "RSI_PERIOD",
    "BarLike",
    "DataQuality",
    "IndicatorSet",
    "InsufficientDataError",
    "MarketData",
    "QuoteLike",
    "assess_quality",
    "compute_indicators",
    "session_bars",
]

EMA_FAST_PERIOD = 8
EMA_SLOW_PERIOD = 21
RSI_PERIOD = 14
BB_PERIOD = 20
BB_NUM_STD = 2.0
MIN_BARS = 21  # the slow EMA's period (handoff 3.2)
DEFAULT_STALENESS_THRESHOLD_S = 300.0
DELAYED_MARKET_DATA_TYPES = frozenset({3, 4})  # IB: 3 delayed, 4 delayed-frozen

STALE_PENALTY = 0.5
MISSING_FIELD_PENALTY = 0.1

INDICATOR_FIELDS = (
    "ema_fast",
    "ema_slow",
    "rsi",
    "vwap",
    "bollinger_upper",
    "bollinger_lower",
    "bollinger_middle",
)


class BarLike(Protocol):
    """A price bar: what :func:`compute_indicators` reads (``time`` is optional)."""

    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


class QuoteLike(Protocol):
    """The parts of a quote (``broker.market_data.Quote``) that :func:`assess_quality` reads."""

    @property
    def bid(self) -> float | None: ...
    @property
    def ask(self) -> float | None: ...
    @property
    def last(self) -> float | None: ...
    @property
    def volume(self) -> float | None: ...
    @property
    def last_trade_time(self) -> datetime | None: ...
    @property
    def market_data_type(self) -> int: ...


@dataclass(frozen=True, slots=True)
class IndicatorSet:
    """Indicators computed from bars (handoff 3.2), with how many bars went into them."""

    ema_fast: float  # EMA 8 of the closes
    ema_slow: float  # EMA 21 of the closes
    rsi: float  # RSI 14, Wilder
    vwap: float  # typical-price VWAP over the last session's bars in hand; NaN without volume
    bollinger_upper: float  # 20-period SMA + 2 population σ
    bollinger_lower: float
    bollinger_middle: float  # 20-period SMA
    bars_used: int = 0
    vwap_bars: int = 0  # the bars of the last bar's New York session
    last_bar_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Data-quality assessment (handoff 3.2) plus what the risk gate needs to know."""

    is_stale: bool
    staleness_seconds: float
    missing_fields: tuple[str, ...]
    score: float
    is_delayed: bool = False
    market_data_type: int = 1
    server_time: datetime | None = None
    last_trade_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class MarketData:
    """Packaged market data for strategies (handoff 3.2 / 5.2), frozen.

    Prices are floats; a price the gateway did not send is NaN (and named in
    ``missing_fields``). ``timestamp`` is the gateway's time of the assessment by default.
    """

    symbol: str
    timestamp: datetime  # aware UTC
    last_price: float
    bid: float
    ask: float
    volume: float  # the handoff's int; float so that "not sent" can be NaN
    ema_fast: float
    ema_slow: float
    rsi: float
    vwap: float
    bollinger_upper: float
    bollinger_lower: float
    bollinger_middle: float
    is_stale: bool = False
    staleness_seconds: float = 0.0
    missing_fields: tuple[str, ...] = ()
    data_quality_score: float = 1.0
    is_delayed: bool = False
    market_data_type: int = 1
    server_time: datetime | None = None
    last_trade_time: datetime | None = None
    bars_used: int = 0
    con_id: int = 0

    @classmethod
    def from_parts(
        cls,
        symbol: str,
        quote: QuoteLike,
        indicators: IndicatorSet,
        quality: DataQuality,
        *,
        timestamp: datetime | None = None,
        con_id: int = 0,
    ) -> MarketData:
        """Package a quote, its indicators and its assessment (the pipeline's step 5)."""
        when = timestamp or quality.server_time
        if when is None:
            raise ValueError("MarketData needs a timestamp (or a quality with a server_time)")
        if when.tzinfo is None:
            raise ValueError("MarketData.timestamp must be timezone-aware")
        return cls(
            symbol=symbol,
            timestamp=when.astimezone(UTC),
            last_price=_as_float(quote.last),
            bid=_as_float(quote.bid),
            ask=_as_float(quote.ask),
            volume=_as_float(quote.volume),
            ema_fast=indicators.ema_fast,
            ema_slow=indicators.ema_slow,
            rsi=indicators.rsi,
            vwap=indicators.vwap,
            bollinger_upper=indicators.bollinger_upper,
            bollinger_lower=indicators.bollinger_lower,
            bollinger_middle=indicators.bollinger_middle,
            is_stale=quality.is_stale,
            staleness_seconds=quality.staleness_seconds,
            missing_fields=quality.missing_fields,
            data_quality_score=quality.score,
            is_delayed=quality.is_delayed,
            market_data_type=quality.market_data_type,
            server_time=quality.server_time,
            last_trade_time=quality.last_trade_time,
            bars_used=indicators.bars_used,
            con_id=con_id,
        )

    def to_quote_check(self) -> QuoteCheck:
        """What the risk manager's data gate reads about the underlying's data."""
        return QuoteCheck(
            bid=_or_none(self.bid),
            ask=_or_none(self.ask),
            last=_or_none(self.last_price),
            is_stale=self.is_stale,
            is_delayed=self.is_delayed,
            missing_fields=self.missing_fields,
            as_of=self.last_trade_time,
        )


def _as_float(value: float | None) -> float:
    if value is None:
        return math.nan
    return float(value)


def _or_none(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def _is_missing(value: float | None) -> bool:
    return value is None or math.isnan(value) or value <= 0


def _bar_time(bar: object) -> datetime | None:
    for name in ("time", "date"):  # broker.Bar has time; ib_async BarData has date
        value = getattr(bar, name, None)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
    return None


def session_bars(bars: Sequence[BarLike]) -> Sequence[BarLike]:
    """The trailing bars that share the last bar's New York date (the session in hand).

    Bars without an aware ``time`` (or ib_async's ``date``) are all taken as one session.
    """
    if not bars:
        return bars
    last_time = _bar_time(bars[-1])
    if last_time is None:
        return bars
    session = ny_date(last_time)
    start = len(bars) - 1
    while start > 0:
        previous = _bar_time(bars[start - 1])
        if previous is None or ny_date(previous) != session:
            break
        start -= 1
    return bars[start:]


def compute_indicators(
    bars: Sequence[BarLike], vwap_bars: Sequence[BarLike] | None = None
) -> IndicatorSet:
    """All indicators from bars in time order. Fewer than 21 bars -> InsufficientDataError.

    EMA, RSI and Bollinger use every bar given (a chart's indicators run across sessions);
    VWAP uses only the bars of the last bar's New York session, as a session VWAP does: from
    ``vwap_bars`` when given (the session's bars accumulated across cycles and backfilled at
    start-up, issue 14 item 12), else from ``bars``.
    """
    if len(bars) < MIN_BARS:
        raise InsufficientDataError(
            f"Need at least {MIN_BARS} bars for indicators, got {len(bars)}"
        )
    closes = [float(bar.close) for bar in bars]
    session = session_bars(vwap_bars if vwap_bars else bars)
    upper, lower, middle = bollinger(closes, BB_PERIOD, BB_NUM_STD)
    return IndicatorSet(
        ema_fast=ema(closes, EMA_FAST_PERIOD),
        ema_slow=ema(closes, EMA_SLOW_PERIOD),
        rsi=rsi(closes, RSI_PERIOD),
        vwap=vwap(
            [float(bar.high) for bar in session],
            [float(bar.low) for bar in session],
            [float(bar.close) for bar in session],
            [float(bar.volume) for bar in session],
        ),
        bollinger_upper=upper,
        bollinger_lower=lower,
        bollinger_middle=middle,
        bars_used=len(bars),
        vwap_bars=len(session),
        last_bar_time=_bar_time(bars[-1]),
    )


def assess_quality(
    quote: QuoteLike,
    indicators: IndicatorSet,
    server_time: datetime,
    threshold_s: float = DEFAULT_STALENESS_THRESHOLD_S,
) -> DataQuality:
    """Grade a quote and its indicators against the gateway's clock (see module docstring)."""
    if server_time.tzinfo is None:
        raise ValueError("server_time must be timezone-aware (the gateway's clock)")
    last_trade = quote.last_trade_time
    if last_trade is not None and last_trade.tzinfo is None:
        raise ValueError("quote.last_trade_time must be timezone-aware")

    if last_trade is None:
        staleness = math.inf
    else:
        staleness = max(0.0, (server_time - last_trade).total_seconds())
    is_stale = staleness > threshold_s

    missing: list[str] = [
        name
        for name, value in (
            ("bid", quote.bid),
            ("ask", quote.ask),
            ("last", quote.last),
            ("volume", quote.volume),
        )
        if _is_missing(value)
    ]
    missing.extend(name for name in INDICATOR_FIELDS if math.isnan(getattr(indicators, name)))
    is_delayed = quote.market_data_type in DELAYED_MARKET_DATA_TYPES
    if is_delayed:
        missing.append("delayed")

    score = 1.0
    if is_stale:
        score -= STALE_PENALTY
    score -= MISSING_FIELD_PENALTY * len(missing)
    score = round(max(0.0, score), 10)

    return DataQuality(
        is_stale=is_stale,
        staleness_seconds=staleness,
        missing_fields=tuple(missing),
        score=score,
        is_delayed=is_delayed,
        market_data_type=quote.market_data_type,
        server_time=server_time.astimezone(UTC),
        last_trade_time=last_trade.astimezone(UTC) if last_trade is not None else None,
    )
