"""Feature flags for gradual rollout (handoff 9.1), honoured where they say.

- ``ENABLE_INTEGRATION_LAYER``: master switch; when False, IBKRGateway refuses to construct.
- ``ENABLE_PAPER_EXECUTION``: when False, PAPER mode refuses to send orders (results FAILED).
- ``ENABLE_LIVE_EXECUTION``: False, and stays False: LIVE is refused in the gateway's
  constructor and checked again in the executor before anything could be sent.
- ``FALLBACK_TO_DIRECT_BROKER``: documented for the orchestrator; nothing in this project
  bypasses the RiskManager, so it only selects how the orchestrator reaches the broker.

Flags are a frozen value passed in (tests build their own); ``from_env`` reads overrides of
the first two from ``IBKR_TRADER_FLAG_<NAME>=0/1``. The live flag cannot be turned on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IntegrationFeatureFlags:
    """The handoff's rollout flags."""

    ENABLE_INTEGRATION_LAYER: bool = True
    ENABLE_PAPER_EXECUTION: bool = True
    ENABLE_LIVE_EXECUTION: bool = False
    FALLBACK_TO_DIRECT_BROKER: bool = False

    def __post_init__(self) -> None:
        if self.ENABLE_LIVE_EXECUTION:
            raise ValueError("ENABLE_LIVE_EXECUTION cannot be enabled: live trading is blocked")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntegrationFeatureFlags:
        env = os.environ if environ is None else environ

        def flag(name: str, default: bool) -> bool:
            raw = env.get(f"IBKR_TRADER_FLAG_{name}")
            if raw is None:
                return default
            value = raw.strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"IBKR_TRADER_FLAG_{name} must be 0 or 1, got {raw!r}")

        return cls(
            ENABLE_INTEGRATION_LAYER=flag("ENABLE_INTEGRATION_LAYER", True),
            ENABLE_PAPER_EXECUTION=flag("ENABLE_PAPER_EXECUTION", True),
            ENABLE_LIVE_EXECUTION=False,
            FALLBACK_TO_DIRECT_BROKER=flag("FALLBACK_TO_DIRECT_BROKER", False),
        )


DEFAULT_FLAGS = IntegrationFeatureFlags()
