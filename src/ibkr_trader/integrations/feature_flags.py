"""Feature flags for gradual rollout (handoff 9.1), honoured where they say.

- ``ENABLE_INTEGRATION_LAYER``: master switch; when False, IBKRGateway refuses to construct.
- ``ENABLE_PAPER_EXECUTION``: when False, PAPER mode refuses to send orders (results FAILED).
- ``ENABLE_LIVE_EXECUTION``: False, and stays False: LIVE is refused in the gateway's
  constructor and checked again in the executor before anything could be sent.
- ``FALLBACK_TO_DIRECT_BROKER``: documented for the orchestrator; nothing in this project
  bypasses the RiskManager, so it only selects how the orchestrator reaches the broker.

Flags are a frozen value passed in (tests build their own); the command line builds them with
``from_config`` from the configuration's ``[flags]`` section (the one loader,
:mod:`ibkr_trader.config`: ``enable_integration_layer``, ``enable_paper_execution``,
``fallback_to_direct_broker``, or ``IBKR_TRADER__FLAGS__<NAME>`` in the environment). The live
flag cannot be turned on: it has no configuration key at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibkr_trader.config import FlagsConfig


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
    def from_config(cls, section: FlagsConfig) -> IntegrationFeatureFlags:
        """The flags of the configuration's ``[flags]`` section (``IBKR_TRADER__FLAGS__<NAME>``
        in the environment; the live flag has no key there)."""
        return cls(
            ENABLE_INTEGRATION_LAYER=section.enable_integration_layer,
            ENABLE_PAPER_EXECUTION=section.enable_paper_execution,
            ENABLE_LIVE_EXECUTION=False,
            FALLBACK_TO_DIRECT_BROKER=section.fallback_to_direct_broker,
        )


DEFAULT_FLAGS = IntegrationFeatureFlags()
