"""MarketDataProvider: snapshot quotes and short historical requests, nothing else.

Alpha learnings enforced here (handoff section 11):

* snapshot market data only: ``snapshot=False`` raises :class:`SnapshotModeViolationError`
  in the constructor and in :meth:`MarketDataProvider.get_quote`; there is no code path to
  a standing subscription, and every snapshot is cancelled at the gateway if it times out;
* historical requests of more than one hour or more than 60 bars raise
  :class:`AlphaLearningViolationError` before anything is sent;
* a historical timeout raises :class:`BrokerTimeoutError` (ib_async's own helper would return
  an empty list); error 162 pacing is :class:`PacingViolationError`, and the
  :class:`HistoricalPacer` keeps callers inside IB's rules by waiting.

Each quote is built from a Ticker object created for that one request (never ib_async's
shared per-contract Ticker, which keeps the previous snapshot's values) and copied into an
immutable :class:`Quote`.
"""

# The interface fixes `timeout` parameters on every call (docs/dev/interfaces.md).

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from ib_async import BarDataList as IBBarDataList
from ib_async import Ticker as IBTicker

from ibkr_trader.broker.connection import IBKRConnection, RequestScope
from ibkr_trader.broker.contracts import ContractManager, require_qualified, to_ib_contract
from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    InsufficientDataError,
    SnapshotModeViolationError,
)
from ibkr_trader.broker.pacing import HistoricalPacer, HistoricalRequestKey
from ibkr_trader.clock import Clock, SystemClock
from ibkr_trader.models import ContractSpec

MAX_HISTORY_SECONDS: Final[int] = 3600
MAX_BARS: Final[int] = 60
DELAYED_TICK_TYPES: Final[frozenset[int]] = frozenset(range(66, 77)) | {88}
MARKET_DATA_TYPES: Final[dict[int, str]] = {
    1: "live",
    2: "frozen",
    3: "delayed",
    4: "delayed-frozen",
}
QUOTE_FIELDS: Final[tuple[str, ...]] = ("bid", "ask", "last", "volume", "close")

_UNIT_SECONDS: Final[dict[str, int]] = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    "month": 30 * 86400,
    "months": 30 * 86400,
    "y": 365 * 86400,
    "year": 365 * 86400,
    "years": 365 * 86400,
}
_AMOUNT_UNIT = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")


def _parse_amount(text: str, what: str) -> int:
    match = _AMOUNT_UNIT.match(text)
    if match is None:
        raise ValueError(f"cannot parse {what} {text!r} (expected e.g. '3600 S', '60 mins')")
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "M":  # IB's month
        seconds = 30 * 86400
    elif unit == "m":
        raise ValueError(f"ambiguous {what} unit 'm' in {text!r}: use 'mins' or 'M' (month)")
    else:
        seconds_per = _UNIT_SECONDS.get(unit.lower())
        if seconds_per is None:
            raise ValueError(f"unknown {what} unit {unit!r} in {text!r}")
        seconds = seconds_per
    return amount * seconds


def parse_duration_seconds(duration: str | int) -> int:
    """Seconds in a duration: an int is minutes; strings like '3600 S', '60 mins', '1 hour'."""
    if isinstance(duration, bool):
        raise ValueError("duration must be minutes (int) or a string like '3600 S'")
    seconds = duration * 60 if isinstance(duration, int) else _parse_amount(duration, "duration")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {duration!r}")
    return seconds


def bar_size_seconds(bar_size: str) -> int:
    """Seconds per bar for IB bar sizes such as '1 min', '5 mins', '1 hour'."""
    seconds = _parse_amount(bar_size, "bar size")
    if seconds <= 0:
        raise ValueError(f"bar size must be positive, got {bar_size!r}")
    return seconds


def check_history_request(duration: str | int, bar_size: str) -> tuple[int, int]:
    """(duration seconds, bar count), or AlphaLearningViolationError over 1 hour / 60 bars."""
    seconds = parse_duration_seconds(duration)
    per_bar = bar_size_seconds(bar_size)
    bars = math.ceil(seconds / per_bar)
    if seconds > MAX_HISTORY_SECONDS:
        raise AlphaLearningViolationError(
            f"historical request of {seconds}s exceeds the 1-hour limit "
            "(alpha learning: multi-hour requests time out)"
        )
    if bars > MAX_BARS:
        raise AlphaLearningViolationError(
            f"historical request of {bars} bars exceeds the 60-bar limit "
            f"({seconds}s of {bar_size!r} bars)"
        )
    return seconds, bars


def _greek(greeks: Any, name: str) -> float | None:
    """One value of ib_async's OptionComputation (None when absent, unset or NaN; ib_async
    already turns IB's unset -1 / -2 into None)."""
    value = getattr(greeks, name, None) if greeks is not None else None
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Quote:
    """One snapshot, copied out of ib_async. Missing values are None and listed."""

    symbol: str
    con_id: int
    bid: float | None
    ask: float | None
    last: float | None
    bid_size: float | None
    ask_size: float | None
    last_size: float | None
    volume: float | None
    close: float | None
    last_trade_time: datetime | None
    request_time: datetime
    receipt_time: datetime
    market_data_type: int
    missing_fields: tuple[str, ...] = ()
    # an option's model greeks (tickOptionComputation 13), None for a stock or when unset
    delta: float | None = None
    implied_vol: float | None = None

    @property
    def is_delayed(self) -> bool:
        return self.market_data_type in (3, 4)

    @property
    def is_frozen(self) -> bool:
        return self.market_data_type in (2, 4)

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One historical bar (time is the bar's start, aware UTC)."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    bar_count: int


def _price(value: Any) -> float | None:
    """IB price -> float, or None for unset (nan) and empty (-1 / <= 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number


def _size(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _new_bar_list() -> Any:
    factory: Any = IBBarDataList
    return factory()


def _bar_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValueError(f"unexpected bar time {value!r}")


class MarketDataProvider:
    """Snapshot quotes and <= 1 hour of bars, through one IBKRConnection."""

    def __init__(
        self,
        connection: IBKRConnection,
        contracts: ContractManager,
        snapshot: bool = True,
        *,
        market_data_type: int | None = None,
        clock: Clock | None = None,
        pacer: HistoricalPacer | None = None,
    ) -> None:
        if snapshot is not True:
            raise SnapshotModeViolationError(
                "MarketDataProvider only runs with snapshot=True (alpha learning: streaming "
                "subscriptions are forbidden)"
            )
        if market_data_type is not None and market_data_type not in MARKET_DATA_TYPES:
            raise ValueError(f"market_data_type must be 1..4, got {market_data_type!r}")
        self.snapshot = True
        self._conn = connection
        self._contracts = contracts
        self._clock: Clock = clock or SystemClock()
        self._pacer = pacer or HistoricalPacer()
        self._market_data_type = market_data_type
        self._mdt_session = -1

    @property
    def pacer(self) -> HistoricalPacer:
        return self._pacer

    async def _resolve(
        self, symbol_or_contract: str | ContractSpec, timeout: float
    ) -> ContractSpec:
        if isinstance(symbol_or_contract, ContractSpec):
            require_qualified(symbol_or_contract, "market data")
            return symbol_or_contract
        return await self._contracts.qualify_stock(symbol_or_contract, timeout)

    # -- quotes -------------------------------------------------------------------------------
    async def get_quote(
        self,
        symbol_or_contract: str | ContractSpec,
        timeout: float = 30.0,
        snapshot: bool = True,
    ) -> Quote:
        """A fresh snapshot quote. Leaves no subscription at the gateway."""
        if snapshot is not True:
            raise SnapshotModeViolationError(
                "get_quote(snapshot=False) is forbidden: snapshot market data only"
            )
        deadline = time.monotonic() + timeout
        spec = await self._resolve(symbol_or_contract, timeout)
        remaining = max(deadline - time.monotonic(), 0.001)
        request_time = self._clock.now()
        conn = self._conn
        seen_ticks: set[int] = set()
        sent_at: list[datetime] = []

        async def body(scope: RequestScope) -> IBTicker:
            wrapper = conn.wrapper
            if self._market_data_type is not None and self._mdt_session != conn.session:
                await scope.reserve(1)
                conn.client.reqMarketDataType(self._market_data_type)
                self._mdt_session = conn.session
            await scope.reserve(1)
            req_id = conn.next_req_id()
            contract = to_ib_contract(spec)
            ticker = IBTicker(contract=contract, defaults=wrapper.defaults)

            def on_update(updated: IBTicker) -> None:
                seen_ticks.update(int(tick.tickType) for tick in updated.ticks)

            ticker.updateEvent += on_update
            future = scope.start(req_id, contract=contract)
            wrapper.reqId2Ticker[req_id] = ticker
            scope.send_cancel(lambda: conn.client.cancelMktData(req_id))
            try:
                sent_at.append(datetime.now(UTC))
                conn.client.reqMktData(req_id, contract, "", True, False, [])
                await future
            finally:
                ticker.updateEvent -= on_update
                wrapper.reqId2Ticker.pop(req_id, None)
                wrapper.pendingTickers.discard(ticker)
            return ticker

        ticker = await conn.call(f"quote {spec.key}", remaining, body)
        return self._to_quote(spec, ticker, request_time, sent_at[0], seen_ticks)

    def _to_quote(
        self,
        spec: ContractSpec,
        ticker: IBTicker,
        request_time: datetime,
        sent_at: datetime,
        seen_ticks: set[int],
    ) -> Quote:
        fresh = ticker.time is not None and ticker.time >= sent_at
        values: dict[str, float | None] = {
            "bid": _price(ticker.bid) if fresh else None,
            "ask": _price(ticker.ask) if fresh else None,
            "last": _price(ticker.last) if fresh else None,
            "volume": _size(ticker.volume) if fresh else None,
            "close": _price(ticker.close) if fresh else None,
        }
        missing = tuple(name for name in QUOTE_FIELDS if values[name] is None)
        data_type = int(ticker.marketDataType or 1)
        if data_type in (1, 2) and seen_ticks & DELAYED_TICK_TYPES:
            data_type += 2  # delayed ticks without a marketDataType message
        last_trade = ticker.lastTimestamp if fresh else None
        if isinstance(last_trade, datetime) and last_trade.tzinfo is None:
            last_trade = last_trade.replace(tzinfo=UTC)
        return Quote(
            symbol=spec.symbol,
            con_id=spec.con_id,
            bid=values["bid"],
            ask=values["ask"],
            last=values["last"],
            bid_size=_size(ticker.bidSize) if values["bid"] is not None else None,
            ask_size=_size(ticker.askSize) if values["ask"] is not None else None,
            last_size=_size(ticker.lastSize) if values["last"] is not None else None,
            volume=values["volume"],
            close=values["close"],
            last_trade_time=last_trade.astimezone(UTC) if last_trade else None,
            request_time=request_time,
            receipt_time=self._clock.now(),
            market_data_type=data_type,
            missing_fields=missing,
            delta=_greek(ticker.modelGreeks, "delta") if fresh else None,
            implied_vol=_greek(ticker.modelGreeks, "impliedVol") if fresh else None,
        )

    # -- history ------------------------------------------------------------------------------
    async def get_historical_bars(
        self,
        symbol: str | ContractSpec,
        duration: str | int = "3600 S",
        bar_size: str = "1 min",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        timeout: float = 30.0,
    ) -> list[Bar]:
        """At most one hour / 60 bars, ending now. Never returns an empty list."""
        seconds, _bars = check_history_request(duration, bar_size)
        deadline = time.monotonic() + timeout
        spec = await self._resolve(symbol, timeout)
        duration_str = f"{seconds} S"
        key = HistoricalRequestKey(
            con_id=spec.con_id,
            exchange=spec.exchange,
            what_to_show=what_to_show.upper(),
            bar_size=bar_size,
            duration=duration_str,
            use_rth=use_rth,
        )
        remaining = deadline - time.monotonic()
        await self._pacer.acquire(key, self._pacer.now() + remaining)
        remaining = max(deadline - time.monotonic(), 0.001)
        conn = self._conn

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            req_id = conn.next_req_id()
            contract = to_ib_contract(spec)
            container: Any = _new_bar_list()
            container.reqId = req_id
            container.contract = contract
            future = scope.start(req_id, contract=contract, container=container)
            scope.send_cancel(lambda: conn.client.cancelHistoricalData(req_id))
            conn.client.reqHistoricalData(
                req_id,
                contract,
                "",
                duration_str,
                bar_size,
                what_to_show.upper(),
                use_rth,
                2,
                False,
                [],
            )
            rows: list[Any] = await future
            return list(rows)

        rows = await conn.call(f"historical bars {spec.key}", remaining, body)
        if not rows:
            raise InsufficientDataError(
                f"the gateway returned no bars for {spec.key} ({duration_str}, {bar_size})"
            )
        return [
            Bar(
                time=_bar_time(row.date),
                open=float(row.open),
                high=float(row.high),
                low=float(row.low),
                close=float(row.close),
                volume=float(row.volume),
                wap=float(row.average),
                bar_count=int(row.barCount),
            )
            for row in rows
        ]


__all__ = [
    "Bar",
    "MarketDataProvider",
    "Quote",
    "bar_size_seconds",
    "check_history_request",
    "parse_duration_seconds",
]
