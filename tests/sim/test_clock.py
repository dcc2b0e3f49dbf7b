"""SimClock and MarketCalendar: wall-clock following, frozen time, NYSE sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ibkr_trader.sim.clock import NY, MarketCalendar, SimClock


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=NY)


@pytest.fixture(scope="module")
def nyse() -> MarketCalendar:
    return MarketCalendar(True)


@pytest.mark.wall_clock
def test_default_clock_follows_the_wall_clock() -> None:
    now = SimClock().now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5


def test_set_moves_the_clock_and_it_keeps_ticking() -> None:
    clock = SimClock()
    target = datetime(2030, 1, 2, 15, 0, tzinfo=UTC)
    clock.set(target)
    first = clock.now()
    assert target <= first < target + timedelta(seconds=5)
    assert clock.now() >= first


def test_frozen_clock_moves_only_by_set_and_advance() -> None:
    start = ny(2026, 11, 24, 10, 0)
    clock = SimClock(start, frozen=True)
    assert clock.frozen
    assert clock.now() == start.astimezone(UTC)
    assert clock.now() == clock.now()
    clock.advance(90.5)
    assert clock.now() == start + timedelta(seconds=90.5)
    clock.set(ny(2026, 11, 27, 9, 0))
    assert clock.now() == ny(2026, 11, 27, 9, 0)
    assert clock.timestamp() == ny(2026, 11, 27, 9, 0).timestamp()


def test_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        SimClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        SimClock().set(datetime(2026, 1, 1))


def test_always_open_calendar_is_open_on_saturday_night_and_holidays() -> None:
    cal = MarketCalendar(False)
    assert cal.is_open(ny(2026, 11, 28, 23, 30))  # Saturday night
    assert cal.is_open(ny(2026, 11, 26, 12, 0))  # Thanksgiving
    assert cal.market_time(ny(2026, 11, 28, 23, 30)) == ny(2026, 11, 28, 23, 30)


def test_always_open_session_is_the_new_york_calendar_day() -> None:
    cal = MarketCalendar(False)
    open_, close = cal.last_session(ny(2026, 11, 28, 23, 30))
    assert open_ == ny(2026, 11, 28, 0, 0)
    assert close == ny(2026, 11, 29, 0, 0)
    assert open_.tzinfo is UTC


def test_calendar_regular_day_opens_at_0930_and_closes_at_1600(nyse: MarketCalendar) -> None:
    assert not nyse.is_open(ny(2026, 11, 24, 9, 29, 59))
    assert nyse.is_open(ny(2026, 11, 24, 9, 30))
    assert nyse.is_open(ny(2026, 11, 24, 15, 59, 59))
    assert not nyse.is_open(ny(2026, 11, 24, 16, 0))


def test_calendar_thanksgiving_is_closed_all_day(nyse: MarketCalendar) -> None:
    assert not nyse.is_trading_day(date(2026, 11, 26))
    for hour in (4, 10, 12, 15, 19):
        assert not nyse.is_open(ny(2026, 11, 26, hour, 0))
    # the session before the holiday is Wednesday's
    assert nyse.last_session(ny(2026, 11, 26, 12, 0)) == (
        ny(2026, 11, 25, 9, 30),
        ny(2026, 11, 25, 16, 0),
    )


def test_calendar_day_after_thanksgiving_closes_early_at_1300(nyse: MarketCalendar) -> None:
    assert nyse.is_open(ny(2026, 11, 27, 12, 59))
    assert not nyse.is_open(ny(2026, 11, 27, 13, 0))
    session = nyse.session_for_day(date(2026, 11, 27))
    assert session is not None and session.early_close


def test_calendar_saturday_night_last_session_is_friday(nyse: MarketCalendar) -> None:
    at = ny(2026, 11, 28, 22, 0)
    assert not nyse.is_open(at)
    assert nyse.last_session(at) == (ny(2026, 11, 27, 9, 30), ny(2026, 11, 27, 13, 0))
    assert nyse.market_time(at) == ny(2026, 11, 27, 13, 0) - timedelta(seconds=1)


def test_calendar_before_the_open_shows_the_previous_session(nyse: MarketCalendar) -> None:
    at = ny(2026, 11, 24, 8, 0)
    assert nyse.last_session(at)[1] == ny(2026, 11, 23, 16, 0)
    assert nyse.market_time(at) == ny(2026, 11, 23, 15, 59, 59)


def test_calendar_weekends_are_not_trading_days(nyse: MarketCalendar) -> None:
    assert not nyse.is_trading_day(date(2026, 11, 28))
    assert not nyse.is_trading_day(date(2026, 11, 29))
    assert nyse.is_trading_day(date(2026, 11, 30))


def test_calendar_beyond_its_table_falls_back_to_weekday_sessions(nyse: MarketCalendar) -> None:
    assert nyse.is_open(ny(2040, 6, 5, 10, 0))  # a Tuesday
    assert not nyse.is_open(ny(2040, 6, 9, 10, 0))  # a Saturday
    assert nyse.last_session(ny(2040, 6, 9, 10, 0))[1] == ny(2040, 6, 8, 16, 0)


def test_session_minutes_cover_regular_or_extended_hours(nyse: MarketCalendar) -> None:
    first, end = nyse.session_minutes(ny(2026, 11, 24, 11, 0), use_rth=True)
    assert end - first == 390
    first, end = nyse.session_minutes(ny(2026, 11, 24, 11, 0), use_rth=False)
    assert end - first == 16 * 60
    first, end = nyse.session_minutes(ny(2026, 11, 27, 11, 0), use_rth=True)
    assert end - first == 210


def test_hours_strings_use_ib_format_with_holidays_and_early_closes(
    nyse: MarketCalendar,
) -> None:
    trading, liquid = nyse.hours_strings(date(2026, 11, 25), days=3)
    assert liquid == "20261125:0930-20261125:1600;20261126:CLOSED;20261127:0930-20261127:1300"
    assert trading == "20261125:0400-20261125:2000;20261126:CLOSED;20261127:0400-20261127:1700"
    trading, liquid = MarketCalendar(False).hours_strings(date(2026, 11, 28), days=1)
    assert trading == liquid == "20261128:0000-20261129:0000"


def test_option_hours_are_regular_hours_only(nyse: MarketCalendar) -> None:
    trading, liquid = nyse.option_hours_strings(date(2026, 11, 27), days=1)
    assert trading == liquid == "20261127:0930-20261127:1300"


def test_calendar_refuses_naive_datetimes(nyse: MarketCalendar) -> None:
    with pytest.raises(ValueError):
        nyse.is_open(datetime(2026, 11, 24, 10, 0))
