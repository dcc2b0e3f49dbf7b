"""The kill test: a writer is SIGKILLed at random moments; nothing acknowledged is lost."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ibkr_trader.journal import Journal
from ibkr_trader.models import ExecutionMode

WRITER = Path(__file__).with_name("kill_writer.py")
ROUNDS = 6


def _run_and_kill(path: Path, round_no: int, delay: float) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(round_no)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):
                break  # a line cut by the kill was never acknowledged
            if line.strip() == "ready":
                ready.set()
            else:
                lines.append(line.strip())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    if not ready.wait(30):
        proc.kill()
        pytest.fail(f"writer never became ready: {proc.stderr.read() if proc.stderr else ''}")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    thread.join(10)
    assert proc.returncode == -signal.SIGKILL
    return lines


def test_acknowledged_writes_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    path = tmp_path / "kill.sqlite3"
    rng = random.Random(20260302)
    acknowledged: list[str] = []
    for round_no in range(ROUNDS):
        acknowledged += _run_and_kill(path, round_no, rng.uniform(0.05, 0.6))

        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            events = {r[0] for r in raw.execute("SELECT id FROM events")}
            intents = {r[0] for r in raw.execute("SELECT client_order_id FROM intents")}
            fills = {r[0] for r in raw.execute("SELECT exec_id FROM fills")}
            sim_fills = raw.execute(
                "SELECT side, quantity, price FROM fills WHERE simulated = 1"
            ).fetchall()
            cash = raw.execute("SELECT cash FROM sim_account").fetchone()[0]
            position = raw.execute("SELECT COALESCE(SUM(quantity), 0) FROM sim_positions")
            held = position.fetchone()[0]
        finally:
            raw.close()
        for line in acknowledged:
            kind, ident = line.split(" ", 1)
            if kind == "event":
                assert int(ident) in events, line
            elif kind == "intent":
                assert ident in intents, line
            else:
                assert ident in fills, line
        # the simulated book moved atomically with its fills: cash and position agree
        signed = [(1 if side == "BUY" else -1) * qty for side, qty, _ in sim_fills]
        spent = sum(s * price * 100 for s, (_, _, price) in zip(signed, sim_fills, strict=True))
        assert cash == pytest.approx(1_000_000.0 - spent)
        assert held == sum(signed)

    assert len(acknowledged) > ROUNDS * 10  # the writer really was writing when killed
    with Journal.open(path, ExecutionMode.DRY_RUN) as journal:
        assert journal.integrity_check() == "ok"
