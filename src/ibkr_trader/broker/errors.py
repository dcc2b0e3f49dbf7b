"""IB error codes, classified once, and the one function that routes them.

Every ``errorEvent`` the broker layer sees goes through :func:`classify`; every error that
ends a request becomes an exception through :func:`to_exception`. The sets below are the only
place where a code's meaning is written down (texts: IB's message-code tables and
``docs``/reference ``ib_protocol_facts.md`` section 7).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ibkr_trader.broker.exceptions import (
    BrokerError,
    ContractQualificationError,
    GatewayAuthenticationError,
    GatewayNotConnectedError,
    MarketDataError,
    OrderRejectedError,
    PacingViolationError,
)


class ErrorCategory(StrEnum):
    WARNING = "warning"  # informational; ends nothing
    CONNECTIVITY_LOST = "connectivity_lost"  # gateway <-> IB servers broken
    CONNECTIVITY_RESTORED = "connectivity_restored"
    ORDER_REJECTION = "order_rejection"
    PACING = "pacing"
    NO_DATA = "no_data"
    ENTITLEMENT = "entitlement"  # market data not subscribed / not permitted / line limit
    CONTRACT = "contract"  # no security definition
    AUTHENTICATION = "authentication"  # client id in use
    ERROR = "error"  # anything else that ends a request


# ib_async's own warning set (wrapper.error) plus IB's 2100-2199 notices.
WARNING_CODES: Final[frozenset[int]] = frozenset(
    {105, 110, 165, 321, 329, 399, 404, 434, 492, 10167}
)
WARNING_RANGE: Final[range] = range(2100, 2200)

CONNECTIVITY_LOST_CODES: Final[frozenset[int]] = frozenset({1100, 2110})
CONNECTIVITY_RESTORED_CODES: Final[frozenset[int]] = frozenset({1101, 1102})
DATA_LOST_ON_RESTORE_CODES: Final[frozenset[int]] = frozenset({1101})

ORDER_REJECTION_CODES: Final[frozenset[int]] = frozenset(
    {
        103,  # duplicate order id
        104,  # can't modify a filled order
        106,  # can't transmit order id
        107,  # cannot transmit incomplete order
        109,  # price out of percentage range
        111,  # tif and order type incompatible
        113,  # tif must be DAY for MOC/LOC
        116,  # dde account fields
        117,  # trading class field
        118,  # invalid side
        119,  # order cannot be placed while a previous modification is pending
        120,  # ...
        121,  # invalid BD flag
        122,  # no request tag
        123,  # no record for account
        124,  # no record for conId
        125,  # buy price must be same as best ask
        126,  # sell price must be same as best bid
        129,  # VWAP orders only before market open
        131,  # sweep-to-fill and display size
        132,  # order cannot be transmitted without an account
        133,  # submit new order failed
        134,  # modify order failed
        135,  # can't find order with id
        136,  # order cannot be cancelled
        140,  # size value should be an integer
        141,  # price value should be a double
        144,  # order size does not match total share allocation
        146,  # invalid trigger method
        147,  # invalid stop price
        148,  # invalid relative value
        151,  # order rejected
        152,  # order rejected
        153,  # invalid routing
        154,  # halted
        155,  # invalid parent order type
        156,  # invalid hidden
        157,  # invalid display size
        158,  # invalid discretionary amount
        159,  # invalid trailing percent
        160,  # invalid good-till-date
        161,  # cancel attempted when order is not cancellable
        163,  # price exceeds constraint
        164,  # no market data for closing
        201,  # order rejected - reason
        202,  # order cancelled - reason
        203,  # security not available or not allowed for this account
        382,  # price / size
        383,  # size exceeds limit
        387,  # unsupported order type for this exchange
        388,  # order size is smaller than the minimum
        10006,  # missing parent order
        10147,  # order to cancel not found
        10148,  # order cannot be cancelled in its state
    }
)
PACING_CODES: Final[frozenset[int]] = frozenset({100, 420})
NO_DATA_CODES: Final[frozenset[int]] = frozenset({366})
ENTITLEMENT_CODES: Final[frozenset[int]] = frozenset(
    {101, 354, 10089, 10090, 10091, 10168, 10186, 10197}
)
CONTRACT_CODES: Final[frozenset[int]] = frozenset({200})
AUTHENTICATION_CODES: Final[frozenset[int]] = frozenset({326})

# Error 162 (HMDS) means several things; its text says which.
HMDS_CODE: Final[int] = 162
_HMDS_NO_DATA_MARKERS: Final[tuple[str, ...]] = ("returned no data", "no data")
_HMDS_ENTITLEMENT_MARKERS: Final[tuple[str, ...]] = ("no market data permissions", "permission")
_HMDS_CANCELLED_MARKERS: Final[tuple[str, ...]] = ("query cancelled",)

# Farm status notices (warnings) that health_check reads.
FARM_OK_CODES: Final[frozenset[int]] = frozenset({2104, 2106, 2158})
FARM_BROKEN_CODES: Final[frozenset[int]] = frozenset({2103, 2105, 2157})
FARM_INACTIVE_CODES: Final[frozenset[int]] = frozenset({2107, 2108})
MARKET_DATA_FARM_CODES: Final[frozenset[int]] = frozenset({2103, 2104, 2108})

_TABLE: Final[tuple[tuple[frozenset[int], ErrorCategory], ...]] = (
    (CONNECTIVITY_LOST_CODES, ErrorCategory.CONNECTIVITY_LOST),
    (CONNECTIVITY_RESTORED_CODES, ErrorCategory.CONNECTIVITY_RESTORED),
    (WARNING_CODES, ErrorCategory.WARNING),
    (ORDER_REJECTION_CODES, ErrorCategory.ORDER_REJECTION),
    (PACING_CODES, ErrorCategory.PACING),
    (NO_DATA_CODES, ErrorCategory.NO_DATA),
    (ENTITLEMENT_CODES, ErrorCategory.ENTITLEMENT),
    (CONTRACT_CODES, ErrorCategory.CONTRACT),
    (AUTHENTICATION_CODES, ErrorCategory.AUTHENTICATION),
)

_EXCEPTION_FOR: Final[dict[ErrorCategory, type[BrokerError]]] = {
    ErrorCategory.WARNING: BrokerError,
    ErrorCategory.CONNECTIVITY_LOST: GatewayNotConnectedError,
    ErrorCategory.CONNECTIVITY_RESTORED: BrokerError,
    ErrorCategory.ORDER_REJECTION: OrderRejectedError,
    ErrorCategory.PACING: PacingViolationError,
    ErrorCategory.NO_DATA: MarketDataError,
    ErrorCategory.ENTITLEMENT: MarketDataError,
    ErrorCategory.CONTRACT: ContractQualificationError,
    ErrorCategory.AUTHENTICATION: GatewayAuthenticationError,
    ErrorCategory.ERROR: BrokerError,
}


def classify(code: int, text: str = "") -> ErrorCategory:
    """The category of an IB error code (162 is split by its text)."""
    if code == HMDS_CODE:
        lowered = text.lower()
        if any(marker in lowered for marker in _HMDS_ENTITLEMENT_MARKERS):
            return ErrorCategory.ENTITLEMENT
        if any(marker in lowered for marker in _HMDS_NO_DATA_MARKERS):
            return ErrorCategory.NO_DATA
        if any(marker in lowered for marker in _HMDS_CANCELLED_MARKERS):
            return ErrorCategory.ERROR
        return ErrorCategory.PACING  # "Historical data request pacing violation" and kin
    for codes, category in _TABLE:
        if code in codes:
            return category
    if code in WARNING_RANGE:
        return ErrorCategory.WARNING
    return ErrorCategory.ERROR


def is_warning(code: int, text: str = "") -> bool:
    """True for notices that end nothing (farm status, order warnings...)."""
    return classify(code, text) is ErrorCategory.WARNING


def to_exception(
    code: int,
    text: str,
    *,
    req_id: int | None = None,
    order_id: int | None = None,
    context: str = "",
) -> BrokerError:
    """The typed exception for an IB error that ended a request."""
    category = classify(code, text)
    cls = _EXCEPTION_FOR[category]
    prefix = f"{context}: " if context else ""
    message = f"{prefix}IB error {code} ({category.value}): {text}"
    return cls(message, code=code, text=text, req_id=req_id, order_id=order_id)


__all__ = [
    "AUTHENTICATION_CODES",
    "CONNECTIVITY_LOST_CODES",
    "CONNECTIVITY_RESTORED_CODES",
    "CONTRACT_CODES",
    "ENTITLEMENT_CODES",
    "FARM_BROKEN_CODES",
    "FARM_INACTIVE_CODES",
    "FARM_OK_CODES",
    "NO_DATA_CODES",
    "ORDER_REJECTION_CODES",
    "PACING_CODES",
    "WARNING_CODES",
    "ErrorCategory",
    "classify",
    "is_warning",
    "to_exception",
]
