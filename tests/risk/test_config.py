from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ibkr_trader.risk.config import (
    _DIRECTION,
    LimitLoosenError,
    RiskConfigError,
    RiskLimits,
    load_risk_limits,
)
from ibkr_trader.settings import SettingError


def test_defaults_are_small_account_safe() -> None:
    limits = RiskLimits()
    assert limits.max_risk_per_trade_pct <= 0.02
    assert limits.daily_loss_limit_pct <= 0.02
    assert not limits.allow_short_options
    assert not limits.allow_market_orders_for_entry
    assert limits.pdt_equity_threshold == 25_000


def test_limits_are_frozen_and_refuse_unknown_fields() -> None:
    limits = RiskLimits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_open_positions = 10  # type: ignore[misc]
    with pytest.raises(TypeError):
        RiskLimits(max_open_postions=10)  # type: ignore[call-arg]
    with pytest.raises(SettingError, match="max_open_postions: unknown key"):
        RiskLimits.from_mapping({"max_open_postions": 10})


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"max_open_positions": 0}, "max_open_positions: must be greater than 0"),
        ({"max_open_positions": 2.5}, "max_open_positions: must be an integer"),
        ({"max_open_positions": True}, "max_open_positions: must be an integer, not a boolean"),
        ({"daily_loss_limit_pct": float("inf")}, "daily_loss_limit_pct: must be a finite"),
        ({"daily_loss_limit_pct": 1.5}, "daily_loss_limit_pct: must be at most 1"),
        ({"allow_short_options": "maybe"}, "allow_short_options: must be true or false"),
        ({"symbol_allowlist": ["SPY", 3]}, "symbol_allowlist: item 1 must be a string"),
        ({"symbol_allowlist": " , "}, "symbol_allowlist must name at least one symbol"),
    ],
)
def test_a_limit_is_checked_when_built_never_clamped(
    values: dict[str, object], problem: str
) -> None:
    with pytest.raises(SettingError, match=re.escape(problem)):
        RiskLimits(**values)  # type: ignore[arg-type]


def test_values_are_coerced_as_a_file_or_the_environment_gives_them() -> None:
    limits = RiskLimits(
        max_open_positions="2",  # type: ignore[arg-type]
        max_contracts_per_order=3.0,  # type: ignore[arg-type]
        daily_loss_limit_pct="0.01",  # type: ignore[arg-type]
        allow_short_options="no",  # type: ignore[arg-type]
        symbol_allowlist="spy, qqq,",  # type: ignore[arg-type]
    )
    assert (limits.max_open_positions, limits.max_contracts_per_order) == (2, 3)
    assert isinstance(limits.max_contracts_per_order, int)
    assert limits.daily_loss_limit_pct == 0.01 and limits.allow_short_options is False
    assert limits.symbol_allowlist == ("QQQ", "SPY")


def test_the_limits_hash_is_the_one_journaled_before() -> None:
    # decisions journaled before the move off pydantic carry these hashes: the same limits
    # must keep the same hash (the JSON of every field, sorted)
    assert RiskLimits().limits_hash() == "17ae10f077ad0c39"
    assert (
        RiskLimits(max_open_positions=2, symbol_allowlist=("qqq", "spy")).limits_hash()
        == "815ed286f75276bc"
    )


def test_every_field_has_a_tightening_direction() -> None:
    assert set(_DIRECTION) == set(RiskLimits.field_names())


def test_load_reads_the_risk_section_and_ignores_other_sections(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[gateway]\nport = 4002\n[risk]\nmax_open_positions = 2\nsymbol_allowlist = ["spy"]\n'
    )
    limits = load_risk_limits(cfg, env={})
    assert limits.max_open_positions == 2
    assert limits.symbol_allowlist == ("SPY",)


def test_load_without_file_gives_defaults() -> None:
    assert load_risk_limits(None, env={}) == RiskLimits()


def test_unknown_key_in_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_open_postions = 20\n")
    with pytest.raises(RiskConfigError, match="max_open_postions"):
        load_risk_limits(cfg, env={})


def test_an_unknown_key_in_a_parsed_section_is_an_error_naming_the_key() -> None:
    with pytest.raises(RiskConfigError, match=r"risk\.max_open_postions: unknown key"):
        load_risk_limits(env={}, section={"max_open_postions": 20, "max_open_positions": 1})


def test_the_environment_overrides_a_parsed_section() -> None:
    env = {"IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": "1"}
    limits = load_risk_limits(env=env, section={"max_open_positions": 2, "tick_size": 0.05})
    assert (limits.max_open_positions, limits.tick_size) == (1, 0.05)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_open_positions = 2\n")
    env = {
        "IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": "1",
        "IBKR_TRADER__RISK__SYMBOL_ALLOWLIST": "spy, qqq",
        "IBKR_TRADER__RISK__ALLOW_SHORT_OPTIONS": "false",
        "OTHER": "x",
    }
    limits = load_risk_limits(cfg, env=env)
    assert limits.max_open_positions == 1
    assert limits.symbol_allowlist == ("QQQ", "SPY")


def test_environment_list_may_be_json() -> None:
    limits = load_risk_limits(env={"IBKR_TRADER__RISK__SYMBOL_ALLOWLIST": '["IWM"]'})
    assert limits.symbol_allowlist == ("IWM",)


def test_unknown_environment_key_is_an_error() -> None:
    with pytest.raises(RiskConfigError, match="IBKR_TRADER__RISK__MAX_LOSS"):
        load_risk_limits(env={"IBKR_TRADER__RISK__MAX_LOSS": "0.5"})


@pytest.mark.parametrize(
    "name",
    [
        "IBKR_TRADER_RISK__MAX_OPEN_POSITIONS",  # the old second form: refused, not applied
        "IBKR_TRADER_RISK_MAX_OPEN_POSITIONS",  # one underscore: refused, not ignored
    ],
)
def test_other_environment_forms_are_refused_with_the_right_spelling(name: str) -> None:
    with pytest.raises(RiskConfigError, match="IBKR_TRADER__RISK__MAX_OPEN_POSITIONS"):
        load_risk_limits(env={name: "1"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("daily_loss_limit_pct", "-0.1"),
        ("daily_loss_limit_pct", "nan"),
        ("max_open_positions", "0"),
        ("max_open_positions", "two"),
        ("symbol_allowlist", ""),
    ],
)
def test_invalid_values_are_errors(key: str, value: str) -> None:
    with pytest.raises(RiskConfigError):
        load_risk_limits(env={f"IBKR_TRADER__RISK__{key.upper()}": value})


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk\n")
    with pytest.raises(RiskConfigError, match="invalid TOML"):
        load_risk_limits(cfg, env={})


def test_limits_hash_changes_with_any_limit() -> None:
    assert RiskLimits().limits_hash() == RiskLimits().limits_hash()
    assert RiskLimits().limits_hash() != RiskLimits(max_open_positions=2).limits_hash()


def test_tighten_with_applies_tighter_limits() -> None:
    tightened = RiskLimits().tighten_with(
        {
            "max_open_positions": 1,
            "daily_loss_limit_pct": 0.01,
            "symbol_allowlist": ["SPY"],
            "min_days_to_expiry_entry": 7,
        }
    )
    assert tightened.max_open_positions == 1
    assert tightened.daily_loss_limit_pct == 0.01
    assert tightened.symbol_allowlist == ("SPY",)
    assert tightened.min_days_to_expiry_entry == 7


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_open_positions", 10),
        ("daily_loss_limit_pct", 0.5),
        ("symbol_allowlist", ["SPY", "TSLA"]),
        ("min_days_to_expiry_entry", 1),
        ("allow_short_options", True),
        ("pdt_equity_threshold", 1000.0),
        ("tick_size", 0.05),
    ],
)
def test_tighten_with_refuses_anything_that_loosens(key: str, value: object) -> None:
    with pytest.raises(LimitLoosenError, match=key):
        RiskLimits().tighten_with({key: value})


def test_tighten_with_refuses_unknown_keys() -> None:
    with pytest.raises(RiskConfigError, match="max_loss"):
        RiskLimits().tighten_with({"max_loss": 0.01})
