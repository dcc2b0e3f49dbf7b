"""ibkr_trader.integrations."""
