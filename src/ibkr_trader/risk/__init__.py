"""ibkr_trader.risk: pre-trade risk validation, trading state, governors and the kill switch.

```python
from ibkr_trader.risk import RiskManager, RiskLimits, InMemoryRiskStateStore, load_risk_limits
rm = RiskManager(load_risk_limits(path), journal_or_store, clock, kill_switch_path=path)
rm.update_account(snapshot); await rm.sync_positions(positions)
result = await rm.validate_trade(request)   # frozen ValidationResult, journaled, decision_id set
```
Every limit, its default and what it protects against: the README, section "Risk limits".
"""

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
