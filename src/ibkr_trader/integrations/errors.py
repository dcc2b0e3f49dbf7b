"""Errors raised by the integration layer's pure code (indicators, data packaging).

``InsufficientDataError`` is the broker layer's (a ``MarketDataError`` under ``BrokerError``)
and also a ``ValueError``: too few bars is a property of the input, so pure code that only
knows ``ValueError`` can catch it, and so can a caller that catches ``BrokerError``.
"""

from __future__ import annotations

from ibkr_trader.broker.exceptions import InsufficientDataError as _BrokerInsufficientDataError


class InsufficientDataError(_BrokerInsufficientDataError, ValueError):
    """Fewer data points than an indicator needs (handoff 8.2: fewer than 21 bars)."""
