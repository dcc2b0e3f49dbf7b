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
- :meth:`MarketHours.working_close`: when a DAY order placed at ``at`` ends (today's close
  while the session is ahead or open, else the next session's).

Only regular hours count (no pre-market or after-hours sessions).

:class:`ListedHours` is the other source of the same answers: a contract's regular sessions as
the gateway lists them (``ContractDetails.liquidHours`` in its ``timeZoneId``, about a week
ahead). The gateway is the venue, so while its listing covers an instant that listing decides
whether the contract trades (a simulator that trades around the clock lists whole days), and
the exchange calendar answers beyond it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibkr_trader.clock import NY, Clock, ny_date

__all__ = [
    "DEFAULT_NO_ENTRY_MINUTES",
    "ListedHours",
    "ListedHoursError",
    "MarketHours",
    "Session",
    "SessionHours",
    "day_order_close",
    "hours_at",
]

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


class SessionHours(Protocol):
    """What a venue asks of a session source (MarketHours, ListedHours)."""

    def is_open(self, at: datetime | None = None) -> bool: ...

    def working_close(self, at: datetime | None = None) -> datetime | None: ...


@lru_cache(maxsize=8)
def _calendar(name: str, first_year: int, last_year: int) -> Any:
    import exchange_calendars  # heavy (pandas): loaded by the first question, not the import

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

    def working_close(self, at: datetime | None = None) -> datetime:
        """When a DAY order placed at ``at`` ends: the close of today's session while it is
        ahead or open, else the close of the next session."""
        when = self._when(at)
        session = self._session_on(ny_date(when))
        if session is not None and when < session.close:
            return session.close
        nxt = self._session_on(ny_date(self.next_open(when)))
        assert nxt is not None  # next_open returns the open of a session
        return nxt.close


class ListedHoursError(ValueError):
    """A trading-hours listing the gateway sent could not be read."""


_LISTED_FORMAT = "%Y%m%d:%H%M"


@dataclass(frozen=True, slots=True)
class ListedHours:
    """A contract's regular sessions as the gateway lists them (IB's ``liquidHours``).

    ``first_day``..``last_day`` are the dates the listing covers (closed days included); an
    instant outside them is not covered and the caller asks the exchange calendar instead.
    """

    sessions: tuple[Session, ...]  # sorted by open
    first_day: date
    last_day: date
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, time_zone_id: str) -> ListedHours | None:
        """``20261118:0930-20261118:1600;20261122:CLOSED;...`` in ``time_zone_id`` (IB's
        names, e.g. ``US/Eastern``); None for an empty listing; ListedHoursError if it cannot
        be read."""
        entries = [e.strip() for e in (text or "").split(";") if e.strip()]
        if not entries:
            return None
        try:
            zone = ZoneInfo((time_zone_id or "").strip() or "America/New_York")
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "US" is a dir
            raise ListedHoursError(f"unknown time zone {time_zone_id!r}") from exc
        days: list[date] = []
        sessions: list[Session] = []
        for entry in entries:
            try:
                if entry.endswith(":CLOSED"):
                    days.append(datetime.strptime(entry[:8], "%Y%m%d").date())
                    continue
                start_text, end_text = entry.split("-", 1)
                start = datetime.strptime(start_text, _LISTED_FORMAT).replace(tzinfo=zone)
                end = datetime.strptime(end_text, _LISTED_FORMAT).replace(tzinfo=zone)
            except ValueError as exc:
                raise ListedHoursError(f"unreadable trading hours {entry!r}") from exc
            if end <= start:
                raise ListedHoursError(f"trading hours {entry!r} end before they start")
            days.append(start.date())
            sessions.append(Session(start.date(), start.astimezone(UTC), end.astimezone(UTC)))
        sessions.sort(key=lambda s: s.open)
        return cls(tuple(sessions), min(days), max(days), zone)

    def covers(self, at: datetime) -> bool:
        """True if ``at`` falls on a date the listing covers (in the listing's time zone)."""
        return self.first_day <= at.astimezone(self.zone).date() <= self.last_day

    def is_open(self, at: datetime | None = None) -> bool:
        if at is None:
            raise ValueError("ListedHours needs an instant")
        return any(s.contains(at) for s in self.sessions)

    def working_close(self, at: datetime | None = None) -> datetime | None:
        """The close of the listed session a DAY order placed at ``at`` works in (the day's
        last close while ahead, else the next listed day's), or None beyond the listing."""
        if at is None:
            raise ValueError("ListedHours needs an instant")
        day: date | None = None
        close: datetime | None = None
        for session in self.sessions:
            if day is None:
                if session.close <= at:
                    continue
                day = session.day
            elif session.day != day:
                break
            close = session.close
        return close


def hours_at(
    at: datetime, listed: ListedHours | None, calendar: SessionHours | None
) -> SessionHours | None:
    """Who answers for a contract at ``at``: the gateway's listing while it covers ``at``,
    else the exchange calendar (None: no hours at all, always open)."""
    if listed is not None and listed.covers(at):
        return listed
    return calendar


def day_order_close(
    at: datetime, listed: ListedHours | None, calendar: SessionHours | None
) -> datetime | None:
    """When a DAY order placed at ``at`` ends (None: never, no hours known)."""
    hours = hours_at(at, listed, calendar)
    close = hours.working_close(at) if hours is not None else None
    if close is None and listed is not None and hours is listed and calendar is not None:
        # no listed session after `at`: the calendar, from the first day after the listing
        # (the listing's closed days stay closed)
        after = datetime.combine(listed.last_day + timedelta(days=1), time(0), listed.zone)
        close = calendar.working_close(max(at, after))
    return close
