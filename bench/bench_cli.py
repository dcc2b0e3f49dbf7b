"""Start-up time of the ``ibkr-trader`` commands that do not trade.

Each command runs as a fresh process (the installed console script, as an operator types it),
``--runs`` times; the median wall time and the median CPU time (user + system: what the
command itself costs, whatever else the machine runs) are reported, with the interpreter's own
start-up (``python -c pass``) as the floor. A command is within the budget when both medians
are. Everything lives in a temporary directory (journal, kill switch); nothing connects
anywhere.

Bytecode: by default the children write and read their compiled modules in the temporary
directory (``PYTHONPYCACHEPREFIX``; ``PYTHONDONTWRITEBYTECODE`` dropped) and every command runs
once before it is timed, so the figures are an installed command's steady state (an install
compiles its bytecode; ``uv sync --compile-bytecode``). ``--as-environment`` keeps the
environment as it is: where it sets ``PYTHONDONTWRITEBYTECODE`` (these machines do), an editable
install compiles the project's sources again at every start (about 0.05 s here).

The commands run in rounds, each command once a round (one round first, not timed), so a slow
spell of a shared machine falls on every command alike. ``halt`` and ``resume`` are timed
twice a round: once changing the state (it is journaled and the ``trading_state_changed``
warning is logged, which loads structlog), once finding it already changed (nothing logged).

    python bench/bench_cli.py [--runs 7] [--budget 0.3] [--as-environment]

Prints one JSON object, then one readable line per command. Exit code 0 (figures only; the
budget is reported, not enforced: the machine's load moves every figure; the 1-minute load
average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (name, arguments) in the order of one round: the journal is ACTIVE at a round's start, the
# first halt and the first resume change the state, the second ones find it already changed
ROUND: list[tuple[str, list[str]]] = [
    ("python -c pass", []),
    ("--help", ["--help"]),
    ("version", ["version"]),
    ("halt (state changes)", ["halt", "--reason", "bench"]),
    ("halt --reason bench", ["halt", "--reason", "bench"]),
    ("status", ["status"]),
    ("journal", ["journal"]),
    ("config show", ["config", "show"]),
    ("resume (state changes)", ["resume"]),
    ("resume", ["resume"]),
]
SHOWN = [
    "--help",
    "version",
    "halt --reason bench",
    "resume",
    "status",
    "journal",
    "config show",
    "halt (state changes)",
    "resume (state changes)",
]


def _script() -> list[str]:
    script = Path(sys.executable).parent / "ibkr-trader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ibkr_trader.cli.app"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _rounds(
    script: list[str], env: dict[str, str], runs: int
) -> dict[str, tuple[list[float], list[float], int]]:
    """Every command's wall and CPU times (user + system) and last exit code, over ``runs``
    rounds (after one round not timed): each round runs every command once, so a slower spell
    of a shared machine falls on all of them alike.

    The CPU time is what the command costs; the wall time adds whatever else the machine is
    doing (on a shared machine the two differ a lot)."""
    out: dict[str, tuple[list[float], list[float], int]] = {}
    for round_no in range(runs + 1):
        for name, arguments in ROUND:
            argv = [*script, *arguments] if arguments else [sys.executable, "-c", "pass"]
            c0, t0 = _cpu(), time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, check=False)
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            if round_no:
                times, cpus, _ = out.get(name, ([], [], 0))
                out[name] = ([*times, wall], [*cpus, cpu], done.returncode)
    return out


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument(
        "--as-environment",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE and the pycache as the environment has them",
    )
    args = parser.parse_args()
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_TRADER")}
        env["IBKR_TRADER_HOME"] = str(Path(tmp) / "home")
        env["IBKR_TRADER_KILL_SWITCH"] = str(Path(tmp) / "HALT")
        if not args.as_environment:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        bytecode = (
            f"as the environment (PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '')})"
            if args.as_environment
            else "cached (PYTHONPYCACHEPREFIX in the temporary directory)"
        )
        script = _script()
        timed = _rounds(script, env, args.runs)
        floor_times, floor_cpus, _ = timed["python -c pass"]
        floor, floor_cpu = statistics.median(floor_times), statistics.median(floor_cpus)
        results = []
        for name in SHOWN:
            times, cpus, code = timed[name]
            median, cpu = statistics.median(times), statistics.median(cpus)
            results.append(
                {
                    "command": name,
                    "median_s": round(median, 3),
                    "median_cpu_s": round(cpu, 3),
                    "min_s": round(min(times), 3),
                    "max_s": round(max(times), 3),
                    "exit_code": code,
                    "within_budget": median < args.budget and cpu < args.budget,
                }
            )
    payload = {
        "benchmark": "cli_startup",
        "runs": args.runs,
        "budget_s": args.budget,
        "python_floor_s": round(floor, 3),
        "python_floor_cpu_s": round(floor_cpu, 3),
        "bytecode": bytecode,
        "load_average_1m_before": load_before,
        "load_average_1m": _load(),
        "cpus": os.cpu_count(),
        "commands": results,
    }
    print(json.dumps(payload))
    for r in results:
        mark = "ok  " if r["within_budget"] else "SLOW"
        print(
            f"{mark} ibkr-trader {r['command']:<24} median {r['median_s']:.3f} s wall, "
            f"{r['median_cpu_s']:.3f} s CPU (min {r['min_s']:.3f}, max {r['max_s']:.3f}; "
            f"exit {r['exit_code']})"
        )
    print(
        f"python -c pass: {floor:.3f} s wall, {floor_cpu:.3f} s CPU; "
        f"load average {load_before} before, {payload['load_average_1m']} after, on "
        f"{payload['cpus']} CPUs; bytecode {bytecode}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
