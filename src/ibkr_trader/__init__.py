"""ibkr-trader: the layer between an automated options-trading bot and Interactive Brokers."""

__version__ = "0.1.0"
