"""Real `flywheel worker` processes for drills: started as an operator starts them, their output in a file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def worker_output(logs: list[Path]) -> Callable[[], str]:
    """The workers' last output, for `wait_until(..., detail=worker_output(logs))`."""
    return lambda: "worker output:\n" + "\n".join(p.read_text()[-3000:] for p in logs if p.exists())


def stop(*processes: subprocess.Popen | None) -> None:
    """Kill whatever is still running (a failed test's workers)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
