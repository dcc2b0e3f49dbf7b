"""``ibkr-trader demo``: the handoff's one-shot validation cycle (:mod:`ibkr_trader.demo`).

The same cycle as ``python -m ibkr_trader.integrations.ibkr_gateway``, wired from the one
configuration (gateway, journal, kill switch, risk limits; ``--config`` /
``$IBKR_TRADER_CONFIG``). Dry-run against the in-process simulator by default; ``--at``
rehearses at a New York market instant. Exit codes: 0 the order filled (or there was no
signal), 1 it did not fill (rejected by the RiskManager or the broker, timed out) or the
gateway failed, 2 a usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import click

from ibkr_trader.cli.common import (
    add_commands,
    app_config,
    at_option,
    client_id_option,
    command,
    config_option,
    exit_with,
    host_option,
    journal_option,
    mode_option,
    option,
    parse_at,
    port_option,
    setup_logging,
)
from ibkr_trader.cli.errors import EXIT_INTERRUPTED
from ibkr_trader.cli.run import check_rehearsal


@command("demo")
@option("--symbol", "symbol", default="SPY", help="The underlying.")
@mode_option
@host_option
@port_option
@client_id_option
@config_option
@journal_option
@at_option
def demo(
    symbol: str,
    mode: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    config: Path | None,
    journal: Path | None,
    at: str | None,
) -> None:
    """The handoff's full cycle once: market data, a signal, risk, an order, positions."""
    cfg = app_config(config, mode=mode, host=host, port=port, journal=journal)
    if cfg.run.mode != "dry_run" and cfg.gateway.port is None:
        from ibkr_trader.config import ConfigError

        raise ConfigError(
            f"{cfg.run.mode} mode needs an explicit gateway port (--port or [gateway] port); "
            "it never trades against an in-process simulator"
        )
    start = parse_at(at)
    check_rehearsal(cfg, start)
    setup_logging()
    import argparse
    import asyncio

    from rich.console import Console

    from ibkr_trader.demo import run_cycle

    args = argparse.Namespace(
        mode=cfg.run.mode,
        symbol=symbol.strip().upper(),
        host=cfg.gateway.host,
        port=cfg.gateway.port or 0,
        client_id=cfg.side_client_id() if client_id is None else client_id,
        account=cfg.gateway.account,
        journal=cfg.journal_path(),
        config=None,
        limits=cfg.risk,
        kill_switch=cfg.kill_switch_path(),
        timeout=cfg.gateway.timeout,
        at=start,
    )
    try:
        code = asyncio.run(run_cycle(args, Console()))
    except KeyboardInterrupt:
        raise exit_with(EXIT_INTERRUPTED) from None
    raise exit_with(code)


def register(group: click.Group) -> None:
    """Add ``demo`` to a click group."""
    add_commands(group, demo)
