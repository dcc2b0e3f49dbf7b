"""The handoff's import path (its section 4.3): `from ibkr_trader.risk.risk_manager import
RiskManager, ValidationResult`. The code lives in `risk.manager` and `models`."""

from ibkr_trader.models import ValidationResult
from ibkr_trader.risk.manager import RiskManager

__all__ = ["RiskManager", "ValidationResult"]
