"""``ibkr-trader sim``: run the simulated IB Gateway standalone until Ctrl-C (exit 130).

``--at "2026-12-01 10:30"`` starts the simulator's clock at that New York instant (the NYSE
calendar is on by default: RTH bars and an open market as on that day); the clock then runs
at real speed. The simulator's modules are imported when the command runs, not for ``--help``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ibkr_trader.cli.common import SpeedOption, parse_at
from ibkr_trader.cli.errors import EXIT_INTERRUPTED

DEFAULT_PORT = 4010  # none of IB's 4001 / 4002 / 7496 / 7497


def register(app: typer.Typer) -> None:
    """Add the ``sim`` command to the top-level app."""
    app.command("sim")(sim)


def sim(
    port: Annotated[int, typer.Option(help="TCP port (0 = any free port).")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    account: Annotated[
        list[str] | None,
        typer.Option("--account", help="Managed account (repeatable); U... is live-style."),
    ] = None,
    calendar: Annotated[
        bool,
        typer.Option(
            "--calendar/--no-calendar",
            help="Follow NYSE hours, holidays and early closes (default); --no-calendar trades "
            "around the clock.",
        ),
    ] = True,
    at: Annotated[
        str | None,
        typer.Option(
            help='The market instant to start from, New York time, e.g. "2026-12-01 10:30" '
            "(default: now). The simulated clock runs on from there."
        ),
    ] = None,
    speed: SpeedOption = 1.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Fault to inject (repeatable), e.g. delay:20=2.0, never_fill."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the price paths.")] = 7,
    fill_latency: Annotated[float, typer.Option(help="Seconds from acceptance to fill.")] = 0.0,
    no_pacing: Annotated[bool, typer.Option(help="Switch off historical-data pacing.")] = False,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback host.")] = False,
) -> None:
    """Run the simulated IB Gateway (TWS API, server versions 176..178) until Ctrl-C."""
    import asyncio

    from ibkr_trader.clock import NY
    from ibkr_trader.sim.faults import parse_fault
    from ibkr_trader.sim.server import SimulatedGateway, is_loopback
    from ibkr_trader.sim.state import SimConfig

    if not is_loopback(host) and not allow_remote:
        typer.echo(
            f"refusing to bind {host}: not a loopback address (use --allow-remote)", err=True
        )
        raise typer.Exit(2)
    if port in (4001, 4002, 7496, 7497):
        typer.echo(f"refusing port {port}: it belongs to a real IB Gateway / TWS", err=True)
        raise typer.Exit(2)
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
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc

    async def run() -> None:
        gateway = SimulatedGateway(config)
        for spec in specs:
            spec(gateway.faults)
        await gateway.start()
        hours = "NYSE calendar" if config.calendar else "no calendar"
        typer.echo(
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
        typer.echo("simulated IB Gateway stopped (interrupted)", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
