"""The test suite's wall time, run both ways on this machine: with the README's command (pyproject's addopts:
one xdist worker per CPU) and in one process (as before pytest-xdist). Prints each run's wall time, the ratio
and the pass counts, which must be the same.

    .venv/bin/python benchmarks/suite_speed.py                 # SQLite, the README's way then serial
    .venv/bin/python benchmarks/suite_speed.py --postgres      # both databases (FLYWHEEL_TEST_DATABASE_URL)
    .venv/bin/python benchmarks/suite_speed.py --only readme   # one way only
    .venv/bin/python benchmarks/suite_speed.py -- tests/jobs   # a part of the suite

The runs go one after the other, never at once: side by side they would share the cores they measure.
Each run's output goes to build/suite-speed/<way>-<database>.log. Nothing here asserts a time: the machine
is shared and the figures move with what else runs on it (the load average is printed with each run).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAYS = {  # the README's way first: a failure that only parallel runs show is known sooner
    # The README's command as written: `python -m pytest -q`, pyproject's addopts included.
    "readme": [],
    # What the suite did before xdist: one process (the addopts replaced so `-n auto` is not passed).
    "serial": ["-p", "no:xdist", "-o", "addopts=-ra"],
}
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


@dataclass
class Run:
    way: str
    database: str
    seconds: float
    counts: dict[str, int]
    returncode: int
    load: tuple[float, float, float]

    @property
    def summary(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in self.counts.items()) or "no summary line"


def run(way: str, database: str, paths: list[str], logs: Path) -> Run:
    env = dict(os.environ)
    env.pop("FLYWHEEL_TEST_DATABASE_URL", None)
    if database == "postgresql":
        env["FLYWHEEL_TEST_DATABASE_URL"] = os.environ.get("FLYWHEEL_TEST_DATABASE_URL", PG_URL)
    command = [sys.executable, "-m", "pytest", "-q", *WAYS[way], *paths]
    log = logs / f"{way}-{database}.log"
    print(f"== {way} on {database}: {' '.join(command[1:])} (output in {log.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        returncode = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    check=False).returncode
    seconds = time.monotonic() - started
    load = os.getloadavg()
    tail = [line for line in log.read_text().splitlines() if " in " in line and _COUNT.search(line)]
    counts = {kind: int(n) for n, kind in _COUNT.findall(tail[-1])} if tail else {}
    result = Run(way, database, seconds, counts, returncode, load)
    print(f"   {_minutes(seconds)}  {result.summary}  (exit {returncode}; load average at the end "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f})", flush=True)
    return result


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL (FLYWHEEL_TEST_DATABASE_URL "
                                                                 f"or {PG_URL})")
    parser.add_argument("--only", choices=sorted(WAYS), help="run one way only")
    parser.add_argument("paths", nargs="*", help="test paths (default: the whole suite)")
    args = parser.parse_args()
    logs = ROOT / "build" / "suite-speed"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; load average at the start {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
          flush=True)
    databases = ["sqlite"] + (["postgresql"] if args.postgres else [])
    ways = [args.only] if args.only else list(WAYS)
    runs = [run(way, database, args.paths, logs) for database in databases for way in ways]

    print("\nway      database    wall time       tests")
    for r in runs:
        print(f"{r.way:<8} {r.database:<11} {_minutes(r.seconds):<15} {r.summary}")
    for database in databases:
        by_way = {r.way: r for r in runs if r.database == database}
        if len(by_way) == 2:
            serial, readme = by_way["serial"], by_way["readme"]
            same = "the same" if serial.counts == readme.counts else "DIFFERENT"
            print(f"{database}: the README's command is {serial.seconds / readme.seconds:.2f}x as fast as serial; "
                  f"pass counts {same} ({serial.counts.get('passed', 0)} and {readme.counts.get('passed', 0)})")
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
