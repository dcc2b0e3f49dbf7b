"""``journal`` and ``explain`` through click's CliRunner against a temp journal.

The two commands are registered in a group with the command line's exit-code policy
(:class:`ibkr_trader.cli.errors.CommandGroup`), reading the time from a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ibkr_trader.cli.errors import CommandGroup
from ibkr_trader.cli.journal import parse_since, register
from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import Journal
from ibkr_trader.models import ExecutionMode, OrderStatus, TradeRequest, ValidationResult
from ibkr_trader.testing.instants import configuration_variables

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_outside_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read the configuration: none from this machine's environment."""
    for name in configuration_variables():
        monkeypatch.delenv(name)
    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path / "home"))


@pytest.fixture
def app() -> click.Group:
    the_app = CommandGroup("ibkr-trader")
    register(the_app, clock=ManualClock(NOW))
    return the_app


@pytest.fixture
def populated(
    tmp_path: Path,
    make_request: Callable[..., TradeRequest],
    make_result: Callable[..., ValidationResult],
) -> tuple[Path, str]:
    path = tmp_path / "j.sqlite3"
    clock = ManualClock(NOW - timedelta(days=3))
    with Journal.open(path, ExecutionMode.DRY_RUN, clock) as j:
        j.record_risk_decision(make_request(symbol="QQQ"), make_result(approved=False))
        clock.set(NOW - timedelta(hours=1))
        request = make_request(action="SELL", is_closing=True, closure_reason="EMERGENCY_STOP")
        decision_id = j.record_risk_decision(request, make_result())
        coid = j.record_intent(request, decision_id=decision_id).intent.client_order_id
        j.record_status(coid, "Submitted", 0, 2)
        j.record_fill(
            "exec-1",
            client_order_id=coid,
            symbol="SPY",
            contract_key=request.contract_key,
            side="SELL",
            quantity=2,
            price=0.75,
        )
        j.record_status(coid, "Filled", 2, 0, 0.75)
        j.record_result(coid, OrderStatus.FILLED, fill_price=0.75, fill_quantity=2)
        j.record_closure(
            "EMERGENCY_STOP",
            symbol="SPY",
            contract_key=request.contract_key,
            quantity=2,
            client_order_id=coid,
        )
        j.record_connection_event("disconnected", {"code": 1100})
    return path, coid


def test_journal_orders_lists_the_intent_with_its_status(
    app: click.Group, populated: tuple[Path, str]
) -> None:
    path, coid = populated
    result = CliRunner().invoke(app, ["journal", "orders", "--path", str(path)])
    assert result.exit_code == 0, result.output
    assert coid in result.output
    assert "Filled" in result.output
    assert "EMERGENCY_STOP" in result.output
    assert str(path) in result.output.replace("\n", "")


@pytest.mark.parametrize("listing", ["fills", "closures", "decisions", "events"])
def test_every_listing_renders(app: click.Group, populated: tuple[Path, str], listing: str) -> None:
    path, _ = populated
    result = CliRunner().invoke(app, ["journal", listing, "--path", str(path)])
    assert result.exit_code == 0, result.output
    expected = {
        "fills": "exec-1",
        "closures": "EMERGENCY_STOP",
        "decisions": "2 contracts > limit 1",
        "events": "disconnected",
    }[listing]
    assert expected in result.output


def test_journal_json_respects_since_and_symbol(
    app: click.Group, populated: tuple[Path, str]
) -> None:
    path, _ = populated
    runner = CliRunner()
    everything = runner.invoke(app, ["journal", "decisions", "--json", "--path", str(path)])
    recent = runner.invoke(
        app, ["journal", "decisions", "--json", "--since", "2h", "--path", str(path)]
    )
    qqq = runner.invoke(
        app, ["journal", "decisions", "--json", "--symbol", "qqq", "--path", str(path)]
    )
    assert [len(json.loads(r.output)["rows"]) for r in (everything, recent, qqq)] == [2, 1, 1]
    row = json.loads(qqq.output)["rows"][0]
    assert row["approved"] is False
    assert row["checks"][1]["limit"] == 1
    assert json.loads(everything.output)["mode"] == "dry_run"


def test_explain_shows_checks_statuses_fills_and_closure_reason(
    app: click.Group, populated: tuple[Path, str]
) -> None:
    path, coid = populated
    result = CliRunner().invoke(app, ["explain", coid, "--path", str(path)])
    assert result.exit_code == 0, result.output
    for text in ("contracts_per_order", "Submitted", "Filled", "exec-1", "EMERGENCY_STOP"):
        assert text in result.output


def test_explain_json_carries_the_closure_reason(
    app: click.Group, populated: tuple[Path, str]
) -> None:
    path, coid = populated
    result = CliRunner().invoke(app, ["explain", coid, "--json", "--path", str(path)])
    payload = json.loads(result.output)
    assert payload["closure_reason"] == "EMERGENCY_STOP"
    assert [s["status"] for s in payload["statuses"]] == ["Submitted", "Filled"]
    assert payload["decision"]["approved"] is True


def test_explain_unknown_order_exits_1(app: click.Group, populated: tuple[Path, str]) -> None:
    path, _ = populated
    result = CliRunner().invoke(app, ["explain", "NOPE-1", "--path", str(path)])
    assert result.exit_code == 1
    assert "no order 'NOPE-1'" in result.stderr


def test_wrong_mode_or_missing_journal_exits_1_with_a_message(
    app: click.Group, populated: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = populated
    runner = CliRunner()
    wrong = runner.invoke(app, ["journal", "--mode", "paper", "--path", str(path)])
    assert wrong.exit_code == 1  # the policy: not found / a journal problem is 1, like explain
    assert "never mix" in wrong.stderr
    missing = runner.invoke(app, ["journal", "--path", str(tmp_path / "none.sqlite3")])
    assert missing.exit_code == 1
    assert "nothing journaled yet" in missing.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_bad_since_is_a_usage_error(app: click.Group, populated: tuple[Path, str]) -> None:
    path, _ = populated
    result = CliRunner().invoke(app, ["journal", "--since", "yesterday", "--path", str(path)])
    assert result.exit_code == 2
    assert "--since" in result.output + result.stderr


def test_parse_since_forms() -> None:
    assert parse_since("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("1w", NOW) == NOW - timedelta(weeks=1)
    day = parse_since("2026-03-02", NOW)
    assert day.astimezone(UTC) == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # NY midnight (EST)
    assert parse_since("2026-03-02T10:00:00+00:00", NOW) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
