"""The operator's command line against a simulated IB Gateway on a real socket.

``gateway`` runs a :class:`SimulatedGateway` on its own event loop in a thread, so commands
run by click's CliRunner (each with its own ``asyncio.run``) and ``ibkr-trader run`` in a
subprocess all reach it as they would reach IB Gateway. Every file lives under ``tmp_path``;
the environment is cleared of ``IBKR_TRADER*`` variables.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner

from ibkr_trader.cli import app
from ibkr_trader.sim import SimConfig, SimulatedGateway
from ibkr_trader.testing import rig_instant
from ibkr_trader.testing.instants import configuration_variables

runner = CliRunner()


@dataclass
class ThreadedGateway:
    sim: SimulatedGateway
    loop: asyncio.AbstractEventLoop
    port: int

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def start_gateway(**config: Any) -> tuple[ThreadedGateway, threading.Thread]:
    loop = asyncio.new_event_loop()
    ready: Future[SimulatedGateway] = Future()

    async def main() -> None:
        sim = SimulatedGateway(SimConfig(port=0, pacing=False, **config))
        await sim.start()
        ready.set_result(sim)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.close()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(main())
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sim = ready.result(30)
    return ThreadedGateway(sim, loop, sim.port), thread


def stop_gateway(gw: ThreadedGateway, thread: threading.Thread) -> None:
    def cancel_all() -> None:
        for task in asyncio.all_tasks(gw.loop):
            task.cancel()

    gw.loop.call_soon_threadsafe(cancel_all)
    thread.join(30)


@pytest.fixture
def gateway() -> Iterator[ThreadedGateway]:
    gw, thread = start_gateway(accounts=("DU1234567",))
    try:
        yield gw
    finally:
        stop_gateway(gw, thread)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in configuration_variables():
        monkeypatch.delenv(name)
    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IBKR_TRADER_KILL_SWITCH", str(tmp_path / "default-HALT"))
    saved = structlog.get_config()
    yield tmp_path
    structlog.configure(**saved)


def paper_toml(tmp_path: Path, port: int, **extra: str) -> Path:
    """The README's ``paper.toml``, pointed at the simulator's port and at ``tmp_path``."""
    (tmp_path / "ibkr").mkdir(exist_ok=True)
    gameplan = tmp_path / "ibkr" / "gameplan.toml"
    gameplan.write_text('strategy = "C"\nsymbols = ["SPY"]\nvix_at_analysis = 17.0\n')
    risk = "".join(f"{k} = {v}\n" for k, v in extra.items())
    path = tmp_path / "ibkr" / "paper.toml"
    path.write_text(f"""
[gateway]
host = "127.0.0.1"
port = {port}
client_id = 17
account = "DU1234567"
timeout = 15.0

[run]
mode = "paper"
interval = 0.5
symbols = ["SPY"]
order_timeout = 5.0

[paths]
journal = "{tmp_path / 'ibkr' / 'journal-paper.sqlite3'}"
kill_switch = "{tmp_path / 'ibkr' / 'HALT'}"
gameplan = "{gameplan}"

[risk]
max_open_positions = 2
daily_loss_limit_pct = 0.02
{risk}""")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    assert lines, f"no JSON in {stdout!r}"
    data = json.loads(lines[-1])
    assert isinstance(data, dict)
    return data


def at_rig_instant(module: str, *args: str) -> list[str]:
    """argv of ``python -m MODULE ARGS`` in a subprocess whose clock is the rig's instant
    (``ibkr_trader.testing.at``): a child process never reads this machine's date either."""
    instant = rig_instant().isoformat()
    return [sys.executable, "-m", "ibkr_trader.testing.at", instant, module, *args]


class RunningBot:
    """``ibkr-trader run --json`` in a subprocess; its cycle reports are read by a thread.

    Reports queue up while the test does something else; :meth:`drain` takes those already
    printed, so the next one is the cycle in flight or a later one."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            at_rig_instant("ibkr_trader.cli.app", "run", "--json", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.reports: list[dict[str, Any]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._lines.put(line)
        self._lines.put(None)

    def next_report(self, timeout: float = 60.0) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no cycle report in time") from None
        if line is None:
            self._lines.put(None)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"run ended ({self.proc.poll()}): {err[-2000:]}")
        report = json.loads(line)
        self.reports.append(report)
        return dict(report)

    def drain(self) -> None:
        """Take every report already printed (they describe cycles before now)."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._lines.put(None)
                return
            self.reports.append(json.loads(line))

    def within_one_cycle(self, state: str) -> dict[str, Any]:
        """After :meth:`drain` and a command: the cycle in flight may predate the command, the
        next one must show ``state``."""
        for _ in range(2):
            report = self.next_report()
            if report["trading_state"] == state:
                return report
        raise AssertionError(f"not {state} within one cycle: {self.reports[-2:]}")

    def wait_for(self, state: str, cycles: int = 6) -> dict[str, Any]:
        for _ in range(cycles):
            report = self.next_report()
            if report["trading_state"] == state:
                return report
        raise AssertionError(f"never {state}: {[r['trading_state'] for r in self.reports]}")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env
