"""Run a module as ``__main__`` with the wall clock replaced by a market instant.

``python -m ibkr_trader.testing.at INSTANT MODULE [ARGS...]`` reads INSTANT as
:func:`~ibkr_trader.testing.instants.parse_instant` does (a name, ``YYYY-MM-DD HH:MM`` New York
time, or an aware ISO timestamp), makes every ``SystemClock().now()`` of the process tick from
there, and runs MODULE with ARGS. Tests use it to run a command in a subprocess without letting
it read this machine's date.
"""

from __future__ import annotations

import runpy
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from ibkr_trader.clock import SystemClock
from ibkr_trader.testing.instants import parse_instant


def ticking_from(start: datetime) -> Callable[[SystemClock], datetime]:
    """A ``SystemClock.now`` that starts at ``start`` now and ticks with real time."""
    anchor = time.monotonic()

    def now(self: SystemClock) -> datetime:
        return start + timedelta(seconds=time.monotonic() - anchor)

    return now


def install(start: datetime) -> None:
    """Make ``SystemClock.now`` tick from ``start`` in this process."""
    SystemClock.now = ticking_from(start)  # type: ignore[method-assign,assignment]


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_instant(text)
    if when.tzinfo is None:
        return parse_instant(text)
    return when


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m ibkr_trader.testing.at INSTANT MODULE [ARGS...]")
    install(_instant(argv[0]))
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses
    main(sys.argv[1:])
