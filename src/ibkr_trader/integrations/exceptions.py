"""The integration layer's errors, on top of the broker layer's tree.

``GatewayError`` is a refusal by the integration layer itself (live mode, the paper interlock,
a disabled feature flag, an empty operator id); the broker errors are re-exported so that a
caller of :class:`~ibkr_trader.integrations.ibkr_gateway.IBKRGateway` needs one import.
"""

from __future__ import annotations

from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    BrokerError,
    BrokerTimeoutError,
    ContractQualificationError,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayDisconnectedError,
    GatewayNotConnectedError,
    InsufficientDataError,
    MarketDataError,
    OrderRejectedError,
    PacingViolationError,
    SnapshotModeViolationError,
)


class GatewayError(BrokerError):
    """The integration layer refuses: live mode, the paper interlock, a disabled flag."""


class PaperInterlockError(GatewayError):
    """PAPER mode against something that is not a paper account (or a live port)."""


class GatewayConnectTimeoutError(GatewayConnectionError, BrokerTimeoutError):
    """No session within the connect timeout: a connection error and a ``TimeoutError``."""


class PositionNotFoundError(GatewayError):
    """``close_position`` for a position id that is not open."""


__all__ = [
    "AlphaLearningViolationError",
    "BrokerError",
    "BrokerTimeoutError",
    "ContractQualificationError",
    "GatewayAuthenticationError",
    "GatewayConnectTimeoutError",
    "GatewayConnectionError",
    "GatewayDisconnectedError",
    "GatewayError",
    "GatewayNotConnectedError",
    "InsufficientDataError",
    "MarketDataError",
    "OrderRejectedError",
    "PacingViolationError",
    "PaperInterlockError",
    "PositionNotFoundError",
    "SnapshotModeViolationError",
]
