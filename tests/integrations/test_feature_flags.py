"""The handoff's rollout flags (9.1): defaults, environment overrides, live stays off."""

from __future__ import annotations

import pytest

from ibkr_trader.integrations.feature_flags import DEFAULT_FLAGS, IntegrationFeatureFlags


def test_defaults_enable_the_layer_and_paper_but_never_live() -> None:
    assert DEFAULT_FLAGS.ENABLE_INTEGRATION_LAYER is True
    assert DEFAULT_FLAGS.ENABLE_PAPER_EXECUTION is True
    assert DEFAULT_FLAGS.ENABLE_LIVE_EXECUTION is False
    assert DEFAULT_FLAGS.FALLBACK_TO_DIRECT_BROKER is False


def test_live_execution_cannot_be_enabled() -> None:
    with pytest.raises(ValueError, match="live trading is blocked"):
        IntegrationFeatureFlags(ENABLE_LIVE_EXECUTION=True)


def test_environment_overrides_are_read() -> None:
    flags = IntegrationFeatureFlags.from_env(
        {
            "IBKR_TRADER_FLAG_ENABLE_INTEGRATION_LAYER": "0",
            "IBKR_TRADER_FLAG_ENABLE_PAPER_EXECUTION": "off",
            "IBKR_TRADER_FLAG_FALLBACK_TO_DIRECT_BROKER": "yes",
        }
    )
    assert not flags.ENABLE_INTEGRATION_LAYER and not flags.ENABLE_PAPER_EXECUTION
    assert flags.FALLBACK_TO_DIRECT_BROKER


def test_environment_cannot_turn_live_on() -> None:
    flags = IntegrationFeatureFlags.from_env({"IBKR_TRADER_FLAG_ENABLE_LIVE_EXECUTION": "1"})
    assert flags.ENABLE_LIVE_EXECUTION is False


def test_empty_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENABLE_INTEGRATION_LAYER", "ENABLE_PAPER_EXECUTION", "FALLBACK_TO_DIRECT_BROKER"):
        monkeypatch.delenv(f"IBKR_TRADER_FLAG_{name}", raising=False)
    assert IntegrationFeatureFlags.from_env() == DEFAULT_FLAGS
    assert IntegrationFeatureFlags.from_env({}) == DEFAULT_FLAGS


def test_unreadable_flag_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="must be 0 or 1"):
        IntegrationFeatureFlags.from_env({"IBKR_TRADER_FLAG_ENABLE_PAPER_EXECUTION": "maybe"})
