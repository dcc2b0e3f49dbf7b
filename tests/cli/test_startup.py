"""What each non-trading command loads at start-up (``bench/bench_cli.py`` times it).

Every command runs in a fresh interpreter (the rig's instant as its clock, every file under
``tmp_path``) and reports the heavy packages it imported: none of them loads pydantic (the
configuration is :mod:`ibkr_trader.settings`' dataclasses, the journal's records use
:mod:`ibkr_trader.models`, which has none), structlog, ib_async, pandas or exchange_calendars,
and only the ones that draw a table load rich.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.conftest import child_env
from ibkr_trader.cli import app
from ibkr_trader.testing import rig_instant

HEAVY = frozenset(
    {
        "click",
        "exchange_calendars",
        "ib_async",
        "pandas",
        "pydantic",
        "rich",
        "sqlite3",
        "structlog",
    }
)

_DRIVER = """
import json, sys
from datetime import datetime
import ibkr_trader.clock as clock
clock.SystemClock.now = lambda self: datetime.fromisoformat({instant!r})
sys.argv = ["ibkr-trader", *{args!r}]
from ibkr_trader.cli import main
try:
    main()
finally:
    heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
    print("LOADED " + json.dumps(heavy), file=sys.stderr)
"""


def loaded(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """The heavy packages ``ibkr-trader ARGS`` imported, and its stderr (the report cut)."""
    env = child_env()  # the home and kill switch under tmp_path (conftest's clean_env)
    assert env["IBKR_TRADER_HOME"].startswith(str(tmp_path))
    code = _DRIVER.format(instant=rig_instant().isoformat(), args=list(args), heavy=sorted(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    err, _, report = done.stderr.rpartition("LOADED ")
    return set(json.loads(report)), err


@pytest.fixture
def journaled(tmp_path: Path) -> Path:
    """A journal with a halt and a resume in it (the bot left ACTIVE)."""
    runner = CliRunner()
    for command in (["halt", "--reason", "drill"], ["resume"]):
        assert runner.invoke(app, command).exit_code == 0
    return tmp_path


@pytest.mark.parametrize("args", [("--help",), ("version",), ("halt", "--help")])
def test_help_and_version_load_click_only(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert loaded(tmp_path, *args)[0] == {"click"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("status",), {"click", "sqlite3"}),
        (("status", "--json"), {"click", "sqlite3"}),
        (("resume",), {"click", "sqlite3"}),  # already ACTIVE: nothing logged
        (("halt", "--reason", "drill"), {"click", "sqlite3"}),  # logged without structlog
        (("journal", "events", "--json"), {"click", "sqlite3"}),
        (("journal", "events"), {"click", "rich", "sqlite3"}),
        (("journal",), {"click", "rich", "sqlite3"}),
        (("config", "show"), {"click"}),
        (("config", "show", "--json"), {"click"}),
    ],
)
def test_commands_that_answer_from_the_journal_load_what_they_use(
    journaled: Path, args: tuple[str, ...], expected: set[str]
) -> None:
    assert loaded(journaled, *args)[0] == expected


def test_a_halt_that_changes_the_state_logs_it_without_structlog(
    journaled: Path,
) -> None:
    heavy, err = loaded(journaled, "halt", "--reason", "drill", "--json")
    assert "structlog" not in heavy and "rich" not in heavy
    assert "[warning  ] trading_state_changed" in err and "state=HALTED" in err
    heavy, err = loaded(journaled, "halt", "--reason", "again")  # HALTED already
    assert "structlog" not in heavy and "trading_state_changed" not in err


def test_a_logging_configuration_left_unused_is_dropped_with_the_command(
    journaled: Path,
) -> None:
    import ibkr_trader.logging as logs

    assert CliRunner().invoke(app, ["resume"]).exit_code == 0  # asked for logging, logged nothing
    assert logs._pending == []
    result = CliRunner().invoke(app, ["halt", "--json"])  # logs: configured at that event
    assert result.exit_code == 0 and "trading_state_changed" in result.stderr
    assert json.loads(result.stdout)["trading_state"] == "HALTED"
    assert logs._pending == []
