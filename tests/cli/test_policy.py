"""Every exit code of the README's policy, hit through the real CLI; the paper-mode gateway
rules; ``config show`` printing exactly what ``run`` uses; ``doctor`` against the simulator;
``--at`` rehearsals with both clocks journaled."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from cli.conftest import (
    ThreadedGateway,
    at_rig_instant,
    child_env,
    invoke,
    last_json,
    paper_toml,
    start_gateway,
    stop_gateway,
)
from ibkr_trader.risk import RiskLimits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- paper never meets a simulator


@pytest.mark.parametrize("command", [("run", "--once"), ("demo",)])
def test_paper_mode_without_a_gateway_port_refuses_to_start(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    code, _, err = invoke(*command, "--mode", "paper")
    assert code == 2
    assert "explicit gateway port" in err and "in-process simulator" in err
    assert not (tmp_path / "home" / "journal-paper.sqlite3").exists()  # nothing journaled


def test_a_paper_journal_never_mixes_two_accounts(tmp_path: Path, gateway: ThreadedGateway) -> None:
    config = paper_toml(tmp_path, gateway.port)
    assert invoke("run", "--once", "--config", str(config))[0] == 0
    other, thread = start_gateway(accounts=("DU7654321",))
    try:
        text = config.read_text()
        text = text.replace(f"port = {gateway.port}", f"port = {other.port}")
        config.write_text(text.replace('account = "DU1234567"', 'account = "DU7654321"'))
        code, out, err = invoke("run", "--once", "--config", str(config))
    finally:
        stop_gateway(other, thread)
    assert code == 1
    assert "refusing to mix two accounts" in err and "DU***567" in err
    assert "DU1234567" not in err + out


# ---------------------------------------------------------------- exit codes


def test_exit_0_and_2_config_show_refuses_what_run_refuses(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("[risk]\nmax_open_positon = 1\n")
    assert invoke("config", "show", "--config", str(typo))[0] == 2
    assert invoke("run", "--once", "--config", str(typo))[0] == 2
    assert invoke("halt", "--config", str(typo))[0] == 2
    assert invoke("journal", "--config", str(typo))[0] == 2


def test_environment_forms_other_than_the_one_are_refused_by_every_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IBKR_TRADER_RISK_MAX_OPEN_POSITIONS", "1")
    for command in (("config", "show"), ("status",), ("run", "--once")):
        code, _, err = invoke(*command)
        assert code == 2 and "IBKR_TRADER__RISK__MAX_OPEN_POSITIONS" in err


def test_config_show_prints_every_limit_in_force_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = paper_toml(tmp_path, 4002)
    monkeypatch.setenv("IBKR_TRADER__RISK__MAX_CONTRACTS_PER_ORDER", "1")
    monkeypatch.setenv("IBKR_TRADER_CONFIG", str(config))
    code, out, _ = invoke("config", "show", "--json")
    shown = json.loads(out)
    assert code == 0
    assert set(shown["risk"]) == set(RiskLimits.field_names())
    assert shown["risk"]["max_open_positions"] == 2
    assert shown["sources"]["risk"]["max_open_positions"] == f"file {config}"
    assert shown["sources"]["risk"]["max_contracts_per_order"] == (
        "env IBKR_TRADER__RISK__MAX_CONTRACTS_PER_ORDER"
    )
    assert shown["sources"]["risk"]["weekly_drawdown_pct"] == "default"
    assert shown["paths"]["kill_switch"] == str(tmp_path / "ibkr" / "HALT")
    assert None not in shown["paths"].values()
    code, text, _ = invoke("config", "show")
    assert code == 0 and "null" not in text
    assert re.search(r"max_contracts_per_order\s+= 1\s+# env IBKR_TRADER__RISK__", text)
    assert re.search(r"weekly_drawdown_pct\s+= 0.05\s+# default", text)


def test_status_without_a_journal_says_so_and_prints_no_raw_dicts() -> None:
    code, out, _ = invoke("status")
    assert code == 0
    assert "no journal yet" in out and "ACTIVE" not in out and "{" not in out
    payload = last_json(invoke("status", "--json")[1])
    assert payload["journal_exists"] is False and payload["trading_state"] is None


def test_status_after_a_run_prints_readable_lines() -> None:
    assert invoke("run", "--once")[0] == 0
    code, out, _ = invoke("status")
    assert code == 0 and "last cycle: #1" in out and "last reconciliation:" in out
    assert "{" not in out and "'" not in out


def test_journal_without_a_journal_and_an_unknown_ref_both_exit_1() -> None:
    code, _, err = invoke("journal", "closures", "--mode", "paper")
    assert code == 1 and "no journal at" in err
    code, _, err = invoke("explain", "NOPE-1")
    assert code == 1 and "no journal at" in err
    assert invoke("run", "--once")[0] == 0
    code, _, err = invoke("explain", "NOPE-1")
    assert code == 1 and "no order 'NOPE-1'" in err


def test_demo_with_a_rejected_order_exits_1() -> None:
    assert invoke("demo")[0] == 0  # a fill in dry-run against the in-process simulator
    assert invoke("halt", "--reason", "drill")[0] == 0
    code, out, _ = invoke("demo")
    assert code == 1 and "REJECTED" in out
    assert invoke("resume")[0] == 0


def test_sim_stops_on_ctrl_c_with_130() -> None:
    proc = subprocess.Popen(
        at_rig_instant("ibkr_trader.cli.app", "sim", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        assert "listening on 127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()


# ---------------------------------------------------------------- doctor


def test_doctor_passes_against_the_simulator(tmp_path: Path, gateway: ThreadedGateway) -> None:
    config = paper_toml(tmp_path, gateway.port)
    code, out, err = invoke("doctor", "--json", "--config", str(config))
    assert code == 0, out + err
    checks = {c["name"]: c for c in last_json(out)["checks"]}
    for name in ("port reachable", "API session", "paper account", "market data", "clock skew"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["master client id"]["status"] == "manual"
    assert "Master API client ID" in checks["master client id"]["fix"]
    code, out, _ = invoke("doctor", "--config", str(config))
    assert code == 0 and "doctor: all checks passed" in out


def test_doctor_fails_with_what_to_fix(tmp_path: Path, gateway: ThreadedGateway) -> None:
    closed = paper_toml(tmp_path, free_port())
    code, out, _ = invoke("doctor", "--config", str(closed))
    assert code == 1 and "port reachable" in out and "fix:" in out
    live = paper_toml(tmp_path, 4001)
    code, out, _ = invoke("doctor", "--config", str(live))
    assert code == 1 and "LIVE port" in out
    wrong = paper_toml(tmp_path, gateway.port)
    wrong.write_text(wrong.read_text().replace("DU1234567", "DU5555555"))
    code, out, _ = invoke("doctor", "--json", "--config", str(wrong))
    checks = {c["name"]: c for c in last_json(out)["checks"]}
    assert code == 1 and checks["paper account"]["status"] == "FAIL"


def test_doctor_with_a_live_style_account_in_paper_mode_fails(tmp_path: Path) -> None:
    gw, thread = start_gateway(accounts=("U1234567",))
    try:
        config = paper_toml(tmp_path, gw.port)
        config.write_text(config.read_text().replace("DU1234567", "U1234567"))
        code, out, _ = invoke("doctor", "--json", "--config", str(config))
    finally:
        stop_gateway(gw, thread)
    checks = {c["name"]: c for c in last_json(out)["checks"]}
    assert code == 1 and "NOT a paper" in checks["paper account"]["detail"]


# ---------------------------------------------------------------- --at rehearsals


def test_run_at_a_chosen_market_instant_journals_both_clocks(tmp_path: Path) -> None:
    code, out, err = invoke("run", "--once", "--json", "--at", "2026-12-01 10:30")
    report = last_json(out)
    assert code == 0, err
    assert report["started_at"].startswith("2026-12-01T15:3")  # 10:30 New York = 15:30 UTC
    assert report["market_open"] is True
    code, out, _ = invoke("journal", "events", "--json")
    rows = [r for r in last_json(out)["rows"] if r["kind"] == "session_clock"]
    start = rows[0]["detail"]
    assert start["phase"] == "start" and start["market_time"].startswith("2026-12-01T15:30")
    assert start["wall_time"] and start["rehearsal_at"].startswith("2026-12-01T10:30")


def test_run_at_night_is_a_closed_market_and_a_bad_instant_is_a_usage_error() -> None:
    code, out, _ = invoke("run", "--once", "--json", "--at", "2026-12-01 03:00")
    assert code == 0 and last_json(out)["market_open"] is False
    assert invoke("run", "--once", "--at", "tomorrow-ish")[0] == 2
    assert invoke("run", "--once", "--at", "2026-12-01 10:30", "--port", "4010")[0] == 2


def test_run_at_a_faster_market_clock(tmp_path: Path) -> None:
    code, out, err = invoke("run", "--once", "--json", "--at", "2026-12-01 10:30", "--speed", "60")
    assert code == 0, err
    code, out, _ = invoke("journal", "events", "--json")
    [start, *_] = [r["detail"] for r in last_json(out)["rows"] if r["kind"] == "session_clock"]
    assert start["speed"] == 60.0
    # only the in-process simulator's clock can be sped up; 0 and above an hour a second
    # are usage errors
    assert invoke("run", "--once", "--speed", "2", "--port", "4010")[0] == 2
    assert invoke("run", "--once", "--speed", "0")[0] == 2
    assert invoke("run", "--once", "--speed", "7200")[0] == 2


def test_demo_and_sim_take_at() -> None:
    code, out, _ = invoke("demo", "--at", "2026-12-01 10:30")
    assert code == 0, out
    proc = subprocess.Popen(
        at_rig_instant("ibkr_trader.cli.app", "sim", "--port", "0", "--at", "2026-12-01 10:30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        assert "market 2026-12-01 10:30 New York" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
