"""ibkr_trader.journal: the durable audit journal (SQLite, WAL, append-first).

```python
from ibkr_trader.journal import Journal, JournalError
with Journal.open(None, ExecutionMode.DRY_RUN) as j:   # None -> default_journal_path(mode)
    decision_id = j.record_risk_decision(request, result)
    intent, existed = j.record_intent(request, decision_id=decision_id)
```
See :mod:`ibkr_trader.journal.store` for the durability and threading contract and
:class:`AsyncJournal` for use from asyncio code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ibkr_trader.journal.records import (
    BrokerIdsRecord,
    CheckRecord,
    ClosureRecord,
    DecisionRecord,
    EventRecord,
    Explanation,
    FillRecord,
    IntentRecord,
    IntentResult,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalModeError,
    JournalReadOnlyError,
    JournalSchemaError,
    NotAJournalError,
    OrderRow,
    OrderState,
    Recorded,
    ResultRecord,
    SimFillOutcome,
    SimPosition,
    StatusRecord,
    TradingStateRecord,
    UnknownOrderError,
)
from ibkr_trader.journal.schema import SCHEMA_VERSION
from ibkr_trader.journal.store import (
    HOME_ENV,
    Journal,
    OrderResultLike,
    default_journal_path,
)
from ibkr_trader.orders.ids import client_order_id_for  # its home: orders/ids.py

if TYPE_CHECKING:  # imported on first use (PEP 562): asyncio only for those who need it
    from ibkr_trader.journal.async_journal import (
        AsyncJournal,
        tolerate_write_failures,
        write_failures_tolerated,
    )

_ASYNC = frozenset({"AsyncJournal", "tolerate_write_failures", "write_failures_tolerated"})


def __getattr__(name: str) -> Any:
    if name not in _ASYNC:
        raise AttributeError(f"module 'ibkr_trader.journal' has no attribute {name!r}")
    value = getattr(importlib.import_module("ibkr_trader.journal.async_journal"), name)
    globals()[name] = value
    return value


__all__ = [
    "HOME_ENV",
    "SCHEMA_VERSION",
    "AsyncJournal",
    "BrokerIdsRecord",
    "CheckRecord",
    "ClosureRecord",
    "DecisionRecord",
    "EventRecord",
    "Explanation",
    "FillRecord",
    "IntentRecord",
    "IntentResult",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalModeError",
    "JournalReadOnlyError",
    "JournalSchemaError",
    "NotAJournalError",
    "OrderResultLike",
    "OrderRow",
    "OrderState",
    "Recorded",
    "ResultRecord",
    "SimFillOutcome",
    "SimPosition",
    "StatusRecord",
    "TradingStateRecord",
    "UnknownOrderError",
    "client_order_id_for",
    "default_journal_path",
    "tolerate_write_failures",
    "write_failures_tolerated",
]
