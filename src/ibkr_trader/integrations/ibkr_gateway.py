"""IBKRGateway: the one interface the orchestrator uses (handoff 3.1).

```python
gateway = IBKRGateway(config, risk_manager, mode=ExecutionMode.PAPER, journal=journal)
await gateway.connect()
market_data = await gateway.get_market_data("SPY")
order_result = await gateway.submit_order(signal, strategy_context)
positions = await gateway.get_positions()
await gateway.close_position(position_id, reason="3_DTE_RULE")
```

Safety properties enforced here:

- **Live trading is blocked.** ``ExecutionMode.LIVE`` raises GatewayError in the constructor,
  and the live feature flag is checked again in the executor.
- **Operator id** is required (default ``CSATSPRIM``); an empty one is refused at construction.
  It travels on every order (orderRef and extOperator), every TradeRequest and every journal row.
- **Paper interlock.** PAPER refuses a live port (4001 / 7496) outright, and refuses to trade
  unless the connected account is a paper account (``DU…``): the trading state goes HALTED
  (journaled) and PaperInterlockError is raised. DRY_RUN never sends an order at all: its
  account guard refuses every send.
- **Every order through the RiskManager**, entries and closes alike (OrderExecutor).
- **Snapshot data only**, at most one hour of RTH bars (MarketDataProvider, pipeline, here).
- **Every public method takes a timeout** and raises the broker's timeout error (also a
  ``TimeoutError``) rather than hang.

Run the handoff's full cycle from the command line (against an in-process simulated gateway
by default): ``python -m ibkr_trader.integrations.ibkr_gateway --mode=dry_run --symbol=SPY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ibkr_trader.broker.connection import ConnectionState, IBKRConnection
from ibkr_trader.broker.contracts import ContractManager
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.broker.market_data import Bar, MarketDataProvider, Quote
from ibkr_trader.broker.pacing import HistoricalPacer
from ibkr_trader.clock import Clock, SystemClock
from ibkr_trader.integrations.exceptions import (
    GatewayConnectTimeoutError,
    GatewayError,
    GatewayNotConnectedError,
    PaperInterlockError,
)
from ibkr_trader.integrations.feature_flags import DEFAULT_FLAGS, IntegrationFeatureFlags
from ibkr_trader.integrations.market_data_pipeline import (
    MarketData,
    MarketDataPipeline,
    check_history_minutes,
)
from ibkr_trader.integrations.order_executor import OrderExecutor, OrderResult
from ibkr_trader.integrations.position_manager import PositionManager
from ibkr_trader.journal import AsyncJournal, Journal, JournalError
from ibkr_trader.logging import get_logger, redact
from ibkr_trader.models import DEFAULT_OPERATOR_ID, AccountSnapshot, ExecutionMode, Position
from ibkr_trader.risk import RiskManager
from ibkr_trader.signals import StrategyContext, TradingSignal

__all__ = [
    "LIVE_PORTS",
    "PAPER_ACCOUNT_PREFIX",
    "ExecutionMode",
    "GatewayConfig",
    "IBKRGateway",
    "is_paper_account",
]

_log = get_logger("ibkr_trader.integrations.gateway")

LIVE_PORTS = frozenset({4001, 7496})  # IB Gateway live / TWS live
PAPER_ACCOUNT_PREFIX = "DU"
ACCOUNT_REFRESH_SECONDS = 5.0


def is_paper_account(account: str) -> bool:
    """IB paper accounts start with ``DU`` (live individual accounts with ``U``)."""
    return account.upper().startswith(PAPER_ACCOUNT_PREFIX)


@dataclass(frozen=True)
class GatewayConfig:
    """Configuration for IBKRGateway (safe defaults: loopback, the paper port).

    ``account`` is the IB account to trade in (must be one the gateway manages; empty: the
    gateway's only managed account). ``journal_path`` None: the mode's default journal file.
    """

    host: str = "127.0.0.1"
    port: int = 4002  # 4002 = IB Gateway paper, 4001 = live
    client_id: int = 1
    timeout: float = 30.0
    account: str = field(default="", repr=False)
    journal_path: Path | None = None
    reconnect: bool = True
    dry_run_starting_cash: float | None = None  # None: seed from the account's NetLiquidation

    def __post_init__(self) -> None:
        if not (0 < int(self.port) < 65536):
            raise ValueError(f"port must be 1..65535, got {self.port!r}")
        if not math.isfinite(self.timeout) or self.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")

    def __repr__(self) -> str:
        account = redact(self.account) if self.account else ""
        return (
            f"GatewayConfig(host={self.host!r}, port={self.port}, client_id={self.client_id}, "
            f"timeout={self.timeout}, account={account!r}, journal_path={self.journal_path!r})"
        )

    @classmethod
    def paper_trading(cls, **overrides: Any) -> GatewayConfig:
        """IB Gateway's paper port."""
        return cls(**{"port": 4002, **overrides})

    @classmethod
    def live_trading(cls, **overrides: Any) -> GatewayConfig:
        """IB Gateway's live port (PAPER mode refuses it; LIVE mode is blocked)."""
        return cls(**{"port": 4001, **overrides})


class IBKRGateway:
    """High-level integration layer for IB Gateway operations (see the module docstring)."""

    def __init__(
        self,
        config: GatewayConfig,
        risk_manager: RiskManager,
        mode: ExecutionMode = ExecutionMode.DRY_RUN,
        operator_id: str = DEFAULT_OPERATOR_ID,
        *,
        journal: AsyncJournal | Journal | None = None,
        clock: Clock | None = None,
        flags: IntegrationFeatureFlags = DEFAULT_FLAGS,
        connection: IBKRConnection | None = None,
        historical_pacer: HistoricalPacer | None = None,
        bars_max_age_seconds: float = 15.0,
    ) -> None:
        """``historical_pacer`` and ``bars_max_age_seconds`` let a test that moves a simulated
        clock by hours keep IB's historical pacing and the bar cache on that clock."""
        mode = ExecutionMode(mode)
        if not flags.ENABLE_INTEGRATION_LAYER:
            raise GatewayError("integration layer disabled by ENABLE_INTEGRATION_LAYER")
        # CRITICAL: live trading is blocked
        if mode is ExecutionMode.LIVE:
            raise GatewayError(
                "Live trading blocked until Phase 4 validation. Use DRY_RUN or PAPER mode."
            )
        if not isinstance(operator_id, str) or not operator_id.strip():
            raise GatewayError("operator_id must not be empty (compliance requirement)")
        if mode is ExecutionMode.PAPER and int(config.port) in LIVE_PORTS:
            raise PaperInterlockError(
                f"PAPER mode refuses port {config.port}: it is a LIVE trading port "
                "(IB Gateway 4001 / TWS 7496). Use 4002 (IB Gateway paper) or 7497 (TWS paper)."
            )
        self.config = config
        self.risk_manager = risk_manager
        self.mode = mode
        self.operator_id = operator_id.strip()
        self._clock: Clock = clock or SystemClock()
        self._flags = flags
        self._owns_journal = journal is None
        if journal is None:
            journal = Journal.open(config.journal_path, mode, self._clock)
        self._journal = journal if isinstance(journal, AsyncJournal) else AsyncJournal(journal)
        if self._journal.journal.mode is not mode:
            raise GatewayError(
                f"journal is for {self._journal.journal.mode.value}, gateway runs {mode.value}"
            )

        self._connection = connection or IBKRConnection(
            host=config.host,
            port=config.port,
            client_id=config.client_id,
            timeout=config.timeout,
            clock=self._clock,
            reconnect=config.reconnect,
            account=config.account,
        )
        self._contracts = ContractManager(self._connection)
        self._market_data = MarketDataProvider(
            self._connection,
            self._contracts,
            snapshot=True,  # ALPHA LEARNING: always snapshot=True
            clock=self._clock,
            pacer=historical_pacer,
        )
        self._pipeline = MarketDataPipeline(
            self._market_data,
            self._connection,
            staleness_threshold_seconds=300.0,
            bars_max_age_seconds=bars_max_age_seconds,
            fallback_clock=self._clock,
        )
        self._account = ""
        self._interlock_error: str | None = None
        # the paper interlock re-run at once when a connection is restored (the gateway may
        # be back on another account): positions and orders wait for it
        self._reverify: asyncio.Task[None] | None = None
        self._executor = OrderExecutor(
            self._connection,
            self._contracts,
            self.risk_manager,
            mode=self.mode,
            operator_id=self.operator_id,
            journal=self._journal,
            pipeline=self._pipeline,
            account_guard=self._trading_account,
            clock=self._clock,
            flags=flags,
        )
        self._positions = PositionManager(
            self._connection,
            self._contracts,
            self.risk_manager,
            self._executor,
            self._pipeline,
            self._journal,
            self.mode,
            clock=self._clock,
        )
        self._connected = False
        self._account_refreshed_at = -math.inf
        self._last_account: AccountSnapshot | None = None
        self._last_marks: dict[str, float] = {}  # dry-run NAV: the last usable mark per position
        self._state_listeners: list[Callable[[ConnectionState], None]] = []
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def is_connected(self) -> bool:
        return self._connected and self._connection.is_connected

    @property
    def execution_mode(self) -> ExecutionMode:
        return self.mode

    @property
    def journal(self) -> AsyncJournal:
        return self._journal

    @property
    def journal_path(self) -> Path:
        return self._journal.journal.path

    @property
    def last_account(self) -> AccountSnapshot | None:
        """The last account snapshot fed to the RiskManager (for status views)."""
        return self._last_account

    @property
    def account(self) -> str:
        """The IB account orders go to (empty until connected)."""
        return self._account

    @property
    def connection(self) -> IBKRConnection:
        return self._connection

    @property
    def contracts(self) -> ContractManager:
        return self._contracts

    @property
    def pipeline(self) -> MarketDataPipeline:
        return self._pipeline

    @property
    def positions(self) -> PositionManager:
        return self._positions

    @property
    def executor(self) -> OrderExecutor:
        return self._executor

    def add_state_listener(self, callback: Callable[[ConnectionState], None]) -> None:
        """Hear connection state changes (the orchestrator reconciles on RESTORED)."""
        self._state_listeners.append(callback)

    # ------------------------------------------------------------------ lifecycle

    async def connect(self, timeout: float = 30.0) -> bool:
        """Connect, check health (market data available), apply the paper interlock.

        Raises GatewayConnectionError (unreachable, refused session, timeout), GatewayError
        (no market data), PaperInterlockError (PAPER against a non-paper account: HALTED).
        """
        started = time.monotonic()

        def remaining() -> float:
            return max(timeout - (time.monotonic() - started), 0.001)

        try:
            await self._connection.connect(timeout=timeout)
            health = await self._connection.health_check(timeout=min(5.0, remaining()))
        except TimeoutError as exc:
            _log.error("gateway_connection_timeout", timeout=timeout)
            await self._connection.disconnect()
            raise GatewayConnectTimeoutError(
                f"Connection timeout after {timeout:g}s: {exc}"
            ) from exc
        if not health.market_data_available:
            await self._connection.disconnect()
            raise GatewayError("Gateway connected but market data unavailable")
        self._connected = True
        if self._unsubscribe is None:
            self._unsubscribe = self._connection.subscribe(self._on_state)
        await self._journal.record_connection_event(
            "connected",
            {
                "host": self.config.host,
                "port": self.config.port,
                "client_id": self.config.client_id,
                "mode": self.mode.value,
                "server_version": self._connection.server_version,
            },
        )
        await self._apply_interlock()
        try:
            await self.refresh_account(remaining())
        except (BrokerError, TimeoutError) as exc:
            _log.warning("account_refresh_failed", error=str(exc))
        _log.info("IBKRGateway connected", mode=self.mode.value, operator_id=self.operator_id)
        return True

    async def _apply_interlock(self) -> None:
        accounts = self._connection.managed_accounts
        wanted = self.config.account
        if wanted:
            account = wanted if wanted in accounts else ""
            problem = (
                None
                if account
                else f"configured account {redact(wanted)} is not managed by this gateway"
            )
        elif len(accounts) == 1:
            account, problem = accounts[0], None
        else:
            account = ""
            problem = (
                f"the gateway manages {len(accounts)} accounts; set GatewayConfig.account "
                "to choose one"
            )
        if problem is None and self.mode is ExecutionMode.PAPER and not is_paper_account(account):
            problem = (
                f"account {redact(account)} is not a paper account (paper ids start with "
                f"{PAPER_ACCOUNT_PREFIX}); PAPER mode refuses to trade it"
            )
        self._account = account
        self._positions.set_account(account)
        if problem is None:
            self._interlock_error = None
            return
        self._interlock_error = problem
        if self.mode is ExecutionMode.PAPER:
            self.risk_manager.halt(f"paper interlock: {problem}")
            await self._journal.record_event("paper_interlock", {"problem": problem})
            _log.error("paper_interlock", problem=problem)
            raise PaperInterlockError(problem)
        _log.warning("account_not_selected", problem=problem)

    async def _verify_again(self) -> None:
        """After a reconnect: which account the gateway is logged in to NOW (a refusal
        HALTS, see _apply_interlock); until this ran, positions may be another account's."""
        try:
            await self._apply_interlock()
        except PaperInterlockError:
            pass  # HALTED and journaled by the interlock itself
        except (BrokerError, JournalError, RuntimeError) as exc:
            _log.error("reconnect_interlock_failed", error=repr(exc))

    async def _account_settled(self) -> None:
        """Wait for the re-verification of a restored connection, if one is in flight."""
        task = self._reverify
        if task is not None and not task.done():
            await asyncio.shield(task)

    async def verify_account(self) -> None:
        """The paper interlock again, on the accounts the gateway manages NOW (after a
        reconnect it may be logged in to another one): a refusal HALTS and raises
        PaperInterlockError (issue 14, item 9)."""
        self._require_connection()
        await self._apply_interlock()

    def _trading_account(self) -> str:
        """The account guard: the managed paper account, or a refusal (GatewayError)."""
        if self.mode is not ExecutionMode.PAPER:
            raise GatewayError(f"{self.mode.value} never sends orders to the gateway")
        if self._interlock_error is not None:
            raise PaperInterlockError(self._interlock_error)
        if not self._account or not is_paper_account(self._account):
            raise PaperInterlockError("no verified paper account: connect() first")
        return self._account

    def _on_state(self, state: ConnectionState) -> None:
        _log.info("connection_state", state=state.value)
        if state is ConnectionState.DISCONNECTED:
            self._pipeline.clear_cache()
        if state is ConnectionState.RESTORED and self._connected:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to re-verify
                self._reverify = asyncio.get_running_loop().create_task(self._verify_again())
        for listener in list(self._state_listeners):
            try:
                listener(state)
            except Exception as exc:  # a listener's failure is logged, never lost
                _log.error("state_listener_failed", error=repr(exc))

    async def disconnect(self) -> None:
        """Graceful disconnection; clears the position and bar caches."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        was_connected = self._connected
        self._connected = False
        reverify, self._reverify = self._reverify, None
        if reverify is not None and not reverify.done():
            reverify.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reverify
        await self._connection.disconnect()
        self._positions.clear_cache()
        self._pipeline.clear_cache()
        if was_connected:
            await self._journal.record_connection_event("disconnected", {"by": "client"})
            _log.info("IBKRGateway disconnected")

    async def aclose(self) -> None:
        """Disconnect and close the journal if the gateway opened it."""
        await self.disconnect()
        if self._owns_journal:
            await self._journal.aclose()

    async def __aenter__(self) -> IBKRGateway:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _require_connection(self) -> None:
        """Guard: connected before any operation."""
        if not self.is_connected:
            raise GatewayNotConnectedError("Gateway not connected. Call connect() first.")

    # ------------------------------------------------------------------ account

    async def refresh_account(self, timeout: float = 10.0) -> AccountSnapshot:
        """Feed the RiskManager the account's equity, funds and IB's DayTradesRemaining.

        DRY_RUN: the simulated book (cash seeded once from the account's NetLiquidation or
        ``dry_run_starting_cash``) plus its positions at their marks.
        """
        self._require_connection()
        values = await self._connection.get_account_values(timeout)
        net_liq = _number(values.get("NetLiquidation"))
        available = _number(values.get("AvailableFunds"))
        cash = _number(values.get("TotalCashValue"))
        dtr = _number(values.get("DayTradesRemaining"))
        day_trades = int(dtr) if math.isfinite(dtr) and dtr >= 0 else None
        if self.mode is ExecutionMode.DRY_RUN:
            snapshot = await self._dry_run_account(net_liq, timeout)
        else:
            snapshot = AccountSnapshot(
                account=self._account,
                net_liquidation=net_liq,
                available_funds=available,
                cash=cash,
                day_trades_remaining=day_trades,
                as_of=self._clock.now(),
            )
        self.risk_manager.update_account(snapshot)
        self._account_refreshed_at = time.monotonic()
        self._last_account = snapshot
        return snapshot

    async def _dry_run_account(self, ib_net_liq: float, timeout: float) -> AccountSnapshot:
        journal = self._journal.journal
        start = self.config.dry_run_starting_cash
        if start is None:
            start = ib_net_liq if math.isfinite(ib_net_liq) and ib_net_liq > 0 else 100_000.0
        await self._journal.call(journal.seed_simulated_cash, float(start))
        cash = await self._journal.call(journal.simulated_cash)
        cash = float(cash or 0.0)
        positions = self._positions.cached()
        if not positions and await self._has_simulated_positions():
            try:
                positions = await self._positions.get_all(timeout)
            except (BrokerError, TimeoutError):
                positions = []
        value = 0.0
        for p in positions:
            # a quote that failed is not a position worth zero (issue 14, item 6): the last
            # known mark, else the entry price; a long with no bid is worth its 0.0 mark
            price = p.current_price
            if math.isfinite(price) and (price > 0 or p.price_source == "no_bid"):
                self._last_marks[p.position_id] = price
            else:
                price = self._last_marks.get(p.position_id, p.entry_price)
                _log.warning(
                    "dry_run_nav_without_price", position_id=p.position_id, valued_at=price
                )
            if math.isfinite(price):
                value += price * p.quantity * (p.contract.multiplier or 1)
        return AccountSnapshot(
            account="SIMULATED",
            net_liquidation=cash + value,
            available_funds=cash,
            cash=cash,
            day_trades_remaining=None,
            as_of=self._clock.now(),
        )

    async def _has_simulated_positions(self) -> bool:
        book = await self._journal.call(self._journal.journal.simulated_positions)
        return bool(book)

    async def _refresh_account_if_old(self, timeout: float) -> None:
        if time.monotonic() - self._account_refreshed_at < ACCOUNT_REFRESH_SECONDS:
            return
        try:
            await self.refresh_account(min(timeout, 10.0))
        except (BrokerError, TimeoutError) as exc:
            _log.warning("account_refresh_failed", error=str(exc))

    # ------------------------------------------------------------------ market data

    async def get_market_data(self, symbol: str, timeout: float = 30.0) -> MarketData:
        """Packaged market data (quote, indicators, quality) for strategy consumption."""
        self._require_connection()
        return await self._pipeline.fetch_market_data(symbol, timeout=timeout)

    async def get_historical_data(
        self,
        symbol: str,
        duration_minutes: int = 60,  # ALPHA LEARNING: max 1 hour
        bar_size: str = "1 min",
        timeout: float = 30.0,
    ) -> list[Bar]:
        """At most one hour of RTH bars; more -> AlphaLearningViolationError, nothing sent."""
        check_history_minutes(duration_minutes)  # before the connection check: never sent
        self._require_connection()
        return await self._pipeline.fetch_historical_data(
            symbol, duration_minutes=duration_minutes, bar_size=bar_size, timeout=timeout
        )

    # ------------------------------------------------------------------ orders

    async def submit_order(
        self,
        signal: TradingSignal | dict[str, Any],
        strategy_context: StrategyContext | dict[str, Any],
        timeout: float = 30.0,
        *,
        market_data: MarketData | None = None,
        contract_quote: Quote | None = None,
    ) -> OrderResult:
        """Submit an order with mandatory RiskManager validation (never bypassed).

        ``market_data``: the underlying's data the signal was decided on (its staleness counts
        in the data gate). ``contract_quote``: the traded contract's own snapshot, if the
        caller priced the order with one (``pipeline.fetch_quote``); fresh and live, the order
        takes no snapshot of its own (PAPER limit orders)."""
        self._require_connection()
        await self._account_settled()
        started = time.monotonic()
        await self._refresh_account_if_old(timeout)
        remaining = max(timeout - (time.monotonic() - started), 0.001)
        return await self._executor.execute(
            signal,
            strategy_context,
            timeout=remaining,
            underlying_check=market_data.to_quote_check() if market_data is not None else None,
            contract_quote=contract_quote,
        )

    # ------------------------------------------------------------------ positions

    async def get_positions(self, timeout: float = 10.0) -> list[Position]:
        """Open positions with P&L, days to expiry and the Strategy C flags."""
        self._require_connection()
        await self._account_settled()
        return await self._positions.get_all(timeout=timeout)

    async def close_position(
        self, position_id: str, reason: str, timeout: float = 30.0, *, only_ours: bool = False
    ) -> OrderResult:
        """Close one position, with the reason journaled (through the RiskManager).

        ``only_ours``: at most the part the bot opened (automatic closes)."""
        self._require_connection()
        await self._account_settled()
        return await self._positions.close(
            position_id, reason=reason, timeout=timeout, only_ours=only_ours
        )

    async def close_all_positions(
        self, reason: str, timeout: float = 60.0, *, only_ours: bool = False
    ) -> list[OrderResult]:
        """Close every position concurrently under one deadline; each result reported.

        ``only_ours``: positions the bot did not open are left alone (automatic closes)."""
        self._require_connection()
        await self._account_settled()
        return await self._positions.close_all(reason=reason, timeout=timeout, only_ours=only_ours)

    async def server_time(self, timeout: float = 10.0) -> datetime:
        self._require_connection()
        return await self._connection.server_time(timeout)


def _number(value: str | None) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return math.nan


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    from ibkr_trader.demo import main

    raise SystemExit(main())
