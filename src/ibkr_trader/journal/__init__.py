"""ibkr_trader.journal."""
