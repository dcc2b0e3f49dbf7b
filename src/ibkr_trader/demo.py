"""The handoff's full cycle from the command line (section 7.3).

``python -m ibkr_trader.integrations.ibkr_gateway --mode=dry_run --symbol=SPY`` connects (to an
in-process simulated gateway unless ``--port`` is given), fetches market data (printed with
its indicators and quality flags), builds a signal for the at-the-money call of the nearest
expiry 7-21 days out, validates it through the RiskManager, executes it (simulated fill in
dry-run, an order at the paper account in paper mode), and prints the result, the positions
with their Strategy C flags, and where the journal is.

Exit codes (the README's policy): 0 the order filled (or no signal), 1 the order was not
filled (rejected, cancelled, timed out) or the gateway failed, 2 a usage or configuration
error, 130 interrupted. ``ibkr-trader demo`` (``cli/demo.py``) runs the same cycle with the
configuration's gateway, journal, kill switch and limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.clock import Clock, SystemClock
from ibkr_trader.integrations.ibkr_gateway import GatewayConfig, IBKRGateway
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.logging import configure_logging
from ibkr_trader.models import ExecutionMode, OptionRight, OrderStatus, Position
from ibkr_trader.risk import RiskManager, default_kill_switch_path, load_risk_limits
from ibkr_trader.signals import StrategyContext, TradingSignal
from ibkr_trader.strategies.base import OptionQuote
from ibkr_trader.strategies.selection import SelectionConfig, limit_price, select_expiry

DEMO_CONTEXT = StrategyContext(
    strategy_id="demo",
    strategy_name="Handoff dry-run validation",
    risk_per_trade=0.01,
    take_profit_pct=0.5,
    stop_loss_pct=0.4,
)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def market_data_table(data: MarketData) -> Table:
    table = Table(title=f"Market data: {data.symbol}", show_header=False)
    rows: list[tuple[str, str]] = [
        ("last / bid / ask", f"{_fmt(data.last_price)} / {_fmt(data.bid)} / {_fmt(data.ask)}"),
        ("volume", _fmt(data.volume, 0)),
        ("EMA 8 / EMA 21", f"{_fmt(data.ema_fast)} / {_fmt(data.ema_slow)}"),
        ("RSI 14", _fmt(data.rsi)),
        ("VWAP", _fmt(data.vwap)),
        (
            "Bollinger 20/2",
            f"{_fmt(data.bollinger_lower)} < {_fmt(data.bollinger_middle)} < "
            f"{_fmt(data.bollinger_upper)}",
        ),
        ("bars used", str(data.bars_used)),
        ("stale", f"{data.is_stale} ({_fmt(data.staleness_seconds, 0)} s)"),
        ("delayed", str(data.is_delayed)),
        ("missing fields", ", ".join(data.missing_fields) or "none"),
        ("quality score", _fmt(data.data_quality_score)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def result_table(result: OrderResult) -> Table:
    table = Table(title="Order result", show_header=False)
    table.add_row("client order id (orderRef)", result.order_id)
    table.add_row("status", result.status.value.upper())
    table.add_row("mode", result.execution_mode.value if result.execution_mode else "-")
    table.add_row("fill", f"{result.fill_quantity or 0} @ {_fmt(result.fill_price)}")
    table.add_row("IB order id", str(result.ibkr_order_id or "-"))
    table.add_row("operator", result.operator_id)
    if result.rejection_reason:
        table.add_row("reason", result.rejection_reason)
    validation = result.risk_validation
    if validation is not None:
        table.add_row(
            "risk decision",
            f"{'approved' if validation.approved else 'rejected'} "
            f"(#{validation.decision_id}, {len(validation.checks)} checks, "
            f"state {validation.trading_state.value})",
        )
    return table


def positions_table(positions: Sequence[Position]) -> Table:
    table = Table(title="Positions")
    for column in ("position", "qty", "entry", "mark", "P&L", "P&L %", "DTE", "closure flag"):
        table.add_column(column)
    for p in positions:
        table.add_row(
            p.position_id,
            str(p.quantity),
            _fmt(p.entry_price),
            _fmt(p.current_price),
            _fmt(p.unrealized_pnl),
            _fmt(p.unrealized_pnl_pct * 100, 1) + "%",
            str(p.days_to_expiry if p.days_to_expiry is not None else "-"),
            p.closure_trigger or "-",
        )
    return table


async def build_demo_signal(
    gateway: IBKRGateway, data: MarketData, timeout: float
) -> TradingSignal | None:
    """The at-the-money call of the nearest expiry 7-21 days out, at a marketable limit."""
    chain = await gateway.contracts.option_chain(data.symbol, timeout)
    now = await gateway.server_time(timeout)
    expiry = select_expiry(chain.expirations, now, SelectionConfig())
    if expiry is None or not math.isfinite(data.last_price):
        return None
    strike = min(chain.strikes, key=lambda s: (abs(s - data.last_price), s))
    contract = await gateway.contracts.qualify_option_contract(
        data.symbol, expiry, strike, OptionRight.CALL.value, timeout
    )
    quote, _ = await gateway.pipeline.fetch_quote(contract, timeout, server_check=False)
    # a marketable limit (at the ask, never above it): it fills at once in dry-run as in
    # paper, so the one-shot demo always shows a fill; strategies price at the mid and rest
    if limit_price(OptionQuote(bid=quote.bid, ask=quote.ask)) is None or quote.ask is None:
        return None
    limit = quote.ask
    return TradingSignal(
        symbol=data.symbol,
        action="BUY",
        quantity=1,
        order_type="LMT",
        limit_price=limit,
        expiry=expiry,
        strike=strike,
        right="C",
        signal_strength=1.0,
        strategy_id=DEMO_CONTEXT.strategy_id,
        timestamp=SystemClock().now(),
    )


@contextlib.asynccontextmanager
async def _target(args: argparse.Namespace) -> AsyncIterator[tuple[str, int]]:
    if args.port:
        yield args.host, args.port
        return
    from ibkr_trader.sim import SimConfig, SimulatedGateway  # only for the in-process default

    start = getattr(args, "at", None)
    config = SimConfig(port=0, pacing=False, calendar=start is not None, start=start)
    async with SimulatedGateway(config) as sim:
        yield sim.host, sim.port


async def run_cycle(args: argparse.Namespace, console: Console) -> int:
    mode = ExecutionMode(args.mode)
    clock: Clock = SystemClock()
    start = getattr(args, "at", None)
    if start is not None and not args.port:
        # a rehearsal: the bot reads the in-process simulator's market time, not today's date
        from ibkr_trader.sim.clock import SimClock

        clock = SimClock(start)
    journal = await asyncio.to_thread(Journal.open, args.journal, mode, clock)
    ajournal = AsyncJournal(journal)
    try:
        limits = getattr(args, "limits", None) or load_risk_limits(args.config)
        switch = getattr(args, "kill_switch", None) or default_kill_switch_path()
        risk = RiskManager(limits, journal, clock, kill_switch_path=switch)
        code = 0
        async with _target(args) as (host, port):
            where = "in-process simulated gateway" if not args.port else "gateway"
            console.print(
                f"[bold]ibkr-trader[/bold] {mode.value} cycle against {where} {host}:{port}"
            )
            config = GatewayConfig(
                host=host, port=port, client_id=args.client_id, account=args.account or ""
            )
            gateway = IBKRGateway(config, risk, mode, journal=ajournal, clock=clock)
            try:
                await gateway.connect(timeout=args.timeout)
                data = await gateway.get_market_data(args.symbol, timeout=args.timeout)
                console.print(market_data_table(data))
                signal = await build_demo_signal(gateway, data, args.timeout)
                if signal is None:
                    console.print("[yellow]no option with a two-sided market: no signal[/yellow]")
                else:
                    console.print(
                        f"signal: {signal.action.value} {signal.quantity} {signal.symbol} "
                        f"{signal.expiry} {signal.strike:g}{signal.right.value} "
                        f"LMT {signal.limit_price:.2f}"
                    )
                    result = await gateway.submit_order(
                        signal, DEMO_CONTEXT, timeout=args.timeout, market_data=data
                    )
                    console.print(result_table(result))
                    if result.status not in (OrderStatus.FILLED, OrderStatus.SIMULATED):
                        console.print(
                            f"[red]the order was not filled: {result.status.value}"
                            f"{': ' + result.rejection_reason if result.rejection_reason else ''}"
                            "[/red]"
                        )
                        code = 1
                positions = await gateway.get_positions(timeout=args.timeout)
                console.print(positions_table(positions))
            finally:
                await gateway.disconnect()
        console.print(f"journal: {journal.path}")
        return code
    finally:
        await ajournal.aclose()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ibkr_trader.integrations.ibkr_gateway",
        description="Run the handoff's full cycle (dry-run by default, never live).",
    )
    parser.add_argument("--mode", choices=["dry_run", "paper"], default="dry_run")
    parser.add_argument("--symbol", default="SPY")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="a gateway's API port; default: in-process simulator"
    )
    parser.add_argument("--client-id", type=int, default=17)
    parser.add_argument("--account", default="", help="the IB account (paper: DU...)")
    parser.add_argument("--journal", type=Path, default=None, help="journal file")
    parser.add_argument("--config", type=Path, default=None, help="TOML file with [risk]")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--log-level", default=os.environ.get("IBKR_TRADER_LOG", "WARNING"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    console = Console()
    try:
        return asyncio.run(run_cycle(args, console))
    except ValueError as exc:  # a configuration or usage problem
        console.print(f"[red]error:[/red] {exc}")
        return 2
    except (BrokerError, OSError) as exc:  # an operational failure
        console.print(f"[red]error:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
