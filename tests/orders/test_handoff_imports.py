"""The handoff's imports (its 4.2 and 4.3) work as it writes them, in a fresh interpreter."""

import subprocess
import sys

HANDOFF_IMPORTS = (
    "from ibkr_trader.integrations import IBKRGateway, GatewayConfig, ExecutionMode, "
    "MarketDataPipeline, MarketData, DataQuality, OrderExecutor, OrderResult, OrderStatus, "
    "TradeRequest, PositionManager, Position\n"
    "from ibkr_trader.risk.risk_manager import RiskManager, ValidationResult\n"
    "from ibkr_trader.integrations.ibkr_gateway import IBKRGateway as G\n"
    "assert G is IBKRGateway\n"
    "assert RiskManager.__name__ == 'RiskManager'\n"
    "assert ValidationResult.__name__ == 'ValidationResult'\n"
    "print('ok')\n"
)


def test_handoff_imports_work_in_a_fresh_interpreter() -> None:
    out = subprocess.run(
        [sys.executable, "-c", HANDOFF_IMPORTS], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
