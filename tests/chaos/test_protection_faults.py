"""Chaos faults of issue 14 against the protective layer, through the simulator: total loss of
market data, a failing gateway clock, no bid on held options, a full disk under the journal, a
day boundary during a run, a reconnect to a live-style account. Each drill holds a position,
applies the fault, fires a protective trigger and checks that the close is on the wire in
time (or, on a live account, that nothing is sent at all). See ``ibkr_trader.testing.drill``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ibkr_trader.testing.drill import FAULTS, run_drill

CASES = [("emergency_stop", fault) for fault in FAULTS] + [
    ("missing_data", "none"),  # total loss of market data for N minutes: the quarantine
    ("missing_data", "journal_full"),
    ("dte", "clock"),
    ("daily_loss", "no_bid"),
    ("weekly_drawdown", "market_data_loss"),
    ("stale_data", "day_boundary"),
]


@pytest.mark.parametrize(("trigger", "fault"), CASES, ids=[f"{t}-{f}" for t, f in CASES])
async def test_protection_under_fault(trigger: str, fault: str, tmp_path: Path) -> None:
    result = await run_drill(trigger, fault, tmp_path)
    assert result.ok, result
    if result.expected_close:
        assert result.closed and result.seconds_to_wire is not None
        assert result.seconds_to_wire <= result.target_seconds
    else:
        assert not result.closed and result.trading_state == "HALTED"
