"""Work people ask for from Slack, recorded before the ack so nothing is lost or done twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import audit
from store.clock import utcnow
from store.models import Model, WorkItem, WorkState

LIVE = (WorkState.queued, WorkState.running)


def request(*, session: Session, model: Model, kind: str, requested_by: str, payload: dict[str, Any],
            now: datetime | None = None) -> tuple[WorkItem, bool]:
    """Queue one piece of work; if the same kind is already live for the model, return that one."""
    item = WorkItem(kind=kind, model_id=model.id, requested_by=requested_by, payload=payload,
                    state=WorkState.queued, created_at=now or utcnow())
    session.flush()  # pending changes first: the savepoint below must hold only this insert
    try:
        with session.begin_nested():
            session.add(item)
            session.flush()
    except IntegrityError:
        if item in session:
            session.expunge(item)
        live = session.execute(select(WorkItem).where(WorkItem.model_id == model.id, WorkItem.kind == kind,
                                                      WorkItem.state.in_(LIVE))).scalar_one()
        return live, False
    audit.record(session=session, actor=requested_by, action=f"work.{kind}.requested",
                 subject=f"model:{model.key}", details={"work": item.id, **payload}, at=now)
    return item, True


def claim(*, session: Session, item_id: int, now: datetime | None = None) -> WorkItem | None:
    """Move a queued item to running; None when someone else already took it."""
    item = session.get(WorkItem, item_id, with_for_update=True)
    if item is None or item.state != WorkState.queued:
        return None
    item.state, item.started_at = WorkState.running, now or utcnow()
    session.flush()
    return item


def finish(*, session: Session, item_id: int, result: dict[str, Any], now: datetime | None = None) -> None:
    item = session.get(WorkItem, item_id)
    item.state, item.result, item.finished_at = WorkState.done, result, now or utcnow()
    session.flush()


def fail(*, session: Session, item_id: int, error: str, now: datetime | None = None) -> None:
    item = session.get(WorkItem, item_id)
    item.state, item.error, item.finished_at = WorkState.failed, error, now or utcnow()
    audit.record(session=session, actor="flywheel", action=f"work.{item.kind}.failed",
                 subject=f"model:{item.model.key}", details={"work": item.id, "error": error}, at=now)
    session.flush()
