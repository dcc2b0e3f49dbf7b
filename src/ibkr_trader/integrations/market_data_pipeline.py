"""MarketDataPipeline: fetch, calculate and package market data for strategies (handoff 3.2).

Flow of :meth:`MarketDataPipeline.fetch_market_data`, all under ONE deadline (``timeout``):

1. a snapshot quote (``snapshot=True`` passed explicitly: defense in depth; the provider refuses
   anything else), the last hour of 1-minute RTH TRADES bars, and the gateway's clock are
   requested concurrently;
2. the indicators are computed by the pure functions of
   :mod:`~ibkr_trader.integrations.market_data_types` (standard definitions);
3. data quality is judged against the *gateway's* clock (staleness > 300 s);
4. everything is packaged into a frozen :class:`MarketData`.

Bars are cached per symbol for ``bars_max_age_seconds`` (15 s by default): one-minute bars
change once a minute, and IB forbids an identical historical request within 15 s (pacing
rule), so a second fetch inside that window reuses the bars instead of waiting on the pacer.
The quote is always fresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    BrokerError,
    BrokerTimeoutError,
)
from ibkr_trader.broker.market_data import Bar, Quote
from ibkr_trader.clock import Clock, ny_date
from ibkr_trader.integrations.market_data_types import (
    DEFAULT_STALENESS_THRESHOLD_S,
    DataQuality,
    IndicatorSet,
    MarketData,
    assess_quality,
    compute_indicators,
)
from ibkr_trader.logging import get_logger
from ibkr_trader.models import ContractSpec

__all__ = [
    "DataQuality",
    "IndicatorSet",
    "MarketData",
    "MarketDataPipeline",
    "MarketDataSource",
    "ServerClock",
]

MAX_HISTORY_MINUTES = 60  # alpha learning: never more than one hour of bars
_log = get_logger("ibkr_trader.integrations.pipeline")


class MarketDataSource(Protocol):
    """What the pipeline needs from ``broker.market_data.MarketDataProvider``."""

    async def get_quote(
        self, symbol_or_contract: str | ContractSpec, timeout: float = 30.0, snapshot: bool = True
    ) -> Quote: ...

    async def get_historical_bars(
        self,
        symbol: str | ContractSpec,
        duration: str | int = "3600 S",
        bar_size: str = "1 min",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        timeout: float = 30.0,
        end: datetime | None = None,
    ) -> list[Bar]: ...


class ServerClock(Protocol):
    """The gateway's clock (``IBKRConnection.server_time``)."""

    async def server_time(self, timeout: float | None = None) -> datetime: ...


@dataclass(frozen=True, slots=True)
class _CachedBars:
    bars: tuple[Bar, ...]
    fetched_at: float  # time.monotonic()


class MarketDataPipeline:
    """Fetches, calculates and packages market data for strategies."""

    def __init__(
        self,
        market_data_provider: MarketDataSource,
        server_clock: ServerClock,
        staleness_threshold_seconds: float = DEFAULT_STALENESS_THRESHOLD_S,
        *,
        bars_max_age_seconds: float = 15.0,
        fallback_clock: Clock | None = None,
    ) -> None:
        if staleness_threshold_seconds <= 0:
            raise ValueError("staleness_threshold_seconds must be positive")
        self._provider = market_data_provider
        self._server_clock = server_clock
        self._fallback_clock = fallback_clock
        self._session: dict[str, dict[datetime, Bar]] = {}  # the session's 1-min bars
        self._backfilled: dict[str, datetime] = {}  # how far the session backfill got
        self._staleness_threshold = float(staleness_threshold_seconds)
        self._bars_max_age = float(bars_max_age_seconds)
        self._bars_cache: dict[str, _CachedBars] = {}

    @property
    def staleness_threshold_seconds(self) -> float:
        return self._staleness_threshold

    def clear_cache(self) -> None:
        """Forget cached bars (on disconnect)."""
        self._bars_cache.clear()

    async def fetch_market_data(self, symbol: str, timeout: float = 30.0) -> MarketData:
        """Quote + last hour of RTH 1-min bars + indicators + quality, under one deadline.

        Raises the broker's typed errors (timeout, qualification, pacing, market data) and
        ``InsufficientDataError`` for fewer than 21 bars.
        """
        deadline = time.monotonic() + timeout

        async def bars() -> Sequence[Bar]:
            return await self._bars(symbol, deadline)

        try:
            async with asyncio.timeout(timeout):
                quote, bar_list, server_now = await asyncio.gather(
                    self._provider.get_quote(symbol, timeout=timeout, snapshot=True),
                    bars(),
                    self._server_now(timeout),
                )
        except TimeoutError as exc:
            # the outer deadline raises a bare TimeoutError: always the broker's typed one
            if isinstance(exc, BrokerTimeoutError):
                raise
            raise BrokerTimeoutError(
                f"market data for {symbol} not complete within {timeout:g}s"
            ) from None
        indicators = compute_indicators(bar_list, vwap_bars=self._accumulate(symbol, bar_list))
        quality = assess_quality(quote, indicators, server_now, self._staleness_threshold)
        data = MarketData.from_parts(symbol, quote, indicators, quality, con_id=quote.con_id)
        _log.debug(
            "market_data",
            symbol=symbol,
            last=data.last_price,
            stale=data.is_stale,
            score=data.data_quality_score,
            missing=list(data.missing_fields),
        )
        return data

    async def fetch_quote(
        self, contract: str | ContractSpec, timeout: float = 30.0, server_check: bool = True
    ) -> tuple[Quote, DataQuality | None]:
        """A fresh snapshot of one instrument (an option, say) and, if asked, its staleness."""
        try:
            async with asyncio.timeout(timeout):
                if not server_check:
                    return await self._provider.get_quote(contract, timeout, snapshot=True), None
                quote, server_now = await asyncio.gather(
                    self._provider.get_quote(contract, timeout, snapshot=True),
                    self._server_now(timeout),
                )
        except TimeoutError as exc:
            if isinstance(exc, BrokerTimeoutError):
                raise
            name = contract.key if isinstance(contract, ContractSpec) else contract
            raise BrokerTimeoutError(f"quote for {name} not complete within {timeout:g}s") from None
        nan_indicators = IndicatorSet(*(float("nan"),) * 7)
        quality = assess_quality(quote, nan_indicators, server_now, self._staleness_threshold)
        return quote, quality

    async def _server_now(self, timeout: float) -> datetime:
        """The gateway's clock for the staleness check; if that one call fails, our own
        (injected) clock: a failed clock call must not make the data unusable (issue 14,
        item 2). Without a fallback clock the failure is raised."""
        if self._fallback_clock is None:
            return await self._server_clock.server_time(timeout)
        try:
            inner = min(timeout * 0.5, 2.0)  # leave the quote its time under the same deadline
            return await asyncio.wait_for(self._server_clock.server_time(inner), inner)
        except (BrokerError, TimeoutError) as exc:
            _log.warning("server_clock_failed_using_local", error=str(exc))
            return self._fallback_clock.now()

    async def fetch_historical_data(
        self,
        symbol: str,
        duration_minutes: int = MAX_HISTORY_MINUTES,
        bar_size: str = "1 min",
        timeout: float = 30.0,
    ) -> list[Bar]:
        """At most one hour of RTH bars (alpha learning; checked here and in the provider)."""
        check_history_minutes(duration_minutes)
        return await self._provider.get_historical_bars(
            symbol,
            duration=int(duration_minutes),  # the provider reads an int as minutes
            bar_size=bar_size,
            what_to_show="TRADES",
            use_rth=True,
            timeout=timeout,
        )

    def _accumulate(self, symbol: str, bars: Sequence[Bar]) -> tuple[Bar, ...]:
        """Merge bars into the symbol's session store (by bar time; a later copy of a bar
        replaces the earlier one); only the latest New York session is kept."""
        store = self._session.setdefault(symbol, {})
        for bar in bars:
            store[bar.time] = bar
        if not store:
            return ()
        day = ny_date(max(store))
        for stamp in [t for t in store if ny_date(t) != day]:
            del store[stamp]
        return tuple(store[t] for t in sorted(store))

    def session_bar_count(self, symbol: str) -> int:
        return len(self._session.get(symbol, {}))

    async def backfill_session(
        self,
        symbol: str,
        session_open: datetime,
        now: datetime,
        timeout: float = 30.0,
        *,
        max_requests: int = 3,
    ) -> bool:
        """Backfill the session before the last hour (which every fetch brings) in one-hour
        requests (the alpha learning's cap is per request), oldest first, at most
        ``max_requests`` per call so that with the cycle's own request they stay inside IB's
        pacing (5 requests per contract in 2 s; the pacer enforces it). Resumes where it
        stopped; True once the session is covered."""
        deadline = time.monotonic() + timeout
        hour = timedelta(minutes=MAX_HISTORY_MINUTES)
        covered = self._backfilled.get(symbol)
        if covered is None or covered < session_open or covered > now:
            covered = session_open
        for _ in range(max(1, max_requests)):
            if covered >= now - hour:
                break  # the last hour comes with every fetch
            end = covered + hour
            bars = await self._provider.get_historical_bars(
                symbol,
                duration=MAX_HISTORY_MINUTES,
                bar_size="1 min",
                what_to_show="TRADES",
                use_rth=True,
                timeout=max(deadline - time.monotonic(), 0.001),
                end=end,
            )
            self._accumulate(symbol, bars)
            covered = end
            self._backfilled[symbol] = covered
        done = covered >= now - hour
        self._backfilled[symbol] = covered
        return done

    async def _bars(self, symbol: str, deadline: float) -> Sequence[Bar]:
        cached = self._bars_cache.get(symbol)
        now = time.monotonic()
        if cached is not None and now - cached.fetched_at < self._bars_max_age:
            return cached.bars
        bars = await self._provider.get_historical_bars(
            symbol,
            duration=MAX_HISTORY_MINUTES,  # minutes
            bar_size="1 min",
            what_to_show="TRADES",
            use_rth=True,  # alpha learning: RTH only
            timeout=max(deadline - now, 0.001),
        )
        self._bars_cache[symbol] = _CachedBars(tuple(bars), time.monotonic())
        return self._bars_cache[symbol].bars


def check_history_minutes(duration_minutes: int) -> None:
    """Alpha learning: more than 60 minutes of history -> AlphaLearningViolationError."""
    if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int):
        raise AlphaLearningViolationError(
            f"duration_minutes must be a whole number of minutes, got {duration_minutes!r}"
        )
    if duration_minutes <= 0:
        raise AlphaLearningViolationError(
            f"duration_minutes must be positive, got {duration_minutes}"
        )
    if duration_minutes > MAX_HISTORY_MINUTES:
        raise AlphaLearningViolationError(
            f"Historical data request exceeds 1-hour limit: {duration_minutes} minutes. "
            "Alpha learning: multi-hour requests cause 100% timeout."
        )
