"""Start-up time of the ``ibkr-trader`` commands that do not trade.

Each command runs as a fresh process (the installed console script, as an operator types it),
``--runs`` times; the median wall time and the median CPU time (user + system: what the
command itself costs, whatever else the machine runs) are reported, with the interpreter's own
start-up (``python -c pass``) as the floor. A command is within the budget when both medians
are. Everything lives in a temporary directory (journal, kill switch); nothing connects
anywhere.

``halt`` and ``resume`` are timed twice: repeated (the state does not change: nothing is
logged), and alternately (each one changes the state, journals it and logs the
``trading_state_changed`` warning, which loads structlog).

    python bench/bench_cli.py [--runs 7] [--budget 0.3]

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

COMMANDS: list[list[str]] = [
    ["--help"],
    ["version"],
    ["halt", "--reason", "bench"],
    ["resume"],
    ["status"],
    ["journal"],
    ["config", "show"],
]


def _script() -> list[str]:
    script = Path(sys.executable).parent / "ibkr-trader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ibkr_trader.cli.app"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(
    argvs: list[list[str]], env: dict[str, str], runs: int
) -> tuple[float, list[float], float, int]:
    """Median wall time, every wall time, median CPU time (user + system), last exit code of
    ``runs`` runs that cycle through ``argvs`` (one argv: the same command every time).

    The CPU time is what the command costs; the wall time adds whatever else the machine is
    doing (on a shared machine the two differ a lot)."""
    times: list[float] = []
    cpu: list[float] = []
    code = 0
    for i in range(runs * len(argvs)):
        argv = argvs[i % len(argvs)]
        c0, t0 = _cpu(), time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        if i % len(argvs) == 0:
            times.append(time.perf_counter() - t0)
            cpu.append(_cpu() - c0)
            code = done.returncode
    return statistics.median(times), times, statistics.median(cpu), code


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.3)
    args = parser.parse_args()
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_TRADER")}
        env["IBKR_TRADER_HOME"] = str(Path(tmp) / "home")
        env["IBKR_TRADER_KILL_SWITCH"] = str(Path(tmp) / "HALT")
        script = _script()
        # a journal to read: halt + resume create and write it
        for warm in (["halt"], ["resume"]):
            subprocess.run([*script, *warm], env=env, capture_output=True, check=False)
        floor, _, floor_cpu, _ = _time([[sys.executable, "-c", "pass"]], env, args.runs)
        measured: list[tuple[str, list[list[str]]]] = [
            (" ".join(command), [[*script, *command]]) for command in COMMANDS
        ]
        halt, resume = [*script, "halt", "--reason", "bench"], [*script, "resume"]
        measured += [
            ("halt (state changes)", [halt, resume]),
            ("resume (state changes)", [resume, halt]),
        ]
        results = []
        for name, argvs in measured:
            subprocess.run(argvs[-1], env=env, capture_output=True, check=False)
            median, times, cpu, code = _time(argvs, env, args.runs)
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
        f"{payload['cpus']} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
