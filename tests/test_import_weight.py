"""The `flywheel` command and the Slack app start without scikit-learn, scipy.stats or matplotlib: they are
imported where a model is fitted, a drift test computed or a chart drawn. Each costs about half a second to
three seconds per process, paid by every CLI command, worker and server the suite starts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "scipy.stats", "matplotlib")


def _loaded_after(statement: str) -> list[str]:
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("statement", ["import bot.cli", "import bot.app", "from bot.cli import main; main.commands"])
def test_the_command_and_the_app_start_without_the_heavy_libraries(statement):
    assert _loaded_after(statement) == []


def test_the_heavy_libraries_still_come_when_the_work_needs_them():
    # The laziness moves the imports, it does not lose them: computing a metric, a drift test or a chart loads them.
    assert _loaded_after("from jobs.metrics import classification_metrics\n"
                         "classification_metrics([0, 1, 1], [0, 1, 0], [0.1, 0.9, 0.4])")[-1] == "sklearn"
    assert "scipy.stats" in _loaded_after("import numpy as np\nfrom jobs.statistics import ks_2samp\n"
                                          "ks_2samp(np.arange(10.0), np.arange(10.0) + 3)")
    assert _loaded_after("from bot.charts import Chart") == ["matplotlib"]
