"""ibkr_trader.risk."""
