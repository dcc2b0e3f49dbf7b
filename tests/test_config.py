"""AppConfig: one TOML file plus IBKR_TRADER__SECTION__KEY overrides, validated, safe defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ibkr_trader.config import AppConfig, ConfigError, load_config
from ibkr_trader.risk import RiskConfigError, RiskLimits, load_risk_limits


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_dry_run_against_the_in_process_simulator_on_loopback() -> None:
    cfg = load_config(None, env={})
    assert cfg.run.mode == "dry_run"
    assert cfg.gateway.port is None  # the in-process simulated gateway
    assert cfg.gateway.host == "127.0.0.1"
    assert cfg.alerts.command == ()
    assert cfg.source is None


def test_file_values_are_read_and_environment_overrides_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[gateway]
port = 4002
client_id = 5
[run]
mode = "paper"
symbols = ["SPY"]
[risk]
max_open_positions = 2
""",
    )
    env = {
        "IBKR_TRADER__GATEWAY__CLIENT_ID": "9",
        "IBKR_TRADER__RUN__SYMBOLS": '["qqq", "iwm"]',
        "IBKR_TRADER__ALERTS__COMMAND": "notify --channel 'trading desk'",
        "IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": "1",
        "UNRELATED": "x",
    }
    cfg = load_config(path, env=env)
    assert cfg.gateway.port == 4002 and cfg.gateway.client_id == 9
    assert cfg.run.mode == "paper"
    assert cfg.run.symbols == ("QQQ", "IWM")
    assert cfg.alerts.command == ("notify", "--channel", "trading desk")
    assert cfg.risk.max_open_positions == 1  # the limits in force, validated here
    assert load_risk_limits(path, env=env).max_open_positions == 1  # the same loader
    assert cfg.source == path
    assert cfg.origin("gateway", "port") == f"file {path}"
    assert cfg.origin("gateway", "client_id") == "env IBKR_TRADER__GATEWAY__CLIENT_ID"
    assert cfg.origin("risk", "max_open_positions") == "env IBKR_TRADER__RISK__MAX_OPEN_POSITIONS"
    assert cfg.origin("risk", "daily_loss_limit_pct") == "default"


def test_config_path_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[run]\ninterval = 5\n")
    cfg = load_config(None, env={"IBKR_TRADER_CONFIG": str(path)})
    assert cfg.run.interval == 5.0


@pytest.mark.parametrize(
    "text",
    [
        "[gateway]\nprot = 4002\n",  # a typo
        "[gatway]\nport = 4002\n",  # an unknown section
        "[run]\nmode = 'live'\n",  # live is blocked
        "[run]\ninterval = -1\n",
        "[gateway]\nport = 70000\n",
        "[alerts]\ndisconnect_minutes = 0\n",
        "not toml at all [",
    ],
)
def test_invalid_or_unknown_settings_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), env={})


def test_unknown_environment_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_config(None, env={"IBKR_TRADER__RUN__INTERVALL": "5"})
    with pytest.raises(ConfigError):
        load_config(None, env={"IBKR_TRADER__PORT": "5"})


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_a_remote_host_must_be_allowed_explicitly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        load_config(write(tmp_path, "[gateway]\nhost = '10.0.0.5'\n"), env={})
    cfg = load_config(
        write(tmp_path, "[gateway]\nhost = '10.0.0.5'\nallow_remote = true\n"), env={}
    )
    assert cfg.gateway.host == "10.0.0.5"


def test_unknown_risk_key_is_refused_by_the_loader_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nmax_open_positon = 1\n")
    with pytest.raises(ConfigError, match="max_open_positon"):
        load_config(path, env={})  # `config show` refuses it exactly as `run` does
    with pytest.raises(RiskConfigError, match="max_open_positon"):
        load_risk_limits(path, env={})


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("IBKR_TRADER_RISK__MAX_OPEN_POSITIONS", "IBKR_TRADER__RISK__MAX_OPEN_POSITIONS"),
        ("IBKR_TRADER_RISK_MAX_OPEN_POSITIONS", "IBKR_TRADER__RISK__MAX_OPEN_POSITIONS"),
        ("IBKR_TRADER_GATEWAY_PORT", "IBKR_TRADER__GATEWAY__PORT"),
        ("IBKR_TRADER_FLAG_ENABLE_PAPER_EXECUTION", "IBKR_TRADER__FLAGS__ENABLE_PAPER_EXECUTION"),
        ("IBKR_TRADER_SOMETHING", "IBKR_TRADER__<SECTION>__<KEY>"),
    ],
)
def test_every_other_environment_form_is_refused_loudly(name: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(hint)) as err:
        load_config(None, env={name: "1"})
    assert name in str(err.value)


def test_the_process_variables_are_not_settings(tmp_path: Path) -> None:
    env = {
        "IBKR_TRADER_HOME": str(tmp_path / "home"),
        "IBKR_TRADER_LOG": "DEBUG",
        "IBKR_TRADER_KILL_SWITCH": str(tmp_path / "HALT"),
    }
    cfg = load_config(None, env=env)
    assert cfg.journal_path() == tmp_path / "home" / "journal-dry_run.sqlite3"
    assert cfg.kill_switch_path() == tmp_path / "HALT"
    assert cfg.origin("paths", "kill_switch") == "env IBKR_TRADER_KILL_SWITCH"
    paper = cfg.with_overrides(run={"mode": "paper"})
    assert paper.journal_path() == tmp_path / "home" / "journal-paper.sqlite3"
    assert paper.origin("run", "mode") == "command line"


def test_the_configured_kill_switch_wins_over_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, f"[paths]\nkill_switch = '{tmp_path / 'mine' / 'HALT'}'\n")
    cfg = load_config(path, env={"IBKR_TRADER_KILL_SWITCH": str(tmp_path / "other")})
    assert cfg.kill_switch_path() == tmp_path / "mine" / "HALT"
    assert cfg.redacted()["paths"]["kill_switch"] == str(tmp_path / "mine" / "HALT")


def test_the_redacted_view_shows_every_limit_in_force_and_no_null_path(tmp_path: Path) -> None:
    cfg = load_config(None, env={"IBKR_TRADER_HOME": str(tmp_path)})
    shown = cfg.redacted()
    assert set(shown["risk"]) == set(RiskLimits.field_names())
    assert all(value is not None for value in shown["paths"].values())
    sources = cfg.sources()
    assert set(sources["risk"]) == set(shown["risk"])
    assert sources["risk"]["max_open_positions"] == "default"


def test_redacted_view_masks_the_account_id(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[gateway]\naccount = 'DU1234567'\nport = 4002\n"), env={})
    shown = cfg.redacted()
    assert shown["gateway"]["account"] == "DU***567"
    assert "DU1234567" not in repr(shown) and "DU1234567" not in repr(cfg)


def test_command_line_overrides_are_validated_again() -> None:
    cfg = AppConfig()
    assert cfg.with_overrides(run={"interval": 2.5, "mode": None}).run.interval == 2.5
    with pytest.raises(ConfigError):
        cfg.with_overrides(run={"mode": "live"})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (" LOCALHOST ", True),
        ("127.0.0.1.attacker.example", False),
        ("127.example.com", False),
        ("127.", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_is_an_address_not_a_prefix(host: str, loopback: bool) -> None:
    from ibkr_trader.config import is_loopback_host

    assert is_loopback_host(host) is loopback


def test_an_operator_id_with_a_nul_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[run]\noperator_id = "CSA\\u0000TSPRIM"\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_protection_settings_reach_the_orchestrator_and_may_only_tighten(tmp_path: Path) -> None:
    import asyncio

    from ibkr_trader.orchestrator.protection import ProtectionPolicy
    from ibkr_trader.runtime import open_runtime, protection_policy
    from ibkr_trader.testing import DEFAULT_INSTANT

    # the section's defaults are the policy's: one set of numbers
    defaults = protection_policy(load_config(None, env={}))
    assert defaults == ProtectionPolicy(cycle_seconds=60.0)
    path = write(
        tmp_path,
        f"""
[paths]
journal = "{tmp_path / 'journal.sqlite3'}"
kill_switch = "{tmp_path / 'HALT'}"
[run]
interval = 30
[protection]
emergency_stop_pct = 0.25
dte_sessions = 3
cooldown_minutes = 90
""",
    )
    cfg = load_config(path, env={"IBKR_TRADER__PROTECTION__QUARANTINE_AFTER_SECONDS": "120"})
    assert cfg.origin("protection", "cooldown_minutes") == f"file {path}"

    async def policy_in_force() -> ProtectionPolicy:
        async with open_runtime(cfg, connect=False, start=DEFAULT_INSTANT) as runtime:
            return runtime.orchestrator.protection.policy

    policy = asyncio.run(policy_in_force())
    assert (policy.emergency_stop_pct, policy.dte_sessions, policy.cooldown_minutes) == (
        0.25,
        3,
        90.0,
    )
    assert (policy.quarantine_after_seconds, policy.cycle_seconds) == (120.0, 30.0)
    assert policy.stale_after_seconds == 90.0
    # looser than the handoff's promises: refused, never clamped
    for key, value in [
        ("emergency_stop_pct", "0.5"),
        ("dte_days", "2"),
        ("dte_sessions", "1"),
        ("quarantine_after_seconds", "301"),
        ("quarantine_after_seconds", "nan"),
        ("cooldown_minutes", "-1"),
    ]:
        with pytest.raises(ConfigError, match=f"protection.{key}"):
            load_config(None, env={f"IBKR_TRADER__PROTECTION__{key.upper()}": value})


# ------------------------------------------------------------- the review of the settings move

BIG = 10**400  # no float holds it


@pytest.mark.parametrize(
    "env",
    [
        {"IBKR_TRADER__GATEWAY__PORT": "1" * 400},
        {"IBKR_TRADER__PROTECTION__DTE_DAYS": "1" * 400},
        {"IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": "-" + "1" * 400},
        {"IBKR_TRADER__RISK__COMMISSION_PER_CONTRACT": "1" * 400},
        {"IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": "9" * 5000},  # beyond int()'s 4,300 digits
        {"IBKR_TRADER__RUN__SYMBOLS": "[" + "9" * 5000 + "]"},  # and json's
    ],
)
def test_an_integer_no_float_can_hold_is_a_config_error_from_the_environment(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env=env)
    assert len(str(err.value)) < 400  # the value is summarised, not printed whole


@pytest.mark.parametrize(
    "text",
    [
        f"[risk]\ncommission_per_contract = {BIG}\n",
        f"[risk]\nmax_open_positions = -{BIG}\n",
        f"[gateway]\nport = {BIG}\n",
        f"[risk]\nmax_open_positions = {'9' * 5000}\n",  # tomllib refuses it: a ValueError
    ],
)
def test_an_integer_no_float_can_hold_is_a_config_error_from_a_file(
    tmp_path: Path, text: str
) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text), env={})


def test_a_huge_value_is_a_setting_error_everywhere() -> None:
    from ibkr_trader.settings import SettingError

    with pytest.raises(SettingError, match="an integer of 401 digits"):
        RiskLimits(max_open_positions=-BIG)
    for hard in ({"max_open_positions": -BIG}, {"daily_loss_limit_pct": BIG}):
        with pytest.raises(RiskConfigError):
            RiskLimits().tighten_with(hard)
    with pytest.raises(RiskConfigError):
        load_risk_limits(env={}, section={"max_open_positions": -BIG})


@pytest.mark.parametrize(
    "env",
    [
        {"IBKR_TRADER__GATEWAY__ACCOUNT": '["DU1234567"]'},
        {"IBKR_TRADER__GATEWAY__ACCOUNT": "[1234567]"},
    ],
)
def test_an_account_id_of_the_wrong_type_is_not_echoed(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.account: must be a string") as err:
        load_config(None, env=env)
    assert "1234567" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("2", 2), (" 2 ", 2), ("2.0", 2), ("+3.00", 3), ("2.5", None), ("٢", None), ("２", None)],
)
def test_integers_are_written_in_ascii_digits(value: str, accepted: int | None) -> None:
    env = {"IBKR_TRADER__RISK__MAX_OPEN_POSITIONS": value}
    if accepted is None:
        with pytest.raises(ConfigError, match=r"risk\.max_open_positions: must be an integer"):
            load_config(None, env=env)
    else:
        assert load_config(None, env=env).risk.max_open_positions == accepted


@pytest.mark.parametrize("value", ["", ".", "./", "./."])
def test_an_empty_or_current_directory_path_is_not_set(tmp_path: Path, value: str) -> None:
    cfg = load_config(None, env={"IBKR_TRADER__PATHS__JOURNAL": value, "IBKR_TRADER_HOME": "h"})
    assert cfg.paths.journal is None
    assert cfg.journal_path() == Path("h") / "journal-dry_run.sqlite3"


def test_an_unknown_user_in_a_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"paths\.journal: cannot expand"):
        load_config(None, env={"IBKR_TRADER__PATHS__JOURNAL": "~nosuchuser-ibkr/j.sqlite3"})
    with pytest.raises(ConfigError, match="cannot expand the configuration path"):
        load_config("~nosuchuser-ibkr/config.toml", env={})
