"""Seeded chaos scenarios against the simulated gateway, and the invariants checked after each.

``await run_scenario(seed, workdir)`` builds a PAPER trading stack (journal, RiskManager,
IBKRGateway, TradingOrchestrator) against a fresh in-process simulator, then runs a seeded
sequence of steps — orchestrator cycles, direct submits (resting and marketable), closes,
market data — while random faults happen: a disconnect at a random message, a gateway restart,
delays, order rejections, partial fills, orders that never fill, pacing errors (162), stale and
missing quotes, IB connectivity notices, a halt. One scenario in ``KILL_EVERY`` instead runs the
trading side in a subprocess (``driver.py``), kills it with SIGKILL and starts another on the
same journal. At the end the faults stop, the stack reconnects and reconciles, and
:func:`check_invariants` lists every violation (an empty list is a clean scenario):

1. no duplicate order at the simulator (by orderRef);
2. every order the simulator received has a journaled intent and an approved risk decision;
3. after reconciliation the journal agrees with the simulator: each order's final state and
   filled quantity, the executions (by exec id), and the positions;
4. no unhandled exception (the loop's exception handler, and anything unexpected raised by
   the public API);
5. no standing market-data subscription;
6. no order received while the journaled trading state was HALTED or RECONCILING.

And at EVERY step (:func:`step_invariants`, not only after reconciliation):

7. never short an option (``allow_short_options`` is off);
8. never above a limit counting working orders: per contract, position plus working buys at
   most ``max_contracts_per_position``; contracts held or with a working buy at most
   ``max_open_positions``;
9. no working order that nobody owns (and no entry of ours still working after a cycle in
   HALTED): every order working at the simulator with our orderRef
   has a journaled intent that is not final (not "Rejected", not "Lost" while it works);
10. foreign positions untouched: a stock position the bot never opened (seeded at the start)
    is never traded;
11. every execution journaled exactly once: no order has more journaled fill quantity than
    it filled at the simulator, and no execution is journaled under two revisions.

Faults besides the ones above: order-level warnings on live orders (10349, 399, 404, 2109),
execution corrections (exec id revision ``.02``), a client-id change (the bot comes back on
another client id over the same journal), a journal write error right after an order is
sent, and a second instance on another client id over the same journal. Orders are of 1-4
contracts (partial fills of 2-4 included).

And issue 14's faults (``chaos/protective.py``), each a short drill with its own check: total
loss of market data for 5.5-7 minutes (the quarantine closes), a gateway clock that never
answers (no entry that cycle), no bid on held options (the stop closes), a full disk for one
step (closes still go out, none is reported failed when it filled, and the journal learns of
them afterwards), a day boundary, and a reconnect to a live-style account (HALTED, nothing
sent, an operator's resume included).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaos.protective import PROTECTIVE_FAULTS, Drill, protective_fault
from ibkr_trader.broker.connection import IBKRConnection
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.clock import Clock
from ibkr_trader.integrations.exceptions import GatewayError
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.journal import AsyncJournal, Journal, JournalError
from ibkr_trader.models import ExecutionMode, TradingState
from ibkr_trader.orders.reconcile import Reconciler
from ibkr_trader.risk import RiskLimits, RiskManager
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import DEFAULT_INSTANT, open_sim

try:  # the orchestrator is another room's; scenarios fall back to the gateway without it
    from ibkr_trader.orchestrator import TradingOrchestrator
    from ibkr_trader.strategies.strategy_a import StrategyA
    from ibkr_trader.strategies.strategy_b import StrategyB
except ImportError:  # pragma: no cover
    TradingOrchestrator = None  # type: ignore[assignment,misc]

KILL_EVERY = 10  # one scenario in ten is the kill -9 variant
LIMITS = RiskLimits(max_contracts_per_order=4)  # 4 per position, 3 open positions (defaults)
FOREIGN = ("AAPL", 100)  # a stock position the bot never opened
EXPECTED = (BrokerError, GatewayError, TimeoutError, JournalError)
DRIVER = Path(__file__).with_name("driver.py")
BLOCKING_STATES = {TradingState.HALTED.value, TradingState.RECONCILING.value}
CONTEXT = {
    "strategy_id": "chaos",
    "strategy_name": "Chaos",
    "risk_per_trade": 0.01,
    "take_profit_pct": 0.5,
    "stop_loss_pct": 0.4,
}


@dataclass
class ScenarioResult:
    seed: int
    kind: str
    violations: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    orders: int = 0
    fills: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


class OrderClock:
    """Simulated receive time of every new order at the simulator (wraps ``state.handle``)."""

    def __init__(self, sim: SimulatedGateway) -> None:
        self.times: dict[str, datetime] = {}
        state = sim.state
        original = state.handle

        def handle(conn_id: int, fields: Any) -> Any:
            n = len(state.orders)
            actions = original(conn_id, fields)
            for order in state.orders[n:]:
                self.times.setdefault(order.order_ref, sim.clock.now())
            return actions

        state.handle = handle  # type: ignore[method-assign]


def signal_for(i: int, expiry: str, strike: float, limit: float, qty: int) -> dict[str, Any]:
    """A deterministic signal (same i -> same signal id -> same orderRef)."""
    return {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": qty,
        "order_type": "LMT",
        "limit_price": round(limit, 2),
        "expiry": expiry,
        "strike": strike,
        "right": "C",
        "strategy_id": CONTEXT["strategy_id"],
        "timestamp": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
    }


async def build_stack(
    sim_host: str,
    sim_port: int,
    journal_path: Path,
    kill_switch: Path,
    client_id: int,
    clock: Clock,
) -> tuple[Journal, RiskManager, IBKRGateway]:
    """The trading side on ``clock``: the simulator's own, or (in the driver process) one
    that starts at the simulator's time and ticks from there."""
    journal = Journal.open(journal_path, ExecutionMode.PAPER, clock)
    risk = RiskManager(LIMITS, journal, clock, kill_switch_path=kill_switch)
    connection = IBKRConnection(
        sim_host,
        sim_port,
        client_id=client_id,
        timeout=3.0,
        backoff_initial=0.02,
        backoff_max=0.1,
    )
    gateway = IBKRGateway(
        GatewayConfig(host=sim_host, port=sim_port, client_id=client_id),
        risk,
        ExecutionMode.PAPER,
        journal=AsyncJournal(journal),
        clock=clock,
        connection=connection,
    )
    return journal, risk, gateway


async def wait_connected(gw: IBKRGateway, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not gw.is_connected:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def contract_terms(gw: IBKRGateway) -> tuple[str, float, float, float]:
    """(expiry, strike, ask, bid) of an at-the-money call 7-21 days out."""
    from ibkr_trader.strategies.selection import SelectionConfig, select_expiry

    chain = await gw.contracts.option_chain("SPY", 3.0)
    now = await gw.server_time(3.0)
    expiry = select_expiry(chain.expirations, now, SelectionConfig())
    assert expiry is not None
    data = await gw.get_market_data("SPY", 3.0)
    strike = min(chain.strikes, key=lambda s: (abs(s - data.last_price), s))
    contract = await gw.contracts.qualify_option_contract("SPY", expiry, strike, "C", 3.0)
    quote, _ = await gw.pipeline.fetch_quote(contract, 3.0, server_check=False)
    assert quote.ask is not None and quote.bid is not None
    return expiry, strike, quote.ask, quote.bid


# --------------------------------------------------------------------------- faults


def random_fault(rng: random.Random) -> tuple[str, Any]:
    kind = rng.choice(
        [
            "drop_after",
            "restart",
            "delay",
            "reject_orders",
            "partial_fill",
            "never_fill",
            "pacing",
            "stale_quotes",
            "missing_bid_ask",
            "notice",
            "halt",
            "clear",
            "warn",
            "warn",
            "correct",
            "client_id",
            "journal_error",
            "second_instance",
            *PROTECTIVE_FAULTS,
        ]
    )
    arg: Any = None
    if kind == "drop_after":
        arg = rng.randint(0, 40)
    elif kind == "delay":
        # 5 and 16: reqOpenOrders (ib_async's start-up sync) and reqAllOpenOrders (ours)
        arg = (rng.choice([1, 3, 5, 9, 16, 20, 49, 62]), rng.choice([0.05, 0.2, 0.6]))
    elif kind == "partial_fill":
        arg = rng.choice([0.25, 0.5, 0.75])
    elif kind == "pacing":
        arg = rng.choice([20, 1])
    elif kind == "stale_quotes":
        arg = rng.choice([120.0, 600.0, 86_400.0])
    elif kind == "notice":
        arg = rng.choice([1100, 1101, 1102, 2103, 2105])
    elif kind == "warn":
        arg = rng.choice([10349, 10349, 399, 404, 2109])
    return kind, arg


async def apply_fault(kind: str, arg: Any, sim: SimulatedGateway, risk: RiskManager | None) -> None:
    f = sim.faults
    if kind == "drop_after":
        f.drop_after(arg)
    elif kind == "restart":
        await sim.restart(down_for=0.05)
    elif kind == "delay":
        f.delay(*arg)
    elif kind == "reject_orders":
        f.reject_orders("chaos rejection")
    elif kind == "partial_fill":
        f.partial_fill(arg)
    elif kind == "never_fill":
        f.never_fill()
    elif kind == "pacing":
        f.error_next(arg, 162, "Historical Market Data Service error message:pacing violation")
    elif kind == "stale_quotes":
        f.stale_quotes(arg)
    elif kind == "missing_bid_ask":
        f.missing_bid_ask()
    elif kind == "notice":
        await sim.broadcast_error(arg)
    elif kind == "halt" and risk is not None:
        risk.halt("chaos: operator halt")
    elif kind == "clear":
        f.clear()
    elif kind == "warn":
        f.warn_orders(arg)
    elif kind == "correct":
        f.correct_executions()


# --------------------------------------------------------------------------- scenarios


async def run_scenario(seed: int, workdir: Path, *, allow_kill: bool = True) -> ScenarioResult:
    kind = "kill9" if allow_kill and seed % KILL_EVERY == KILL_EVERY - 1 else "inprocess"
    result = ScenarioResult(seed=seed, kind=kind)
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    previous = loop.get_exception_handler()

    def on_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        where = context.get("future") or context.get("task") or context.get("handle")
        loop_errors.append(f"{context.get('message')}: {exc!r} in {where!r}"[:600])

    loop.set_exception_handler(on_error)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    try:
        # one fixed instant (mid-session): the date sweep covers the calendar, this the faults
        async with open_sim(DEFAULT_INSTANT, seed=seed % 997) as sim:
            clock = OrderClock(sim)
            if kind == "kill9":
                await _kill_scenario(seed, workdir, sim, result)
            else:
                await _inprocess_scenario(seed, workdir, sim, result, clock)
            gc.collect()
            await asyncio.sleep(0)
    except Exception as exc:  # the harness itself: report, never hide
        result.violations.append(f"scenario crashed: {exc!r}")
    finally:
        loop.set_exception_handler(previous)
    result.violations += [f"unhandled in loop: {e}" for e in loop_errors]
    result.seconds = time.monotonic() - started
    return result


async def _step(result: ScenarioResult, name: str, coro: Any) -> Any:
    try:
        return await coro
    except EXPECTED as exc:
        result.steps.append(f"{name}: {type(exc).__name__}")
        return None
    except Exception as exc:
        result.violations.append(f"unexpected exception in {name}: {exc!r}")
        return None


def _only_ours(method: Any) -> dict[str, Any]:
    """Automatic closes leave foreign positions alone (the keyword, where the API has it)."""
    return {"only_ours": True} if "only_ours" in inspect.signature(method).parameters else {}


class Stack:
    """The trading side of an in-process scenario; rebuilt on a client-id change."""

    def __init__(
        self, sim: SimulatedGateway, workdir: Path, client_id: int, rest_entries: bool = False
    ) -> None:
        self.sim, self.workdir, self.client_id = sim, workdir, client_id
        self.rest_entries = rest_entries
        self.journal: Journal | None = None
        self.risk: RiskManager | None = None
        self.gw: IBKRGateway | None = None
        self.orch: Any = None

    async def start(self) -> None:
        self.journal, self.risk, self.gw = await build_stack(
            self.sim.host,
            self.sim.port,
            self.workdir / "journal.sqlite",
            self.workdir / "HALT",
            self.client_id,
            self.sim.clock,
        )
        for attempt in range(5):  # a supervisor restarts a bot whose connect failed
            try:
                await self.gw.connect(timeout=5.0)
                break
            except EXPECTED:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2)
        if TradingOrchestrator is not None:
            self.orch = TradingOrchestrator(
                self.gw,
                [StrategyA(self.sim.clock), StrategyB(self.sim.clock)],
                clock=self.sim.clock,
                timeout=2.0,
                order_timeout=1.0,
                rest_entries=self.rest_entries,
            )

    async def reconcile(self, trigger: str) -> Any:
        assert self.gw is not None and self.risk is not None
        reconciler = Reconciler(
            self.gw.connection, self.gw.journal, self.risk, self.gw.mode, self.sim.clock
        )
        return await reconciler.reconcile(trigger, 5.0)

    async def stop(self) -> None:
        if self.orch is not None:
            await self.orch.aclose()
        if self.gw is not None:
            await self.gw.disconnect()
        if self.journal is not None:
            self.journal.close()


async def _while_restarting(
    result: ScenarioResult, sim: SimulatedGateway, name: str, coro: Any
) -> None:
    """Run ``coro`` and restart the gateway as soon as it has sent an order (or executed
    one): a restart mid-order, mid-fill."""
    orders, fills = len(sim.received_orders), len(sim.state.executions)
    task = asyncio.ensure_future(_step(result, name, coro))
    deadline = time.monotonic() + 2.0
    while not task.done() and time.monotonic() < deadline:
        if len(sim.received_orders) > orders or len(sim.state.executions) > fills:
            await sim.restart(down_for=0.05)
            result.steps.append(f"{name}: gateway restarted mid-order")
            break
        await asyncio.sleep(0.005)
    await task


def _could_cancel(report: Any) -> bool:
    """A cycle that could act on working orders: connected throughout, and its reconciliation
    (orders are looked after only once the journal and the gateway agree) succeeded; one that
    lost the connection, or met a live-style account, cannot cancel anything."""
    if report is None or not report.connected:
        return False
    rec = report.reconciliation
    if rec is not None and rec.error is not None:
        return False
    return not any(
        "not connected" in e.lower() or "disconnected" in e.lower() for e in report.errors
    )


def _entries_working(sim: SimulatedGateway, client_id: int) -> list[str]:
    """Our entries (BUY, our orderRef, this client id: the one that can cancel them) still
    working at the simulator."""
    return [
        o.order_ref
        for o in sim.received_orders
        if o.order_ref and not o.is_done and o.action == "BUY" and o.client_id == client_id
    ]


def _fail_once_after_send(gw: IBKRGateway) -> None:
    """The journal write right after placeOrder fails once (a full disk, a locked file), in
    the journal itself: the way such an error reaches the executor."""
    store = gw.journal.journal
    original = store.attach_broker_ids

    def failing(*args: Any, **kwargs: Any) -> Any:
        store.attach_broker_ids = original  # type: ignore[method-assign]
        raise JournalError("chaos: journal write failed after the order was sent")

    failing.__name__ = "attach_broker_ids"  # the journal's tolerance goes by the write's name
    store.attach_broker_ids = failing  # type: ignore[method-assign]


async def _second_instance(
    sim: SimulatedGateway, workdir: Path, result: ScenarioResult, n: int, terms: Any
) -> None:
    """Another bot instance on client id 9 over the same journal: one order, then it exits."""
    expiry, strike, _ask, bid = terms
    journal, _risk, gw = await build_stack(
        sim.host, sim.port, workdir / "journal.sqlite", workdir / "HALT", 9, sim.clock
    )
    try:
        await gw.connect(timeout=5.0)
        sig = signal_for(900_000 + n, expiry, strike, max(0.01, bid - 1.0), 1)
        await _step(result, "second_instance", gw.submit_order(sig, CONTEXT, timeout=0.3))
    except EXPECTED as exc:
        result.steps.append(f"second_instance: {type(exc).__name__}")
    finally:
        await gw.disconnect()
        journal.close()


async def _inprocess_scenario(
    seed: int, workdir: Path, sim: SimulatedGateway, result: ScenarioResult, clock: OrderClock
) -> None:
    rng = random.Random(seed)
    sim.seed_position(sim.accounts[0], FOREIGN[0], FOREIGN[1], 150.0)
    # half the scenarios run as the README's configuration does: limit entries rest (DAY)
    # past their wait instead of being cancelled (a separate stream: the steps stay the same)
    rest_entries = random.Random(seed * 7919 + 1).random() < 0.5
    stack = Stack(sim, workdir, 7, rest_entries)
    try:
        await stack.start()
        assert stack.gw is not None
        terms = await contract_terms(stack.gw)
        expiry, strike, ask, bid = terms
        for i in range(rng.randint(6, 14)):
            gw, risk = stack.gw, stack.risk
            assert gw is not None and risk is not None
            if rng.random() < 0.5:
                kind, arg = random_fault(rng)
                result.steps.append(f"fault {kind} {arg}")
                if kind == "client_id":
                    await stack.stop()
                    stack = Stack(sim, workdir, stack.client_id + 1, rest_entries)
                    await stack.start()
                    await _step(
                        result, "reconcile (client id change)", stack.reconcile("client id change")
                    )
                    gw, risk = stack.gw, stack.risk
                    assert gw is not None and risk is not None
                elif kind == "journal_error":
                    _fail_once_after_send(gw)
                elif kind == "second_instance":
                    await _second_instance(sim, workdir, result, seed * 100 + i, terms)
                elif kind in PROTECTIVE_FAULTS:
                    drill = Drill(
                        stack,
                        sim,
                        result.violations,
                        result.steps,
                        rng,
                        functools.partial(_step, result),
                        wait_connected,
                    )
                    await protective_fault(kind, drill)
                else:
                    await apply_fault(kind, arg, sim, risk)
                if kind == "halt" and stack.orch is not None:
                    # the operator halts; the bot's next cycle follows before any resume
                    report = await _step(result, "cycle after halt", stack.orch.run_cycle())
                    if _could_cancel(report):
                        result.violations += [
                            f"step {i}: entry {ref} still working after a cycle in HALTED"
                            for ref in _entries_working(sim, stack.client_id)
                        ]
            before = risk.trading_state
            cycle_report: Any = None
            action = rng.choice(
                [
                    "submit",
                    "submit",
                    "rest",
                    "close_all",
                    "md",
                    "cycle",
                    "pos",
                    "rest_restart",
                    "close_restart",
                ]
            )
            result.steps.append(action)
            if rng.random() < 0.85:  # mostly let a reconnect finish; sometimes act while down
                await wait_connected(gw, 3.0)
            if action in ("submit", "rest"):
                limit = ask + 0.5 if action == "submit" else max(0.01, bid - 1.0)
                sig = signal_for(seed * 100 + i, expiry, strike, limit, rng.choice([1, 2, 3, 4]))
                timeout = rng.choice([0.3, 1.0])
                await _step(result, action, gw.submit_order(sig, CONTEXT, timeout=timeout))
            elif action == "close_all":
                reason = rng.choice(["EMERGENCY_STOP", "DATA_QUARANTINE", "DAILY_LOSS_LIMIT"])
                method = gw.close_all_positions
                await _step(result, action, method(reason, timeout=2.0, **_only_ours(method)))
            elif action == "rest_restart":  # an entry left working: the gateway restarts
                sig = signal_for(
                    seed * 100 + i, expiry, strike, max(0.01, bid - 1.0), rng.choice([1, 2, 3, 4])
                )
                await _while_restarting(
                    result, sim, action, gw.submit_order(sig, CONTEXT, timeout=1.0)
                )
            elif action == "close_restart":  # a close partly filled when the gateway restarts
                sim.faults.partial_fill(rng.choice([0.25, 0.34, 0.5]))
                method = gw.close_all_positions
                await _while_restarting(
                    result, sim, action, method("EMERGENCY_STOP", 2.0, **_only_ours(method))
                )
            elif action == "md":
                await _step(result, action, gw.get_market_data("SPY", timeout=1.0))
            elif action == "pos":
                await _step(result, action, gw.get_positions(timeout=1.0))
            elif action == "cycle" and stack.orch is not None:
                before = risk.trading_state
                cycle_report = await _step(result, action, stack.orch.run_cycle())
            state = risk.trading_state
            stopped = (TradingState.HALTED, TradingState.REDUCING)
            # a cycle that began HALTED or REDUCING cancels our working entries (a state
            # entered during the cycle is acted on by the next one)
            # ... and only a cycle that was connected can cancel anything
            connected = _could_cancel(cycle_report)
            if action == "cycle" and before in stopped and state in stopped and connected:
                result.violations += [
                    f"step {i}: entry {ref} still working after a {state.value} cycle"
                    for ref in _entries_working(sim, stack.client_id)
                ]
            if risk.trading_state is TradingState.HALTED and rng.random() < 0.7:
                risk.resume("chaos: operator resume")
            assert stack.journal is not None
            for problem in step_invariants(sim, stack.journal):
                result.violations.append(f"step {i} ({action}): {problem}")
        # settle: faults off, reconnect, reconcile
        sim.faults.clear()
        await asyncio.sleep(1.0)  # answers already delayed (up to 0.6 s) land first
        gw = stack.gw
        assert gw is not None and stack.journal is not None
        vars(gw.journal.journal).pop("attach_broker_ids", None)  # a journal fault armed: off
        if not await wait_connected(gw):
            result.violations.append("did not reconnect after the faults stopped")
            return
        report = await stack.reconcile("chaos-settle")
        if report.error is not None:
            result.violations.append(f"reconciliation failed: {report.error}")
        if report.unknown_orders:
            result.violations.append(f"unknown broker orders: {report.unknown_orders}")
        await asyncio.sleep(0.05)
        if sim.standing_subscriptions() != 0:
            result.violations.append(
                f"{sim.standing_subscriptions()} standing market-data subscriptions"
            )
        result.violations += step_invariants(sim, stack.journal)
        result.violations += check_invariants(sim, stack.journal, clock)
        # the exposure ledger every gate reads holds the gateway's positions after it
        assert stack.risk is not None
        at_sim = {
            (
                _key(
                    row.contract.symbol,
                    row.contract.expiry,
                    row.contract.right,
                    row.contract.strike,
                )
                if row.contract.sec_type == "OPT"
                else f"{row.contract.symbol}:{row.contract.sec_type}"
            ): round(row.quantity)
            for (acct, _c), row in sim.state.positions.items()
            if acct == sim.accounts[0] and round(row.quantity)
        }
        ledger = stack.risk.exposure.positions
        if ledger != at_sim:
            result.violations.append(f"exposure ledger {ledger} != the simulator's {at_sim}")
    finally:
        await stack.stop()
    result.orders = len(sim.received_orders)
    result.fills = len(sim.state.executions)


async def _kill_scenario(
    seed: int, workdir: Path, sim: SimulatedGateway, result: ScenarioResult
) -> None:
    """Trading in a subprocess, SIGKILLed mid-flight, restarted on the same journal."""
    rng = random.Random(seed)
    journal_path = workdir / "journal.sqlite"
    args = [
        sys.executable,
        str(DRIVER),
        "--port",
        str(sim.port),
        "--journal",
        str(journal_path),
        "--kill-switch",
        str(workdir / "HALT"),
        "--seed",
        str(seed),
        "--steps",
        "8",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = await asyncio.create_subprocess_exec(
        *args,
        "--at",
        sim.clock.now().isoformat(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert first.stdout is not None
    kill_after_orders = rng.randint(0, 4)
    deadline = time.monotonic() + 20.0
    # kill when the simulator has seen that many orders (or the driver finished)
    while first.returncode is None and time.monotonic() < deadline:
        if len(sim.received_orders) >= kill_after_orders and rng.random() < 0.5:
            break
        await asyncio.sleep(rng.choice([0.005, 0.02, 0.05]))
    if first.returncode is None:
        first.send_signal(signal.SIGKILL)
        result.steps.append(f"kill -9 after {len(sim.received_orders)} orders")
    await first.wait()
    if rng.random() < 0.5:
        result.steps.append("fault restart")
        await sim.restart(down_for=0.05)
    second = await asyncio.create_subprocess_exec(
        *args,
        "--at",
        sim.clock.now().isoformat(),
        "--final",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(second.communicate(), timeout=60.0)
    if second.returncode != 0:
        tail = err.decode(errors="replace")[-800:]
        result.violations.append(f"restarted driver exited {second.returncode}: {tail}")
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("VIOLATION "):
            result.violations.append(line[len("VIOLATION ") :])
    await asyncio.sleep(0.05)
    if sim.standing_subscriptions() != 0:
        result.violations.append(f"{sim.standing_subscriptions()} standing subscriptions")
    with Journal.open(journal_path, ExecutionMode.PAPER, sim.clock) as journal:
        result.violations += check_invariants(sim, journal, None)
    result.orders = len(sim.received_orders)
    result.fills = len(sim.state.executions)


# --------------------------------------------------------------------------- invariants


def _key(symbol: str, expiry: str, right: str, strike: float) -> str:
    return f"{symbol}:{expiry}:{right}:{strike:g}"


def step_invariants(sim: SimulatedGateway, journal: Journal) -> list[str]:
    """Invariants 7-11 of the module docstring: true at every step, not only after
    reconciliation."""
    problems: list[str] = []
    account = sim.accounts[0]
    limits = LIMITS
    ours = [o for o in sim.received_orders if o.order_ref]
    held: dict[str, float] = {}
    for (acct, _con_id), row in sim.state.positions.items():
        c = row.contract
        if acct != account:
            continue
        if c.sec_type == "OPT":
            key = _key(c.symbol, c.expiry, c.right, c.strike)
            held[key] = held.get(key, 0.0) + float(row.quantity)
            if row.quantity < 0 and not limits.allow_short_options:
                problems.append(f"short {row.quantity:g} {key} (allow_short_options is off)")
        elif c.symbol == FOREIGN[0] and round(row.quantity) != FOREIGN[1]:
            problems.append(f"foreign position {c.symbol} traded: {row.quantity:g}")
    if not any(
        acct == account and row.contract.symbol == FOREIGN[0]
        for (acct, _c), row in sim.state.positions.items()
    ):
        problems.append(f"foreign position {FOREIGN[0]} was closed")
    problems += [
        f"order {o.order_ref} for a foreign position ({o.symbol})"
        for o in ours
        if o.symbol == FOREIGN[0]
    ]
    exposure = dict(held)
    for o in ours:
        if o.is_done or o.sec_type != "OPT":
            continue
        key = _key(o.symbol, o.expiry, o.right, o.strike)
        if o.action == "BUY":
            exposure[key] = exposure.get(key, 0.0) + o.remaining
        row = journal.find_order(o.order_ref)
        if row is None:
            problems.append(f"working order {o.order_ref} has no journaled intent")
        elif row.state.is_final:
            problems.append(
                f"working order {o.order_ref} ({o.status}, filled {o.filled:g}) journaled "
                f"final as {row.state.status}: nobody owns it"
            )
    for key, qty in exposure.items():
        if qty > limits.max_contracts_per_position + 1e-9:
            problems.append(
                f"{key}: position plus working buys {qty:g} above the limit of "
                f"{limits.max_contracts_per_position}"
            )
    open_now = sum(1 for qty in exposure.values() if abs(qty) > 1e-9)
    if open_now > limits.max_open_positions:
        problems.append(
            f"{open_now} contracts held or working, above max_open_positions "
            f"{limits.max_open_positions}"
        )
    filled_at_sim = {o.order_ref: o.filled for o in ours}
    journaled: Counter[str] = Counter()
    bases: Counter[str] = Counter()
    for f in journal.fills(limit=100_000):
        if f.simulated:
            continue
        if f.client_order_id:
            journaled[f.client_order_id] += f.quantity
        bases[f.exec_id.rsplit(".", 1)[0] if f.exec_id.count(".") >= 3 else f.exec_id] += 1
    for ref, qty in journaled.items():
        if qty > filled_at_sim.get(ref, 0.0) + 1e-9:
            problems.append(
                f"order {ref}: {qty:g} journaled as filled, {filled_at_sim.get(ref, 0.0):g} "
                "at the simulator (an execution journaled twice)"
            )
    problems += [f"execution {b} journaled {n} times" for b, n in bases.items() if n > 1]
    return problems


def check_invariants(
    sim: SimulatedGateway, journal: Journal, clock: OrderClock | None
) -> list[str]:
    problems: list[str] = []
    orders = [o for o in sim.received_orders if o.order_ref]
    refs = Counter(o.order_ref for o in orders)
    problems += [f"duplicate order at the simulator: {r} x{n}" for r, n in refs.items() if n > 1]

    for o in orders:
        row = journal.find_order(o.order_ref)
        if row is None:
            problems.append(f"order {o.order_ref} at the simulator has no journaled intent")
            continue
        intent = row.intent
        decision = journal.decision(intent.decision_id) if intent.decision_id else None
        if decision is None or not decision.approved:
            problems.append(f"order {o.order_ref} has no approved risk decision")
        # agreement after reconciliation
        state = row.state
        if o.is_done != state.is_final:
            problems.append(
                f"order {o.order_ref}: simulator {o.status} filled {o.filled:g}, journal "
                f"{state.status} (final={state.is_final})"
            )
        elif abs(o.filled - (state.filled or 0.0)) > 1e-9:
            problems.append(
                f"order {o.order_ref}: filled {o.filled:g} at the simulator, "
                f"{state.filled:g} in the journal"
            )

    ours = {o.order_ref for o in orders}
    sim_execs = {e.exec_id: e for e in sim.state.executions if e.order.order_ref in ours}
    fills = journal.fills(limit=100_000)
    journal_execs = {f.exec_id: f for f in fills if not f.simulated}
    for exec_id in sim_execs.keys() - journal_execs.keys():
        e = sim_execs[exec_id]
        problems.append(f"execution {exec_id} of {e.order.order_ref} missing from the journal")
    for exec_id in journal_execs.keys() - sim_execs.keys():
        problems.append(f"journal fill {exec_id} unknown to the simulator")

    held: Counter[str] = Counter()
    for f in journal_execs.values():
        held[f.contract_key] += round(f.quantity) * (1 if f.side in ("BUY", "BOT") else -1)
    at_sim: Counter[str] = Counter()
    for row in sim.state.positions.values():
        c = row.contract
        quantity = round(row.quantity)
        if c.symbol == FOREIGN[0] and c.sec_type == "STK":
            quantity -= FOREIGN[1]  # not ours: the journal has no fills for it
        if quantity:
            at_sim[_key(c.symbol, c.expiry, c.right, c.strike)] += quantity
    for key in set(held) | set(at_sim):
        if held[key] != at_sim[key]:
            problems.append(f"position {key}: simulator {at_sim[key]}, journal fills {held[key]}")

    if clock is not None:
        states = sorted(journal.trading_states(limit=100_000), key=lambda s: s.at)
        for ref, received in clock.times.items():
            current = None
            for s in states:
                if s.at <= received:
                    current = s.state
            if current in BLOCKING_STATES:
                problems.append(f"order {ref} received at {received} while {current}")
    return problems


async def run_many(
    seeds: range | list[int], root: Path, *, allow_kill: bool = True
) -> list[ScenarioResult]:
    results = []
    for seed in seeds:
        results.append(await run_scenario(seed, root / f"s{seed}", allow_kill=allow_kill))
    return results


def close_quietly(*objs: Any) -> None:
    for o in objs:
        with contextlib.suppress(Exception):
            o.close()
