"""``ibkr-trader doctor``: the pre-flight an operator runs on the first morning.

Checks what the README's IB Gateway set-up asks for, against the configured gateway, with a
second client id (``[gateway] client_id + 1``, or ``--client-id``) so it also works while
``run`` is going. It sends no order and writes nothing (not even the journal).

1. the configuration loads (else exit 2, as for every command) and names a gateway port;
2. the port is reachable (something listens), and in paper mode it is not a live port;
3. an API session opens (API enabled, trusted IP, the client id free);
4. the account: the configured one is managed by this gateway, and a paper account (``DU…``);
5. the master client id and the Read-Only API setting cannot be read over the API: they are
   listed as MANUAL checks with where to look (read-only shows as error 321 on the first order);
6. market data: one snapshot quote of the first watched symbol (live, not delayed, two-sided);
7. the clock: the gateway's time against this machine's (skew over 2 s warns, over 30 s fails).

Exit codes: 0 every check passed (warnings and manual checks allowed), 1 a check failed,
2 a configuration error.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ibkr_trader.cli.common import (
    add_commands,
    app_config,
    client_id_option,
    command,
    config_option,
    exit_with,
    host_option,
    json_option,
    mode_option,
    port_option,
    setup_logging,
)
from ibkr_trader.cli.errors import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from ibkr_trader.config import AppConfig

OK, WARN, FAIL, MANUAL, SKIP = "ok", "warn", "FAIL", "manual", "skipped"
LIVE_PORTS = frozenset({4001, 7496})
SKEW_WARN_SECONDS = 2.0
SKEW_FAIL_SECONDS = 30.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _reachable(host: str, port: int, timeout: float) -> Check:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Check(
            "port reachable",
            FAIL,
            f"nothing accepts connections on {host}:{port} ({exc.strerror or exc})",
            "start IB Gateway and log in; Configure → Settings → API → Settings: "
            "'Socket port' must be this port",
        )
    return Check("port reachable", OK, f"{host}:{port} accepts connections")


async def _session_checks(cfg: AppConfig, client_id: int, timeout: float) -> list[Check]:
    from ibkr_trader.broker.connection import IBKRConnection
    from ibkr_trader.broker.contracts import ContractManager
    from ibkr_trader.broker.exceptions import BrokerError
    from ibkr_trader.broker.market_data import MarketDataProvider
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.logging import redact

    host, port = cfg.gateway.host, int(cfg.gateway.port or 0)
    checks: list[Check] = []
    conn = IBKRConnection(host, port, client_id, timeout, reconnect=False)
    try:
        await conn.connect(timeout)
    except (BrokerError, OSError) as exc:
        checks.append(
            Check(
                "API session",
                FAIL,
                f"no API session with client id {client_id}: {redact(str(exc))}",
                "Configure → Settings → API: 'Enable ActiveX and Socket Clients' on, "
                "127.0.0.1 in 'Trusted IPs'; or another program holds this client id "
                "(--client-id)",
            )
        )
        return checks
    try:
        checks.append(
            Check(
                "API session",
                OK,
                f"client id {client_id}, server version {conn.server_version}",
            )
        )
        accounts = conn.managed_accounts
        wanted = cfg.gateway.account
        shown = ", ".join(redact(a) for a in accounts) or "none"
        if wanted and wanted not in accounts:
            checks.append(
                Check(
                    "paper account",
                    FAIL,
                    f"the configured account {redact(wanted)} is not managed here ({shown})",
                    "log IB Gateway in with the paper user, or fix [gateway] account",
                )
            )
        elif not wanted and len(accounts) != 1:
            checks.append(
                Check(
                    "paper account",
                    FAIL,
                    f"the gateway manages {len(accounts)} accounts ({shown})",
                    "set [gateway] account to the paper account (DU...)",
                )
            )
        else:
            account = wanted or accounts[0]
            paper = account.upper().startswith("DU")
            status = OK if paper else (FAIL if cfg.run.mode == "paper" else WARN)
            checks.append(
                Check(
                    "paper account",
                    status,
                    f"{redact(account)} is {'a paper' if paper else 'NOT a paper'} account",
                    "" if paper else "log IB Gateway in with the PAPER trading user (DU...)",
                )
            )
        checks.append(
            Check(
                "master client id",
                MANUAL,
                "not readable over the API",
                f"Configure → Settings → API: 'Master API client ID' = {cfg.gateway.client_id} "
                "(the bot's id), so reconciliation sees every order on the account",
            )
        )
        checks.append(
            Check(
                "read-only API",
                MANUAL,
                "not readable without sending an order (error 321 on the first order)",
                "Configure → Settings → API: 'Read-Only API' off",
            )
        )
        symbol = cfg.run.symbols[0] if cfg.run.symbols else "SPY"
        try:
            provider = MarketDataProvider(conn, ContractManager(conn))
            quote = await provider.get_quote(symbol, timeout)
        except (BrokerError, OSError) as exc:
            checks.append(
                Check(
                    "market data",
                    FAIL,
                    f"no snapshot of {symbol}: {redact(str(exc))}",
                    "subscribe to US equity/options market data for the paper user "
                    "(Account Management → Market Data Subscriptions; share them with paper)",
                )
            )
        else:
            two_sided = quote.bid is not None and quote.ask is not None
            if quote.is_delayed or not two_sided:
                checks.append(
                    Check(
                        "market data",
                        WARN,
                        f"{symbol}: {'delayed' if quote.is_delayed else 'live'} data, "
                        f"bid {quote.bid} ask {quote.ask}",
                        "entries need live two-sided quotes: check the market-data "
                        "subscriptions (outside market hours a quote may be one-sided)",
                    )
                )
            else:
                checks.append(
                    Check(
                        "market data",
                        OK,
                        f"{symbol} snapshot: bid {quote.bid} / ask {quote.ask} (live)",
                    )
                )
        try:
            server = await conn.server_time(timeout)
        except (BrokerError, OSError) as exc:
            checks.append(Check("clock skew", FAIL, f"no gateway time: {exc}"))
        else:
            skew = (server - SystemClock().now()).total_seconds()
            status = (
                OK
                if abs(skew) <= SKEW_WARN_SECONDS
                else (WARN if abs(skew) <= SKEW_FAIL_SECONDS else FAIL)
            )
            checks.append(
                Check(
                    "clock skew",
                    status,
                    (
                        f"gateway {server.isoformat(timespec='seconds')}, "
                        f"this machine {skew:+.1f} s behind"
                        if skew >= 0
                        else f"gateway {server.isoformat(timespec='seconds')}, "
                        f"this machine {-skew:.1f} s ahead"
                    ),
                    "" if status == OK else "synchronise this machine's clock (NTP)",
                )
            )
    finally:
        await conn.disconnect()
    return checks


def run_checks(cfg: AppConfig, client_id: int) -> list[Check]:
    port = cfg.gateway.port
    checks = [Check("configuration", OK, f"loaded from {cfg.source or 'defaults/environment'}")]
    if port is None:
        checks.append(
            Check(
                "gateway port",
                FAIL if cfg.run.mode == "paper" else WARN,
                "no gateway port configured: dry-run uses the in-process simulator",
                "set [gateway] port (4002 = IB Gateway paper) to check a real gateway",
            )
        )
        return checks
    if cfg.run.mode == "paper" and port in LIVE_PORTS:
        checks.append(
            Check(
                "gateway port",
                FAIL,
                f"{port} is a LIVE port; paper mode refuses it",
                "IB Gateway paper listens on 4002 (TWS paper 7497)",
            )
        )
        return checks
    checks.append(Check("gateway port", OK, f"{cfg.gateway.host}:{port}"))
    reach = _reachable(cfg.gateway.host, port, min(cfg.gateway.timeout, 5.0))
    checks.append(reach)
    if reach.status == FAIL:
        return checks
    import asyncio

    checks.extend(asyncio.run(_session_checks(cfg, client_id, min(cfg.gateway.timeout, 15.0))))
    return checks


@command("doctor")
@mode_option
@host_option
@port_option
@client_id_option
@config_option
@json_option
def doctor(
    mode: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    config: Path | None,
    as_json: bool,
) -> None:
    """Pre-flight: port, API session, paper account, market data, clock skew (what to fix)."""
    cfg = app_config(config, mode=mode, host=host, port=port)
    setup_logging()
    checks = run_checks(cfg, cfg.side_client_id() if client_id is None else client_id)
    failed = [c for c in checks if c.status == FAIL]
    payload: dict[str, Any] = {
        "ok": not failed,
        "mode": cfg.run.mode,
        "checks": [c.to_dict() for c in checks],
    }
    if as_json:
        click.echo(json.dumps(payload))
    else:
        for c in checks:
            click.echo(f"[{c.status:>7}] {c.name}: {c.detail}")
            if c.fix and c.status != OK:
                click.echo(f"          fix: {c.fix}")
        click.echo(
            "doctor: all checks passed"
            if not failed
            else f"doctor: {len(failed)} check(s) FAILED: {', '.join(c.name for c in failed)}"
        )
    raise exit_with(EXIT_FAILURE if failed else EXIT_OK)


def register(group: click.Group) -> None:
    """Add ``doctor`` to a click group."""
    add_commands(group, doctor)
