"""Client order ids (our ``orderRef``) and IB execution ids.

A client order id is deterministic: the same (operator, strategy, signal, contract, side,
quantity) always gives the same id, so a retried signal maps to the intent already journaled
and is never sent twice. A close's signal id counts the closes of its contract already final
(``PositionManager``), and its quantity is the position minus the closes already working
(the exposure ledger), so a partly filled close that still works is never closed again.

IB execution ids look like ``0000e0d5.6554c5e1.01.01``: the last part is the revision. A
correction re-sends the same execution under the next revision (``….02``), which replaces the
earlier one: :func:`exec_id_base` is what identifies one execution across its revisions.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

_REF_SAFE: Final = re.compile(r"[^A-Za-z0-9]")
_REVISION: Final = re.compile(r"^(?P<base>.+)\.(?P<rev>\d{2})$")


def client_order_id_for(
    operator_id: str,
    strategy_id: str,
    signal_id: str,
    contract_key: str,
    action: str,
    quantity: int,
) -> str:
    """The deterministic client order id (sent as IB's ``orderRef``).

    Shape: ``<OPERATOR>-<strategy>-<sha256[:12]>``, at most 40 characters of ``[A-Za-z0-9-]``.
    """
    if not operator_id.strip():
        raise ValueError("operator_id must not be empty")
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    payload = "|".join(
        [
            "coid-v1",
            operator_id.strip(),
            strategy_id.strip(),
            signal_id.strip(),
            contract_key.strip(),
            action.strip().upper(),
            str(int(quantity)),
        ]
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    operator = _REF_SAFE.sub("", operator_id)[:12] or "OP"
    strategy = _REF_SAFE.sub("", strategy_id)[:12] or "S"
    return f"{operator}-{strategy}-{digest}"


def settlement_order_id(exec_id: str) -> str:
    """The client order id the journal gives one leg of IB's own booking at an option's
    expiry (an execution without an order): one per execution."""
    return f"settlement-{exec_id}"


def exec_id_base(exec_id: str) -> str:
    """One execution across its revisions: ``X.01`` and its correction ``X.02`` share ``X``.

    An exec id without a two-digit revision is its own base (simulated fills, other brokers).
    """
    match = _REVISION.match(exec_id)
    return match.group("base") if match else exec_id


def exec_revision(exec_id: str) -> int:
    """The revision of an exec id (1 for one without a revision suffix)."""
    match = _REVISION.match(exec_id)
    return int(match.group("rev")) if match else 1
