"""`/flywheel status` and `models`: a model's status, reused while nothing it shows has changed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from bot.services.common import Context, Service
from store import authority, registry
from store import status as status_store
from store.status import ModelStatus

__all__ = ["ModelStatus", "Statuses"]

STATUS_CACHE_SIZE = 1000


@dataclass(frozen=True)
class _CachedStatus:
    stamp: tuple[int, int]  # status_store.freshness when it was read
    status: ModelStatus
    commits: int  # the database's own commit count when last confirmed
    checked: float  # monotonic seconds when last confirmed


class Statuses(Service):
    def __init__(self, ops: Context) -> None:
        super().__init__(ops)
        self.recheck_seconds = 1.0  # how soon a change made by another process (the worker) shows
        # Per workspace: a model of another workspace is, to a request from this one, no model at all.
        self._statuses: dict[tuple[str | None, str], _CachedStatus] = {}
        self._rechecking: set[str] = set()  # models whose cached status one thread is rechecking
        self._rechecking_lock = threading.Lock()

    # Kept (bench_ack --with-cycle, 50 concurrent `/flywheel status`, 2026-12-05): SQLite p99 109-169 ms, 0.6 ms CPU
    # with the cache; 299-374 ms, 2.4-2.9 ms without;
    # PostgreSQL 100-158 ms, 0.6-0.7 ms with; 338-560 ms, 3.3 ms without.
    def of(self, model_key: str) -> ModelStatus:
        """A model's status, reused while nothing it shows has changed (people ask in bursts during an
        incident, and the answer must fit in Slack's ack). A change made by this process is seen at once;
        one made by the worker within `status_recheck_seconds`."""
        now, commits = time.monotonic(), self.db.status_commits
        cached = self._statuses.get((authority.current_team(), model_key))
        if cached is not None and cached.commits == commits:
            if now - cached.checked < self.recheck_seconds:
                return cached.status
            # Due for its periodic recheck: one request rechecks while the others answer from the cache
            # meanwhile, rather than a burst of identical queries the moment the second is up.
            with self._rechecking_lock:
                if model_key in self._rechecking:
                    return cached.status
                self._rechecking.add(model_key)
            try:
                return self._read_status(model_key, cached, commits, now)
            finally:
                with self._rechecking_lock:
                    self._rechecking.discard(model_key)
        return self._read_status(model_key, cached, commits, now)

    def _read_status(self, model_key: str, cached: _CachedStatus | None, commits: int, now: float) -> ModelStatus:
        with self.db.read() as s:
            stamp = status_store.freshness(session=s, model_key=model_key)
            if cached is None or cached.stamp != stamp:
                cached = _CachedStatus(stamp, status_store.model_status(session=s, key=model_key), commits, now)
        if len(self._statuses) >= STATUS_CACHE_SIZE:
            self._statuses.clear()
        self._statuses[(authority.current_team(), model_key)] = replace(cached, commits=commits, checked=now)
        return cached.status

    def every_model(self) -> list[ModelStatus]:
        """`/flywheel models`: every model's status, read in one unit of work."""
        with self.db.read() as s:
            return [status_store.model_status(session=s, key=m.key) for m in registry.list_models(session=s)]

    def is_project(self, key: str) -> bool:
        with self.db.read() as s:
            return key in {p.key for p in registry.list_projects(session=s)}
