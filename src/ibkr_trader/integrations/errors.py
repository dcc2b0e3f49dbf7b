"""Errors raised by the integration layer's pure code (indicators, data packaging).

``InsufficientDataError`` subclasses ``ValueError``: too few bars is a property of the input,
not of the broker. The broker room defines its own ``BrokerError``-rooted hierarchy in
``ibkr_trader.broker.exceptions``; the lead reconciles the two.
"""

from __future__ import annotations


class InsufficientDataError(ValueError):
    """Fewer data points than an indicator needs (handoff 8.2: fewer than 21 bars)."""
