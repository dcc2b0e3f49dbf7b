"""ibkr_trader.broker: the only package that imports ib_async.

Public names (see docs/dev/interfaces.md): IBKRConnection, ConnectionState, ContractManager,
MarketDataProvider, Quote, Bar, OrderSpec, TradeHandle and the exception tree in
``broker.exceptions``. Modules are imported on use; ``import ibkr_trader.broker`` alone does
not load ib_async.
"""
