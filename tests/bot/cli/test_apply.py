"""`flywheel apply` refuses what would fail later, with the file and line, exit code 2 and nothing applied;
and a SQLite production table keeping its timestamps as ISO text is applied and checked."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import main
from store.models import AuditEvent, Model
from tests.support.projects import (
    week,
    week_end,
    write_project,
    write_project_with_production,
)


@pytest.fixture
def run(tmp_path, database_url):
    env = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None,
           "SLACK_APP_TOKEN": None}
    return lambda *args: CliRunner().invoke(main, list(args), env=env)


def _counts(db) -> tuple[int, int]:
    with db.read() as s:
        return (s.execute(select(func.count(Model.id))).scalar_one(),
                s.execute(select(func.count(AuditEvent.id))).scalar_one())


def _refused(result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") and lines[-1].endswith("problem(s) found; nothing was applied")
    return lines[:-1]


def test_apply_refuses_a_production_table_that_is_not_there(run, db, tmp_path):
    spec = write_project(tmp_path)
    before = _counts(db)
    found = _refused(run("apply", str(spec)))
    assert found == [(f"{spec}:23 models[0].data.production: cannot read the production data: database file not "
                      f"found: {tmp_path.resolve() / 'data' / 'production.db'} (a relative path is read from the "
                      "spec's folder)")]
    assert _counts(db) == before == (0, 0)


def test_apply_says_a_production_database_is_away_with_a_hint(run, db, tmp_path):
    spec = write_project(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec.write_text(spec.read_text().replace('"sqlite:///data/production.db"',
                                             f'"postgresql+psycopg://ro@127.0.0.1:{port}/loans"'))
    found = _refused(run("apply", str(spec)))
    assert len(found) == 1 and found[0].startswith(f"{spec}:23 models[0].data.production: cannot read the "
                                                   f"production data: cannot connect to postgresql+psycopg://ro@")
    assert found[0].endswith("start the database or fix the URL")
    assert _counts(db) == (0, 0)


def test_apply_refuses_an_unknown_scheme_and_a_missing_channel_at_once(run, db, tmp_path):
    spec = write_project_with_production(tmp_path)
    text = spec.read_text().replace('"sqlite:///data/production.db"', '"notadb://nowhere"')
    spec.write_text(text.replace("channels: {business: C0BIZ, ml_engineer: C0ML, risk_manager: C0RISK}",
                                 "channels: {business: C0BIZ, risk_manager: C0RISK}"))
    found = _refused(run("apply", str(spec)))
    assert [line.split(": ", 1)[0] for line in found] == [f"{spec}:12 channels", f"{spec}:23 models[0].data.production.url"]
    assert "no channel for ml_engineer" in found[0] and "unknown database scheme 'notadb://'" in found[1]
    assert _counts(db) == (0, 0)


def test_apply_refuses_a_spec_it_cannot_read(run, db, tmp_path):
    (tmp_path / "loans.yml").mkdir()
    assert _refused(run("apply", str(tmp_path / "loans.yml"))) == [f"{tmp_path / 'loans.yml'}:1: is a folder, not a spec file"]
    assert _counts(db) == (0, 0)


def test_iso_text_timestamps_in_sqlite_are_applied_and_checked(run, db, tmp_path):
    spec = write_project(tmp_path)
    frames = [week(w) for w in range(4)]
    for frame in frames:
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(tmp_path / "data" / "production.db") as connection:
        for frame in frames:
            frame.to_sql("scored", connection, if_exists="append", index=False, dtype={"ts": "TEXT"})
    connection.close()
    applied = run("apply", str(spec))
    assert applied.exit_code == 0, applied.output
    checked = run("check", "default-risk", "--as-of", week_end(3).isoformat())
    assert checked.exit_code == 0, checked.output
    assert " error " not in checked.output
    assert "default-risk  -        drift         ok" in checked.output
