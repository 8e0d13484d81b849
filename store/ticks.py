"""Scheduled check firings, claimed in the database so each runs once and none is lost to a crash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.clock import utcnow
from store.models import CheckTick

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True)
class Tick:
    id: int
    model_key: str
    kind: str
    tick: datetime


def claim(*, session: Session, model_key: str, kind: str, tick: datetime, worker: str,
          now: datetime | None = None) -> Tick | None:
    """Take one firing; None when it was already taken (by another worker, or by this one earlier)."""
    row = CheckTick(model_key=model_key, kind=kind, tick=tick, state=RUNNING, worker=worker,
                    started_at=now or utcnow(), error="")
    session.flush()
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        if row in session:
            session.expunge(row)
        return None
    return Tick(row.id, model_key, kind, tick)


def finish(*, session: Session, tick_id: int, error: str = "", now: datetime | None = None) -> None:
    session.execute(update(CheckTick).where(CheckTick.id == tick_id)
                    .values(state=FAILED if error else DONE, error=error[:2000], finished_at=now or utcnow()))


def left_running(*, session: Session, worker: str, now: datetime | None = None) -> list[Tick]:
    """Firings a dead worker left half-done, handed to `worker`. Called by a new leader only: while it
    leads, no other worker is running checks."""
    rows = list(session.execute(select(CheckTick).where(CheckTick.state == RUNNING, CheckTick.worker != worker)
                                .order_by(CheckTick.id).with_for_update()).scalars())
    for row in rows:
        row.worker, row.started_at = worker, now or utcnow()
    session.flush()
    return [Tick(r.id, r.model_key, r.kind, r.tick) for r in rows]


def prune(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Finished firings are only needed to refuse a second run of the same one; keep a few days."""
    cutoff = (now or utcnow()) - older_than
    return session.execute(delete(CheckTick).where(CheckTick.state != RUNNING, CheckTick.tick < cutoff)).rowcount
