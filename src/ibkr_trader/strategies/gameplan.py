"""The daily gameplan (handoff 6.4): which strategy trades today, on what, within what limits.

A gameplan is a TOML or JSON file with the handoff's fields::

    strategy = "A"                 # "A", "B" or "C"; C means no entries today
    symbols = ["SPY"]
    vix_at_analysis = 17.4
    session_date = 2026-11-24      # optional; if given it must be today's New York date
    [key_levels]
    SPY = { support = 580.0, resistance = 596.5 }
    [hard_limits]
    max_risk_per_trade_pct = 0.01  # RiskLimits field names -> values; may only tighten
    symbol_allowlist = ["SPY"]

:class:`DailyGameplan` is a frozen pydantic model with ``extra="forbid"``: an unknown key is
refused (a misspelt limit must not be silently ignored). ``hard_limits`` stays a plain mapping
here; the risk room's ``RiskLimits.tighten_with(hard_limits)`` checks the names and that each
value only tightens its limit, and the orchestrator falls back to C when it refuses.

:func:`load_gameplan` never raises: a missing, unreadable or invalid file, or one dated for
another day, gives strategy C with a message that says why (``GameplanLoad.ok`` False).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from ibkr_trader.clock import Clock
from ibkr_trader.strategies.base import Strategy
from ibkr_trader.strategies.strategy_a import StrategyA
from ibkr_trader.strategies.strategy_b import StrategyB
from ibkr_trader.strategies.strategy_c import StrategyC

__all__ = ["DailyGameplan", "GameplanLoad", "load_gameplan", "parse_gameplan", "strategy_for"]

StrategyLetter = Literal["A", "B", "C"]
# Strict: a quoted "1" must not become True or 1.0 by coercion.
LevelNumber = StrictInt | StrictFloat
LevelValue = LevelNumber | list[LevelNumber] | dict[str, LevelNumber]
LimitValue = StrictBool | StrictInt | StrictFloat | list[StrictStr]  # lists: symbol_allowlist

_SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.]*$"


class DailyGameplan(BaseModel):
    """Today's plan, validated; unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    strategy: StrategyLetter
    symbols: tuple[str, ...] = Field(max_length=50)
    vix_at_analysis: float | None = Field(ge=0, le=200, allow_inf_nan=False)  # key required
    key_levels: dict[str, LevelValue] = Field(default_factory=dict)
    hard_limits: dict[str, LimitValue] = Field(default_factory=dict)
    session_date: date | None = None
    notes: str = Field(default="", max_length=2000)

    @field_validator("strategy", mode="before")
    @classmethod
    def _upper_strategy(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _normalise_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("symbols must be a list of tickers")
        if isinstance(value, list | tuple):
            return tuple(s.strip().upper() if isinstance(s, str) else s for s in value)
        return value

    @field_validator("symbols")
    @classmethod
    def _valid_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not re.fullmatch(_SYMBOL_PATTERN, symbol) or len(symbol) > 12:
                raise ValueError(f"not a ticker: {symbol!r}")
        if len(set(value)) != len(value):
            raise ValueError("symbols must not repeat")
        return value

    @field_validator("vix_at_analysis", "hard_limits", "key_levels")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if _has_non_finite(value):
            raise ValueError("numbers must be finite")
        return value

    @property
    def allows_entries(self) -> bool:
        """Strategy C means no entries; so does an empty symbol list."""
        return self.strategy != "C" and bool(self.symbols)

    @classmethod
    def fallback(cls) -> DailyGameplan:
        """Strategy C: capital preservation, no symbols, no entries."""
        return cls(strategy="C", symbols=(), vix_at_analysis=None)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


@dataclass(frozen=True, slots=True)
class GameplanLoad:
    """The outcome of loading a gameplan: always a usable plan, and why."""

    gameplan: DailyGameplan
    ok: bool
    message: str
    source: Path | None = None
    errors: tuple[str, ...] = ()


def _fallback(message: str, source: Path | None, errors: tuple[str, ...] = ()) -> GameplanLoad:
    return GameplanLoad(
        gameplan=DailyGameplan.fallback(),
        ok=False,
        message=f"{message}; trading strategy C (capital preservation: no entries)",
        source=source,
        errors=errors,
    )


def parse_gameplan(
    data: Any, source: Path | None = None, today: date | None = None
) -> GameplanLoad:
    """Validate already-decoded data (a mapping). Never raises."""
    where = str(source) if source is not None else "gameplan"
    if not isinstance(data, dict):
        return _fallback(f"{where}: expected a table of fields, got {type(data).__name__}", source)
    try:
        plan = DailyGameplan.model_validate(data)
    except ValidationError as exc:
        errors = tuple(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        return _fallback(f"{where} is invalid ({'; '.join(errors)})", source, errors)
    if today is not None and plan.session_date is not None and plan.session_date != today:
        return _fallback(
            f"{where} is for {plan.session_date.isoformat()}, today is {today.isoformat()}",
            source,
        )
    summary = f"strategy {plan.strategy} on {', '.join(plan.symbols) or 'no symbols'}"
    return GameplanLoad(gameplan=plan, ok=True, message=f"{where}: {summary}", source=source)


def load_gameplan(path: Path | str | None, today: date | None = None) -> GameplanLoad:
    """Read a ``.toml`` or ``.json`` gameplan. Never raises: any problem -> strategy C.

    ``today`` (the New York date, ``clock.ny_date(clock.now())``) enables the date check of an
    optional ``session_date``.
    """
    if path is None or str(path) == "":
        return _fallback("no gameplan given", None)
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".toml", ".json"):
        return _fallback(f"{source}: a gameplan must be a .toml or .json file", source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _fallback(f"{source}: gameplan file not found", source)
    except (OSError, UnicodeDecodeError) as exc:
        return _fallback(f"{source}: cannot read the gameplan ({exc})", source)
    try:
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (ValueError, RecursionError) as exc:  # a decode error, or an integer of 4,300+ digits
        return _fallback(f"{source}: not valid {suffix[1:].upper()} ({exc})", source)
    return parse_gameplan(data, source, today)


def strategy_for(gameplan: DailyGameplan, clock: Clock) -> Strategy:
    """The strategy object a gameplan names, with its default context and parameters."""
    if gameplan.strategy == "A" and gameplan.allows_entries:
        return StrategyA(clock)
    if gameplan.strategy == "B" and gameplan.allows_entries:
        return StrategyB(clock)
    return StrategyC(reason="" if gameplan.strategy == "C" else "the gameplan names no symbols")
