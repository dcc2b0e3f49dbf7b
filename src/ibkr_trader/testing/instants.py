"""The market instants the test rig runs at.

The suite never reads the wall clock: every rig starts its simulated gateway, and every
component it builds, at one fixed New York instant. By default that is
:data:`DEFAULT_INSTANT`, a mid-session Wednesday; ``IBKR_TRADER_TEST_AT`` moves it, either to
one of the named instants of :data:`INSTANTS` (the date sweep, ``make test-dates``, runs the
date-sensitive tests at each of them) or to any ``YYYY-MM-DD HH:MM`` New York time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime

from ibkr_trader.clock import NY

__all__ = [
    "DEFAULT_INSTANT",
    "INSTANTS",
    "INSTANT_ENV",
    "SWEEP",
    "configuration_variables",
    "instant_reads",
    "parse_instant",
    "rig_instant",
]

INSTANT_ENV = "IBKR_TRADER_TEST_AT"


def _ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


#: Named instants (aware UTC). The sweep's instants cover the calendar's corners: the first
#: minute after the open, the last minutes before a normal and an early close, the eve of a
#: holiday, a Sunday night of a daylight-saving switch (both directions), New Year's Eve.
INSTANTS: Mapping[str, datetime] = {
    "wednesday-midsession": _ny(2026, 11, 18, 11, 0),
    "monday-open": _ny(2026, 11, 30, 9, 31),
    "tuesday-morning": _ny(2026, 12, 1, 11, 0),
    "friday-before-close": _ny(2026, 11, 20, 15, 50),
    "thanksgiving-eve": _ny(2026, 11, 25, 14, 0),
    "black-friday-early-close": _ny(2026, 11, 27, 12, 50),
    "dst-end-sunday-night": _ny(2026, 11, 1, 22, 30),
    "dst-start-sunday-night": _ny(2027, 3, 14, 22, 30),
    "new-years-eve": _ny(2026, 12, 31, 15, 0),
}

#: What the rig uses when nothing is asked for: a Wednesday at 11:00 New York, mid-session,
#: with an hour and a half of one-minute bars behind it and listed expiries every day.
DEFAULT_INSTANT = INSTANTS["wednesday-midsession"]

#: The instants ``make test-dates`` runs the date-sensitive tests at, in order.
SWEEP: tuple[str, ...] = (
    "monday-open",
    "tuesday-morning",
    "friday-before-close",
    "thanksgiving-eve",
    "black-friday-early-close",
    "dst-end-sunday-night",
    "dst-start-sunday-night",
    "new-years-eve",
)


def parse_instant(text: str) -> datetime:
    """A named instant, or ``YYYY-MM-DD HH:MM`` (New York time), as an aware UTC datetime."""
    text = text.strip()
    if text in INSTANTS:
        return INSTANTS[text]
    try:
        naive = datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        names = ", ".join(INSTANTS)
        raise ValueError(
            f"{INSTANT_ENV}={text!r}: expected one of {names} or 'YYYY-MM-DD HH:MM' (New York)"
        ) from None
    return naive.replace(tzinfo=NY).astimezone(UTC)


_reads = [0]


def instant_reads() -> int:
    """How many times :func:`rig_instant` has answered in this process (the suite's conftest
    uses it to tell a test that depends on the rig's instant from one that cannot)."""
    return _reads[0]


def rig_instant(env: Mapping[str, str] | None = None) -> datetime:
    """The instant the rig starts at: ``$IBKR_TRADER_TEST_AT`` or :data:`DEFAULT_INSTANT`."""
    _reads[0] += 1
    source = os.environ if env is None else env
    text = source.get(INSTANT_ENV, "")
    return parse_instant(text) if text.strip() else DEFAULT_INSTANT


def configuration_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """The ``IBKR_TRADER*`` variables a test that isolates the configuration removes: all of
    them but the rig's instant (:data:`INSTANT_ENV`), which must reach every rig, simulator
    and subprocess of the test (the date sweep sets it)."""
    source = os.environ if env is None else env
    return [n for n in source if n.startswith("IBKR_TRADER") and n != INSTANT_ENV]
