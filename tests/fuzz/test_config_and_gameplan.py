"""Configuration and gameplan garbage: a clear refusal or a safe default, never a crash.

* ``load_risk_limits`` with a garbage ``[risk]`` section, environment or TOML file either
  returns valid, finite limits or raises ``RiskConfigError`` (a ``ValueError``) with a message.
* ``load_config`` with garbage in any section, from a TOML file or the environment, either
  returns a configuration whose every value has its declared type and lies within its bounds,
  or raises ``ConfigError`` with a message naming the key.
* ``load_gameplan`` on any file, TOML or JSON, never raises; a plan it does not accept is
  strategy C (no entries) with a message that says why.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzz.conftest import fuzz_settings
from fuzz.inputs import GARBAGE
from ibkr_trader.config import _SECTIONS, AppConfig, ConfigError, load_config
from ibkr_trader.risk import ENV_PREFIX, RiskConfigError, RiskLimits, load_risk_limits
from ibkr_trader.strategies.gameplan import DailyGameplan, load_gameplan, parse_gameplan

FIELDS = sorted(RiskLimits.field_names())
VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(),  # unbounded: a 400-digit integer overflows a float
    st.sampled_from([10**400, -(10**400), 2**1024, "1" * 400, "-" + "9" * 330]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=4),
    st.none(),
    st.sampled_from(
        ["nan", "inf", "-1", "1e309", "[]", '["SPY"]', "[1,2", "0x10", " 2 ", "2.0", "./", "٢"]
    ),
)
KEYS = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))


def _check_limits(limits: RiskLimits) -> None:
    for name, value in limits.as_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), name
    assert limits.symbol_allowlist
    assert limits.max_contracts_per_order > 0 and limits.max_open_positions > 0
    assert 0 < limits.max_risk_per_trade_pct <= 1 and 0 < limits.daily_loss_limit_pct <= 1


def _loaded(load: Any, refusal: type[ValueError], check: Any, **kwargs: Any) -> Any:
    """What ``load(**kwargs)`` gives, checked, or its refusal (with a message)."""
    try:
        value = load(**kwargs)
    except refusal as exc:
        assert str(exc).strip()
        return exc
    check(value)
    return value


def _load(**kwargs: Any) -> RiskLimits | RiskConfigError:
    result: RiskLimits | RiskConfigError = _loaded(
        load_risk_limits, RiskConfigError, _check_limits, **kwargs
    )
    return result


@fuzz_settings(0.5)
@given(section=st.dictionaries(KEYS, VALUES, max_size=6))
def test_a_garbage_risk_section_is_valid_limits_or_a_clear_error(section: dict[str, Any]) -> None:
    _load(section=section, env={})


@fuzz_settings(0.5)
@given(
    env=st.dictionaries(
        st.one_of(
            st.sampled_from([ENV_PREFIX + f.upper() for f in FIELDS]),
            st.text(max_size=8).map(lambda s: ENV_PREFIX + s),
            st.sampled_from(["PATH", "HOME", "IBKR_TRADER_RISK_", "ibkr_trader_risk__x"]),
        ),
        VALUES.map(str),
        max_size=5,
    )
)
def test_a_garbage_environment_is_valid_limits_or_a_clear_error(env: dict[str, str]) -> None:
    _load(env=env)


@fuzz_settings(0.5)
@given(text=st.one_of(st.text(max_size=200), st.builds(lambda d: "[risk]\n" + d, st.text())))
def test_a_garbage_toml_file_is_valid_limits_or_a_clear_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _load(path=path, env={})


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    assert isinstance(_load(path=tmp_path / "nope.toml", env={}), RiskConfigError)


SECTION_KEYS = {name: model.field_names() for name, model in _SECTIONS.items()}


def _check_config(config: AppConfig) -> None:
    """Every value has the type its field declares and passes its field again."""
    for name in SECTION_KEYS:
        section = getattr(config, name)
        for key, value in section.as_dict().items():
            default = getattr(type(section)(), key)
            if isinstance(value, float):
                assert math.isfinite(value), (name, key)
            if default is not None and value is not None:
                assert type(value) is type(default), (name, key, value)
        assert type(section)(**section.as_dict()) == section  # built again: the same
    _check_limits(config.risk)
    assert 0 < config.protection.emergency_stop_pct <= 0.40
    assert config.protection.dte_days >= 3 and config.protection.quarantine_after_seconds <= 300
    assert config.run.mode in ("dry_run", "paper")
    assert config.gateway.port is None or 0 < config.gateway.port < 65536


def _load_config(**kwargs: Any) -> AppConfig | ConfigError:
    result: AppConfig | ConfigError = _loaded(load_config, ConfigError, _check_config, **kwargs)
    return result


@st.composite
def config_tables(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from([*SECTION_KEYS, "nope"]), max_size=4, unique=True))
    out: dict[str, Any] = {}
    for name in names:
        keys = st.one_of(st.sampled_from(SECTION_KEYS.get(name, ("x",))), st.text(max_size=6))
        out[name] = draw(st.dictionaries(keys, VALUES, max_size=4))
    return out


@fuzz_settings(0.5)
@given(tables=config_tables())
def test_a_garbage_configuration_file_is_a_valid_configuration_or_a_clear_error(
    tables: dict[str, Any],
) -> None:
    lines = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(
            f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        _load_config(path=path, env={})


@fuzz_settings(0.5)
@given(
    env=st.dictionaries(
        st.sampled_from(
            [f"IBKR_TRADER__{n.upper()}__{k.upper()}" for n, ks in SECTION_KEYS.items() for k in ks]
        ),
        VALUES.map(str),
        max_size=6,
    )
)
def test_a_garbage_environment_is_a_valid_configuration_or_a_clear_error(
    env: dict[str, str],
) -> None:
    result = _load_config(path=None, env=env)
    if isinstance(result, AppConfig):
        for name in env:
            section, key = name[len("IBKR_TRADER__") :].lower().split("__")
            assert result.origin(section, key) == f"env {name}"


GAMEPLAN_FIELDS = {
    "strategy": st.one_of(st.sampled_from(["A", "B", "C", "a", " b ", "D", ""]), GARBAGE),
    "symbols": st.one_of(
        st.lists(st.sampled_from(["SPY", "QQQ", "spy", "", "S P Y", "SPY"]), max_size=4),
        GARBAGE,
    ),
    "vix_at_analysis": st.one_of(st.floats(), st.integers(), GARBAGE),
    "key_levels": st.one_of(
        st.dictionaries(st.text(max_size=4), st.one_of(st.floats(), GARBAGE), max_size=3),
        GARBAGE,
    ),
    "hard_limits": st.one_of(st.dictionaries(KEYS, VALUES, max_size=3), GARBAGE),
    "session_date": st.one_of(st.dates(), st.text(max_size=10), GARBAGE),
    "notes": st.one_of(st.text(max_size=30), GARBAGE),
    "surprise": GARBAGE,
}


@st.composite
def gameplan_data(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(GAMEPLAN_FIELDS)), max_size=8, unique=True))
    return {k: draw(GAMEPLAN_FIELDS[k]) for k in keys}


def _check_load(load: Any) -> None:
    plan = load.gameplan
    assert isinstance(plan, DailyGameplan)
    assert load.message.strip()
    if not load.ok:
        assert plan.strategy == "C" and not plan.allows_entries
        assert "strategy C" in load.message


def _toml_value(value: Any) -> str:
    return json.dumps(value, default=str)  # JSON scalars and arrays are mostly TOML too


@fuzz_settings(0.5)
@given(data=gameplan_data(), fmt=st.sampled_from(["json", "toml", "raw"]), junk=st.text())
def test_any_gameplan_file_is_a_plan_or_strategy_c(
    data: dict[str, Any], fmt: str, junk: str
) -> None:
    _check_load(parse_gameplan(data))
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "json":
            path = Path(tmp) / "plan.json"
            text = json.dumps(data, default=str)
        elif fmt == "toml":
            path = Path(tmp) / "plan.toml"
            text = "\n".join(f'"{k}" = {_toml_value(v)}' for k, v in data.items())
        else:
            path = Path(tmp) / "plan.toml"
            text = junk
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _check_load(load_gameplan(path))


@fuzz_settings(0.2)
@given(name=st.sampled_from(["plan.txt", "plan", "plan.TOML", "dir.json"]), blob=st.binary())
def test_odd_gameplan_paths_and_bytes_are_strategy_c_or_a_plan(name: str, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if name == "dir.json":
            path.mkdir()
        else:
            path.write_bytes(blob)
        _check_load(load_gameplan(path))
        _check_load(load_gameplan(str(path) + ".missing.json"))
    _check_load(load_gameplan(None))
    _check_load(load_gameplan(""))
