"""The date sweep: run the date- and time-sensitive tests at every instant of the sweep.

``python -m ibkr_trader.testing.sweep [--jobs N] [--at NAME ...] [-- PYTEST ARGS]`` runs one
``pytest -m dates --instants=...`` over ``--jobs`` pytest-xdist workers: every date-sensitive
test once per instant (``test_x[at=monday-open]``, ``IBKR_TRADER_TEST_AT`` set to it for that
test, see tests/conftest.py), so the suite is collected once per worker instead of once per
instant. A test that read no instant at all at the first instant it ran at is skipped at the
others (it runs the same code at every instant). It prints one line per instant (from the run's
JUnit report), a closing
``dates: N passed, N failed`` line, and exits non-zero when anything failed. ``make
test-dates`` calls it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ibkr_trader.clock import NY
from ibkr_trader.testing.instants import INSTANTS, SWEEP

_UNKNOWN = "(no instant)"  # a collection error or a test outside the parametrization


@dataclass
class Outcome:
    """What one instant's tests did."""

    instant: str
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("errors", 0)

    @property
    def ok(self) -> bool:
        """Nothing failed, and something ran (an instant whose tests all vanished is not ok)."""
        return self.failed == 0 and bool(self.counts)


def read_report(report: str, instants: Sequence[str]) -> dict[str, Outcome]:
    """Outcomes per instant from a JUnit XML report (each testcase names its instant in the
    ``instant`` property the suite's conftest records)."""
    outcomes = {name: Outcome(name) for name in instants}
    root = ET.fromstring(report)
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        instant = props.get("instant") or _UNKNOWN
        outcome = outcomes.setdefault(instant, Outcome(instant))
        failure = case.find("failure")
        error = case.find("error")
        if failure is not None or error is not None:
            bad = failure if failure is not None else error
            assert bad is not None
            key = "failed" if failure is not None else "errors"
            message = (bad.get("message") or "").strip().splitlines()
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            outcome.failures.append(f"{name}: {message[0] if message else key}"[:400])
        elif case.find("skipped") is not None:
            key = "skipped"
        else:
            key = "passed"
        outcome.counts[key] = outcome.counts.get(key, 0) + 1
    return outcomes


def run_pytest(instants: Sequence[str], jobs: int, pytest_args: Sequence[str]) -> tuple[int, str]:
    """One pytest run of every dates test at ``instants``; (return code, JUnit XML)."""
    with tempfile.TemporaryDirectory(prefix="ibkr-trader-dates-") as tmp:
        report = Path(tmp) / "dates.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "dates",
            "-p",
            "no:cacheprovider",
            f"--instants={','.join(instants)}",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
            # a module's tests (so a test's instants) go to one worker, in order: one that read
            # no instant at the first is skipped at the others (tests/conftest.py). Not
            # loadgroup: pytest-xdist 3.8 cannot rename pytest 9.2's node ids to group them.
            *(["-n", str(jobs), "--dist", "loadscope"] if jobs > 1 else []),
            *pytest_args,
        ]
        done = subprocess.run(command, env=dict(os.environ), check=False)
        text = report.read_text() if report.exists() else ""
    return done.returncode, text


def _line(o: Outcome) -> str:
    when = (
        INSTANTS[o.instant].astimezone(NY).strftime("%a %Y-%m-%d %H:%M") + " NY"
        if o.instant in INSTANTS
        else ""
    )
    counts = ", ".join(f"{n} {k}" for k, n in sorted(o.counts.items())) or "nothing ran"
    line = f"{'ok  ' if o.ok else 'FAIL'} {o.instant:<26} {when:<23} {counts}"
    for failure in o.failures:
        line += f"\n     {failure}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="pytest-xdist workers")
    parser.add_argument("--at", action="append", choices=sorted(INSTANTS), default=None)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    instants = list(dict.fromkeys(args.at or SWEEP))
    started = time.monotonic()
    returncode, report = run_pytest(instants, max(1, args.jobs), args.pytest_args)
    seconds = time.monotonic() - started
    outcomes = read_report(report, instants) if report else {}
    passed = failed = 0
    for name in [*instants, *(n for n in outcomes if n not in instants)]:
        o = outcomes.get(name, Outcome(name))
        print(_line(o), flush=True)
        passed += o.counts.get("passed", 0)
        failed += o.failed
    if returncode != 0 and failed == 0:
        failed += 1  # pytest itself failed (collection, usage, no report): count it
    print(f"dates: {passed} passed, {failed} failed at {len(instants)} instants in {seconds:.0f} s")
    ok = returncode == 0 and failed == 0
    ok = ok and all(outcomes.get(n, Outcome(n)).ok for n in instants)
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover - run by make test-dates
    raise SystemExit(main())
