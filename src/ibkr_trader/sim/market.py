"""The simulated market: deterministic prices, quotes and 1-minute bars (pure: no I/O).

Price path of an underlying (a function of seed, symbol and time only, nothing stored):

* A *daily level*: the log-deviation from the symbol's reference price follows a
  mean-reverting AR(1) walk over UTC days (phi 0.98, daily step ``0.8 vol / sqrt(365)``), so
  prices stay near the reference prices for any date. Days are drawn in seeded blocks of 256;
  a block's values are computed from a 512-day warm-up, so any date costs one small cached
  computation.
* *Within a day*: a seeded Brownian bridge over the day's 1440 minutes joins the level of one
  UTC midnight to the next. Prices move once per minute: every price shown during minute ``m``
  (quote last, the bar's close) is the close of minute ``m``; the bar's open is the previous
  minute's close. High and low add a seeded excursion. Both are cached per (symbol, UTC day).
* The market runs 24/7 underneath; in calendar mode a closed market simply shows the last
  session's final minute (weekend and overnight moves appear as gaps at the next open).

Options are priced by Black-Scholes (flat volatility per symbol, rate ``RATE``) on the
underlying's price of the same minute, with the time to 16:00 New York on the expiry day
measured from the end of that minute, floored at intrinsic value + one tick. Every price is on
the 0.01 tick: last rounds to the nearest tick, bid rounds down and ask up, so
``bid <= last <= ask`` always holds.

Volumes: stocks trade ``daily_volume`` shares per regular session in a U shape (3% of that
rate in extended hours, 0.5% overnight); options a few contracts a minute, more near the
money. An option quote's volume is an estimate (rate x minutes of session elapsed), not the
exact sum of its bars.

Test hooks: :meth:`MarketModel.set_override` pins an underlying's price and
:meth:`MarketModel.shock` multiplies it, both from the minute the market currently shows
(the current minute, or the last session's final minute when the calendar market is closed)
onwards; options reprice from the adjusted underlying.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from ibkr_trader.clock import Clock
from ibkr_trader.sim.clock import NY, MarketCalendar, Session
from ibkr_trader.sim.contracts import MIN_TICK, ContractCatalog, ContractInfo, Underlying

RATE: Final = 0.04
PHI: Final = 0.98
LEVEL_SCALE: Final = 0.8  # daily-level step as a fraction of vol / sqrt(365)
_BLOCK: Final = 256
_WARMUP_BLOCKS: Final = 2
_MIN_PER_DAY: Final = 1440
_YEAR_SECONDS: Final = 365.0 * 86_400.0
_MASK64: Final = (1 << 64) - 1
_CACHE_LIMIT: Final = 4096

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SimQuote:
    """A top-of-book snapshot. ``close`` is the previous session's close; ``open``, ``high``,
    ``low`` and ``volume`` are the current (or, when closed, the last) session's so far."""

    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: float
    open: float
    high: float
    low: float
    last_trade_time: datetime

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class SimBar:
    """One 1-minute TRADES bar; ``time`` is the bar's start (aware UTC)."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    bar_count: int


@dataclass(frozen=True, slots=True)
class OptionModel:
    """What tickOptionComputation (model, tick 13) carries: IB's per-share greeks."""

    implied_vol: float
    delta: float
    opt_price: float
    pv_dividend: float
    gamma: float
    vega: float  # per 1 vol point (0.01)
    theta: float  # per calendar day
    und_price: float


# -- small pure helpers ---------------------------------------------------------------------


def round_tick(x: float, tick: float = MIN_TICK) -> float:
    """``x`` rounded to the nearest tick."""
    return round(round(x / tick) * tick, 2)


def floor_tick(x: float, tick: float = MIN_TICK) -> float:
    return round(math.floor(x / tick + 1e-9) * tick, 2)


def ceil_tick(x: float, tick: float = MIN_TICK) -> float:
    return round(math.ceil(x / tick - 1e-9) * tick, 2)


def _mix(*values: int) -> int:
    """A 64-bit splitmix hash of some integers (stable across runs, unlike ``hash``)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 29
    return h


def _unit(h: int) -> float:
    """A uniform number in [0, 1) from a hash."""
    return (h >> 11) / float(1 << 53)


def _unit_vec(seed: int, key: int, minutes: IntArray) -> FloatArray:
    """Uniform numbers in [0, 1), one per minute, from a vectorised splitmix hash."""
    with np.errstate(over="ignore"):
        h = minutes.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= np.uint64(_mix(seed, key))
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    result: FloatArray = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return result


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: float, years: float, vol: float, call: bool) -> float:
    """Black-Scholes price of a European option (rate ``RATE``, no dividends)."""
    if years <= 0.0 or vol <= 0.0 or spot <= 0.0:
        return max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / sq
    d2 = d1 - sq
    disc = strike * math.exp(-RATE * years)
    if call:
        return spot * norm_cdf(d1) - disc * norm_cdf(d2)
    return disc * norm_cdf(-d2) - spot * norm_cdf(-d1)


def bs_greeks(
    spot: float, strike: float, years: float, vol: float, call: bool
) -> tuple[float, float, float, float]:
    """Black-Scholes (delta, gamma, vega per vol point, theta per calendar day), per share."""
    years = max(years, 1e-9)
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / sq
    d2 = d1 - sq
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    disc = strike * math.exp(-RATE * years)
    delta = norm_cdf(d1) if call else norm_cdf(d1) - 1.0
    carry = RATE * disc * (norm_cdf(d2) if call else -norm_cdf(-d2))
    theta = (-spot * pdf * vol / (2.0 * math.sqrt(years)) - carry) / 365.0
    return delta, pdf / (spot * sq), spot * pdf * math.sqrt(years) / 100.0, theta


def implied_vol(price: float, spot: float, strike: float, years: float, call: bool) -> float | None:
    """The Black-Scholes volatility that prices ``price`` (bisection), None when no volatility
    does (at or below intrinsic value, or above the spot / discounted strike bound)."""
    if years <= 0.0 or price <= 0.0 or spot <= 0.0:
        return None
    lo, hi = 1e-4, 5.0
    if (
        not black_scholes(spot, strike, years, lo, call)
        < price
        < black_scholes(spot, strike, years, hi, call)
    ):
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if black_scholes(spot, strike, years, mid, call) < price:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def option_theo(spot: float, strike: float, years: float, vol: float, call: bool) -> float:
    """The model price: Black-Scholes floored at intrinsic value + one tick."""
    intrinsic = max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    return max(black_scholes(spot, strike, years, vol, call), intrinsic + MIN_TICK)


def _erf_vec(x: FloatArray) -> FloatArray:
    """erf for arrays (Abramowitz-Stegun 7.1.26, absolute error below 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: FloatArray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _theo_vec(
    spot: FloatArray, strike: float, years: FloatArray, vol: float, call: bool
) -> FloatArray:
    """:func:`option_theo` over arrays (approximate erf: used for bar highs and lows only)."""
    intrinsic = np.maximum(spot - strike, 0.0) if call else np.maximum(strike - spot, 0.0)
    live = years > 0.0
    t = np.where(live, years, 1.0)
    sq = vol * np.sqrt(t)
    d1 = (np.log(spot / strike) + (RATE + 0.5 * vol * vol) * t) / sq
    d2 = d1 - sq
    disc = strike * np.exp(-RATE * t)
    n1 = 0.5 * (1.0 + _erf_vec(d1 / math.sqrt(2.0)))
    n2 = 0.5 * (1.0 + _erf_vec(d2 / math.sqrt(2.0)))
    bs = spot * n1 - disc * n2 if call else disc * (1.0 - n2) - spot * (1.0 - n1)
    result: FloatArray = np.maximum(np.where(live, bs, intrinsic), intrinsic + MIN_TICK)
    return result


def option_spread(theo: float) -> float:
    """Quoted width of an option: 2 cents, widening 1% of the price, at most 60 cents."""
    return min(0.60, 0.02 + 0.01 * theo)


@dataclass(frozen=True, slots=True)
class _Day:
    """One UTC day of an underlying's 1-minute path (unadjusted, unrounded)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray
    cum_volume: IntArray  # cum_volume[i] = volume of minutes [0, i)


@dataclass(frozen=True, slots=True)
class _Event:
    from_minute: int
    kind: str  # "override" | "shock"
    value: float


@dataclass(frozen=True, slots=True)
class _Profile:
    """An underlying's session so far, minute by minute (running high/low/volume)."""

    first_minute: int
    open: float
    high: list[float]
    low: list[float]
    volume: list[int]
    prev_close: float


@dataclass(frozen=True, slots=True)
class _Series:
    """Adjusted underlying OHLCV for a run of consecutive minutes."""

    first_minute: int
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray


def _volume_shape(offset_minutes: int) -> FloatArray:
    """Relative volume per UTC minute of a day whose New York offset is ``offset_minutes``."""
    ny_min = (np.arange(_MIN_PER_DAY) + offset_minutes) % _MIN_PER_DAY
    shape = np.full(_MIN_PER_DAY, 0.005)
    ext = ((ny_min >= 240) & (ny_min < 570)) | ((ny_min >= 960) & (ny_min < 1200))
    shape[ext] = 0.03
    rth = (ny_min >= 570) & (ny_min < 960)
    u = (ny_min[rth] - 765.0) / 195.0
    shape[rth] = (1.0 + 1.5 * u * u) / 1.5
    return shape


class MarketModel:
    """Deterministic quotes and bars for every contract of a :class:`ContractCatalog`."""

    def __init__(
        self,
        catalog: ContractCatalog,
        clock: Clock,
        calendar: MarketCalendar | None = None,
        seed: int = 7,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        self.calendar = calendar if calendar is not None else catalog.calendar
        self.seed = seed
        self._seed_key = seed & _MASK64
        self._sym_ids = {u.symbol: zlib.crc32(u.symbol.encode()) for u in catalog.underlyings()}
        self._levels: dict[tuple[str, int], FloatArray] = {}
        self._days: dict[tuple[str, int], _Day] = {}
        self._events: dict[str, list[_Event]] = {}
        self._quotes: dict[tuple[int, int, bool], SimQuote] = {}
        self._shapes: dict[int, FloatArray] = {}
        self._expiry_cache: dict[str, float] = {}
        self._profiles: dict[tuple[str, int], _Profile] = {}

    # -- the path ---------------------------------------------------------------------------

    def _level_block(self, u: Underlying, block: int) -> FloatArray:
        """Daily log-levels of days [block*256, (block+1)*256) (AR(1) with a warm-up)."""
        key = (u.symbol, block)
        found = self._levels.get(key)
        if found is not None:
            return found
        sigma = LEVEL_SCALE * u.volatility / math.sqrt(365.0)
        sym = self._sym_ids[u.symbol]
        eps = np.concatenate(
            [
                np.random.default_rng([self._seed_key, sym, b + (1 << 20), 1]).standard_normal(
                    _BLOCK
                )
                for b in range(block - _WARMUP_BLOCKS, block + 1)
            ]
        )
        x = 0.0
        out = np.empty(eps.size)
        for i, e in enumerate(eps * sigma):
            x = PHI * x + e
            out[i] = x
        levels = out[-_BLOCK:].copy()
        if len(self._levels) > _CACHE_LIMIT:
            self._levels.clear()
        self._levels[key] = levels
        return levels

    def _level(self, u: Underlying, day: int) -> float:
        block, i = divmod(day, _BLOCK)
        return float(self._level_block(u, block)[i])

    def _shape(self, day: int) -> FloatArray:
        noon = datetime.fromtimestamp(day * 86_400 + 43_200, UTC).astimezone(NY)
        offset = noon.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        found = self._shapes.get(minutes)
        if found is None:
            found = _volume_shape(minutes)
            self._shapes[minutes] = found
        return found

    def _day(self, u: Underlying, day: int) -> _Day:
        key = (u.symbol, day)
        found = self._days.get(key)
        if found is not None:
            return found
        rng = np.random.default_rng([self._seed_key, self._sym_ids[u.symbol], day + (1 << 20), 2])
        sigma_day = u.volatility / math.sqrt(365.0)
        s = sigma_day / math.sqrt(_MIN_PER_DAY)
        steps = rng.standard_normal(_MIN_PER_DAY) * s
        walk = np.concatenate([[0.0], np.cumsum(steps)])
        frac = np.arange(_MIN_PER_DAY + 1) / _MIN_PER_DAY
        x0, x1 = self._level(u, day), self._level(u, day + 1)
        logp = math.log(u.ref_price) + x0 + frac * (x1 - x0) + walk - frac * walk[-1]
        p = np.exp(logp)
        open_, close = p[:-1], p[1:]
        up = np.abs(rng.standard_normal(_MIN_PER_DAY)) * s * 0.6
        down = np.abs(rng.standard_normal(_MIN_PER_DAY)) * s * 0.6
        high = np.maximum(open_, close) * np.exp(up)
        low = np.minimum(open_, close) * np.exp(-down)
        per_minute = u.daily_volume / 390.0
        noise = np.exp(rng.standard_normal(_MIN_PER_DAY) * 0.35 - 0.06)
        volume = np.maximum(1, np.rint(per_minute * self._shape(day) * noise)).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(volume)]).astype(np.int64)
        result = _Day(open_, high, low, close, volume, cum)
        if len(self._days) > _CACHE_LIMIT:
            self._days.clear()
        self._days[key] = result
        return result

    def _adjust_scalar(self, symbol: str, minute: int, price: float) -> float:
        for ev in self._events.get(symbol, ()):
            if ev.from_minute <= minute:
                price = ev.value if ev.kind == "override" else price * ev.value
        return price

    def _close(self, u: Underlying, minute: int) -> float:
        """The adjusted, unrounded underlying price shown during ``minute``."""
        day, i = divmod(minute, _MIN_PER_DAY)
        return self._adjust_scalar(u.symbol, minute, float(self._day(u, day).close[i]))

    def _series(self, u: Underlying, first: int, end: int) -> _Series:
        """Adjusted OHLCV of minutes [first, end)."""
        parts: list[tuple[_Day, int, int]] = []
        m = first
        while m < end:
            day, i = divmod(m, _MIN_PER_DAY)
            j = min(_MIN_PER_DAY, i + (end - m))
            parts.append((self._day(u, day), i, j))
            m += j - i
        o = np.concatenate([d.open[i:j] for d, i, j in parts])
        h = np.concatenate([d.high[i:j] for d, i, j in parts])
        lo = np.concatenate([d.low[i:j] for d, i, j in parts])
        c = np.concatenate([d.close[i:j] for d, i, j in parts])
        v = np.concatenate([d.volume[i:j] for d, i, j in parts])
        events = self._events.get(u.symbol)
        if events:
            o, h, lo, c = o.copy(), h.copy(), lo.copy(), c.copy()
            for ev in events:
                k = max(0, ev.from_minute - first)
                if k >= c.size:
                    continue
                if ev.kind == "override":
                    for arr in (o, h, lo, c):
                        arr[k:] = ev.value
                else:
                    for arr in (o, h, lo, c):
                        arr[k:] *= ev.value
        return _Series(first, o, h, lo, c, v)

    def _volume_between(self, u: Underlying, first: int, end: int) -> int:
        total = 0
        m = first
        while m < end:
            day, i = divmod(m, _MIN_PER_DAY)
            j = min(_MIN_PER_DAY, i + (end - m))
            cum = self._day(u, day).cum_volume
            total += int(cum[j] - cum[i])
            m += j - i
        return total

    # -- contracts --------------------------------------------------------------------------

    def _info(self, con_id: int) -> ContractInfo:
        info = self.catalog.by_con_id(con_id, include_expired=True)
        if info is None:
            raise KeyError(f"unknown conId {con_id}")
        return info

    def min_tick(self, con_id: int) -> float:
        """The price increment of a contract (0.01 for every simulated instrument)."""
        return self._info(con_id).min_tick

    def multiplier(self, con_id: int) -> int:
        """1 for stocks, 100 for options."""
        return self._info(con_id).multiplier_value

    def volatility(self, symbol: str) -> float:
        """The Black-Scholes volatility of an underlying's options."""
        return self._underlying(symbol).volatility

    def _underlying(self, symbol: str) -> Underlying:
        for u in self.catalog.underlyings():
            if u.symbol == symbol.upper():
                return u
        raise KeyError(f"unknown symbol {symbol}")

    def _expiry_ts(self, info: ContractInfo) -> float:
        found = self._expiry_cache.get(info.expiry)
        if found is None:
            d = datetime.strptime(info.expiry, "%Y%m%d")
            found = datetime(d.year, d.month, d.day, 16, 0, tzinfo=NY).timestamp()
            self._expiry_cache[info.expiry] = found
        return found

    def _theo(self, info: ContractInfo, u: Underlying, spot: float, at_ts: float) -> float:
        years = (self._expiry_ts(info) - at_ts) / _YEAR_SECONDS
        return option_theo(spot, info.strike, years, u.volatility, info.right == "C")

    # -- quotes -----------------------------------------------------------------------------

    def _now(self, at: datetime | None) -> datetime:
        if at is None:
            return self.clock.now()
        if at.tzinfo is None:
            raise ValueError("MarketModel needs aware datetimes")
        return at.astimezone(UTC)

    def underlying_price(self, symbol: str, at: datetime | None = None) -> float:
        """The underlying's last price (on the tick) at ``at``."""
        u = self._underlying(symbol)
        shown = self.calendar.market_time(self._now(at))
        return round_tick(self._close(u, int(shown.timestamp() // 60)))

    def price(self, con_id: int, at: datetime | None = None) -> float:
        """The mid price of a contract at ``at`` (now by default)."""
        return self.quote(con_id, at).mid

    def quote(self, con_id: int, at: datetime | None = None) -> SimQuote:
        """The top of book at ``at`` (now by default). Raises KeyError for unknown conIds.

        With the calendar market closed this is the last session's final values and
        ``last_trade_time`` is that session's close.
        """
        info = self._info(con_id)
        when = self._now(at)
        shown = self.calendar.market_time(when)
        closed = shown != when
        minute = int(shown.timestamp() // 60)
        key = (con_id, minute, closed)
        cached = self._quotes.get(key)
        if cached is None:
            session = self.calendar.session_at(shown.timestamp())
            if info.is_option:
                cached = self._option_quote(info, minute, session, shown)
            else:
                cached = self._stock_quote(info, minute, session, shown)
            if len(self._quotes) > _CACHE_LIMIT:
                self._quotes.clear()
            self._quotes[key] = cached
        if closed:
            return cached
        stamp = when.replace(microsecond=0)
        return cached if cached.last_trade_time == stamp else replace(cached, last_trade_time=stamp)

    def _profile(self, u: Underlying, session: Session) -> _Profile:
        """Running open/high/low/volume of the underlying over ``session`` (cached)."""
        key = (u.symbol, session.open_ts)
        found = self._profiles.get(key)
        if found is not None:
            return found
        first, end = session.open_ts // 60, session.close_ts // 60
        series = self._series(u, first, end)
        prev = self.calendar.previous_session(session)
        profile = _Profile(
            first_minute=first,
            open=float(series.open[0]),
            high=np.maximum.accumulate(series.high).tolist(),
            low=np.minimum.accumulate(series.low).tolist(),
            volume=np.cumsum(series.volume).tolist(),
            prev_close=self._close(u, prev.close_ts // 60 - 1),
        )
        if len(self._profiles) > _CACHE_LIMIT:
            self._profiles.clear()
        self._profiles[key] = profile
        return profile

    def _session_stats(
        self, u: Underlying, minute: int, session: Session
    ) -> tuple[float, float, float, int, float]:
        """(open, high, low, volume, previous close) of the underlying's session so far."""
        profile = self._profile(u, session)
        i = minute - profile.first_minute
        if 0 <= i < len(profile.high):
            return (
                profile.open,
                profile.high[i],
                profile.low[i],
                profile.volume[i],
                profile.prev_close,
            )
        first = min(minute, profile.first_minute)  # outside the session: compute directly
        series = self._series(u, first, minute + 1)
        return (
            float(series.open[0]),
            float(series.high.max()),
            float(series.low.min()),
            self._volume_between(u, first, minute + 1),
            profile.prev_close,
        )

    def _stock_quote(
        self, info: ContractInfo, minute: int, session: Session, shown: datetime
    ) -> SimQuote:
        u = self.catalog.underlying_of(info)
        last = round_tick(self._close(u, minute))
        open_, high, low, volume, prev_close = self._session_stats(u, minute, session)
        h = _mix(self.seed, info.con_id, minute)
        below, above = ((0.0, 0.01), (0.01, 0.0), (0.01, 0.01), (0.01, 0.01))[h & 3]
        bid, ask = round(last - below, 2), round(last + above, 2)
        lot = max(1, u.daily_volume // 20_000_000)
        return SimQuote(
            bid=bid,
            ask=ask,
            last=last,
            bid_size=100 * lot * (1 + (h >> 8) % 30),
            ask_size=100 * lot * (1 + (h >> 16) % 30),
            last_size=1 + (h >> 24) % 300,
            volume=volume,
            close=round_tick(prev_close),
            open=round_tick(open_),
            high=max(round_tick(high), last),
            low=min(round_tick(low), last),
            last_trade_time=self._trade_time(shown, session),
        )

    def _trade_time(self, shown: datetime, session: Session) -> datetime:
        if self.calendar.calendar and shown.timestamp() >= session.close_ts - 1:
            return session.close
        return shown.replace(microsecond=0)

    def _option_rate(self, info: ContractInfo, u: Underlying) -> float:
        """Contracts per regular-hours minute: more near the money, more on index ETFs."""
        moneyness = abs(math.log(info.strike / u.ref_price))
        base = 40.0 if u.index_like else 8.0
        return base * math.exp(-moneyness * 25.0) + 0.05

    def _option_quote(
        self, info: ContractInfo, minute: int, session: Session, shown: datetime
    ) -> SimQuote:
        u = self.catalog.underlying_of(info)
        end_ts = (minute + 1) * 60
        theo = self._theo(info, u, self._close(u, minute), end_ts)
        last = round_tick(theo)
        half = option_spread(theo) / 2
        bid = max(0.0, floor_tick(theo - half))
        ask = ceil_tick(theo + half)
        first = min(session.open_ts // 60, minute)
        spot_open, s_hi, s_lo, _, prev_spot = self._session_stats(u, minute, session)
        call = info.right == "C"
        open_ = round_tick(self._theo(info, u, spot_open, first * 60))
        at_hi = round_tick(self._theo(info, u, s_hi, end_ts))
        at_lo = round_tick(self._theo(info, u, s_lo, end_ts))
        prev = self.calendar.previous_session(session)
        prev_minute = prev.close_ts // 60 - 1
        prev_close = self._theo(info, u, prev_spot, (prev_minute + 1) * 60)
        h = _mix(self.seed, info.con_id, minute)
        rate = self._option_rate(info, u)
        elapsed = minute + 1 - first
        return SimQuote(
            bid=bid,
            ask=ask,
            last=last,
            bid_size=1 + (h >> 8) % 200,
            ask_size=1 + (h >> 16) % 200,
            last_size=1 + (h >> 24) % 20,
            volume=max(1, round(rate * elapsed)),
            close=round_tick(prev_close),
            open=open_,
            high=max(open_, last, at_hi if call else at_lo),
            low=min(open_, last, at_lo if call else at_hi),
            last_trade_time=self._trade_time(shown, session),
        )

    def option_model(self, con_id: int, at: datetime | None = None) -> OptionModel | None:
        """Black-Scholes price and greeks of an option at ``at`` (None for a stock)."""
        info = self._info(con_id)
        if not info.is_option:
            return None
        u = self.catalog.underlying_of(info)
        shown = self.calendar.market_time(self._now(at))
        minute = int(shown.timestamp() // 60)
        spot = self._close(u, minute)
        years = max((self._expiry_ts(info) - (minute + 1) * 60) / _YEAR_SECONDS, 1e-9)
        vol, k, call = u.volatility, info.strike, info.right == "C"
        delta, gamma, vega, theta = bs_greeks(spot, k, years, vol, call)
        return OptionModel(
            implied_vol=vol,
            delta=delta,
            opt_price=self._theo(info, u, spot, (minute + 1) * 60),
            pv_dividend=0.0,
            gamma=gamma,
            vega=vega,
            theta=theta,
            und_price=round_tick(spot),
        )

    def option_model_at(
        self, con_id: int, price: float, at: datetime | None = None
    ) -> OptionModel | None:
        """The greeks at the volatility implied by ``price`` (a bid, ask or last): what the
        bid/ask/last option computations (ticks 10, 11, 12) carry. None for a stock; the
        volatility and greeks are None (IB's unset) when no volatility gives that price."""
        model = self.option_model(con_id, at)
        if model is None:
            return None
        info = self._info(con_id)
        shown = self.calendar.market_time(self._now(at))
        minute = int(shown.timestamp() // 60)
        spot = self._close(self.catalog.underlying_of(info), minute)
        years = max((self._expiry_ts(info) - (minute + 1) * 60) / _YEAR_SECONDS, 1e-9)
        call = info.right == "C"
        vol = implied_vol(price, spot, info.strike, years, call)
        if vol is None:
            return OptionModel(
                math.nan, math.nan, price, 0.0, math.nan, math.nan, math.nan, model.und_price
            )
        delta, gamma, vega, theta = bs_greeks(spot, info.strike, years, vol, call)
        return OptionModel(vol, delta, price, 0.0, gamma, vega, theta, model.und_price)

    # -- bars -------------------------------------------------------------------------------

    def _bar_runs(self, end_ts: float, count: int, use_rth: bool) -> list[tuple[int, int]]:
        """Runs [first, end) of bar minutes, oldest first, holding the ``count`` last bars."""
        last = math.ceil(end_ts / 60) - 1
        if not self.calendar.calendar:
            return [(last - count + 1, last + 1)]
        runs: list[tuple[int, int]] = []
        need = count
        for s in self.calendar.sessions_back(end_ts - 1e-6):
            lo, hi = (
                (s.open_ts // 60, s.close_ts // 60)
                if use_rth
                else (s.ext_open_ts // 60, s.ext_close_ts // 60)
            )
            hi = min(hi, last + 1)
            if hi > lo:
                take = min(need, hi - lo)
                runs.append((hi - take, hi))
                need -= take
                if need == 0:
                    break
        runs.reverse()
        return runs

    def bars(
        self,
        con_id: int,
        end: datetime | None,
        count: int,
        use_rth: bool = True,
    ) -> list[SimBar]:
        """The ``count`` 1-minute TRADES bars ending at ``end`` (the last one started before it).

        ``end`` later than the clock (or None) means now: there are no bars from the future.
        In calendar mode ``use_rth=True`` keeps regular sessions only and ``use_rth=False``
        adds extended hours (04:00-20:00 New York) of trading days; in always-open mode bars
        are consecutive minutes either way.
        """
        info = self._info(con_id)
        now = self.clock.now()
        when = now if end is None else min(self._now(end), now)
        if count <= 0:
            return []
        u = self.catalog.underlying_of(info)
        out: list[SimBar] = []
        for first, stop in self._bar_runs(when.timestamp(), count, use_rth):
            series = self._series(u, first, stop)
            if info.is_option:
                out.extend(self._option_bars(info, u, series))
            else:
                out.extend(self._stock_bars(series))
        return out

    @staticmethod
    def _stock_bars(series: _Series) -> list[SimBar]:
        o = np.round(series.open, 2)
        c = np.round(series.close, 2)
        h = np.maximum(np.round(series.high, 2), np.maximum(o, c))
        lo = np.minimum(np.round(series.low, 2), np.minimum(o, c))
        wap = np.clip(np.round((h + lo + c) / 3.0, 4), lo, h)
        counts = np.maximum(1, series.volume // 150)
        t0 = series.first_minute * 60
        return [
            SimBar(datetime.fromtimestamp(t0 + 60 * k, UTC), *row)
            for k, row in enumerate(
                zip(
                    o.tolist(),
                    h.tolist(),
                    lo.tolist(),
                    c.tolist(),
                    series.volume.tolist(),
                    wap.tolist(),
                    counts.tolist(),
                    strict=True,
                )
            )
        ]

    def _option_bars(self, info: ContractInfo, u: Underlying, series: _Series) -> list[SimBar]:
        """Option bars: close = the model price the quote shows in that minute, open = the
        previous close (same instant), high/low from the underlying's high/low."""
        call = info.right == "C"
        strike, vol, expiry_ts = info.strike, u.volatility, self._expiry_ts(info)
        first, n = series.first_minute, series.close.size
        closes_spot: list[float] = series.close.tolist()
        opens_spot: list[float] = series.open.tolist()
        closes = [
            round_tick(
                option_theo(
                    spot, strike, (expiry_ts - (first + k + 1) * 60) / _YEAR_SECONDS, vol, call
                )
            )
            for k, spot in enumerate(closes_spot)
        ]
        minutes = np.arange(first, first + n, dtype=np.int64)
        end_years = ((expiry_ts - (minutes + 1) * 60.0) / _YEAR_SECONDS).astype(np.float64)
        spot_up = series.high if call else series.low
        spot_dn = series.low if call else series.high
        ups: list[float] = _theo_vec(spot_up, strike, end_years, vol, call).round(2).tolist()
        dns: list[float] = _theo_vec(spot_dn, strike, end_years, vol, call).round(2).tolist()
        rate = self._option_rate(info, u)
        noise = _unit_vec(self._seed_key, info.con_id, minutes)
        volumes: list[int] = (
            np.maximum(1, np.rint(rate * (0.2 + 1.6 * noise))).astype(np.int64).tolist()
        )
        prev_spot = self._close(u, first - 1)
        prev_close = round_tick(self._theo(info, u, prev_spot, first * 60))
        bars: list[SimBar] = []
        for k in range(n):
            minute = first + k
            spot_open = opens_spot[k]
            if spot_open != prev_spot:  # an override/shock boundary or a day seam
                o = round_tick(self._theo(info, u, spot_open, minute * 60))
            else:
                o = prev_close
            c = closes[k]
            hi = max(o, c, ups[k], dns[k])
            lo = min(o, c, ups[k], dns[k])
            volume = volumes[k]
            bars.append(
                SimBar(
                    time=datetime.fromtimestamp(minute * 60, UTC),
                    open=o,
                    high=hi,
                    low=lo,
                    close=c,
                    volume=volume,
                    wap=min(hi, max(lo, round((hi + lo + c) / 3.0, 4))),
                    bar_count=max(1, volume // 3),
                )
            )
            prev_spot, prev_close = closes_spot[k], c
        return bars

    # -- test hooks -------------------------------------------------------------------------

    def _event_minute(self) -> int:
        shown = self.calendar.market_time(self.clock.now())
        return int(shown.timestamp() // 60)

    def set_override(self, symbol: str, price: float) -> None:
        """Pin ``symbol``'s price to ``price`` from the minute the market shows now onwards."""
        if not math.isfinite(price) or price <= 0:
            raise ValueError("price must be a positive, finite number")
        u = self._underlying(symbol)
        self._events.setdefault(u.symbol, []).append(
            _Event(self._event_minute(), "override", float(price))
        )
        self._quotes.clear()
        self._profiles.clear()

    def shock(self, symbol: str, factor: float) -> None:
        """Multiply ``symbol``'s price by ``factor`` from the minute the market shows now on."""
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError("factor must be a positive, finite number")
        u = self._underlying(symbol)
        self._events.setdefault(u.symbol, []).append(
            _Event(self._event_minute(), "shock", float(factor))
        )
        self._quotes.clear()
        self._profiles.clear()

    def clear_overrides(self) -> None:
        """Forget every override and shock: prices follow the seeded path again."""
        self._events.clear()
        self._quotes.clear()
        self._profiles.clear()


__all__ = [
    "MarketModel",
    "OptionModel",
    "SimBar",
    "SimQuote",
    "black_scholes",
    "bs_greeks",
    "implied_vol",
    "option_theo",
    "round_tick",
]
