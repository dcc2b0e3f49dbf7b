"""ibkr_trader.sim."""
