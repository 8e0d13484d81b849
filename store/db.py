"""Engine, migrations and units of work. The only place a database session is opened."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from store.audit import AuditedSession
from store.errors import FlywheelError

MIGRATIONS = Path(__file__).with_name("migrations")


# `flywheel serve` answers up to 40 Slack requests at once (the thread pool's size). Connections beyond
# the pool are opened and closed per request, which costs a PostgreSQL backend start or SQLite's pragmas
# every time; a pool this size keeps a burst of clicks on warm connections.
POOL_SIZE = 20
POOL_OVERFLOW = 30
# A PostgreSQL server that does not answer (a dropped network, not a refused connection) fails a new
# connection after this, instead of after the kernel's minutes of SYN retries.
CONNECT_TIMEOUT_SECONDS = 5
# SQLite's OperationalErrors that mean "try again later", not a broken schema or statement.
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


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


# The package that brings each driver SQLAlchemy may ask for; a dialect's default driver is named in its URL
# (mysql:// asks for MySQLdb), so the advice also names the URL spelling of the package suggested.
DRIVER_PACKAGES = {"MySQLdb": ("pymysql", "mysql+pymysql"), "pymysql": ("pymysql", "mysql+pymysql"),
                   "mysql": ("mysql-connector-python", "mysql+mysqlconnector"),
                   "psycopg2": ("psycopg[binary]", "postgresql+psycopg"), "psycopg": ("psycopg[binary]", None),
                   "pyodbc": ("pyodbc", None), "oracledb": ("oracledb", None), "cx_Oracle": ("oracledb", "oracle+oracledb"),
                   "pymssql": ("pymssql", None), "asyncpg": ("psycopg[binary]", "postgresql+psycopg")}
# Spellings SQLAlchemy refuses that other tools (Heroku, libpq, Django) write: read as the dialect meant.
_SCHEME_ALIASES = {"postgres": "postgresql+psycopg", "postgres+psycopg": "postgresql+psycopg",
                   "postgres+psycopg2": "postgresql+psycopg2"}


def normalise_url(url: str) -> str:
    """`postgres://...` as `postgresql+psycopg://...`; any other URL unchanged."""
    scheme, sep, rest = url.partition("://")
    alias = _SCHEME_ALIASES.get(scheme.strip().lower()) if sep else None
    return f"{alias}://{rest}" if alias else url


def driver_problem(url: URL) -> str | None:
    """Why an engine cannot be made for `url`: an unknown scheme, or a driver that is not installed."""
    scheme = url.drivername
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        return (f"unknown database scheme '{scheme}://' (expected sqlite:///FILE, "
                "postgresql+psycopg://USER@HOST/DATABASE or another SQLAlchemy dialect)")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        missing = exc.name or str(exc)
        package, spelling = DRIVER_PACKAGES.get(missing.split(".")[0], (missing.split(".")[0], None))
        advice = f"`pip install {package}`" + (f" and write the URL as {spelling}://..."
                                               if spelling and spelling != scheme else "")
        return f"the {scheme}:// driver ({missing}) is not installed: {advice}"
    return None


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(normalise_url(url))
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it; say less
        raise DatabaseError(f"FLYWHEEL_DATABASE_URL is not a database URL: {exc.__class__.__name__}") from None
    if (problem := driver_problem(parsed)) is not None:
        raise DatabaseError(f"FLYWHEEL_DATABASE_URL: {problem}")
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
    connect = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                         connect_args=connect)


def unreachable(exc: BaseException | None) -> bool:
    """Is this the database being away (refused, dropped, timed out, locked), rather than a refused
    statement or a bug? Looks through `raise ... from` chains."""
    while exc is not None:
        if isinstance(exc, (InterfaceError, PoolTimeout)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OperationalError):
            if type(exc.orig).__module__.startswith("sqlite3"):
                return any(word in str(exc.orig).lower() for word in _SQLITE_TRANSIENT)
            return True
        exc = exc.__cause__
    return False


def reason(exc: BaseException) -> str:
    """One short line for a log or a probe: the driver's first line, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first[:200]}"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


T = TypeVar("T")


@dataclass(frozen=True)
class _Unit:
    work: Callable[[Session], object]
    future: Future
    changes_status: bool
    context: contextvars.Context  # the submitter's: its request id stamps the rows the unit writes


# Kept: what it buys at 50 concurrent clicks during a check cycle (Acknowledge, p50 / p99 and server CPU a click;
# bench_ack --with-cycle --cycle-nice 0 --requests 2000, 2 cores shared with other jobs, about 1 core busy
# elsewhere; 3 runs on SQLite and 2 on PostgreSQL each way, alternating with and without, 2026-12-05):
# SQLite 42-50 / 85-158 ms, 1.7 ms with it; 146-210 / 288-459 ms, 2.6-3.4 ms without.
# PostgreSQL 33-44 / 67-94 ms, 2.8 ms with it; 201-358 / 1,274-2,048 ms, 4.1-4.4 ms without.
class GroupCommit:
    """Short units of work from many threads, committed together (group commit).

    One thread takes whatever has queued and runs it in a single unit of work: under a burst of clicks
    that is one begin, one audit append and one commit for many, and one writer instead of a queue of
    threads handing the write lock around. Each unit's future is settled once the shared unit has
    committed (or failed), so a caller that waits answers only what is on disk. A unit that raises is
    taken out and the rest run again without it, so one refusal never costs the others their change;
    units must therefore touch nothing but the session. Only short units belong here: a slow one holds
    up everyone queued behind it. Futures' callbacks run on the committing thread: keep them short.
    Each unit runs in its submitter's context variables, so the request id it was asked under stamps its rows.
    """

    def __init__(self, db: Database, *, batch: int = 64):
        self.db, self.batch = db, batch
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._unfinished = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, work: Callable[[Session], T], *, changes_status: bool = True) -> Future[T]:
        future: Future[T] = Future()
        with self._changed:
            self._unfinished += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="group-commit", daemon=True)
                self._thread.start()
        self._queue.put(_Unit(work, future, changes_status, contextvars.copy_context()))
        return future

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every unit submitted so far is settled, its callbacks run (tests, shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished == 0, timeout)

    def _serve(self) -> None:
        while True:
            units = [self._queue.get()]
            while len(units) < self.batch:
                try:
                    units.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            taken = len(units)
            self._commit(units)
            with self._changed:
                self._unfinished -= taken
                self._changed.notify_all()

    def _commit(self, units: list[_Unit]) -> None:
        """Settle every unit's future; takes out (from `units`) each one that raises."""
        while units:
            results: list[object] = []
            try:
                with self.db.session(changes_status=any(u.changes_status for u in units)) as s:
                    for unit in units:
                        try:
                            results.append(unit.context.run(unit.work, s))
                        except BaseException as exc:  # noqa: BLE001 - handed to its caller through the future
                            unit.future.set_exception(exc)
                            raise
            except BaseException as exc:  # noqa: BLE001 - every caller hears how its unit ended
                if len(results) == len(units):  # the commit itself failed: nothing of this batch was written
                    for unit in units:
                        unit.future.set_exception(exc)
                    return
                del units[len(results)]  # the unit that raised; the others run again without it
                continue
            for unit, result in zip(units, results, strict=True):
                unit.future.set_result(result)
            return


class Database:
    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        # AuditedSession: the audit log's commit hook runs on Flywheel's own sessions, and on no others.
        self._sessions = sessionmaker(self.engine, class_=AuditedSession, expire_on_commit=False)
        self.commits = 0  # units of work this process committed
        # ... of them, those that could change what `/flywheel status` shows: a cheap "did anything change here?"
        self.status_commits = 0
        self._group = GroupCommit(self)

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
    def session(self, *, changes_status: bool = True) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back everything on any error.
        `changes_status=False` for one that changes nothing a model's status shows (audit.record's sense)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
            self.commits += 1
            self.status_commits += changes_status
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def submit(self, work: Callable[[Session], T], *, changes_status: bool = True) -> Future[T]:
        """Queue a short unit of work for the next group commit (see GroupCommit)."""
        return self._group.submit(work, changes_status=changes_status)

    def drain_submitted(self, timeout: float = 30.0) -> bool:
        return self._group.drain(timeout)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads: no write lock on SQLite, and it never commits."""
        session = AuditedSession(self.engine.execution_options(flywheel_read=True), expire_on_commit=False)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
