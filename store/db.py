"""Engine, migrations and units of work. The only place a database session is opened."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import RLock

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import FlywheelError

MIGRATIONS = Path(__file__).with_name("migrations")


# `flywheel serve` answers up to 40 Slack requests at once (the thread pool's size). Connections beyond
# the pool are opened and closed per request, which costs a PostgreSQL backend start or SQLite's pragmas
# every time; a pool this size keeps a burst of clicks on warm connections.
POOL_SIZE = 20
POOL_OVERFLOW = 30


class DatabaseError(FlywheelError):
    pass


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs; SQLAlchemy emits BEGIN itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL: readers never wait for the writer. NORMAL syncs the log at checkpoints rather than at every
    # commit: a crash of the process loses nothing, a power cut can lose the last commits (SQLite's own
    # advice for WAL). Installs that need every commit on disk at once run on PostgreSQL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # Reads take no write lock, so status and lookups never queue behind a writer.
    read = connection.get_execution_options().get("flywheel_read", False)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it; say less
        raise DatabaseError(f"FLYWHEEL_DATABASE_URL is not a database URL: {exc.__class__.__name__}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        in_memory = parsed.database in (None, "", ":memory:")
        pooling = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(parsed, connect_args={"timeout": 30}, **pooling)
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE takes the write lock up front: two units of work queue instead of one failing with
        # "database is locked" when both upgrade from reading to writing.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Threads of this process queue on a lock, in turn, instead of
        # in SQLite's busy handler, which sleeps up to 100 ms between tries and makes the tail of every
        # burst of clicks seconds long. Other processes (the worker) still meet the busy handler.
        self._write_lock = RLock() if self.engine.dialect.name == "sqlite" else None
        self.commits = 0  # units of work this process committed: a cheap "did anything change here?"

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()

    def upgrade(self) -> None:
        try:
            command.upgrade(alembic_config(self.engine), "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot migrate {self.describe()}: {exc.__class__.__name__}: "
                                f"{str(exc.orig) if hasattr(exc, 'orig') else exc}") from exc

    def ensure_schema(self) -> None:
        """Bring the schema to head when it is behind (run on first use of a SQLite file)."""
        if self.current_revision() != self.head_revision():
            self.upgrade()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back everything on any error."""
        if self._write_lock is not None:
            self._write_lock.acquire()
        session = self._sessions()
        try:
            yield session
            session.commit()
            self.commits += 1
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if self._write_lock is not None:
                self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads: no write lock on SQLite, and it never commits."""
        session = Session(self.engine.execution_options(flywheel_read=True), expire_on_commit=False)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
