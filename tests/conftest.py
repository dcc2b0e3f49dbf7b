"""Project-wide test hygiene.

- No test leaks logging configuration into the next one.
- No test reads the wall clock. Every ``SystemClock().now()`` (and so every simulator that
  was given no start time) reads the rig's fixed instant instead, ticking from there
  (``IBKR_TRADER_TEST_AT`` moves it: see :mod:`ibkr_trader.testing.instants`). A test that is
  about the real clock says so with ``@pytest.mark.wall_clock``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from ibkr_trader.clock import SystemClock
from ibkr_trader.testing import rig_instant
from ibkr_trader.testing.at import ticking_from

#: Every test that reads the rig's instant (a simulator, a rig, or a production default that
#: reads ``SystemClock``) and trades, closes, counts days or checks market hours:
#: ``make test-dates`` runs these (``-m dates``) at every instant of the sweep. Tests that build
#: their own ManualClock at a fixed date (risk checks, strategies, market hours, the journal's
#: day boundaries) give the same result at every instant and are not repeated; a test elsewhere
#: opts in with ``@pytest.mark.dates``.
DATE_SENSITIVE = (
    "tests/chaos/test_known_bugs.py",
    "tests/cli/",
    "tests/integration/",
    "tests/integrations/",
    "tests/journal/test_async.py",
    "tests/journal/test_migrations.py",
    "tests/journal/test_safety.py",
    "tests/orchestrator/",
    "tests/orders/",
    "tests/risk/test_commands.py",
    "tests/security/",
    "tests/sim/",
    "tests/test_cli.py",
    "tests/test_reconcile.py",
    "tests/testing/",
)
#: ... except these, which read no time at all (pure indicator arithmetic; a SIGKILL test of the
#: journal's file handling) or pin every instant they run at themselves (the compressed trading
#: week): the sweep would only spend minutes on them.
NOT_DATE_SENSITIVE = (
    "tests/integrations/test_indicators.py",
    "tests/journal/test_kill.py",
    "tests/orchestrator/test_trading_day.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where.startswith(DATE_SENSITIVE) and not where.startswith(NOT_DATE_SENSITIVE):
            item.add_marker(pytest.mark.dates)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _rig_time_instead_of_the_wall_clock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("wall_clock") is not None:
        return
    monkeypatch.setattr(SystemClock, "now", ticking_from(rig_instant()))
