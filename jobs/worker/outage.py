"""The worker through a database outage: one log line when the database goes, one a minute while it stays
away, one when it is back; and APScheduler's job store kept alive meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from store.db import reason, unreachable

log = logging.getLogger("flywheel.worker")

OUTAGE_LOG_SECONDS = 60.0  # while the database is away, one log line per this
OUTAGE_RETRY_SECONDS = 5.0  # while the database is away, each loop tries again after this


class Outage:
    """Whether the database is away, as every loop of the worker finds it: one log line when it goes,
    one a minute while it stays away (not a traceback per job), one when it is back."""

    def __init__(self, every: float = OUTAGE_LOG_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.every, self.clock = every, clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._logged = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            now = self.clock()
            if self._since is None:
                self._since = self._logged = now
                log.warning("the database is unreachable (%s, in %s); schedules are kept and every loop "
                            "retries every %.0f s", reason(exc), where, OUTAGE_RETRY_SECONDS)
            elif now - self._logged >= self.every:
                self._logged = now
                log.warning("the database is still unreachable after %.0f s (%s)", now - self._since, reason(exc))

    def recovered(self) -> None:
        with self._lock:
            if self._since is not None:
                log.warning("the database is back after %.0f s; resuming", self.clock() - self._since)
                self._since = None


class OutageTolerantJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store through a database outage. APScheduler's loop survives an
    error of `get_due_jobs` only (logging it every 10 s); one of `update_job` or `get_next_run_time`
    ends the scheduler's thread, and every schedule with it, for good."""

    def __init__(self, outage: Outage, **options: object):
        super().__init__(**options)
        self.outage = outage

    def get_due_jobs(self, now):
        try:
            return super().get_due_jobs(now)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed("the scheduler", exc)
            return []

    def get_next_run_time(self):
        try:
            return super().get_next_run_time()
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed("the scheduler", exc)
            return datetime.now(timezone.utc) + timedelta(seconds=OUTAGE_RETRY_SECONDS)

    def update_job(self, job):
        try:
            super().update_job(job)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The stored next run time stays behind: the firing is due again once the database is back
            # (within the misfire grace), and its tick is claimed once however often it is fired.
            self.outage.failed("the scheduler", exc)
