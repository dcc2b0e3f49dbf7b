"""The daily gameplan: validated, unknown keys refused, and never a crash (-> strategy C)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ibkr_trader.clock import ManualClock
from ibkr_trader.strategies.gameplan import (
    DailyGameplan,
    load_gameplan,
    parse_gameplan,
    strategy_for,
)
from ibkr_trader.strategies.strategy_a import StrategyA
from ibkr_trader.strategies.strategy_b import StrategyB
from ibkr_trader.strategies.strategy_c import StrategyC

GOOD_TOML = """
strategy = "A"
symbols = ["SPY", "qqq"]
vix_at_analysis = 17.4
session_date = 2026-11-24
notes = "trend day expected"

[key_levels]
SPY = { support = 580.0, resistance = 596.5 }
QQQ = [500, 510.5]

[hard_limits]
max_position_pct = 0.01
max_open_positions = 2
allow_short_options = false
symbol_allowlist = ["SPY"]
"""

GOOD_JSON: dict[str, Any] = {
    "strategy": "B",
    "symbols": ["SPY"],
    "vix_at_analysis": 22.0,
    "key_levels": {"SPY": 590.0},
    "hard_limits": {"max_daily_loss_pct": 0.02},
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_toml_gameplan_loads(tmp_path: Path) -> None:
    load = load_gameplan(write(tmp_path, "plan.toml", GOOD_TOML), today=date(2026, 11, 24))
    assert load.ok, load.message
    plan = load.gameplan
    assert plan.strategy == "A"
    assert plan.symbols == ("SPY", "QQQ")
    assert plan.vix_at_analysis == 17.4
    assert plan.key_levels["SPY"] == {"support": 580.0, "resistance": 596.5}
    assert plan.hard_limits == {
        "max_position_pct": 0.01,
        "max_open_positions": 2,
        "allow_short_options": False,
        "symbol_allowlist": ["SPY"],
    }
    assert plan.allows_entries
    assert "strategy A on SPY, QQQ" in load.message


def test_a_valid_json_gameplan_loads(tmp_path: Path) -> None:
    load = load_gameplan(write(tmp_path, "plan.json", json.dumps(GOOD_JSON)))
    assert load.ok
    assert load.gameplan.strategy == "B"
    assert load.source == tmp_path / "plan.json"


def test_unknown_keys_are_refused_and_fall_back_to_c(tmp_path: Path) -> None:
    path = write(tmp_path, "plan.json", json.dumps({**GOOD_JSON, "max_loss": 500}))
    load = load_gameplan(path)
    assert not load.ok
    assert load.gameplan.strategy == "C"
    assert not load.gameplan.allows_entries
    assert "max_loss" in load.message
    assert "strategy C" in load.message
    assert any("max_loss" in e for e in load.errors)


def test_the_model_itself_refuses_unknown_keys_and_is_frozen() -> None:
    with pytest.raises(ValidationError):
        DailyGameplan.model_validate({**GOOD_JSON, "extra": 1})
    plan = DailyGameplan.model_validate(GOOD_JSON)
    with pytest.raises(ValidationError):
        plan.strategy = "A"  # type: ignore[misc]


def test_a_missing_file_falls_back_to_c_with_a_clear_message(tmp_path: Path) -> None:
    load = load_gameplan(tmp_path / "nope.toml")
    assert not load.ok
    assert load.gameplan.strategy == "C"
    assert "not found" in load.message


def test_no_gameplan_given_is_strategy_c() -> None:
    for path in (None, ""):
        load = load_gameplan(path)
        assert not load.ok
        assert load.gameplan == DailyGameplan.fallback()
        assert "no gameplan given" in load.message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("plan.toml", "strategy = ", "not valid TOML"),
        ("plan.json", "{not json", "not valid JSON"),
        ("plan.json", "[1, 2]", "expected a table"),
        ("plan.yaml", "strategy: A", ".toml or .json"),
    ],
)
def test_unparseable_files_fall_back_to_c(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    load = load_gameplan(write(tmp_path, name, text))
    assert not load.ok
    assert load.gameplan.strategy == "C"
    assert expected in load.message


def test_a_directory_or_undecodable_file_falls_back_to_c(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert not load_gameplan(folder).ok
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    load = load_gameplan(binary)
    assert not load.ok
    assert "cannot read" in load.message


@pytest.mark.parametrize(
    "override",
    [
        {"strategy": "D"},
        {"symbols": "SPY"},  # a string, not a list
        {"symbols": ["SPY", "SPY"]},
        {"symbols": ["S P Y"]},
        {"vix_at_analysis": -1},
        {"vix_at_analysis": "high"},
        {"hard_limits": {"max_position_pct": "0.01"}},  # quoted numbers are not coerced
        {"hard_limits": {"max_position_pct": float("inf")}},
        {"hard_limits": {"symbol_allowlist": ["SPY", 1]}},
        {"key_levels": {"SPY": "590"}},
    ],
)
def test_invalid_values_fall_back_to_c(override: dict[str, Any]) -> None:
    load = parse_gameplan({**GOOD_JSON, **override})
    assert not load.ok
    assert load.gameplan.strategy == "C"


def test_vix_at_analysis_is_required() -> None:
    data = {k: v for k, v in GOOD_JSON.items() if k != "vix_at_analysis"}
    load = parse_gameplan(data)
    assert not load.ok
    assert "vix_at_analysis" in load.message


def test_a_gameplan_for_another_day_falls_back_to_c(tmp_path: Path) -> None:
    load = load_gameplan(write(tmp_path, "plan.toml", GOOD_TOML), today=date(2026, 11, 25))
    assert not load.ok
    assert "is for 2026-11-24, today is 2026-11-25" in load.message


def test_strategy_letters_are_case_insensitive() -> None:
    assert parse_gameplan({**GOOD_JSON, "strategy": " a "}).gameplan.strategy == "A"


def test_strategy_c_means_no_entries() -> None:
    plan = DailyGameplan.model_validate({**GOOD_JSON, "strategy": "C"})
    assert not plan.allows_entries


def test_strategy_for_builds_the_named_strategy(clock: ManualClock) -> None:
    a = DailyGameplan.model_validate({**GOOD_JSON, "strategy": "A"})
    b = DailyGameplan.model_validate(GOOD_JSON)
    c = DailyGameplan.model_validate({**GOOD_JSON, "strategy": "C"})
    no_symbols = DailyGameplan.model_validate({**GOOD_JSON, "symbols": []})
    assert isinstance(strategy_for(a, clock), StrategyA)
    assert isinstance(strategy_for(b, clock), StrategyB)
    assert isinstance(strategy_for(c, clock), StrategyC)
    fallback = strategy_for(no_symbols, clock)
    assert isinstance(fallback, StrategyC)
    assert not fallback.allows_entries


def test_hard_limits_feed_the_risk_limits_tightening() -> None:
    from ibkr_trader.risk.config import RiskLimits

    plan = DailyGameplan.model_validate(
        {**GOOD_JSON, "hard_limits": {"max_open_positions": 1, "symbol_allowlist": ["SPY"]}}
    )
    tightened = RiskLimits().tighten_with(plan.hard_limits)
    assert tightened.max_open_positions == 1
    assert tuple(tightened.symbol_allowlist) == ("SPY",)


def test_a_gameplan_integer_of_4300_digits_or_more_is_strategy_c(tmp_path: Path) -> None:
    huge = "9" * 5000  # tomllib and json refuse it with a bare ValueError
    for name, text in [
        ("plan.toml", f'strategy = "A"\nvix_at_analysis = {huge}\n'),
        ("plan.json", f'{{"strategy": "A", "vix_at_analysis": {huge}}}'),
    ]:
        load = load_gameplan(write(tmp_path, name, text))
        assert not load.ok and load.gameplan.strategy == "C"
        assert "not valid" in load.message


def test_a_hard_limit_no_float_can_hold_falls_back_to_strategy_c_at_start_up(
    tmp_path: Path,
) -> None:
    """A 400-digit hard limit used to escape the runtime as an OverflowError (review of the
    settings move): `run` died before strategy C could protect anything."""
    from ibkr_trader.config import load_config
    from ibkr_trader.risk import RiskManager
    from ibkr_trader.risk.config import RiskLimits
    from ibkr_trader.risk.state import InMemoryRiskStateStore
    from ibkr_trader.runtime import _gameplan

    plan = {
        "strategy": "A",
        "symbols": ["SPY"],
        "vix_at_analysis": 15,
        "hard_limits": {"max_open_positions": -(10**400), "commission_per_contract": 10**400},
    }
    path = write(tmp_path, "plan.json", json.dumps(plan))
    config = load_config(None, env={"IBKR_TRADER__PATHS__GAMEPLAN": str(path)})
    clock = ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    risk = RiskManager(RiskLimits(), InMemoryRiskStateStore(), clock)
    load = _gameplan(config, clock, risk)
    assert not load.ok and load.gameplan.strategy == "C" and not load.gameplan.allows_entries
    assert "hard limits refused" in load.message and "max_open_positions" in load.message
    assert risk.limits == RiskLimits()  # nothing applied
