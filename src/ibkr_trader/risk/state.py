"""Where the RiskManager keeps what must survive a restart.

``RiskStateStore`` is the contract (docs/dev/interfaces.md): ``ibkr_trader.journal.Journal``
implements it on SQLite; :class:`InMemoryRiskStateStore` implements it in memory for tests and
dry runs that do not need a file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

from ibkr_trader.models import TradeRequest, TradingState, ValidationResult


@runtime_checkable
class RiskStateStore(Protocol):
    def record_risk_decision(self, request: TradeRequest, result: ValidationResult) -> int: ...
    def record_trading_state(self, state: TradingState, cause: str) -> None: ...
    def last_trading_state(self) -> tuple[TradingState, str] | None: ...
    def record_day_trade(self, contract_key: str, symbol: str, trade_date: date) -> None: ...
    def day_trades_between(self, start: date, end: date) -> list[tuple[str, date]]: ...
    def put_risk_state(self, key: str, value: float | str | None, as_of: date | None) -> None: ...
    def get_risk_state(self, key: str) -> tuple[float | str | None, date | None] | None: ...
    def record_event(self, kind: str, detail: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    decision_id: int
    request: TradeRequest
    result: ValidationResult


@dataclass(slots=True)
class InMemoryRiskStateStore:
    """A RiskStateStore in memory; its lists are public so tests can read what was recorded."""

    decisions: list[RecordedDecision] = field(default_factory=list)
    trading_states: list[tuple[TradingState, str]] = field(default_factory=list)
    day_trades: list[tuple[str, str, date]] = field(default_factory=list)
    risk_state: dict[str, tuple[float | str | None, date | None]] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def record_risk_decision(self, request: TradeRequest, result: ValidationResult) -> int:
        decision_id = next(self._ids)
        self.decisions.append(RecordedDecision(decision_id, request, result))
        return decision_id

    def record_trading_state(self, state: TradingState, cause: str) -> None:
        self.trading_states.append((TradingState(state), cause))

    def last_trading_state(self) -> tuple[TradingState, str] | None:
        return self.trading_states[-1] if self.trading_states else None

    def record_day_trade(self, contract_key: str, symbol: str, trade_date: date) -> None:
        self.day_trades.append((contract_key, symbol, trade_date))

    def day_trades_between(self, start: date, end: date) -> list[tuple[str, date]]:
        return [(key, day) for key, _symbol, day in self.day_trades if start <= day <= end]

    def put_risk_state(self, key: str, value: float | str | None, as_of: date | None) -> None:
        self.risk_state[key] = (value, as_of)

    def get_risk_state(self, key: str) -> tuple[float | str | None, date | None] | None:
        return self.risk_state.get(key)

    def record_event(self, kind: str, detail: dict[str, Any]) -> None:
        self.events.append((kind, dict(detail)))

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """The details of every recorded event of one kind (a test convenience)."""
        return [detail for event_kind, detail in self.events if event_kind == kind]
