"""The test rig: the simulated gateway, a journal, a RiskManager and the gateway under test,
built on a fixed, injected simulator clock (see :mod:`ibkr_trader.testing.instants` for the
instants and :mod:`ibkr_trader.testing.rig` for the stack).

Nothing in the product imports this package; the test suite and the benchmarks do.
"""

from ibkr_trader.testing.instants import (
    DEFAULT_INSTANT,
    INSTANT_ENV,
    INSTANTS,
    SWEEP,
    parse_instant,
    rig_instant,
)
from ibkr_trader.testing.rig import (
    CONTEXT,
    Rig,
    atm_strike,
    build_rig,
    limits,
    make_signal,
    next_client_id,
    open_sim,
    option_ask,
    option_con_id,
    select_expiry,
    sim_config,
    trading_rig,
)

__all__ = [
    "CONTEXT",
    "DEFAULT_INSTANT",
    "INSTANTS",
    "INSTANT_ENV",
    "SWEEP",
    "Rig",
    "atm_strike",
    "build_rig",
    "limits",
    "make_signal",
    "next_client_id",
    "open_sim",
    "option_ask",
    "option_con_id",
    "parse_instant",
    "rig_instant",
    "select_expiry",
    "sim_config",
    "trading_rig",
]
