"""The handoff's rollout flags (9.1): defaults, environment overrides, live stays off."""

from __future__ import annotations

import pytest

from ibkr_trader.config import ConfigError, load_config
from ibkr_trader.integrations.feature_flags import DEFAULT_FLAGS, IntegrationFeatureFlags


def test_defaults_enable_the_layer_and_paper_but_never_live() -> None:
    assert DEFAULT_FLAGS.ENABLE_INTEGRATION_LAYER is True
    assert DEFAULT_FLAGS.ENABLE_PAPER_EXECUTION is True
    assert DEFAULT_FLAGS.ENABLE_LIVE_EXECUTION is False
    assert DEFAULT_FLAGS.FALLBACK_TO_DIRECT_BROKER is False


def test_live_execution_cannot_be_enabled() -> None:
    with pytest.raises(ValueError, match="live trading is blocked"):
        IntegrationFeatureFlags(ENABLE_LIVE_EXECUTION=True)


def test_the_flags_come_from_the_one_configuration_loader() -> None:
    cfg = load_config(
        None,
        env={
            "IBKR_TRADER__FLAGS__ENABLE_INTEGRATION_LAYER": "0",
            "IBKR_TRADER__FLAGS__ENABLE_PAPER_EXECUTION": "off",
            "IBKR_TRADER__FLAGS__FALLBACK_TO_DIRECT_BROKER": "yes",
        },
    )
    flags = IntegrationFeatureFlags.from_config(cfg.flags)
    assert not flags.ENABLE_INTEGRATION_LAYER and not flags.ENABLE_PAPER_EXECUTION
    assert flags.FALLBACK_TO_DIRECT_BROKER


def test_the_defaults_are_the_default_flags() -> None:
    assert IntegrationFeatureFlags.from_config(load_config(None, env={}).flags) == DEFAULT_FLAGS


@pytest.mark.parametrize(
    "env",
    [
        {"IBKR_TRADER__FLAGS__ENABLE_LIVE_EXECUTION": "1"},  # no such key: live stays off
        {"IBKR_TRADER_FLAG_ENABLE_PAPER_EXECUTION": "0"},  # the old form: refused, not ignored
        {"IBKR_TRADER__FLAGS__ENABLE_PAPER_EXECUTION": "maybe"},
    ],
)
def test_live_cannot_be_configured_and_bad_flags_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(None, env=env)
