"""Failures a person can act on, as `flywheel` reports them: one line naming the problem and its fix, exit
code 2, no traceback (unless --verbose), and the registry left as it was. Real processes where the failure is
about processes: a taken port, Slack refusing the token or away."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from bot.cli import main
from store.db import Database, alembic_config
from store.models import AuditEvent
from tests.support.slack_fake import FakeSlack
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "xoxb-errors-test"
SECRET_KEY = "k" * 40
STARTUP_SECONDS = 120


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _invoke(tmp_path, *args, **env):
    base = {"FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"), "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"),
            "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None, "SLACK_APP_TOKEN": None,
            "FLYWHEEL_SECRET_KEY": None, "FLYWHEEL_SLACK_API_URL": "http://127.0.0.1:9/api/"}
    return CliRunner().invoke(main, list(args), env={**base, **env})


def _one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FLYWHEEL_"))}
    env.update(FLYWHEEL_ARTIFACTS=str(tmp_path / "artifacts"), FLYWHEEL_OUTBOX=str(tmp_path / "outbox"),
               PYTHONPATH=str(ROOT), **more)
    return env


def _flywheel(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=STARTUP_SECONDS, stdin=subprocess.DEVNULL)


def _last_line(process: subprocess.CompletedProcess) -> str:
    assert process.returncode == 2, process.stdout + process.stderr
    return process.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- the database URL


@pytest.mark.parametrize("command", [["models"], ["check"], ["audit", "verify"], ["report", "noise"]])
def test_a_typo_in_the_sqlite_path_is_refused_and_creates_no_file(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    line = _one_line(_invoke(tmp_path, *command, FLYWHEEL_DATABASE_URL="sqlite:///flywhel.db"))
    assert line == "Error: no Flywheel registry at sqlite:///flywhel.db; run `flywheel db upgrade` to create one"
    assert not (tmp_path / "flywhel.db").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_typo_in_a_folder_of_the_sqlite_path_creates_no_folder(tmp_path):
    url = f"sqlite:///{tmp_path}/regsitry/flywheel.db"
    assert "no Flywheel registry at" in _one_line(_invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url))
    assert not (tmp_path / "regsitry").exists()


def test_an_empty_database_is_refused_and_left_empty(tmp_path, empty_database_url):
    url = empty_database_url
    if url.startswith("sqlite"):
        Path(make_url(url).database).touch()  # a file something else created
    line = _one_line(_invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url))
    shown = make_url(url).render_as_string(hide_password=True)
    assert line == f"Error: no Flywheel registry at {shown}; run `flywheel db upgrade` to create one"
    database = Database(url)
    assert inspect(database.engine).get_table_names() == []
    database.dispose()
    created = _invoke(tmp_path, "db", "upgrade", FLYWHEEL_DATABASE_URL=url)  # the one command that creates it
    assert created.exit_code == 0, created.output
    assert _invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url).exit_code == 0


def test_an_older_sqlite_registry_is_still_brought_up_to_date(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database = Database(url)
    command.upgrade(alembic_config(database.engine), "0014")
    result = _invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url)
    assert result.exit_code == 0 and "No models registered" in result.output
    assert database.current_revision() == database.head_revision()
    database.dispose()


def test_postgres_scheme_is_read_as_postgresql_with_psycopg(tmp_path, database_url):
    if not database_url.startswith("postgresql"):
        port = _closed_port()
        line = _one_line(_invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=f"postgres://flywheel@127.0.0.1:{port}/x"))
        assert line.startswith(f"Error: can't reach the database at postgresql+psycopg://flywheel@127.0.0.1:{port}/x: ")
        assert line.endswith("check FLYWHEEL_DATABASE_URL and that the database server is running")
        return
    spelled = "postgres://" + database_url.partition("://")[2]
    result = _invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=spelled)
    assert result.exit_code == 0 and "No models registered" in result.output


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://flywheel@127.0.0.1/flywheel",
     ("Error: FLYWHEEL_DATABASE_URL: the mysql:// driver (MySQLdb) is not installed: `pip install pymysql` and "
      "write the URL as mysql+pymysql://...")),
    ("notadb://nowhere",
     ("Error: FLYWHEEL_DATABASE_URL: unknown database scheme 'notadb://' (expected sqlite:///FILE, "
      "postgresql+psycopg://USER@HOST/DATABASE or another SQLAlchemy dialect)")),
])
def test_a_scheme_without_its_driver_or_unknown_is_one_line(tmp_path, url, expected):
    assert _one_line(_invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url)) == expected
    assert _one_line(_invoke(tmp_path, "db", "upgrade", FLYWHEEL_DATABASE_URL=url)) == expected


def test_an_unreachable_database_is_one_line_and_verbose_shows_the_traceback(tmp_path):
    url = f"postgresql+psycopg://flywheel:hunter2@127.0.0.1:{_closed_port()}/registry"
    line = _one_line(_invoke(tmp_path, "models", FLYWHEEL_DATABASE_URL=url))
    assert line.startswith("Error: can't reach the database at postgresql+psycopg://flywheel:***@127.0.0.1:")
    assert "hunter2" not in line
    verbose = _invoke(tmp_path, "--verbose", "models", FLYWHEEL_DATABASE_URL=url)
    assert verbose.exit_code == 2
    assert "Traceback (most recent call last)" in verbose.output
    assert verbose.output.strip().splitlines()[-1] == line


# ---------------------------------------------------------------- serve's settings, Slack and the port


def test_serve_names_a_missing_secret_key_before_asking_slack(tmp_path, database_url):
    with FakeSlack(token=TOKEN) as fake:
        line = _one_line(_invoke(tmp_path, "serve", "--port", "0", FLYWHEEL_DATABASE_URL=database_url,
                                 SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET="s3cret",
                                 FLYWHEEL_SLACK_API_URL=fake.api_url))
        assert fake.calls == []
    assert line.startswith("Error: can't serve or link dashboard pages: FLYWHEEL_SECRET_KEY is not set.")


def test_serve_refuses_a_typo_in_the_database_before_asking_slack(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with FakeSlack(token=TOKEN) as fake:
        line = _one_line(_invoke(tmp_path, "serve", FLYWHEEL_DATABASE_URL="sqlite:///flywhel.db",
                                 SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET="s3cret", FLYWHEEL_SECRET_KEY=SECRET_KEY,
                                 FLYWHEEL_SLACK_API_URL=fake.api_url))
        assert fake.calls == []
    assert "no Flywheel registry at sqlite:///flywhel.db" in line
    assert not (tmp_path / "flywhel.db").exists()


def _serve_env(tmp_path: Path, database_url: str, api_url: str, token: str = TOKEN) -> dict[str, str]:
    return _env(tmp_path, FLYWHEEL_DATABASE_URL=database_url, SLACK_BOT_TOKEN=token, SLACK_SIGNING_SECRET="s3cret",
                FLYWHEEL_SECRET_KEY=SECRET_KEY, FLYWHEEL_SLACK_API_URL=api_url)


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path, db):
    with FakeSlack(token=TOKEN) as fake, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _flywheel(_serve_env(tmp_path, db.url, fake.api_url), tmp_path, "serve", "--port", str(port))
        assert fake.calls == []  # the port is checked before Slack is asked
    assert _last_line(process) == (f"Error: can't listen on 127.0.0.1:{port}: Address already in use; stop what "
                                   "is using it or pick another --port")
    assert "Traceback" not in process.stderr


def test_serve_with_a_token_slack_refuses_says_so_and_verbose_shows_the_traceback(tmp_path, db):
    with db.read() as s:
        events = s.execute(select(func.count(AuditEvent.id))).scalar_one()
    with FakeSlack(token=TOKEN) as fake:
        env = _serve_env(tmp_path, db.url, fake.api_url, token="xoxb-revoked-token")
        process = _flywheel(env, tmp_path, "serve", "--port", "0")
        verbose = _flywheel(env, tmp_path, "--verbose", "serve", "--port", "0")
    line = _last_line(process)
    assert line == ("Error: Slack refused SLACK_BOT_TOKEN (invalid_auth): set it to the app's Bot User OAuth Token "
                    "(xoxb-...) from OAuth & Permissions, reinstalling the app to the workspace if it was revoked")
    assert process.stderr.strip() == line and "Traceback" not in process.stderr
    assert "xoxb-revoked-token" not in process.stderr + process.stdout
    assert _last_line(verbose) == line and "Traceback (most recent call last)" in verbose.stderr
    with db.read() as s:
        assert s.execute(select(func.count(AuditEvent.id))).scalar_one() == events


def test_serve_with_slack_away_says_so_in_one_line(tmp_path, db):
    api = f"http://127.0.0.1:{_closed_port()}/api/"
    process = _flywheel(_serve_env(tmp_path, db.url, api), tmp_path, "serve", "--port", "0")
    line = _last_line(process)
    assert line == (f"Error: can't reach Slack at {api}: Connection refused; check the network (a proxy?) or "
                    "FLYWHEEL_SLACK_API_URL")
    assert process.stderr.strip() == line


def test_serve_on_port_zero_prints_the_port_it_listens_on(tmp_path, db):
    with FakeSlack(token=TOKEN) as fake, (tmp_path / "serve.out").open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", "0"], cwd=tmp_path,
                                   env=_serve_env(tmp_path, db.url, fake.api_url), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def announced() -> str:
                text = (tmp_path / "serve.out").read_text()
                assert process.poll() is None, text
                return "listening on http://127.0.0.1:" in text and text

            text = wait_until(announced, STARTUP_SECONDS, "serve to say where it listens")
            port = int(text.split("listening on http://127.0.0.1:")[1].split("/")[0])
            assert port != 0
            assert wait_until(lambda: _answers(port), 30, "serve to answer on that port")
        finally:
            process.terminate()
            process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
