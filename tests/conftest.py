"""Shared fixtures: a real database per test (SQLite file; PostgreSQL too when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.db import Database

PG_URL = os.environ.get("FLYWHEEL_TEST_DATABASE_URL")


def _fresh_postgres(url: str) -> Iterator[str]:
    """A throwaway database on the configured server, dropped afterwards."""
    name = f"flywheel_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield from _fresh_postgres(PG_URL)


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def fraud_data(tmp_path_factory):
    """Six weeks of scored card transactions and v1's artifact, written once for every Slack test."""
    from tests.support.slack_world import write_fraud_data

    folder = tmp_path_factory.mktemp("fraud")
    write_fraud_data(folder)
    return folder


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
