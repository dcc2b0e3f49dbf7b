"""ibkr_trader.broker."""
