"""The issue's "done when", through the real CLI and a simulated gateway on a real socket:
with the README's paper.toml, ``halt`` makes the running bot HALTED within one cycle and
``resume`` undoes it; ``reduce`` stops entries while closes keep running; ``positions`` and
``close --all`` work while ``run`` is going; an acknowledged unknown order no longer halts."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from pathlib import Path

from ib_async import IB, LimitOrder, Stock

from cli.conftest import (
    RunningBot,
    ThreadedGateway,
    at_rig_instant,
    child_env,
    invoke,
    last_json,
    paper_toml,
)


def test_halt_reduce_resume_reach_the_running_bot_and_positions_close_work_beside_it(
    tmp_path: Path, gateway: ThreadedGateway
) -> None:
    config = paper_toml(tmp_path, gateway.port)
    bot = RunningBot("--config", str(config), env=child_env())
    try:
        first = bot.wait_for("ACTIVE")
        assert first["mode"] == "paper" and first["connected"] is True

        # positions and close --all while run holds client id 17 (they use 18)
        code, out, err = invoke("positions", "--json", "--config", str(config))
        assert code == 0, err
        assert last_json(out) == {"mode": "paper", "positions": []}
        code, out, err = invoke("close", "--all", "--json", "--config", str(config))
        assert code == 0, err
        assert last_json(out)["ok"] is True

        # halt: the configured kill switch, not ~/.ibkr-trader/HALT
        bot.drain()
        code, out, _ = invoke("halt", "--reason", "news", "--config", str(config), "--json")
        assert code == 0
        halted = last_json(out)
        assert halted["kill_switch"] == str(tmp_path / "ibkr" / "HALT")
        assert (tmp_path / "ibkr" / "HALT").exists()
        assert not (tmp_path / "default-HALT").exists()
        report = bot.within_one_cycle("HALTED")
        assert "news" in report["state_cause"]

        bot.drain()
        code, out, _ = invoke("resume", "--config", str(config), "--json")
        assert code == 0 and last_json(out)["kill_switch_removed"] is True
        bot.within_one_cycle("ACTIVE")

        bot.drain()
        code, out, _ = invoke("reduce", "--reason", "lunch", "--config", str(config), "--json")
        assert code == 0 and last_json(out)["trading_state"] == "REDUCING"
        assert bot.within_one_cycle("REDUCING")["entries_allowed"] is False

        bot.drain()
        code, out, _ = invoke("resume", "--config", str(config), "--json")
        assert code == 0 and last_json(out)["trading_state"] == "ACTIVE"
        bot.within_one_cycle("ACTIVE")

        code, out, _ = invoke("status", "--config", str(config))
        assert code == 0 and "trading state: ACTIVE" in out and "{" not in out
    finally:
        code = bot.stop(signal.SIGTERM)
    assert code == 0  # SIGTERM: a clean stop


def test_ctrl_c_stops_run_with_130_and_a_session_summary(
    tmp_path: Path, gateway: ThreadedGateway
) -> None:
    config = paper_toml(tmp_path, gateway.port)
    proc = subprocess.Popen(
        at_rig_instant("ibkr_trader.cli.app", "run", "--config", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        seen = ""
        while "Decisions this cycle" not in seen:  # the first cycle's panel
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            seen += line
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Session summary · paper (SIGINT)" in rest
    for line in ("cycles", "orders", "fills", "closures", "realized P&L", "governors"):
        assert line in rest


async def _manual_order(port: int) -> int:
    """A manual order on the same account from another client, as from TWS (reconciliation
    reads the open orders of every client id)."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=99, timeout=10)
    try:
        trade = ib.placeOrder(Stock("SPY", "SMART", "USD"), LimitOrder("BUY", 1, 1.00))
        for _ in range(100):
            if trade.order.permId:
                break
            await asyncio.sleep(0.05)
        return int(trade.order.permId)
    finally:
        ib.disconnect()


def test_an_acknowledged_unknown_broker_order_no_longer_halts(
    tmp_path: Path, gateway: ThreadedGateway
) -> None:
    config = paper_toml(tmp_path, gateway.port)
    perm_id = asyncio.run(_manual_order(gateway.port))
    assert perm_id > 0

    code, out, err = invoke("run", "--once", "--json", "--config", str(config))
    report = last_json(out)
    assert code == 1, err  # ended HALTED: a refusal, per the policy
    assert report["trading_state"] == "HALTED"
    assert report["reconciliation"]["unknown_orders"]

    code, out, _ = invoke("status", "--config", str(config))
    assert code == 0 and "UNKNOWN broker order" in out
    assert re.search(rf"permId {perm_id}\b", out)

    code, out, err = invoke("run", "--once", "--json", "--config", str(config))
    assert code == 1 and last_json(out)["trading_state"] == "HALTED"  # every restart

    assert invoke("ack", str(perm_id), "--config", str(config))[0] == 2  # by whom? why?
    code, out, err = invoke(
        "ack", str(perm_id), "--by", "alice", "--reason", "my TWS order", "--config", str(config)
    )
    assert code == 0, err
    assert invoke("resume", "--config", str(config))[0] == 0

    code, out, err = invoke("run", "--once", "--json", "--config", str(config))
    report = last_json(out)
    assert code == 0, err
    assert report["trading_state"] == "ACTIVE"
    assert report["reconciliation"]["unknown_orders"] == []
    assert any("alice" in note for note in report["reconciliation"]["notes"])

    code, out, _ = invoke("journal", "events", "--json", "--config", str(config))
    kinds = [row["kind"] for row in last_json(out)["rows"]]
    assert "unknown_order_acknowledged" in kinds
