"""Seeded chaos scenarios (see chaos/engine.py): every invariant holds after each.

``IBKR_TRADER_CHAOS_SCENARIOS`` sets how many (default 10 here; ``make chaos`` runs 1,000
through ``bench/chaos_run.py``). ``IBKR_TRADER_CHAOS_SEED`` shifts the first seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos.engine import KILL_EVERY, run_scenario

SCENARIOS = int(os.environ.get("IBKR_TRADER_CHAOS_SCENARIOS", "10"))
FIRST_SEED = int(os.environ.get("IBKR_TRADER_CHAOS_SEED", "0"))


@pytest.mark.timeout(600)
async def test_every_invariant_holds_in_every_seeded_chaos_scenario(tmp_path: Path) -> None:
    failures = []
    kinds = set()
    for seed in range(FIRST_SEED, FIRST_SEED + SCENARIOS):
        result = await run_scenario(seed, tmp_path / f"s{seed}")
        kinds.add(result.kind)
        if not result.ok:
            failures.append(
                f"seed {seed} ({result.kind}): {result.violations}\n  steps: {result.steps}\n"
                f"  replay: python bench/chaos_run.py --scenarios 1 --seed {seed}"
            )
    assert failures == []
    if SCENARIOS >= KILL_EVERY:
        assert kinds == {"inprocess", "kill9"}
