"""Risk limits: a frozen, validated configuration section with safe defaults for a small account.

Limits come from the ``[risk]`` section of the configuration file, then from environment
variables ``IBKR_TRADER__RISK__<FIELD>`` (for example ``IBKR_TRADER__RISK__MAX_OPEN_POSITIONS=2``),
read by the one loader, :mod:`ibkr_trader.config`. An unknown key, in the file or in the
environment, is refused: a typo must never silently leave a limit at a looser value than the
operator meant.

A daily gameplan may only tighten the limits (:meth:`RiskLimits.tighten_with`); a hard limit that
would loosen one is a :class:`LimitLoosenError`.

Every field is documented in the README, section "Risk limits".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from ibkr_trader.settings import (
    Section,
    SettingError,
    comma_list,
    flag,
    integer,
    number,
    words,
)

ENV_PREFIX: Final = "IBKR_TRADER__RISK__"  # the one form (ibkr_trader.config)
TOML_SECTION: Final = "risk"


class RiskConfigError(ValueError):
    """The risk configuration is invalid (unknown key, bad value, unreadable file)."""


class LimitLoosenError(RiskConfigError):
    """A gameplan hard limit would loosen a configured risk limit."""

    def __init__(self, key: str, current: Any, proposed: Any, why: str) -> None:
        self.key = key
        self.current = current
        self.proposed = proposed
        super().__init__(
            f"hard limit {key}={proposed!r} would loosen the configured {key}={current!r} ({why})"
        )


def _allowlist(symbols: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(sorted({s.strip().upper() for s in symbols if s.strip()}))
    if not cleaned:
        raise ValueError("symbol_allowlist must name at least one symbol")
    return cleaned


@dataclass(frozen=True, slots=True)
class RiskLimits(Section):
    """Every limit the RiskManager enforces. Defaults suit a small (under $25k) cash account.

    Checked when built (:mod:`ibkr_trader.settings`): an invalid value is a SettingError (a
    ValueError); the loader reports it as a RiskConfigError / ConfigError.
    """

    # Instruments
    symbol_allowlist: tuple[str, ...] = words(
        ("SPY", "QQQ", "IWM"), split=comma_list, finish=_allowlist
    )
    option_multiplier: int = integer(100, gt=0)
    tick_size: float = number(0.01, gt=0, le=1.0)
    min_days_to_expiry_entry: int = integer(4, ge=0)
    allow_market_orders_for_entry: bool = flag(False)
    allow_short_options: bool = flag(False)

    # Position sizing
    max_contracts_per_order: int = integer(2, gt=0)
    max_contracts_per_position: int = integer(4, gt=0)
    max_open_positions: int = integer(3, gt=0)
    max_risk_per_trade_pct: float = number(0.02, gt=0, le=1.0)

    # Affordability
    cash_allocation_pct: float = number(0.50, gt=0, le=1.0)
    commission_per_contract: float = number(0.65, ge=0)
    min_commission_per_order: float = number(1.00, ge=0)

    # Pattern day trader rule
    pdt_equity_threshold: float = number(25_000.0, ge=0)
    pdt_max_day_trades: int = integer(3, ge=0)

    # Governors
    daily_loss_limit_pct: float = number(0.02, gt=0, le=1.0)
    weekly_drawdown_pct: float = number(0.05, gt=0, le=1.0)

    def limits_hash(self) -> str:
        """A short stable hash of every limit, recorded with each decision."""
        payload = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def estimated_commission(self, contracts: int) -> float:
        """IB-style per-contract commission with a per-order minimum."""
        return max(self.min_commission_per_order, self.commission_per_contract * contracts)

    def tighten_with(self, hard_limits: Mapping[str, Any]) -> RiskLimits:
        """Apply a daily gameplan's hard limits; refuse any that would loosen a limit.

        Keys are RiskLimits field names. Numeric caps may only go down, floors only up, the
        allowlist may only shrink, permissions may only be withdrawn; ``tick_size`` and
        ``option_multiplier`` describe the market, not a limit, and may not change.
        """
        updates: dict[str, Any] = {}
        known = self.field_names()
        for key, raw in hard_limits.items():
            if key not in known:
                raise RiskConfigError(
                    f"unknown hard limit {key!r}; known: {', '.join(sorted(known))}"
                )
            updates[key] = raw
        try:
            proposed = self.replaced(**updates)
        except SettingError as exc:
            raise RiskConfigError(f"invalid hard limits: {exc}") from exc
        for key in updates:
            current = getattr(self, key)
            new = getattr(proposed, key)
            direction = _DIRECTION[key]
            if direction == "max" and new > current:
                raise LimitLoosenError(key, current, new, "this cap may only go down")
            if direction == "min" and new < current:
                raise LimitLoosenError(key, current, new, "this floor may only go up")
            if direction == "subset" and not set(new) <= set(current):
                extra = sorted(set(new) - set(current))
                raise LimitLoosenError(key, current, new, f"adds symbols {extra}")
            if direction == "deny" and new and not current:
                raise LimitLoosenError(key, current, new, "a permission may only be withdrawn")
            if direction == "fixed" and new != current:
                raise LimitLoosenError(key, current, new, "a market fact, not a limit")
        return proposed


Direction = Literal["max", "min", "subset", "deny", "fixed"]

# How each field tightens. A test checks that every field is listed.
_DIRECTION: Final[dict[str, Direction]] = {
    "symbol_allowlist": "subset",
    "option_multiplier": "fixed",
    "tick_size": "fixed",
    "min_days_to_expiry_entry": "min",
    "allow_market_orders_for_entry": "deny",
    "allow_short_options": "deny",
    "max_contracts_per_order": "max",
    "max_contracts_per_position": "max",
    "max_open_positions": "max",
    "max_risk_per_trade_pct": "max",
    "cash_allocation_pct": "max",
    "commission_per_contract": "min",
    "min_commission_per_order": "min",
    "pdt_equity_threshold": "min",
    "pdt_max_day_trades": "max",
    "daily_loss_limit_pct": "max",
    "weekly_drawdown_pct": "max",
}


def load_risk_limits(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    section: Mapping[str, Any] | None = None,
) -> RiskLimits:
    """RiskLimits through the one configuration loader (:func:`ibkr_trader.config.load_config`).

    ``path``: a TOML configuration file (its ``[risk]`` section; the other sections are
    validated too), else ``section``: an already parsed ``[risk]`` table, else
    ``$IBKR_TRADER_CONFIG``. ``env``: the environment (``os.environ`` when None), where
    ``IBKR_TRADER__RISK__<FIELD>`` overrides a limit and any other ``IBKR_TRADER_*`` form is
    refused. Every error is a RiskConfigError.
    """
    from ibkr_trader.config import ConfigError, load_config

    if path is not None and section is not None:
        raise RiskConfigError("give either a file path or a parsed section, not both")
    environ = dict(os.environ if env is None else env)
    if path is not None or section is not None:
        environ.pop("IBKR_TRADER_CONFIG", None)
    try:
        config = load_config(path, env=environ)
    except ConfigError as exc:
        raise RiskConfigError(str(exc)) from exc
    if section is None:
        return config.risk
    values = dict(section.as_dict() if isinstance(section, RiskLimits) else section)
    for key, origin in config.origins.items():
        name, _, field = key.partition(".")
        if name == TOML_SECTION and origin.startswith("env "):
            values[field] = getattr(config.risk, field)
    try:  # an unknown key is refused as the loader refuses it (Section.from_mapping)
        return RiskLimits.from_mapping(values)
    except SettingError as exc:
        raise RiskConfigError(f"invalid risk limits: {exc.within(TOML_SECTION)}") from exc
