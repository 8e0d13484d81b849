"""`flywheel doctor`: the settings it sees, secrets masked, and the checks /readyz runs, one line each with the
fix; exit code 1 when not ready, and a database that does not answer is a line, not a traceback."""

from __future__ import annotations

import socket

from click.testing import CliRunner
from sqlalchemy.engine import make_url

from bot.cli import main
from jobs.worker import Worker
from store.clock import utcnow

SECRETS = {"SLACK_BOT_TOKEN": "xoxb-1-doctor-bot-secret", "SLACK_SIGNING_SECRET": "doctor-signing-secret-value",
           "SLACK_APP_TOKEN": "xapp-1-doctor-app-secret", "FLYWHEEL_SECRET_KEY": "doctor-secret-key-" + "k" * 30,
           "FLYWHEEL_WEBHOOK_SECRET": "doctor-webhook-secret", "FLYWHEEL_API_TOKEN": "doctor-api-token",
           "FLYWHEEL_GITHUB_TOKEN": "ghp_doctorgithubsecret", "FLYWHEEL_AIRFLOW_PASSWORD": "doctor-airflow-pw"}


def _doctor(tmp_path, database_url: str, *args: str, **env: str | None):
    base = {"FLYWHEEL_DATABASE_URL": database_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
            "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), **SECRETS}
    return CliRunner().invoke(main, [*args, "doctor"], env={**base, **env})


def _lines(output: str) -> dict[str, str]:
    """Each setting's or check's line, by its name."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("ok", "problem", "skipped"):
            found[words[1]] = line.strip()
        elif len(words) >= 2:
            found[words[0]] = " ".join(words[1:])
    return found


def test_a_ready_install_passes_every_check_and_shows_no_secret(db, tmp_path):
    Worker(db=db, check=lambda *_: None, run_work=lambda _: None).beat(started_at=utcnow())
    result = _doctor(tmp_path, db.url)
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert lines["SLACK_BOT_TOKEN"] == "set (xoxb-…)" and lines["SLACK_APP_TOKEN"] == "set (xapp-…)"
    for name in ("SLACK_SIGNING_SECRET", "FLYWHEEL_SECRET_KEY", "FLYWHEEL_WEBHOOK_SECRET", "FLYWHEEL_API_TOKEN",
                 "FLYWHEEL_GITHUB_TOKEN", "FLYWHEEL_AIRFLOW_PASSWORD"):
        assert lines[name] == "set", name
    assert lines["FLYWHEEL_STORM_WINDOW"] == "60.0" and lines["FLYWHEEL_DIGEST_HOUR"] == "9"
    assert lines["database"] == "ok       database    answers"
    assert lines["migrations"].startswith("ok       migrations  at head (")
    assert lines["worker"].startswith("ok       worker      heartbeat ")
    assert lines["outbox"] == "ok       outbox      no message waiting"
    assert result.output.rstrip().endswith("Ready.")
    for secret in SECRETS.values():
        assert secret not in result.output


def test_no_worker_is_a_problem_with_its_fix_and_exit_code_1(db, tmp_path):
    result = _doctor(tmp_path, db.url)
    assert result.exit_code == 1, result.output
    assert _lines(result.output)["worker"] == ("problem  worker      no worker has reported a heartbeat yet; "
                                               "fix: start `flywheel worker`")
    assert result.output.rstrip().endswith("Not ready.")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_database_is_one_line_without_its_password_or_a_traceback(tmp_path):
    url = f"postgresql+psycopg://flywheel:doctor-db-password@127.0.0.1:{_closed_port()}/flywheel"
    result = _doctor(tmp_path, url)
    assert result.exit_code == 1, result.output
    lines = _lines(result.output)
    assert lines["FLYWHEEL_DATABASE_URL"] == make_url(url).render_as_string(hide_password=True)
    assert lines["database"].startswith("problem  database    the database is unreachable (OperationalError: ")
    assert lines["database"].endswith("; fix: check FLYWHEEL_DATABASE_URL and that the database server is running")
    assert lines["migrations"] == "skipped  migrations  not checked: the database did not answer"
    assert "Traceback" not in result.output and "doctor-db-password" not in result.output
    verbose = _doctor(tmp_path, url, "--verbose")
    assert verbose.exit_code == 1 and "Traceback" in verbose.output and "OperationalError" in verbose.output


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path):
    missing = tmp_path / "nowhere.db"
    result = _doctor(tmp_path, f"sqlite:///{missing}")
    assert result.exit_code == 1, result.output
    assert _lines(result.output)["database"] == (f"problem  database    no Flywheel registry at sqlite:///{missing}; "
                                                 "fix: run `flywheel db upgrade` to create one, or fix "
                                                 "FLYWHEEL_DATABASE_URL")
    assert not missing.exists()
