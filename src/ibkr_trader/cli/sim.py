"""``ibkr-trader sim``: run the simulated IB Gateway standalone until Ctrl-C (exit 130).

``--at "2026-12-01 10:30"`` starts the simulator's clock at that New York instant (the NYSE
calendar is on by default: RTH bars and an open market as on that day); the clock then runs
at real speed. The simulator's modules are imported when the command runs, not for ``--help``.
"""

from __future__ import annotations

import click

from ibkr_trader.cli.common import (
    FLOAT,
    INT,
    add_commands,
    command,
    exit_with,
    option,
    parse_at,
    speed_option,
)
from ibkr_trader.cli.errors import EXIT_INTERRUPTED

DEFAULT_PORT = 4010  # none of IB's 4001 / 4002 / 7496 / 7497


def register(group: click.Group) -> None:
    """Add the ``sim`` command to a click group."""
    add_commands(group, sim)


@command("sim")
@option(
    "--port",
    "port",
    type=INT,
    metavar="<int>",
    default=DEFAULT_PORT,
    help="TCP port (0 = any free port).",
)
@option("--host", "host", default="127.0.0.1", help="Address to bind.")
@option(
    "--account",
    "account",
    multiple=True,
    metavar="<list[str]>",
    help="Managed account (repeatable); U... is live-style.",
)
@option(
    "--calendar/--no-calendar",
    "calendar",
    default=True,
    show_default=True,
    help="Follow NYSE hours, holidays and early closes (default); --no-calendar trades "
    "around the clock.",
)
@option(
    "--at",
    "at",
    help='The market instant to start from, New York time, e.g. "2026-12-01 10:30" '
    "(default: now). The simulated clock runs on from there.",
)
@speed_option
@option(
    "--fault",
    "fault",
    multiple=True,
    metavar="<list[str]>",
    help="Fault to inject (repeatable), e.g. delay:20=2.0, never_fill.",
)
@option("--seed", "seed", type=INT, metavar="<int>", default=7, help="Seed of the price paths.")
@option(
    "--fill-latency",
    "fill_latency",
    type=FLOAT,
    metavar="<float>",
    default=0.0,
    show_default=True,
    help="Seconds from acceptance to fill.",
)
@option(
    "--no-pacing/--no-no-pacing",
    "no_pacing",
    default=False,
    show_default=True,
    help="Switch off historical-data pacing.",
)
@option(
    "--allow-remote/--no-allow-remote",
    "allow_remote",
    default=False,
    show_default=True,
    help="Allow a non-loopback host.",
)
def sim(
    port: int,
    host: str,
    account: tuple[str, ...],
    calendar: bool,
    at: str | None,
    speed: float,
    fault: tuple[str, ...],
    seed: int,
    fill_latency: float,
    no_pacing: bool,
    allow_remote: bool,
) -> None:
    """Run the simulated IB Gateway (TWS API, server versions 176..178) until Ctrl-C."""
    import asyncio

    from ibkr_trader.clock import NY
    from ibkr_trader.sim.faults import parse_fault
    from ibkr_trader.sim.server import SimulatedGateway, is_loopback
    from ibkr_trader.sim.state import SimConfig

    if not is_loopback(host) and not allow_remote:
        click.echo(
            f"refusing to bind {host}: not a loopback address (use --allow-remote)", err=True
        )
        raise exit_with(2)
    if port in (4001, 4002, 7496, 7497):
        click.echo(f"refusing port {port}: it belongs to a real IB Gateway / TWS", err=True)
        raise exit_with(2)
    try:
        specs = [parse_fault(f) for f in fault or []]
        start = parse_at(at)
        config = SimConfig(
            host=host,
            port=port,
            accounts=tuple(account or ["DU1234567"]),
            seed=seed,
            calendar=calendar,
            start=start,
            speed=speed,
            fill_latency=fill_latency,
            pacing=not no_pacing,
            allow_non_loopback=allow_remote,
        )
    except ValueError as exc:
        click.echo(str(exc), err=True)
        raise exit_with(2) from exc

    async def run() -> None:
        gateway = SimulatedGateway(config)
        for spec in specs:
            spec(gateway.faults)
        await gateway.start()
        hours = "NYSE calendar" if config.calendar else "no calendar"
        click.echo(
            f"simulated IB Gateway listening on {gateway.host}:{gateway.port} "
            f"accounts {','.join(gateway.accounts)} market "
            f"{gateway.now().astimezone(NY):%Y-%m-%d %H:%M} New York ({hours}) (Ctrl-C to stop)"
        )
        try:
            await gateway.serve_forever()
        finally:
            await gateway.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("simulated IB Gateway stopped (interrupted)", err=True)
        raise exit_with(EXIT_INTERRUPTED) from None
