"""Shared fixtures: a real database per test (SQLite file; PostgreSQL too when configured).

The migrations run once per pytest session, into a template; every test gets its own copy of it:
  database_url        a migrated database of its own (a copy of the session's template)
  db                  `Database` on it
  empty_database_url  an empty database of its own, for tests of the migrations themselves
On SQLite the template is a file copied into the test's tmp_path; on PostgreSQL it is a database
named per session (so sessions sharing a server never meet) copied with CREATE DATABASE ... TEMPLATE.

The suite runs on every CPU (pytest-xdist, pyproject's addopts). Each xdist worker is a session of its own:
on PostgreSQL it migrates its own template and every test still gets a database of its own (random names,
so workers never share a table); what is slow to build and only read (the SQLite template, the README's
demo, the fraud data) is built once for the run under a file lock (tests/support/once.py).

Alerts go without their PNG charts (FLYWHEEL_CHARTS=off) except in tests marked `charts`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from store.db import Database
from tests.support.once import built_once

PG_URL = os.environ.get("FLYWHEEL_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
SQLITE_NAME = "registry.db"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "charts: the test looks at the PNG charts alerts carry, so they are drawn")


@pytest.fixture(autouse=True)
def _charts_only_where_looked_at(request, monkeypatch) -> None:
    """Alerts are drawn without their charts (FLYWHEEL_CHARTS=off, for this process and the workers and
    servers it starts) unless the test is marked `charts`: drawing them is a tenth of the suite's CPU."""
    if request.node.get_closest_marker("charts") is None:
        monkeypatch.setenv("FLYWHEEL_CHARTS", "off")


def _postgres_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """Creates and drops the session's databases, connected to the configured one (never to a template)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    yield admin
    admin.dispose()


def _admin(admin: Engine, statement: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(statement))


def _fresh_postgres(admin: Engine, template: str | None = None) -> Iterator[str]:
    """A throwaway database on the configured server (a copy of `template`, or empty), dropped afterwards."""
    name = f"flywheel_test_{uuid.uuid4().hex[:12]}"
    _admin(admin, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _postgres_url(name)
    finally:
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrated_sqlite(folder: Path) -> None:
    path = folder / SQLITE_NAME
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    # One self-contained file: everything checkpointed out of the WAL, and a rollback journal so no
    # -wal/-shm file belongs with it. Each copy is switched back to WAL by the engine's first connection,
    # as a new file is.
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    assert not path.with_name(SQLITE_NAME + "-wal").exists()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to head once per run (shared by the xdist workers, which only copy it); tests
    copy it rather than migrate their own."""
    return built_once(tmp_path_factory, "template", _migrated_sqlite, copy=False) / SQLITE_NAME


@pytest.fixture(scope="session")
def postgres_template(postgres_admin) -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session, dropped at its end. Nobody stays
    connected to it: PostgreSQL copies a template only while no one is."""
    name = f"flywheel_template_{uuid.uuid4().hex[:12]}"
    _admin(postgres_admin, f'CREATE DATABASE "{name}"')
    try:
        database = Database(_postgres_url(name))
        try:
            database.upgrade()
        finally:
            database.dispose()
        # Nobody connects to it from here on (autovacuum included), so every copy finds it free.
        _admin(postgres_admin, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        _admin(postgres_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> Iterator[str]:
    """A migrated database of the test's own: a copy of the session's template."""
    if request.param == "sqlite":
        path = tmp_path / SQLITE_NAME
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        yield from _fresh_postgres(request.getfixturevalue("postgres_admin"),
                                  request.getfixturevalue("postgres_template"))


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """An empty database of the test's own, for tests of the migrations and of first use."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / SQLITE_NAME}"
    else:
        yield from _fresh_postgres(request.getfixturevalue("postgres_admin"))


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _run_readme_demo(work: Path) -> None:
    import subprocess

    from tests.support.docs import demo_command, reader_environment

    result = subprocess.run(["bash", "-c", demo_command()], cwd=work, env=reader_environment(work) | {
        "FLYWHEEL_CHARTS": "on"}, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    (work / "stdout.txt").write_text(result.stdout)


@pytest.fixture(scope="session")
def readme_demo(tmp_path_factory) -> Path:
    """The README's demo command, run once per run as a reader runs it, in a folder of its own. Read only:
    the xdist workers share it (a test that changes it works on a copy)."""
    return built_once(tmp_path_factory, "readme-demo", _run_readme_demo, copy=False)


@pytest.fixture(scope="session")
def fraud_data(tmp_path_factory) -> Path:
    """Six weeks of scored card transactions and v1's artifact, written once per run for every Slack test
    (each xdist worker gets its own copy: tests add artifacts to it)."""
    from tests.support.slack_world import write_fraud_data

    return built_once(tmp_path_factory, "fraud", write_fraud_data)


@pytest.fixture
def world(db, fraud_data):
    """The Slack app over real HTTP against a fake Slack, with the fraud model registered."""
    from tests.support.slack_fake import FakeSlack
    from tests.support.slack_world import World, register_fraud_model

    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        app = World(db, fraud_data, fake)
        yield app
        app.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"


@pytest.fixture
def served(db):
    """The Slack app in OAuth mode (installed per workspace) over real HTTP against a fake Slack."""
    from tests.support.oauth_world import Served
    from tests.support.slack_fake import FakeSlack

    with FakeSlack() as fake:
        app = Served(db, fake)
        yield app
        app.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"
