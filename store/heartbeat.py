"""The leading worker's heartbeat: one row per worker process, the newest read by `/readyz`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.models import WorkerHeartbeat

KEPT = timedelta(days=7)  # rows of workers long gone are pruned as a new one beats


def beat(*, session: Session, worker: str, started_at: datetime, now: datetime) -> None:
    row = session.get(WorkerHeartbeat, worker)
    if row is None:
        session.add(WorkerHeartbeat(worker=worker, started_at=started_at, beat_at=now))
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - KEPT))
    else:
        row.beat_at = now
    session.flush()


def latest(*, session: Session) -> datetime | None:
    return session.execute(select(func.max(WorkerHeartbeat.beat_at))).scalar_one_or_none()
