"""ibkr_trader.sim: a simulated IB Gateway that speaks the TWS API to unmodified ib_async."""

from ibkr_trader.sim.faults import FaultInjector
from ibkr_trader.sim.server import SimulatedGateway
from ibkr_trader.sim.state import ReceivedOrder, SimConfig

__all__ = ["FaultInjector", "ReceivedOrder", "SimConfig", "SimulatedGateway"]
