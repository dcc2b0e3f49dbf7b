"""ibkr_trader.risk: pre-trade risk validation, trading state, governors and the kill switch.

```python
from ibkr_trader.risk import RiskManager, RiskLimits, InMemoryRiskStateStore, load_risk_limits
rm = RiskManager(load_risk_limits(path), journal_or_store, clock, kill_switch_path=path)
rm.update_account(snapshot); await rm.sync_positions(positions)
result = await rm.validate_trade(request)   # frozen ValidationResult, journaled, decision_id set
```
Every limit, its default and what it protects against: the README, section "Risk limits".

The names are imported on first use (PEP 562), so ``ibkr_trader.risk.config`` (imported by
every command through the configuration) does not pull in the checks and the calendar.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ibkr_trader.risk.checks import RiskSnapshot, pdt_window_start, run_checks
    from ibkr_trader.risk.config import (
        ENV_PREFIX,
        LimitLoosenError,
        RiskConfigError,
        RiskLimits,
        load_risk_limits,
    )
    from ibkr_trader.risk.killswitch import default_kill_switch_path
    from ibkr_trader.risk.manager import RiskManager
    from ibkr_trader.risk.state import InMemoryRiskStateStore, RiskStateStore

_WHERE = {
    "RiskSnapshot": "checks",
    "pdt_window_start": "checks",
    "run_checks": "checks",
    "ENV_PREFIX": "config",
    "LimitLoosenError": "config",
    "RiskConfigError": "config",
    "RiskLimits": "config",
    "load_risk_limits": "config",
    "default_kill_switch_path": "killswitch",
    "RiskManager": "manager",
    "InMemoryRiskStateStore": "state",
    "RiskStateStore": "state",
}

__all__ = [
    "ENV_PREFIX",
    "InMemoryRiskStateStore",
    "LimitLoosenError",
    "RiskConfigError",
    "RiskLimits",
    "RiskManager",
    "RiskSnapshot",
    "RiskStateStore",
    "default_kill_switch_path",
    "load_risk_limits",
    "pdt_window_start",
    "run_checks",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ibkr_trader.risk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ibkr_trader.risk.{module}"), name)
    globals()[name] = value
    return value
