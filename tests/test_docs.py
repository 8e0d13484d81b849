"""The README and docs/ cannot drift from the code: every shell command in them that runs offline runs
here, as a reader would type it, and the README's "Add your own model" walkthrough ends where it says."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.screenshots import CHROMIUM
from tests.support.docs import DOCUMENTS, ROOT, failed_block, run_blocks, shell_blocks


GOVERNED = {"version.adopted", "work.retrain.requested", "version.submitted", "signoff.approve", "signoff.reject",
            "version.deployed", "version.rolled_back"}


def _runnable(document):
    return [b for b in shell_blocks(document) if b.not_run is None]


def test_every_shell_block_runs_here_or_says_why_not():
    blocks = [b for d in DOCUMENTS for b in shell_blocks(d)]
    assert len(blocks) >= 8, [b.where for b in blocks]
    for block in blocks:
        assert block.not_run is None or len(block.not_run.split()) >= 3, f"{block.where}: say why it is not run"
        assert "python3 -m venv" not in block.code or block.not_run, f"{block.where}: installs into the suite's venv"


def test_ci_runs_the_readme_test_command_as_written():
    [setup] = [b for b in shell_blocks(ROOT / "README.md") if "pytest" in b.code]
    [command] = [line for line in setup.code.splitlines() if "pytest" in line]
    assert command.strip() in (ROOT / ".ci" / "run").read_text()


def test_the_readme_runs_as_written_from_the_demo_to_your_own_models_first_governed_deploy(readme_demo, tmp_path):
    shutil.copytree(readme_demo / "flywheel-demo", tmp_path / "flywheel-demo")
    result = run_blocks(_runnable(ROOT / "README.md"), tmp_path)
    assert result.returncode == 0, f"{failed_block(result)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stdout + result.stderr

    # The walkthrough ended where the README says: the reader's own model, adopted, alerted, retrained,
    # signed off by two other people and deployed, every step audited.
    with sqlite3.connect(tmp_path / "house-prices" / "flywheel.db") as registry:
        versions = dict(registry.execute(
            "select v.number, v.status from model_versions v join models m on m.id = v.model_id "
            "where m.key = 'house-prices'").fetchall())
        audited = registry.execute("select action, actor from audit_events order by seq").fetchall()
    assert versions == {1: "archived", 2: "production"}, versions
    governed = [(action, actor) for action, actor in audited if action in GOVERNED]
    assert governed == [("version.adopted", "U0PRICE01"), ("work.retrain.requested", "U0PRICE01"),
                        ("version.submitted", "U0PRICE01"), ("signoff.approve", "U0PRICE02"),
                        ("signoff.approve", "U0RISK02"), ("version.deployed", "U0PRICE01")], audited
    assert [action for action, _ in audited].count("alert.opened") >= 1
    alerts = (tmp_path / "house-prices" / "outbox" / "index.html").read_text()
    assert "MAE above the line on house-prices v1" in alerts  # the ML engineer's performance alert
    assert "Average sale price" in alerts and "(alert above $360,000)" in alerts  # the business KPI alert
    assert "house-prices v2 is ready for review" in alerts


def test_the_reference_pages_run_their_offline_commands(tmp_path):
    blocks = [b for d in DOCUMENTS if d.name != "README.md" for b in _runnable(d)]
    assert blocks, "docs/ shows no command that runs offline"
    result = run_blocks(blocks, tmp_path)
    assert result.returncode == 0, f"{failed_block(result)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.charts
def test_the_readme_pictures_are_redrawn_by_their_script(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("preview.png", "dashboard-model.png"):
        assert (ROOT / "docs" / "img" / name).is_file(), f"the README shows docs/img/{name}"
        drawn = (tmp_path / name).read_bytes()
        assert drawn.startswith(b"\x89PNG") and len(drawn) > 20_000, name  # a page, not a blank
