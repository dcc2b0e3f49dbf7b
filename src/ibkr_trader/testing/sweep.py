"""The date sweep: run the date- and time-sensitive tests at every instant of the sweep.

``python -m ibkr_trader.testing.sweep [--jobs N] [--at NAME ...] [-- PYTEST ARGS]`` runs
``pytest -m dates`` once per instant (``IBKR_TRADER_TEST_AT`` set to it), ``--jobs`` at a
time, prints one line per instant and a closing ``dates: N passed, N failed`` line, and exits
non-zero when any instant failed. ``make test-dates`` calls it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ibkr_trader.clock import NY
from ibkr_trader.testing.instants import INSTANT_ENV, INSTANTS, SWEEP

_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


@dataclass(frozen=True)
class Outcome:
    instant: str
    returncode: int
    seconds: float
    counts: dict[str, int]
    tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _summary_counts(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if " in " in line and "passed" in line]
    counts: dict[str, int] = {}
    for number, word in _COUNTS.findall(lines[-1] if lines else ""):
        key = "errors" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def run_instant(instant: str, pytest_args: list[str]) -> Outcome:
    env = {**os.environ, INSTANT_ENV: instant}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "dates",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    tail = "\n".join(line for line in output.splitlines() if line.startswith(("FAILED", "ERROR")))
    return Outcome(
        instant, done.returncode, time.monotonic() - started, _summary_counts(output), tail
    )


def _line(o: Outcome) -> str:
    when = INSTANTS[o.instant].astimezone(NY).strftime("%a %Y-%m-%d %H:%M")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(o.counts.items())) or "no summary"
    line = f"{'ok  ' if o.ok else 'FAIL'} {o.instant:<26} {when} NY  {counts}  {o.seconds:.0f} s"
    if o.tail:
        line += "\n     " + o.tail.replace("\n", "\n     ")
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--at", action="append", choices=sorted(INSTANTS), default=None)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    instants = args.at or list(SWEEP)
    outcomes: list[Outcome] = []
    passed = failed = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_instant, i, args.pytest_args) for i in instants]
        for future in futures:  # each line as soon as its instant (and those before) ended
            o = future.result()
            outcomes.append(o)
            print(_line(o), flush=True)
            passed += o.counts.get("passed", 0)
            failed += o.counts.get("failed", 0) + o.counts.get("errors", 0)
            if not o.ok and not o.counts.get("failed") and not o.counts.get("errors"):
                failed += 1  # pytest itself failed (collection, usage): count it
    print(f"dates: {passed} passed, {failed} failed")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":  # pragma: no cover - run by make test-dates
    raise SystemExit(main())
