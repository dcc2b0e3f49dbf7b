"""The operator's command line with click's CliRunner: run --once against the in-process
simulator, status / positions / close / config show with --json, and the exit-code policy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import structlog
from click.testing import CliRunner

from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.cli import app
from ibkr_trader.cli.errors import CommandGroup, exit_code_for
from ibkr_trader.config import ConfigError
from ibkr_trader.testing.instants import configuration_variables

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in configuration_variables():
        monkeypatch.delenv(name)
    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IBKR_TRADER_KILL_SWITCH", str(tmp_path / "HALT"))
    saved = structlog.get_config()
    yield tmp_path
    structlog.configure(**saved)  # the commands configure logging for the process


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def json_out(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output"
    data = json.loads(lines[-1])
    assert isinstance(data, dict)
    return data


def gameplan(tmp_path: Path, strategy: str = "A") -> Path:
    path = tmp_path / "gameplan.toml"
    path.write_text(f'strategy = "{strategy}"\nsymbols = ["SPY"]\nvix_at_analysis = 17.0\n')
    return path


def test_run_once_json_in_dry_run_against_the_in_process_simulator(tmp_path: Path) -> None:
    code, out, _ = invoke("run", "--once", "--json", "--gameplan", str(gameplan(tmp_path)))
    assert code == 0, out
    report = json_out(out)  # stdout is pure JSON: the logs went to stderr
    assert report["cycle"] == 1 and report["connected"] is True
    assert report["mode"] == "dry_run" and report["strategy"] == "A"
    assert "in-process simulated gateway" in str(report["target"])
    reconciliation = report["reconciliation"]
    assert isinstance(reconciliation, dict) and reconciliation["error"] is None
    # the in-process simulator replays an open market, whatever the day and hour
    assert report["market_open"] is True
    kinds = {a["kind"] for a in report["actions"]}  # type: ignore[union-attr]
    assert "reconcile" in kinds
    if report["entries_allowed"]:
        assert kinds & {"entry", "no_entry"}
    else:  # the last minutes before the close (15:45 New York, 12:45 on an early close)
        assert report["minutes_to_close"] is not None and report["minutes_to_close"] <= 15
        assert "close" in str(report["entry_block"]) and "entry" not in kinds
    assert (tmp_path / "home" / "journal-dry_run.sqlite3").exists()


def test_run_once_prints_a_readable_summary(tmp_path: Path) -> None:
    code, out, _ = invoke("run", "--once")
    assert code == 0
    for text in ("trading state", "ACTIVE", "governors", "Positions", "Decisions", "strategy C"):
        assert text in out


def test_status_json_reads_the_journal_and_the_kill_switch(tmp_path: Path) -> None:
    code, out, _ = invoke("status", "--json")
    assert code == 0 and json_out(out)["cause"] == "nothing journaled yet"
    assert invoke("run", "--once", "--json")[0] == 0
    code, out, _ = invoke("status", "--json")
    status = json_out(out)
    assert code == 0 and status["trading_state"] == "ACTIVE"
    assert status["last_cycle"] and status["last_reconciliation"]

    assert invoke("halt", "--reason", "test")[0] == 0
    status = json_out(invoke("status", "--json")[1])
    assert status["trading_state"] == "HALTED"
    assert status["kill_switch"] == {"path": str(tmp_path / "HALT"), "engaged": True}

    code, out, _ = invoke("run", "--once", "--json", "--gameplan", str(gameplan(tmp_path)))
    report = json_out(out)
    assert code == 1 and report["trading_state"] == "HALTED"  # a HALTED cycle is a refusal
    assert "kill switch" in str(report["entry_block"])
    assert invoke("resume")[0] == 0


def test_positions_and_close_all_json_with_no_positions() -> None:
    code, out, _ = invoke("positions", "--json")
    assert code == 0 and json_out(out) == {"mode": "dry_run", "positions": []}
    code, out, _ = invoke("close", "--all", "--reason", "MANUAL", "--json")
    result = json_out(out)
    assert code == 0 and result["ok"] is True and result["results"] == []


def test_close_of_a_position_that_is_not_open_is_a_failure() -> None:
    code, _, err = invoke("close", "SPY_NOPE")
    assert code == 1 and "not found" in err.lower()


@pytest.mark.parametrize(
    "args",
    [
        ("close",),  # neither a position nor --all
        ("close", "X", "--all"),
        ("close", "--all", "--reason", "BOGUS"),
        ("run", "--mode", "live", "--once"),
        ("run", "--interval", "abc"),
        ("config", "show", "--config", "/nonexistent/config.toml"),
    ],
)
def test_usage_and_configuration_errors_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = invoke(*args)
    assert code == 2, (out, err)


def test_config_show_json_redacts_the_account(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway]\naccount = 'DU7654321'\nport = 4002\n[run]\nmode = 'paper'\n")
    code, out, _ = invoke("config", "show", "--json", "--config", str(path))
    shown = json_out(out)
    assert code == 0
    assert shown["gateway"]["account"] == "DU***321"  # type: ignore[index]
    assert "DU7654321" not in out
    code, out, _ = invoke("config", "show", "--config", str(path))
    assert code == 0 and "DU***321" in out and "DU7654321" not in out


def test_unreachable_gateway_is_an_operational_failure(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = invoke("run", "--once", "--json", "--port", str(port))
    assert code == 1 and "error:" in err and out.strip() == ""


def test_exit_code_policy_maps_our_errors_and_interrupts() -> None:
    assert exit_code_for(KeyboardInterrupt()) == 130
    assert exit_code_for(ConfigError("x")) == 2
    assert exit_code_for(BrokerError("x")) == 1
    assert exit_code_for(ValueError("x")) is None

    @click.group(cls=CommandGroup)
    def demo() -> None:
        pass

    @demo.command()
    def interrupted() -> None:
        raise KeyboardInterrupt

    @demo.command()
    def broken() -> None:
        raise BrokerError("gateway said no")

    @demo.command()
    def bug() -> None:
        raise ValueError("a bug stays a traceback")

    assert runner.invoke(demo, ["interrupted"]).exit_code == 130
    result = runner.invoke(demo, ["broken"])
    assert result.exit_code == 1 and "error: gateway said no" in result.stderr
    assert isinstance(runner.invoke(demo, ["bug"]).exception, ValueError)


def test_logging_configured_by_a_command_survives_the_runner_closing_its_streams() -> None:
    from ibkr_trader.logging import get_logger

    assert invoke("config", "show", "--json")[0] == 0
    get_logger("test").error("after the runner's streams are closed")  # must not raise


def test_human_readable_status_positions_and_close_outputs() -> None:
    assert invoke("run", "--once")[0] == 0
    code, out, _ = invoke("status")
    assert code == 0 and "trading state: ACTIVE" in out and "kill switch: off" in out
    code, out, _ = invoke("positions")
    assert code == 0 and "Positions" in out and "(none)" in out
    code, out, _ = invoke("close", "--all")
    assert code == 0 and "no open positions" in out
