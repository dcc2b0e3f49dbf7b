"""The test rig itself: its instants, its clock guard, contract choice by rule, the
subprocess runner and the date sweep's bookkeeping."""

from __future__ import annotations

import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ibkr_trader.clock import NY, ManualClock, SystemClock, days_to_expiry
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.testing import (
    DEFAULT_INSTANT,
    INSTANT_ENV,
    INSTANTS,
    SWEEP,
    open_sim,
    parse_instant,
    rig_instant,
    select_expiry,
    sweep,
    trading_rig,
)
from ibkr_trader.testing import at as at_module

pytest_plugins = ["pytester"]


def _ny(when: datetime) -> datetime:
    return when.astimezone(NY)


def test_instants_parse_by_name_and_by_new_york_time() -> None:
    assert parse_instant("new-years-eve") == INSTANTS["new-years-eve"]
    when = parse_instant("2026-12-01 10:30")
    assert when.tzinfo is not None and _ny(when).hour == 10 and _ny(when).minute == 30
    with pytest.raises(ValueError, match=INSTANT_ENV):
        parse_instant("next tuesday")
    assert rig_instant({}) == DEFAULT_INSTANT
    assert rig_instant({INSTANT_ENV: "monday-open"}) == INSTANTS["monday-open"]


def test_the_sweep_covers_the_calendars_corners() -> None:
    hours = MarketHours(ManualClock(DEFAULT_INSTANT))
    at = {name: _ny(INSTANTS[name]) for name in SWEEP}
    assert (at["monday-open"].weekday(), at["monday-open"].strftime("%H:%M")) == (0, "09:31")
    assert (at["tuesday-morning"].weekday(), at["tuesday-morning"].hour) == (1, 11)
    friday = at["friday-before-close"]
    assert (friday.weekday(), friday.strftime("%H:%M")) == (4, "15:50")
    eve = INSTANTS["thanksgiving-eve"]
    assert hours.session(eve) is not None and hours.session(eve + timedelta(days=1)) is None
    early = INSTANTS["black-friday-early-close"]
    session = hours.session(early)
    assert session is not None and session.is_early_close and session.contains(early)
    assert _ny(early).strftime("%H:%M") == "12:50"
    for name in ("dst-end-sunday-night", "dst-start-sunday-night"):
        night = at[name]
        assert night.weekday() == 6 and night.hour >= 18
        morning = night.replace(hour=0, minute=0)
        assert morning.utcoffset() != (morning + timedelta(days=1)).utcoffset()
    assert at["new-years-eve"].strftime("%m-%d") == "12-31"
    assert DEFAULT_INSTANT not in [INSTANTS[n] for n in SWEEP]  # the default is its own point
    assert hours.entries_allowed(DEFAULT_INSTANT)  # mid-session


def test_the_wall_clock_reads_the_rigs_instant() -> None:
    now = SystemClock().now()
    assert timedelta(0) <= now - rig_instant() < timedelta(seconds=30)


@pytest.mark.wall_clock
def test_a_test_about_the_real_clock_says_so_and_reads_it() -> None:
    assert abs(SystemClock().now() - datetime.now(UTC)) < timedelta(seconds=5)


async def test_the_simulator_and_the_rig_share_one_clock(tmp_path: Path) -> None:
    async with trading_rig(tmp_path, at=DEFAULT_INSTANT) as rig:
        assert timedelta(0) <= rig.clock.now() - DEFAULT_INSTANT < timedelta(seconds=30)
        assert rig.gateway.is_connected
        # what the journal stamps and what the gateway reports are the simulator's time
        rig.journal.record_event("probe", {})
        stamped = rig.journal.events(kind="probe")[-1].at
        assert timedelta(0) <= stamped - DEFAULT_INSTANT < timedelta(seconds=30)
        server = await rig.gateway.server_time(5.0)
        assert abs(server - rig.clock.now()) < timedelta(seconds=5)


async def test_expiries_are_chosen_by_rule_on_the_rigs_date() -> None:
    async with open_sim() as sim:
        expiry = select_expiry(sim)
        dte = days_to_expiry(expiry, sim.clock.now())
        assert dte is not None and 7 <= dte <= 21
        assert all(
            not 7 <= (days_to_expiry(e, sim.clock.now()) or -1) < dte
            for e in sim.catalog.expirations("SPY")
        )
        with pytest.raises(LookupError, match="no SPY expiry"):
            select_expiry(sim, min_dte=400, max_dte=401)


def test_a_module_runs_at_an_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "what_time.py").write_text(textwrap.dedent("""
            from ibkr_trader.clock import SystemClock
            print(SystemClock().now().isoformat())
            """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(SystemClock, "now", SystemClock.now)  # restored after the test
    at_module.main(["new-years-eve", "what_time"])
    printed = datetime.fromisoformat(capsys.readouterr().out.strip())
    assert timedelta(0) <= printed - INSTANTS["new-years-eve"] < timedelta(seconds=5)
    at_module.main([INSTANTS["monday-open"].isoformat(), "what_time"])
    printed = datetime.fromisoformat(capsys.readouterr().out.strip())
    assert timedelta(0) <= printed - INSTANTS["monday-open"] < timedelta(seconds=5)
    with pytest.raises(SystemExit, match="usage"):
        at_module.main(["monday-open"])


_REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.a" name="test_x[at=monday-open]">
  <properties><property name="instant" value="monday-open"/></properties></testcase>
<testcase classname="tests.a" name="test_x[at=new-years-eve]">
  <properties><property name="instant" value="new-years-eve"/></properties>
  <failure message="assert 3 == 4&#10;more">trace</failure></testcase>
<testcase classname="tests.a" name="test_y[at=new-years-eve]">
  <properties><property name="instant" value="new-years-eve"/></properties>
  <skipped message="no"/></testcase>
<testcase classname="tests.b" name="test_z"><error message="collection">x</error></testcase>
</testsuite></testsuites>"""


def test_the_sweep_reads_each_instants_outcome_from_the_junit_report() -> None:
    outcomes = sweep.read_report(_REPORT, ["monday-open", "new-years-eve", "thanksgiving-eve"])
    assert outcomes["monday-open"].counts == {"passed": 1} and outcomes["monday-open"].ok
    eve = outcomes["new-years-eve"]
    assert eve.counts == {"failed": 1, "skipped": 1} and not eve.ok
    assert eve.failures == ["tests.a::test_x[at=new-years-eve]: assert 3 == 4"]
    assert outcomes["thanksgiving-eve"].counts == {} and not outcomes["thanksgiving-eve"].ok
    assert outcomes["(no instant)"].counts == {"errors": 1}


def test_the_sweep_fails_on_any_failure_and_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[list[str], int]] = []

    def fake(instants: list[str], jobs: int, args: list[str]) -> tuple[int, str]:
        calls.append((list(instants), jobs))
        return (1 if "new-years-eve" in instants else 0), _REPORT

    monkeypatch.setattr(sweep, "run_pytest", fake)
    assert sweep.main(["--jobs", "3"]) == 1
    assert calls[-1] == (list(SWEEP), 3)
    out = capsys.readouterr().out
    assert "FAIL new-years-eve" in out and "assert 3 == 4" in out
    assert out.rstrip().splitlines()[-1].startswith("dates: 1 passed, 2 failed")
    assert sweep.main(["--at", "monday-open"]) == 1  # the stray error is reported, and fails
    assert "(no instant)" in capsys.readouterr().out

    monkeypatch.setattr(
        sweep,
        "run_pytest",
        lambda i, j, a: (0, _REPORT.split("<testcase")[0] + "</testsuite></testsuites>"),
    )
    assert sweep.main(["--at", "monday-open"]) == 1  # nothing ran at the instant: not ok


def test_a_test_outside_the_sweep_that_reads_the_rigs_instant_fails(
    pytester: pytest.Pytester,
) -> None:
    """The guard of tests/conftest.py: DATE_SENSITIVE cannot silently miss a test."""
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.mkdir("tests")
    pytester.makepyfile(
        **{
            "tests/test_outside.py": """
from ibkr_trader.clock import ManualClock, SystemClock
from ibkr_trader.testing import DEFAULT_INSTANT

def test_reads_the_wall_clock_default():
    assert SystemClock().now().year >= 2026

def test_on_its_own_clock():
    assert ManualClock(DEFAULT_INSTANT).now() == DEFAULT_INSTANT
""",
            "tests/cli/test_inside.py": """
from ibkr_trader.clock import SystemClock

def test_swept():
    assert SystemClock().now().year >= 2026
""",
        }
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*test_reads_the_wall_clock_default reads the rig's instant*"])
    swept = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "dates", "--co", "-q")
    swept.stdout.fnmatch_lines(["tests/cli/test_inside.py::test_swept"])
