"""Chaos runner: ``python bench/chaos_run.py --scenarios N --seed S [--jobs J]``.

Runs N seeded chaos scenarios (seeds S .. S+N-1; see tests/chaos/engine.py) against the
simulated gateway, each checked against the invariants, and prints JSON plus a readable line:
how many were clean, how long they took, and every failing seed with its violations and the
command that replays it. Exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _quiet() -> None:
    import structlog

    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def _run_chunk(seeds: list[int]) -> list[dict[str, Any]]:
    _quiet()
    from chaos.engine import run_scenario

    async def body(root: Path) -> list[dict[str, Any]]:
        out = []
        for seed in seeds:
            r = await run_scenario(seed, root / f"s{seed}")
            out.append(
                {
                    "seed": r.seed,
                    "kind": r.kind,
                    "ok": r.ok,
                    "violations": r.violations,
                    "steps": r.steps,
                    "orders": r.orders,
                    "fills": r.fills,
                    "seconds": round(r.seconds, 3),
                }
            )
        return out

    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        return asyncio.run(body(Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scenarios", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    args = p.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.scenarios))
    started = time.monotonic()
    if args.jobs <= 1:
        results = _run_chunk(seeds)
    else:
        chunks = [seeds[i :: args.jobs] for i in range(args.jobs)]
        with ProcessPoolExecutor(args.jobs) as pool:
            results = [r for part in pool.map(_run_chunk, chunks) for r in part]
    elapsed = time.monotonic() - started
    failed = sorted((r for r in results if not r["ok"]), key=lambda r: r["seed"])
    summary = {
        "scenarios": len(results),
        "clean": len(results) - len(failed),
        "failed": len(failed),
        "kill9_scenarios": sum(1 for r in results if r["kind"] == "kill9"),
        "orders_at_simulator": sum(r["orders"] for r in results),
        "fills": sum(r["fills"] for r in results),
        "seconds": round(elapsed, 1),
        "jobs": args.jobs,
        "first_seed": args.seed,
        "failing_seeds": [r["seed"] for r in failed],
        "failures": failed[:20],
    }
    print(json.dumps(summary, indent=2))
    print(
        f"chaos: {summary['clean']}/{summary['scenarios']} scenarios clean "
        f"({summary['kill9_scenarios']} kill -9, {summary['orders_at_simulator']} orders, "
        f"{summary['fills']} fills) in {elapsed:.1f} s with {args.jobs} job(s)"
    )
    for r in failed:
        print(
            f"FAILING SEED {r['seed']}: python bench/chaos_run.py --scenarios 1 --seed {r['seed']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
