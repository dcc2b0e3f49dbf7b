"""The simulated gateway's clock and its market calendar (pure: no I/O, no asyncio).

`SimClock` tells the simulated time. By default it follows the wall clock; tests can `set` it
to any instant (it keeps ticking with real time from there) or build it `frozen`, in which case
time moves only through `set` and `advance` ("a trading day in seconds").

`MarketCalendar` says when the simulated market trades:

* always-open mode (``MarketCalendar(False)``, the default of the simulator): the market is open
  at every instant, so ``make run`` works on a Saturday night. A *session* is then the New York
  calendar day: it opens at 00:00 New York time and closes at the next midnight. The "previous
  close" of a quote is therefore the price at the last New York midnight.
* calendar mode (``MarketCalendar(True)``): NYSE regular hours (09:30-16:00 New York), its
  holidays and early closes (13:00), taken from the `exchange_calendars` library (XNYS).
  Extended hours (04:00-20:00, 04:00-17:00 on early-close days) only matter for bars requested
  with ``use_rth=False``.
"""

from __future__ import annotations

import bisect
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from ibkr_trader.clock import SystemClock

NY = ZoneInfo("America/New_York")

#: First and last New York dates the NYSE table is built for; outside it the calendar falls
#: back to plain weekdays 09:30-16:00 without holidays.
CALENDAR_FIRST = date(2015, 1, 1)
CALENDAR_LAST = date(2035, 12, 31)

_DAY = 86_400


MAX_SPEED = 3600.0  # an hour of market time a second, at most


def check_speed(speed: float) -> float:
    """How many simulated seconds pass in a real one: finite, above 0, at most MAX_SPEED."""
    value = float(speed)
    if not math.isfinite(value) or not 0 < value <= MAX_SPEED:
        raise ValueError(f"speed must be above 0 and at most {MAX_SPEED:g}, got {speed!r}")
    return value


def _require_aware(when: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{what} needs an aware datetime")
    return when.astimezone(UTC)


class SimClock:
    """The simulated time, as aware UTC datetimes.

    ``SimClock()`` follows the wall clock. ``SimClock(start)`` starts at ``start`` and ticks
    with real time from there; ``speed=10`` ticks ten simulated seconds a real one (a
    rehearsal of a session in less time). ``frozen=True`` stops the ticking: time then moves
    only by :meth:`set` and :meth:`advance` (for tests).
    """

    def __init__(
        self, start: datetime | None = None, *, frozen: bool = False, speed: float = 1.0
    ) -> None:
        self._frozen = frozen
        self.speed = check_speed(speed)
        base = SystemClock().now() if start is None else _require_aware(start, "SimClock")
        self._base = base
        self._anchor = time.monotonic()

    @property
    def frozen(self) -> bool:
        """True when time moves only by set/advance."""
        return self._frozen

    def now(self) -> datetime:
        """The simulated current time (aware, UTC)."""
        if self._frozen:
            return self._base
        return self._base + timedelta(seconds=(time.monotonic() - self._anchor) * self.speed)

    def timestamp(self) -> float:
        """The simulated current time as POSIX seconds."""
        return self.now().timestamp()

    def set(self, when: datetime) -> None:
        """Move the clock to ``when``; unless frozen it keeps ticking from there."""
        self._base = _require_aware(when, "SimClock.set")
        self._anchor = time.monotonic()

    def advance(self, seconds: float) -> None:
        """Shift the clock by ``seconds`` (negative moves it back)."""
        self._base += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: New York date and regular open/close as POSIX seconds (UTC)."""

    day: date
    open_ts: int
    close_ts: int

    @property
    def open(self) -> datetime:
        return datetime.fromtimestamp(self.open_ts, UTC)

    @property
    def close(self) -> datetime:
        return datetime.fromtimestamp(self.close_ts, UTC)

    @property
    def early_close(self) -> bool:
        """True when the session closes before 16:00 New York time."""
        return self.close.astimezone(NY).hour < 16

    @property
    def ext_open_ts(self) -> int:
        """Start of pre-market trading (04:00 New York)."""
        return _ny_ts(self.day, 4, 0)

    @property
    def ext_close_ts(self) -> int:
        """End of after-hours trading (20:00 New York, 17:00 on early-close days)."""
        return self.close_ts + 4 * 3600


def _ny_ts(day: date, hour: int, minute: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).timestamp())


@lru_cache(maxsize=1)
def _nyse_table() -> tuple[tuple[Session, ...], tuple[int, ...], tuple[int, ...]]:
    """NYSE sessions CALENDAR_FIRST..CALENDAR_LAST, with their opens and closes for bisect."""
    import exchange_calendars as xcals  # deferred: ~0.1 s to load, only in calendar mode

    with warnings.catch_warnings():  # pandas deprecation noise from inside the library
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar(
            "XNYS", start=CALENDAR_FIRST.isoformat(), end=CALENDAR_LAST.isoformat()
        )
        schedule = cal.schedule
    sessions: list[Session] = []
    for label, open_, close in zip(
        schedule.index, schedule["open"], schedule["close"], strict=True
    ):
        sessions.append(Session(label.date(), int(open_.timestamp()), int(close.timestamp())))
    return (
        tuple(sessions),
        tuple(s.open_ts for s in sessions),
        tuple(s.close_ts for s in sessions),
    )


def _weekday_session(day: date) -> Session | None:
    if day.weekday() >= 5:
        return None
    return Session(day, _ny_ts(day, 9, 30), _ny_ts(day, 16, 0))


def _ny_midnight_ts(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=NY).timestamp())


class MarketCalendar:
    """When the simulated market is open (see the module docstring for both modes)."""

    def __init__(self, calendar: bool = False) -> None:
        self.calendar = calendar
        if calendar:
            self._sessions, self._opens, self._closes = _nyse_table()
        else:
            self._sessions, self._opens, self._closes = (), (), ()

    # -- sessions -------------------------------------------------------------------------

    def session_for_day(self, day: date) -> Session | None:
        """The session held on New York date ``day``, or None when the market is closed."""
        if not self.calendar:
            return Session(day, _ny_midnight_ts(day), _ny_midnight_ts(day + timedelta(days=1)))
        if CALENDAR_FIRST <= day <= CALENDAR_LAST:
            ts = _ny_ts(day, 12, 0)
            i = bisect.bisect_right(self._opens, ts) - 1
            if i >= 0 and self._sessions[i].day == day:
                return self._sessions[i]
            return None
        return _weekday_session(day)

    def session_at(self, ts: float) -> Session:
        """The session in progress at POSIX time ``ts``, or the last one that closed before."""
        if not self.calendar:
            day = datetime.fromtimestamp(ts, NY).date()
            return self.session_for_day(day)  # type: ignore[return-value]
        first, last = self._sessions[0], self._sessions[-1]
        if first.open_ts <= ts < last.close_ts + _DAY:
            i = bisect.bisect_right(self._opens, ts) - 1
            return self._sessions[i]
        day = datetime.fromtimestamp(ts, NY).date()
        for _ in range(10):
            s = _weekday_session(day)
            if s is not None and s.open_ts <= ts:
                return s
            day -= timedelta(days=1)
        raise ValueError("no session found")  # pragma: no cover - weekdays always exist

    def previous_session(self, session: Session) -> Session:
        """The session before ``session``."""
        day = session.day - timedelta(days=1)
        for _ in range(15):
            s = self.session_for_day(day)
            if s is not None:
                return s
            day -= timedelta(days=1)
        raise ValueError("no previous session")  # pragma: no cover

    def sessions_back(self, ts: float) -> Iterator[Session]:
        """Sessions from the one at ``ts`` (in progress or last closed) backwards in time."""
        s = self.session_at(ts)
        while True:
            yield s
            s = self.previous_session(s)

    # -- the public questions ---------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """True when the regular market trades at ``at`` (always in always-open mode)."""
        if not self.calendar:
            return True
        ts = _require_aware(at, "is_open").timestamp()
        s = self.session_at(ts)
        return s.open_ts <= ts < s.close_ts

    def is_trading_day(self, day: date) -> bool:
        """True when New York date ``day`` has a session."""
        return self.session_for_day(day) is not None

    def last_session(self, at: datetime) -> tuple[datetime, datetime]:
        """(open, close) in UTC of the session in progress at ``at`` or the last one before.

        In always-open mode this is the New York calendar day of ``at`` (midnight to midnight).
        """
        s = self.session_at(_require_aware(at, "last_session").timestamp())
        return s.open, s.close

    def market_time(self, at: datetime) -> datetime:
        """The instant whose prices a quote at ``at`` shows: ``at`` while open, else the close.

        When the market is closed the quote is the last session's final values, which are
        those of its last minute (one second before the close).
        """
        at = _require_aware(at, "market_time")
        if not self.calendar:
            return at
        s = self.session_at(at.timestamp())
        if at.timestamp() >= s.close_ts:
            return datetime.fromtimestamp(s.close_ts - 1, UTC)
        return at

    def session_minutes(self, at: datetime, use_rth: bool = True) -> tuple[int, int]:
        """Minute indexes [first, end) (POSIX minutes) of the session at/before ``at``.

        With ``use_rth=False`` in calendar mode the range covers extended hours too.
        """
        s = self.session_at(_require_aware(at, "session_minutes").timestamp())
        if use_rth or not self.calendar:
            return s.open_ts // 60, s.close_ts // 60
        return s.ext_open_ts // 60, s.ext_close_ts // 60

    def hours_strings(self, today: date, days: int = 7) -> tuple[str, str]:
        """IB's (tradingHours, liquidHours) strings for ``days`` New York dates from ``today``.

        Format ``20250102:0400-20250102:2000;20250103:CLOSED``. Always-open mode lists every
        day as trading from 00:00 to the next day's 00:00.
        """
        trading: list[str] = []
        liquid: list[str] = []
        for k in range(days):
            day = today + timedelta(days=k)
            d = day.strftime("%Y%m%d")
            if not self.calendar:
                nxt = (day + timedelta(days=1)).strftime("%Y%m%d")
                trading.append(f"{d}:0000-{nxt}:0000")
                liquid.append(f"{d}:0000-{nxt}:0000")
                continue
            s = self.session_for_day(day)
            if s is None:
                trading.append(f"{d}:CLOSED")
                liquid.append(f"{d}:CLOSED")
                continue
            o = s.open.astimezone(NY).strftime("%H%M")
            c = s.close.astimezone(NY).strftime("%H%M")
            ec = datetime.fromtimestamp(s.ext_close_ts, NY).strftime("%H%M")
            trading.append(f"{d}:0400-{d}:{ec}")
            liquid.append(f"{d}:{o}-{d}:{c}")
        return ";".join(trading), ";".join(liquid)

    def option_hours_strings(self, today: date, days: int = 7) -> tuple[str, str]:
        """Like :meth:`hours_strings` for options: they trade regular hours only."""
        if not self.calendar:
            return self.hours_strings(today, days)
        _, liquid = self.hours_strings(today, days)
        return liquid, liquid


@lru_cache(maxsize=1)
def nyse_holidays_and_weekends() -> MarketCalendar:
    """A calendar-mode calendar, shared, used to pick option expiry dates in every mode."""
    return MarketCalendar(True)
