"""One worker leads at a time. On PostgreSQL the leader holds an advisory lock on its own connection; a
standby polls for it and takes over when the leader's connection dies. On SQLite a second worker against
the same file is refused."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from store.db import Database, unreachable
from store.errors import FlywheelError

log = logging.getLogger("flywheel.worker")

STANDBY_POLL_SECONDS = 10.0  # a standby notices a dead leader within this, well under a minute
LEADER_LOCK_KEY = 0x464C5957  # "FLYW": the advisory lock id every Flywheel worker competes for


class WorkerRefused(FlywheelError):
    pass


class Leadership:
    """Who fires schedules. `acquire(block)` returns True once this process leads."""

    def acquire(self, block: bool) -> bool:
        raise NotImplementedError

    def still_leads(self) -> bool:
        """False once another worker leads instead; raises while the database is unreachable."""
        return True

    def release(self) -> None:
        raise NotImplementedError


class PostgresLeadership(Leadership):
    def __init__(self, db: Database):
        self.db = db
        self._connection: Connection | None = None

    def acquire(self, block: bool) -> bool:
        stop = threading.Event()
        while True:
            if self._connection is None:
                self._connection = self.db.engine.connect()
            got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": LEADER_LOCK_KEY}).scalar()
            self._connection.commit()
            if got:
                return True
            if not block:
                return False
            stop.wait(STANDBY_POLL_SECONDS)

    def still_leads(self) -> bool:
        """The lock lives as long as its connection. One lost to an outage took the lock with it: the
        worker connects again and takes the lock again, unless a standby took it meanwhile."""
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._drop()
                raise
        self._connection = self.db.engine.connect()
        got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}).scalar()
        self._connection.commit()
        if not got:
            self._drop()
            return False
        log.warning("took the leader lock again after its connection was lost")
        return True

    def release(self) -> None:
        if self._connection is not None:
            # A pooled connection outlives close(): unlock explicitly. A dead process's lock goes with its
            # connection, which is how a standby takes over after a crash.
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY})
                self._connection.commit()
            except Exception as exc:  # a connection the database dropped holds no lock to release
                if not unreachable(exc):
                    raise
            self._drop()

    def _drop(self) -> None:
        try:
            self._connection.invalidate()  # never back into the pool: it is (or may be) dead
            self._connection.close()
        finally:
            self._connection = None


class SqliteLeadership(Leadership):
    """An exclusive lock on a file beside the database: one worker per SQLite file."""

    def __init__(self, database_path: Path):
        self.path = Path(f"{database_path}.worker.lock")
        self._file = None

    def acquire(self, block: bool) -> bool:
        self._file = open(self.path, "a+")  # noqa: SIM115 - held open for the worker's lifetime
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise WorkerRefused(f"another worker ({holder}) is already running against {self.path.with_suffix('')};"
                                " SQLite allows one worker per database file") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def leadership_for(db: Database) -> Leadership:
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        return SqliteLeadership(Path(url.database or "flywheel.db").resolve())
    return PostgresLeadership(db)
