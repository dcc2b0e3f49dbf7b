"""ContractManager: qualified contracts only, with a cache and a short negative cache.

Outside ``broker/`` a contract is a :class:`~ibkr_trader.models.ContractSpec`; inside it is
converted to and from ib_async's ``Contract`` (``IBContract``) by :func:`to_ib_contract` and
:func:`from_ib_contract`. A spec with ``con_id == 0`` is unqualified: the connection and the
market data provider refuse it (:func:`require_qualified`).
"""

# The interface fixes `timeout` parameters on every call (docs/dev/interfaces.md).

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from ib_async import Contract as IBContract

from ibkr_trader.broker.exceptions import ContractQualificationError
from ibkr_trader.logging import get_logger
from ibkr_trader.market_hours import ListedHours, ListedHoursError
from ibkr_trader.models import OPTION_MULTIPLIER, ContractSpec

if TYPE_CHECKING:
    from ibkr_trader.broker.connection import IBKRConnection, RequestScope

_log = get_logger("ibkr_trader.broker.contracts")

DEFAULT_CACHE_TTL: Final[float] = 6 * 3600.0
DEFAULT_NEGATIVE_TTL: Final[float] = 30.0
_RIGHTS: Final[dict[str, str]] = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


def to_ib_contract(spec: ContractSpec) -> IBContract:
    """An ib_async Contract for ``spec`` (qualified or not)."""
    contract = IBContract(
        conId=spec.con_id,
        symbol=spec.symbol,
        secType=spec.sec_type,
        exchange=spec.exchange,
        currency=spec.currency,
        localSymbol=spec.local_symbol,
    )
    if spec.is_option:
        contract.lastTradeDateOrContractMonth = spec.expiry
        contract.strike = float(spec.strike)
        contract.right = _RIGHTS.get(spec.right.upper(), spec.right.upper())
        contract.multiplier = str(spec.multiplier)
    return contract


def _multiplier(value: Any, sec_type: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isfinite(number) and number > 0:
        return int(number)
    return OPTION_MULTIPLIER if sec_type in ("OPT", "FOP") else 1


def from_ib_contract(contract: IBContract, exchange: str | None = None) -> ContractSpec:
    """A ContractSpec copied from an ib_async Contract."""
    sec_type = str(contract.secType or "")
    is_option = sec_type in ("OPT", "FOP")
    strike = float(contract.strike or 0.0) if is_option else 0.0
    return ContractSpec(
        symbol=str(contract.symbol),
        sec_type=sec_type,
        expiry=str(contract.lastTradeDateOrContractMonth or "")[:8] if is_option else "",
        strike=strike,
        right=_RIGHTS.get(str(contract.right or "").upper(), "") if is_option else "",
        multiplier=_multiplier(contract.multiplier, sec_type),
        exchange=exchange or str(contract.exchange or "") or "SMART",
        currency=str(contract.currency or "USD"),
        con_id=int(contract.conId or 0),
        local_symbol=str(contract.localSymbol or ""),
    )


def require_qualified(spec: ContractSpec, what: str) -> None:
    """Refuse an unqualified contract before anything is sent."""
    if spec.con_id <= 0:
        raise ContractQualificationError(
            f"{what}: contract {spec.key} is not qualified (con_id == 0); "
            "qualify it through ContractManager first"
        )


@dataclass(frozen=True, slots=True)
class OptionChain:
    """Expiries and strikes for an underlying (from reqSecDefOptParams)."""

    symbol: str
    underlying_con_id: int
    exchange: str
    trading_class: str
    multiplier: int
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


class ContractManager:
    """Qualifies contracts through the gateway, caching hits and (briefly) misses."""

    def __init__(
        self,
        connection: IBKRConnection,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        negative_ttl: float = DEFAULT_NEGATIVE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = connection
        self._cache_ttl = cache_ttl
        self._negative_ttl = negative_ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, ContractSpec]] = {}
        self._negative: dict[str, tuple[float, ContractQualificationError]] = {}
        self._chains: dict[str, tuple[float, tuple[OptionChain, ...]]] = {}
        self._hours: dict[int, ListedHours] = {}

    # -- cache ------------------------------------------------------------------------------
    def clear_cache(self) -> None:
        self._cache.clear()
        self._negative.clear()
        self._chains.clear()
        self._hours.clear()

    def listed_hours(self, con_id: int) -> ListedHours | None:
        """The contract's regular sessions as the gateway listed them when it was last
        qualified (its ``liquidHours``), or None if never qualified here or not listed."""
        return self._hours.get(con_id)

    def cached(self, key: str) -> ContractSpec | None:
        entry = self._cache.get(key)
        if entry is None or self._monotonic() - entry[0] > self._cache_ttl:
            return None
        return entry[1]

    def _cached_failure(self, key: str) -> ContractQualificationError | None:
        entry = self._negative.get(key)
        if entry is None:
            return None
        if self._monotonic() - entry[0] > self._negative_ttl:
            del self._negative[key]
            return None
        return entry[1]

    # -- qualification ------------------------------------------------------------------------
    async def qualify(self, spec: ContractSpec, timeout: float = 30.0) -> ContractSpec:
        """The qualified form of ``spec`` (cached); unknown/ambiguous -> error."""
        if spec.con_id > 0:
            return spec
        key = spec.key
        hit = self.cached(key)
        if hit is not None:
            return hit
        failure = self._cached_failure(key)
        if failure is not None:
            raise ContractQualificationError(
                f"{failure.message} (cached for {self._negative_ttl:g}s)",
                code=failure.code,
                text=failure.text,
            )
        try:
            qualified = await self._request_details(spec, timeout)
        except ContractQualificationError as exc:
            self._negative[key] = (self._monotonic(), exc)
            raise
        self._cache[key] = (self._monotonic(), qualified)
        return qualified

    async def qualify_stock(
        self, symbol: str, timeout: float = 30.0, *, exchange: str = "SMART", currency: str = "USD"
    ) -> ContractSpec:
        spec = ContractSpec(
            symbol=symbol.upper(),
            sec_type="STK",
            multiplier=1,
            exchange=exchange,
            currency=currency,
        )
        return await self.qualify(spec, timeout)

    async def qualify_option_contract(
        self,
        symbol: str,
        expiry: str,
        strike: float,
        right: str,
        timeout: float = 30.0,
        *,
        exchange: str = "SMART",
        currency: str = "USD",
        multiplier: int = OPTION_MULTIPLIER,
    ) -> ContractSpec:
        normalised = _RIGHTS.get(right.strip().upper())
        if normalised is None:
            raise ContractQualificationError(f"option right must be C or P, got {right!r}")
        spec = ContractSpec(
            symbol=symbol.upper(),
            sec_type="OPT",
            expiry=expiry,
            strike=float(strike),
            right=normalised,
            multiplier=multiplier,
            exchange=exchange,
            currency=currency,
        )
        return await self.qualify(spec, timeout)

    async def _request_details(self, spec: ContractSpec, timeout: float) -> ContractSpec:
        conn = self._conn
        what = f"qualify {spec.key}"

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            req_id = conn.next_req_id()
            future = scope.start(req_id, contract=to_ib_contract(spec))
            conn.client.reqContractDetails(req_id, to_ib_contract(spec))
            result: list[Any] = await future
            return result

        details = await conn.call(what, timeout, body)
        matches = [d for d in details if d.contract is not None]
        if spec.sec_type:
            same_type = [d for d in matches if d.contract.secType == spec.sec_type]
            matches = same_type or matches
        if not matches:
            raise ContractQualificationError(
                f"{what}: no security definition found (unknown contract)", code=200
            )
        if len(matches) > 1:
            candidates = ", ".join(
                f"{d.contract.localSymbol or d.contract.symbol}#{d.contract.conId}"
                for d in matches[:5]
            )
            raise ContractQualificationError(
                f"{what}: ambiguous contract, {len(matches)} matches ({candidates})"
            )
        qualified = from_ib_contract(matches[0].contract, exchange=spec.exchange)
        if qualified.con_id <= 0:
            raise ContractQualificationError(f"{what}: the gateway returned no con_id")
        self._remember_hours(qualified.con_id, matches[0])
        _log.debug("contract qualified", key=spec.key, con_id=qualified.con_id)
        return qualified

    def _remember_hours(self, con_id: int, details: Any) -> None:
        try:
            hours = ListedHours.parse(
                str(getattr(details, "liquidHours", "") or ""),
                str(getattr(details, "timeZoneId", "") or ""),
            )
        except ListedHoursError as exc:  # the exchange calendar answers instead
            _log.warning("trading hours unreadable", con_id=con_id, error=str(exc))
            hours = None
        if hours is None:
            self._hours.pop(con_id, None)
        else:
            self._hours[con_id] = hours

    # -- option chain -------------------------------------------------------------------------
    async def option_chain(
        self, symbol: str, timeout: float = 30.0, *, exchange: str = "SMART"
    ) -> OptionChain:
        """Expiries and strikes of ``symbol``'s options (reqSecDefOptParams), cached."""
        key = f"{symbol.upper()}:{exchange}"
        entry = self._chains.get(key)
        if entry is not None and self._monotonic() - entry[0] <= self._cache_ttl:
            return self._pick_chain(entry[1], symbol, exchange)
        loop_deadline = time.monotonic() + timeout
        underlying = await self.qualify_stock(symbol, timeout)
        remaining = max(loop_deadline - time.monotonic(), 0.001)
        conn = self._conn

        async def body(scope: RequestScope) -> list[Any]:
            await scope.reserve(1)
            req_id = conn.next_req_id()
            future = scope.start(req_id)
            conn.client.reqSecDefOptParams(req_id, underlying.symbol, "", "STK", underlying.con_id)
            result: list[Any] = await future
            return result

        raw = await conn.call(f"option chain {symbol}", remaining, body)
        chains = tuple(
            OptionChain(
                symbol=underlying.symbol,
                underlying_con_id=int(c.underlyingConId or underlying.con_id),
                exchange=str(c.exchange),
                trading_class=str(c.tradingClass),
                multiplier=_multiplier(c.multiplier, "OPT"),
                expirations=tuple(sorted(str(e) for e in c.expirations)),
                strikes=tuple(sorted(float(s) for s in c.strikes)),
            )
            for c in raw
        )
        if not chains:
            raise ContractQualificationError(f"no option chain for {symbol}")
        self._chains[key] = (self._monotonic(), chains)
        return self._pick_chain(chains, symbol, exchange)

    @staticmethod
    def _pick_chain(chains: tuple[OptionChain, ...], symbol: str, exchange: str) -> OptionChain:
        for chain in chains:
            if chain.exchange == exchange and chain.trading_class in ("", symbol.upper()):
                return chain
        for chain in chains:
            if chain.exchange == exchange:
                return chain
        # Union over exchanges when the requested one is not listed.
        expirations = sorted({e for c in chains for e in c.expirations})
        strikes = sorted({s for c in chains for s in c.strikes})
        return replace(
            chains[0], exchange=exchange, expirations=tuple(expirations), strikes=tuple(strikes)
        )


__all__ = [
    "ContractManager",
    "IBContract",
    "OptionChain",
    "from_ib_contract",
    "require_qualified",
    "to_ib_contract",
]
