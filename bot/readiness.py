"""`/readyz`: whether this process can do its job now, as a load balancer or orchestrator asks it.

Ready means the database answers (within a short timeout) and the leading worker's heartbeat is at most
two minutes old. `/healthz` stays "the process is alive" and touches nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from store import heartbeat
from store.clock import utcnow
from store.db import Database, reason

STALE_AFTER = timedelta(minutes=2)
TIMEOUT_SECONDS = 3.0  # the whole probe, connecting included; web.py gives up on it after this


@dataclass(frozen=True)
class Readiness:
    db: Database
    clock: Callable[[], datetime] = utcnow
    stale_after: timedelta = STALE_AFTER

    def check(self) -> tuple[bool, dict[str, object]]:
        """(ready, the JSON body); the body's `reason` says why not."""
        try:
            with self.db.read() as s:
                if self.db.engine.dialect.name == "postgresql":
                    s.execute(text(f"SET LOCAL statement_timeout = {int(TIMEOUT_SECONDS * 1000)}"))
                beat = heartbeat.latest(session=s)
        except Exception as exc:  # anything the database answers, or fails to, is "not ready" with its reason
            return False, {"status": "unavailable", "reason": f"the database is unreachable ({reason(exc)})"}
        if beat is None:
            return False, {"status": "unavailable", "reason": "no worker has reported a heartbeat yet"}
        age = (self.clock() - beat).total_seconds()
        body: dict[str, object] = {"status": "ready", "database": "ok", "worker_heartbeat_age_seconds": round(age, 1)}
        if age > self.stale_after.total_seconds():
            return False, {**body, "status": "unavailable",
                           "reason": f"the worker's heartbeat is {age:.0f} s old (more than "
                                     f"{self.stale_after.total_seconds():.0f} s): is `flywheel worker` running?"}
        return True, body
