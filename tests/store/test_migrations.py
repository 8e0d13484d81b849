import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import Database
from store.models import Base


@pytest.fixture
def db(empty_database_url):
    """Migrated here from empty, not copied from the session's template: these tests are about the migrations."""
    database = Database(empty_database_url)
    assert database.current_revision() is None
    database.upgrade()
    yield database
    database.dispose()


def test_migrations_match_the_models(db):
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrading_twice_is_harmless(db):
    db.upgrade()
    assert db.current_revision() == db.head_revision()


def test_a_new_sqlite_file_gets_the_schema_on_first_use(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    assert database.current_revision() is None
    database.ensure_schema()
    assert database.current_revision() == database.head_revision()
