"""NYSE regular trading hours, holidays and early closes, from exchange_calendars (XNYS).

The calendar library is kept by its maintainers (holidays, early closes, the DST switch), so
nothing here is a hand-written holiday list. Every question takes an aware datetime, or reads
the injected clock when none is given.

- :meth:`MarketHours.session`: the regular session on ``at``'s New York date (open and close as
  aware UTC datetimes, whether it closes early), or None on a weekend or holiday.
- :meth:`MarketHours.is_open`: ``open <= at < close``.
- :meth:`MarketHours.minutes_to_close`: minutes left in the session, None when closed.
- :meth:`MarketHours.entries_allowed`: open and *more than* ``no_entry_minutes_before_close``
  minutes before the close (default 15: at 15:45 New York on a normal day no new entry).
- :meth:`MarketHours.next_open`: the next regular open at or after ``at``.

Only regular hours count (no pre-market or after-hours sessions).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import exchange_calendars

from ibkr_trader.clock import NY, Clock, ny_date

__all__ = ["DEFAULT_NO_ENTRY_MINUTES", "MarketHours", "Session"]

DEFAULT_NO_ENTRY_MINUTES = 15.0
NYSE_CALENDAR = "XNYS"
_REGULAR_CLOSE = time(16, 0)
_YEARS_AHEAD = 2  # calendar span beyond the year asked about


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session of the exchange."""

    day: date  # the New York date
    open: datetime  # aware UTC
    close: datetime  # aware UTC

    @property
    def is_early_close(self) -> bool:
        return self.close.astimezone(NY).time() < _REGULAR_CLOSE

    def contains(self, at: datetime) -> bool:
        return self.open <= at < self.close


@lru_cache(maxsize=8)
def _calendar(name: str, first_year: int, last_year: int) -> Any:
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads Series.values, which pandas 3.1 deprecates (harmless).
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return exchange_calendars.get_calendar(
            name, start=f"{first_year}-01-01", end=f"{last_year}-12-31"
        )


class MarketHours:
    """Regular hours of one exchange calendar (NYSE by default), on an injected clock."""

    def __init__(self, clock: Clock, calendar_name: str = NYSE_CALENDAR) -> None:
        self._clock = clock
        self._name = calendar_name
        year = ny_date(clock.now()).year
        self._first_year = year - 1
        self._last_year = year + _YEARS_AHEAD
        self._cal: Any = _calendar(calendar_name, self._first_year, self._last_year)

    def _when(self, at: datetime | None) -> datetime:
        when = self._clock.now() if at is None else at
        if when.tzinfo is None:
            raise ValueError("MarketHours needs an aware datetime")
        return when.astimezone(UTC)

    def _calendar_for(self, day: date) -> Any:
        if not self._first_year <= day.year <= self._last_year:
            self._first_year = min(self._first_year, day.year - 1)
            self._last_year = max(self._last_year, day.year + _YEARS_AHEAD)
            self._cal = _calendar(self._name, self._first_year, self._last_year)
        return self._cal

    def _session_on(self, day: date) -> Session | None:
        cal = self._calendar_for(day)
        label = day.isoformat()  # exchange_calendars parses session labels
        if not cal.is_session(label):
            return None
        return Session(
            day=day,
            open=cal.session_open(label).to_pydatetime().astimezone(UTC),
            close=cal.session_close(label).to_pydatetime().astimezone(UTC),
        )

    def session(self, at: datetime | None = None) -> Session | None:
        """The regular session on ``at``'s New York date, or None (weekend, holiday)."""
        return self._session_on(ny_date(self._when(at)))

    def is_open(self, at: datetime | None = None) -> bool:
        when = self._when(at)
        session = self._session_on(ny_date(when))
        return session is not None and session.contains(when)

    def minutes_to_close(self, at: datetime | None = None) -> float | None:
        """Minutes until today's close while the market is open; None when it is closed."""
        when = self._when(at)
        session = self._session_on(ny_date(when))
        if session is None or not session.contains(when):
            return None
        return (session.close - when).total_seconds() / 60.0

    def entries_allowed(
        self,
        at: datetime | None = None,
        no_entry_minutes_before_close: float = DEFAULT_NO_ENTRY_MINUTES,
    ) -> bool:
        """True while open and more than the given minutes before the close."""
        if no_entry_minutes_before_close < 0:
            raise ValueError("no_entry_minutes_before_close must be >= 0")
        remaining = self.minutes_to_close(at)
        return remaining is not None and remaining > no_entry_minutes_before_close

    def next_open(self, at: datetime | None = None) -> datetime:
        """The next regular open at or after ``at`` (today's if it is still ahead)."""
        when = self._when(at)
        day = ny_date(when)
        for offset in range(15):  # look two weeks ahead
            session = self._session_on(day + timedelta(days=offset))
            if session is not None and session.open >= when:
                return session.open
        raise LookupError(f"no {self._name} session within 15 days of {when.isoformat()}")
