"""NYSE regular hours from exchange_calendars: holidays, early closes, weekends, DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ibkr_trader.clock import NY, ManualClock
from ibkr_trader.market_hours import (
    ListedHours,
    ListedHoursError,
    MarketHours,
    Session,
    day_order_close,
    hours_at,
)


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ny(2026, 11, 24, 10, 0))


@pytest.fixture
def hours(clock: ManualClock) -> MarketHours:
    return MarketHours(clock)


def test_a_normal_tuesday_is_open_from_930_to_1600_new_york(hours: MarketHours) -> None:
    session = hours.session(ny(2026, 11, 24, 12))
    assert session == Session(
        day=date(2026, 11, 24),
        open=datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
        close=datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
    )
    assert not session.is_early_close
    assert not hours.is_open(ny(2026, 11, 24, 9, 29))
    assert hours.is_open(ny(2026, 11, 24, 9, 30))
    assert hours.is_open(ny(2026, 11, 24, 15, 59))
    assert not hours.is_open(ny(2026, 11, 24, 16, 0))


def test_reads_the_injected_clock_when_no_time_is_given(
    hours: MarketHours, clock: ManualClock
) -> None:
    assert hours.is_open()
    assert hours.minutes_to_close() == pytest.approx(360.0)
    clock.set(ny(2026, 11, 24, 20))
    assert not hours.is_open()
    assert hours.minutes_to_close() is None


def test_thanksgiving_2026_is_closed_all_day(hours: MarketHours) -> None:
    assert hours.session(ny(2026, 11, 26, 12)) is None
    assert not hours.is_open(ny(2026, 11, 26, 11))
    assert not hours.entries_allowed(ny(2026, 11, 26, 11))
    assert hours.minutes_to_close(ny(2026, 11, 26, 11)) is None


def test_day_after_thanksgiving_closes_early_at_1300_new_york(hours: MarketHours) -> None:
    session = hours.session(ny(2026, 11, 27, 10))
    assert session is not None
    assert session.is_early_close
    assert session.close == ny(2026, 11, 27, 13, 0)
    assert hours.is_open(ny(2026, 11, 27, 12, 59))
    assert not hours.is_open(ny(2026, 11, 27, 13, 0))
    assert not hours.is_open(ny(2026, 11, 27, 14, 0))
    assert hours.minutes_to_close(ny(2026, 11, 27, 12, 30)) == pytest.approx(30.0)
    assert hours.entries_allowed(ny(2026, 11, 27, 12, 44))
    assert not hours.entries_allowed(ny(2026, 11, 27, 12, 46))


def test_saturday_is_closed(hours: MarketHours) -> None:
    assert hours.session(ny(2026, 11, 28, 12)) is None
    assert not hours.is_open(ny(2026, 11, 28, 12))


def test_entries_stop_in_the_last_minutes_before_the_close(hours: MarketHours) -> None:
    assert hours.entries_allowed(ny(2026, 11, 24, 15, 44))
    assert not hours.entries_allowed(ny(2026, 11, 24, 15, 45))  # exactly 15 minutes left
    assert not hours.entries_allowed(ny(2026, 11, 24, 15, 50))
    assert hours.entries_allowed(ny(2026, 11, 24, 15, 50), no_entry_minutes_before_close=5)
    assert not hours.entries_allowed(ny(2026, 11, 24, 9, 0))


def test_negative_no_entry_window_is_refused(hours: MarketHours) -> None:
    with pytest.raises(ValueError):
        hours.entries_allowed(ny(2026, 11, 24, 12), no_entry_minutes_before_close=-1)


def test_spring_dst_switch_moves_the_open_in_utc(hours: MarketHours) -> None:
    # DST starts Sunday 2026-03-08: Friday opens 14:30 UTC, Monday 13:30 UTC, both 9:30 NY.
    friday = hours.session(ny(2026, 3, 6, 12))
    monday = hours.session(ny(2026, 3, 9, 12))
    assert friday is not None and monday is not None
    assert friday.open == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
    assert monday.open == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert hours.is_open(datetime(2026, 3, 9, 13, 45, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 3, 6, 13, 45, tzinfo=UTC))


def test_autumn_dst_switch_moves_the_close_in_utc(hours: MarketHours) -> None:
    # DST ends Sunday 2026-11-01: Friday closes 20:00 UTC, Monday 21:00 UTC, both 16:00 NY.
    friday = hours.session(ny(2026, 10, 30, 12))
    monday = hours.session(ny(2026, 11, 2, 12))
    assert friday is not None and monday is not None
    assert friday.close == datetime(2026, 10, 30, 20, 0, tzinfo=UTC)
    assert monday.close == datetime(2026, 11, 2, 21, 0, tzinfo=UTC)
    assert hours.is_open(datetime(2026, 11, 2, 20, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 10, 30, 20, 30, tzinfo=UTC))


def test_the_new_york_date_decides_the_session_not_the_utc_date(hours: MarketHours) -> None:
    # 01:00 UTC on Wednesday the 25th is 20:00 New York on Tuesday the 24th: after the close.
    late = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    session = hours.session(late)
    assert session is not None and session.day == date(2026, 11, 24)
    assert not hours.is_open(late)


def test_next_open_skips_the_holiday_and_the_weekend(hours: MarketHours) -> None:
    assert hours.next_open(ny(2026, 11, 25, 17)) == ny(2026, 11, 27, 9, 30)
    assert hours.next_open(ny(2026, 11, 27, 14)) == ny(2026, 11, 30, 9, 30)
    assert hours.next_open(ny(2026, 11, 24, 8)) == ny(2026, 11, 24, 9, 30)


def test_dates_outside_the_first_span_extend_the_calendar(hours: MarketHours) -> None:
    # 2030-07-04 is Independence Day (a Thursday); 2030-07-05 a normal Friday.
    assert hours.session(ny(2030, 7, 4, 12)) is None
    assert hours.is_open(ny(2030, 7, 5, 12))


def test_naive_datetimes_are_refused(hours: MarketHours) -> None:
    with pytest.raises(ValueError, match="aware"):
        hours.is_open(datetime(2026, 11, 24, 12))


def test_christmas_and_new_year(hours: MarketHours) -> None:
    assert hours.session(ny(2026, 12, 25, 12)) is None
    assert hours.session(ny(2027, 1, 1, 12)) is None
    christmas_eve = hours.session(ny(2026, 12, 24, 10))
    assert christmas_eve is not None and christmas_eve.is_early_close
    assert christmas_eve.close - christmas_eve.open == timedelta(hours=3, minutes=30)


def _ny(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


# IB's format for the week of Thanksgiving 2026, in the contract's own time zone
LISTED = (
    "20261125:0930-20261125:1600;20261126:CLOSED;20261127:0930-20261127:1300;"
    "20261128:CLOSED;20261129:CLOSED;20261130:0930-20261130:1600"
)


def test_listed_hours_read_ibs_format_with_closed_days_and_an_early_close() -> None:
    listed = ListedHours.parse(LISTED, "US/Eastern")
    assert listed is not None
    assert (listed.first_day, listed.last_day) == (date(2026, 11, 25), date(2026, 11, 30))
    assert [s.day for s in listed.sessions] == [date(2026, 11, d) for d in (25, 27, 30)]
    assert listed.is_open(_ny(25, 15, 59)) and not listed.is_open(_ny(25, 16))
    assert not listed.is_open(_ny(26, 12))  # Thanksgiving
    assert listed.is_open(_ny(27, 12, 59)) and not listed.is_open(_ny(27, 13))
    assert listed.covers(_ny(29, 23, 59)) and not listed.covers(_ny(1, 0, month=12))


def test_a_listed_day_order_works_until_the_close_of_its_session() -> None:
    listed = ListedHours.parse(LISTED, "US/Eastern")
    assert listed is not None
    assert listed.working_close(_ny(25, 8)) == _ny(25, 16)  # before the open: today's close
    assert listed.working_close(_ny(25, 16)) == _ny(27, 13)  # at the close: the next session
    assert listed.working_close(_ny(28, 12)) == _ny(30, 16)  # the weekend: Monday's
    assert listed.working_close(_ny(30, 17)) is None  # beyond the listing


def test_a_day_with_two_listed_sessions_ends_at_its_last_close() -> None:
    listed = ListedHours.parse("20261118:0930-20261118:1200;20261118:1300-20261118:1600", "")
    assert listed is not None
    assert listed.working_close(_ny(18, 10)) == _ny(18, 16)
    assert not listed.is_open(_ny(18, 12, 30))


def test_a_listing_around_the_clock_is_open_at_any_hour() -> None:
    listed = ListedHours.parse("20261101:0000-20261102:0000;20261102:0000-20261103:0000", "")
    assert listed is not None
    sunday_night = datetime(2026, 11, 1, 22, 30, tzinfo=NY).astimezone(UTC)
    assert listed.is_open(sunday_night)


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("20261118:0930", "US/Eastern"),
        ("2026-11-18:0930-2026-11-18:1600", "US/Eastern"),
        ("20261118:1600-20261118:0930", "US/Eastern"),
        ("20261118:0930-20261118:1600", "Mars/Olympus_Mons"),
    ],
)
def test_unreadable_listings_are_a_typed_error(text: str, zone: str) -> None:
    with pytest.raises(ListedHoursError):
        ListedHours.parse(text, zone)


def test_an_empty_listing_is_no_listing() -> None:
    assert ListedHours.parse("", "US/Eastern") is None
    assert ListedHours.parse(" ; ", "US/Eastern") is None


def test_the_listing_answers_while_it_covers_the_instant_then_the_calendar(
    hours: MarketHours,
) -> None:
    around_the_clock = ListedHours.parse("20261129:0000-20261130:0000", "US/Eastern")
    sunday = _ny(29, 22)
    assert hours_at(sunday, around_the_clock, hours) is around_the_clock
    assert hours_at(_ny(30, 10), around_the_clock, hours) is hours
    assert hours_at(sunday, None, hours) is hours
    assert day_order_close(sunday, around_the_clock, hours) == _ny(30, 0)
    assert day_order_close(_ny(30, 10), around_the_clock, hours) == _ny(30, 16)
    assert day_order_close(sunday, None, None) is None
    assert hours.working_close(_ny(27, 14)) == _ny(30, 16)  # Black Friday after its close


def test_a_listing_that_ends_closed_hands_over_after_its_last_day(hours: MarketHours) -> None:
    """The listing says Black Friday is closed (an unscheduled closure): a DAY order placed
    then works in the next session after the listing, never in a session it says is closed."""
    closed = ListedHours.parse("20261126:CLOSED;20261127:CLOSED", "US/Eastern")
    assert closed is not None
    placed = _ny(27, 10)
    assert not closed.is_open(placed)
    assert day_order_close(placed, closed, hours) == _ny(30, 16)  # Monday's close


def test_a_directory_name_is_not_a_time_zone() -> None:
    with pytest.raises(ListedHoursError):
        ListedHours.parse("20261118:0930-20261118:1600", "US")
