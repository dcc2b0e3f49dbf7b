"""ibkr_trader.strategies."""
