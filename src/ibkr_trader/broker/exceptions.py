"""The broker layer's exception tree, split by the reaction each error needs.

::

    BrokerError                         anything from the broker layer (carries IB's code/text)
    ├── GatewayConnectionError          cannot reach the gateway: check host/port/API settings
    │   └── GatewayAuthenticationError  the gateway refused the API session (client id in use,
    │                                   socket closed during the handshake)
    ├── GatewayNotConnectedError        called while not connected (or reconnecting)
    │   └── GatewayDisconnectedError    the connection dropped while this call was pending
    ├── BrokerTimeoutError              also a ``TimeoutError``: the call's deadline passed
    ├── ContractQualificationError      unknown / ambiguous / unqualified contract
    ├── AlphaLearningViolationError     a request the project's alpha learnings forbid
    │   └── SnapshotModeViolationError  anything but snapshot market data
    ├── MarketDataError                 no data, no entitlement, market data refused
    │   └── InsufficientDataError       fewer bars / fields than the caller needs
    ├── PacingViolationError            IB's pacing rules (error 162 pacing, 100 rate)
    └── OrderRejectedError              IB rejected or cancelled the order (201, 202, ...)

Timeouts subclass both ``BrokerError`` and the builtin ``TimeoutError`` so that
``except TimeoutError`` and ``except BrokerError`` both catch them.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Root of the broker layer's errors. ``code``/``text`` are IB's when there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        text: str | None = None,
        req_id: int | None = None,
        order_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.text = text
        self.req_id = req_id
        self.order_id = order_id

    def __str__(self) -> str:
        if self.code is not None and f"{self.code}" not in self.message:
            return f"{self.message} (IB error {self.code}: {self.text or ''})"
        return self.message


class GatewayConnectionError(BrokerError):
    """The gateway could not be reached; the message says what to check."""


class GatewayAuthenticationError(GatewayConnectionError):
    """The gateway refused the API session (client id in use, handshake closed)."""


class GatewayNotConnectedError(BrokerError):
    """A call was made while the connection is down (or being re-established)."""


class GatewayDisconnectedError(GatewayNotConnectedError):
    """The connection dropped while the call was pending; its outcome is unknown."""


class BrokerTimeoutError(BrokerError, TimeoutError):
    """The call's deadline passed. Also a builtin ``TimeoutError``."""


class ContractQualificationError(BrokerError):
    """The contract is unknown, ambiguous, or was never qualified (con_id == 0)."""


class AlphaLearningViolationError(BrokerError):
    """A request that the project's alpha learnings forbid (e.g. > 1 hour of bars)."""


class SnapshotModeViolationError(AlphaLearningViolationError):
    """Anything but snapshot market data (no standing subscriptions, ever)."""


class MarketDataError(BrokerError):
    """Market data was refused or is not available (no data, no entitlement)."""


class InsufficientDataError(MarketDataError):
    """Fewer bars or fields than the caller needs."""


class PacingViolationError(BrokerError):
    """IB's pacing rules were broken (historical 162 pacing, 100 message rate)."""


class OrderRejectedError(BrokerError):
    """IB rejected the order or cancelled it on its own (201, 202, 103, ...)."""


__all__ = [
    "AlphaLearningViolationError",
    "BrokerError",
    "BrokerTimeoutError",
    "ContractQualificationError",
    "GatewayAuthenticationError",
    "GatewayConnectionError",
    "GatewayDisconnectedError",
    "GatewayNotConnectedError",
    "InsufficientDataError",
    "MarketDataError",
    "OrderRejectedError",
    "PacingViolationError",
    "SnapshotModeViolationError",
]
