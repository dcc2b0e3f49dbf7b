"""Injected clocks: every component that reads the time takes a Clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that tests set and advance."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def ny_date(when: datetime) -> date:
    """The New York calendar date of an aware datetime (the exchange's date)."""
    if when.tzinfo is None:
        raise ValueError("ny_date needs an aware datetime")
    return when.astimezone(NY).date()


def days_to_expiry(expiry: str, now: datetime) -> int | None:
    """Calendar days from today's New York date to an option's YYYYMMDD expiry."""
    try:
        expiry_date = datetime.strptime(expiry[:8], "%Y%m%d").date()
    except ValueError:
        return None
    return (expiry_date - ny_date(now)).days
