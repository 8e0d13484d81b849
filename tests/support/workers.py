"""Real `flywheel worker` processes for drills: started as an operator starts them, their output in a file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], T], seconds: float, what: str, logs: list[Path], poll: float = 0.02) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}; worker output:\n" +
                         "\n".join(p.read_text()[-3000:] for p in logs if p.exists()))


def stop(*processes: subprocess.Popen | None) -> None:
    """Kill whatever is still running (a failed test's workers)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
