from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ibkr_trader.cli import app
from ibkr_trader.models import ExecutionMode, TradingState
from ibkr_trader.risk import killswitch
from ibkr_trader.testing.instants import configuration_variables


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands write the configured journal: keep it (and the config) under tmp_path."""
    for name in configuration_variables():
        monkeypatch.delenv(name)
    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IBKR_TRADER_KILL_SWITCH", str(tmp_path / "default-HALT"))


def test_halt_creates_the_kill_switch_and_resume_removes_it(tmp_path: Path) -> None:
    switch = tmp_path / "HALT"
    runner = CliRunner()
    out = runner.invoke(app, ["halt", "--reason", "drill", "--kill-switch", str(switch), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["trading_state"] == "HALTED"
    assert killswitch.is_engaged(switch) and "drill" in killswitch.read_reason(switch)
    out = runner.invoke(app, ["resume", "--kill-switch", str(switch), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["kill_switch_removed"] is True
    assert not switch.exists()


def test_default_kill_switch_path_follows_the_environment(tmp_path: Path) -> None:
    target = tmp_path / "k"
    assert killswitch.default_kill_switch_path({"IBKR_TRADER_KILL_SWITCH": str(target)}) == target
    assert killswitch.default_kill_switch_path({}).name == "HALT"


def test_bare_touched_file_has_a_generic_reason(tmp_path: Path) -> None:
    switch = tmp_path / "HALT"
    switch.touch()
    assert killswitch.read_reason(switch) == "kill-switch file present"
    assert killswitch.disengage(switch) and not killswitch.disengage(switch)


def test_invalid_mode_is_a_usage_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["halt", "--kill-switch", str(tmp_path / "H"), "--mode", "live"])
    assert out.exit_code == 2


def test_halt_and_resume_are_recorded_in_the_journal(tmp_path: Path) -> None:
    journal_mod = pytest.importorskip("ibkr_trader.journal")
    switch, path = tmp_path / "HALT", tmp_path / "j.sqlite"
    runner = CliRunner()
    args = ["--kill-switch", str(switch), "--journal", str(path)]
    out = runner.invoke(app, ["halt", "--reason", "drill", *args])
    assert out.exit_code == 0, out.output
    with journal_mod.Journal.open(path, ExecutionMode.DRY_RUN) as journal:
        state, cause = journal.last_trading_state()
        assert state is TradingState.HALTED and "drill" in cause
    out = runner.invoke(app, ["resume", *args, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["trading_state"] == "ACTIVE"
    with journal_mod.Journal.open(path, ExecutionMode.DRY_RUN) as journal:
        assert journal.last_trading_state()[0] is TradingState.ACTIVE
