"""ibkr_trader.integrations: the handoff's integration layer (its section 4.2).

```python
from ibkr_trader.integrations import (
    IBKRGateway, GatewayConfig, ExecutionMode, MarketDataPipeline, MarketData, DataQuality,
    OrderExecutor, OrderResult, OrderStatus, TradeRequest, PositionManager, Position,
)
```
"""

from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.integrations.market_data_pipeline import MarketDataPipeline
from ibkr_trader.integrations.market_data_types import DataQuality, MarketData
from ibkr_trader.integrations.order_executor import OrderExecutor, OrderResult
from ibkr_trader.integrations.position_manager import PositionManager
from ibkr_trader.models import ExecutionMode, OrderStatus, Position, TradeRequest

__all__ = [
    "DataQuality",
    "ExecutionMode",
    "GatewayConfig",
    "IBKRGateway",
    "MarketData",
    "MarketDataPipeline",
    "OrderExecutor",
    "OrderResult",
    "OrderStatus",
    "Position",
    "PositionManager",
    "TradeRequest",
]
