"""ibkr_trader.orders: the order lifecycle's home.

- :mod:`~ibkr_trader.orders.lifecycle`: one phase enum, one IB-status table, one ``outcome()``;
- :mod:`~ibkr_trader.orders.ids`: client order ids and IB execution ids (corrections);
- :mod:`~ibkr_trader.orders.exposure`: the exposure ledger, filled positions plus working
  orders, ours or not ours, that the RiskManager, the position manager, the orchestrator and
  reconciliation all read.

Reconciliation (``ibkr_trader.orders.reconcile``) feeds the ledger from the gateway's word.
"""

from ibkr_trader.orders.exposure import ExposureLedger, WorkingOrder
from ibkr_trader.orders.ids import client_order_id_for, exec_id_base
from ibkr_trader.orders.lifecycle import (
    ORDER_WARNING_CODES,
    Phase,
    is_done_status,
    is_working_status,
    outcome,
    phase_of,
)

__all__ = [
    "ORDER_WARNING_CODES",
    "ExposureLedger",
    "Phase",
    "WorkingOrder",
    "client_order_id_for",
    "exec_id_base",
    "is_done_status",
    "is_working_status",
    "outcome",
    "phase_of",
]
