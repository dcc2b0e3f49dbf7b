"""The IB error table and its one routing function."""

from __future__ import annotations

import pytest

from ibkr_trader.broker.errors import ErrorCategory, classify, is_warning, to_exception
from ibkr_trader.broker.exceptions import (
    AlphaLearningViolationError,
    BrokerError,
    BrokerTimeoutError,
    ContractQualificationError,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayNotConnectedError,
    MarketDataError,
    OrderRejectedError,
    PacingViolationError,
    SnapshotModeViolationError,
)


@pytest.mark.parametrize(
    ("code", "text", "category"),
    [
        (2104, "Market data farm connection is OK:usfarm", ErrorCategory.WARNING),
        (10167, "Displaying delayed market data", ErrorCategory.WARNING),
        (399, "Order message warning", ErrorCategory.WARNING),
        (1100, "Connectivity between IB and TWS has been lost", ErrorCategory.CONNECTIVITY_LOST),
        (2110, "Connectivity between TWS and server is broken", ErrorCategory.CONNECTIVITY_LOST),
        (1101, "restored - data lost", ErrorCategory.CONNECTIVITY_RESTORED),
        (1102, "restored - data maintained", ErrorCategory.CONNECTIVITY_RESTORED),
        (201, "Order rejected - reason:", ErrorCategory.ORDER_REJECTION),
        (202, "Order Canceled - reason:", ErrorCategory.ORDER_REJECTION),
        (103, "Duplicate order id", ErrorCategory.ORDER_REJECTION),
        (162, "Historical data request pacing violation", ErrorCategory.PACING),
        (162, "HMDS query returned no data: AAPL@SMART Trades", ErrorCategory.NO_DATA),
        (162, "No market data permissions for NYSE STK", ErrorCategory.ENTITLEMENT),
        (100, "Max rate of messages per second has been exceeded", ErrorCategory.PACING),
        (354, "Requested market data is not subscribed", ErrorCategory.ENTITLEMENT),
        (10089, "requires additional subscription", ErrorCategory.ENTITLEMENT),
        (200, "No security definition has been found", ErrorCategory.CONTRACT),
        (326, "client id is already in use", ErrorCategory.AUTHENTICATION),
        (366, "No historical data query found", ErrorCategory.NO_DATA),
        (504, "Not connected", ErrorCategory.ERROR),
    ],
)
def test_classify_routes_each_code_to_its_category(
    code: int, text: str, category: ErrorCategory
) -> None:
    assert classify(code, text) is category


def test_classify_treats_the_whole_2100_range_as_notices() -> None:
    assert all(is_warning(code) for code in range(2100, 2200) if code != 2110)
    assert not is_warning(201)


@pytest.mark.parametrize(
    ("code", "text", "exc_type"),
    [
        (162, "Historical data request pacing violation", PacingViolationError),
        (200, "No security definition", ContractQualificationError),
        (201, "Order rejected - reason: margin", OrderRejectedError),
        (354, "not subscribed", MarketDataError),
        (326, "client id in use", GatewayAuthenticationError),
        (1100, "lost", GatewayNotConnectedError),
        (999, "something else", BrokerError),
    ],
)
def test_to_exception_builds_the_typed_error_with_code_and_text(
    code: int, text: str, exc_type: type[BrokerError]
) -> None:
    exc = to_exception(code, text, req_id=7, context="quote SPY")
    assert type(exc) is exc_type
    assert exc.code == code
    assert exc.text == text
    assert exc.req_id == 7
    assert "quote SPY" in str(exc) and str(code) in str(exc)


def test_timeout_error_is_both_a_broker_error_and_a_builtin_timeout() -> None:
    exc = BrokerTimeoutError("slow")
    assert isinstance(exc, BrokerError)
    assert isinstance(exc, TimeoutError)


def test_exception_tree_splits_by_reaction() -> None:
    assert issubclass(GatewayAuthenticationError, GatewayConnectionError)
    assert issubclass(SnapshotModeViolationError, AlphaLearningViolationError)
    assert not issubclass(PacingViolationError, MarketDataError)
