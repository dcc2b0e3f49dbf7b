"""Project-wide test hygiene.

- No test leaks logging configuration into the next one.
- No test reads the wall clock. Every ``SystemClock().now()`` (and so every simulator that
  was given no start time) reads the rig's fixed instant instead, ticking from there
  (``IBKR_TRADER_TEST_AT`` moves it: see :mod:`ibkr_trader.testing.instants`). A test that is
  about the real clock says so with ``@pytest.mark.wall_clock``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import structlog

from ibkr_trader.clock import SystemClock
from ibkr_trader.testing import INSTANT_ENV, INSTANTS, SWEEP, rig_instant
from ibkr_trader.testing.at import ticking_from
from ibkr_trader.testing.instants import instant_reads

#: Every test that reads the rig's instant (a simulator, a rig, or a production default that
#: reads ``SystemClock``) and trades, closes, counts days or checks market hours:
#: ``make test-dates`` runs these (``-m dates``) at every instant of the sweep. Tests that build
#: their own ManualClock at a fixed date (risk checks, strategies, market hours, the journal's
#: day boundaries) give the same result at every instant and are not repeated; a test elsewhere
#: opts in with ``@pytest.mark.dates``.
DATE_SENSITIVE = (
    "tests/broker/test_connection_sim.py",
    "tests/broker/test_market_data_sim.py",
    "tests/broker/test_orders_sim.py",
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
    "tests/testing/",
)
#: ... except these, whose tests cannot depend on the rig's instant: they read no time at all
#: (indicator arithmetic, wire codecs, the journal's file handling) or pin every instant they run
#: at themselves (the compressed trading week, the protection drills, the known-bug regressions,
#: the simulator's catalogue and state on their own clocks). The sweep would only spend minutes
#: on them. The guard below keeps both lists honest: a test outside the sweep that reads the
#: rig's instant (a simulator or rig without ``at=``, or ``SystemClock``) fails, naming itself.
NOT_DATE_SENSITIVE = (
    "tests/cli/test_view.py",
    "tests/integrations/test_feature_flags.py",
    "tests/integrations/test_indicators.py",
    "tests/integrations/test_market_data_types.py",
    "tests/journal/test_kill.py",
    "tests/orchestrator/test_alerts.py",
    "tests/orchestrator/test_dry_run_vs_paper.py",
    "tests/orchestrator/test_protection.py",
    "tests/orchestrator/test_trading_day.py",
    "tests/orders/test_exposure.py",
    "tests/orders/test_handoff_imports.py",
    "tests/orders/test_regressions.py",
    "tests/sim/test_client_flows_standalone.py",
    "tests/sim/test_codec.py",
    "tests/sim/test_contracts.py",
    "tests/sim/test_expiry.py",
    "tests/sim/test_market.py",
    "tests/sim/test_matching.py",
    "tests/sim/test_server_cli.py",
    "tests/sim/test_state.py",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--instants",
        default="",
        help="run every date-sensitive test once at each of these instants (comma-separated "
        "names of ibkr_trader.testing.INSTANTS, or 'sweep' for the date sweep's), in this "
        "process: what `make test-dates` does",
    )


def _date_sensitive(config: pytest.Config, path: Path, marked: bool) -> bool:
    where = path.relative_to(config.rootpath).as_posix()
    by_path = where.startswith(DATE_SENSITIVE) and not where.startswith(NOT_DATE_SENSITIVE)
    return by_path or marked


def _instants(config: pytest.Config) -> list[str]:
    text = str(config.getoption("--instants") or "").strip()
    if not text:
        return []
    names: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        for one in SWEEP if name == "sweep" else (name,):
            if one not in INSTANTS:
                raise pytest.UsageError(f"--instants: unknown instant {one!r}")
            if one not in names:
                names.append(one)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With ``--instants``, every date-sensitive test runs once per instant (``[at=name]``; no ``@``: pytest-xdist splits groups at it)."""
    names = _instants(metafunc.config)
    marked = metafunc.definition.get_closest_marker("dates") is not None
    if names and _date_sensitive(metafunc.config, metafunc.definition.path, marked):
        metafunc.parametrize("rig_at", names, ids=[f"at={n}" for n in names])


def _instant_free_id(item: pytest.Item, instant: str) -> str:
    """The test's id without its instant: the same for every instant it runs at."""
    return item.nodeid.replace(f"at={instant}", "at=*")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _date_sensitive(config, item.path, False):
            item.add_marker(pytest.mark.dates)


#: Tests of this process that read no instant at the first instant they ran at (sweep only:
#: the sweep hands a module's tests to one worker, ``--dist loadscope``, so a test's instants
#: run in one process, in order).
_INSTANT_FREE: dict[str, str] = {}


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
def rig_at() -> str:
    """The named instant this run of the test is at ('' : ``IBKR_TRADER_TEST_AT`` or the
    default); ``--instants`` parametrizes it."""
    return ""


@pytest.fixture(autouse=True)
def _rig_time_instead_of_the_wall_clock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, rig_at: str
) -> Iterator[None]:
    sweep_id = _instant_free_id(request.node, rig_at) if rig_at else ""
    if rig_at:  # every rig_instant() of this test (rigs, simulators, subprocesses) reads it
        request.node.user_properties.append(("instant", rig_at))
        first = _INSTANT_FREE.get(sweep_id)
        if first is not None:
            # it read no instant at `first`: it ran the same code there as it would here
            pytest.skip(f"reads no instant: its run at {first} stands for every instant")
        monkeypatch.setenv(INSTANT_ENV, rig_at)
    if request.node.get_closest_marker("wall_clock") is not None:
        yield
        return
    ticking = ticking_from(rig_instant())
    clock_reads = [0]

    def now(self: SystemClock) -> datetime:
        clock_reads[0] += 1
        return ticking(self)

    monkeypatch.setattr(SystemClock, "now", now)
    before = instant_reads()
    yield
    if rig_at and os.environ.get(INSTANT_ENV) != rig_at:
        pytest.fail(
            f"{request.node.nodeid} removed or changed {INSTANT_ENV} (an environment clean-up?):"
            " the sweep's instant must reach every rig, simulator and subprocess of the test",
            pytrace=False,
        )
    reads = clock_reads[0] + instant_reads() - before
    if rig_at and not reads:
        _INSTANT_FREE.setdefault(sweep_id, rig_at)
    if reads and request.node.get_closest_marker("dates") is None:
        pytest.fail(
            f"{request.node.nodeid} reads the rig's instant ({reads} times: a simulator or rig "
            "without at=, or SystemClock) but the date sweep does not run it: add its file to "
            "DATE_SENSITIVE in tests/conftest.py, or pin the instant it runs at",
            pytrace=False,
        )
