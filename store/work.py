"""Work people (and Flywheel itself) ask for, recorded before the ack so nothing is lost or done twice.

Kinds: `retrain`, `evaluate` (compare new versions with production), `deploy` and `rollback` (deploy
backends that call the team's systems). States: queued -> running -> done | failed; a retrain handed to
an external trainer waits in `dispatched` until the trainer calls back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import audit
from store.clock import utcnow
from store.models import Model, WorkItem, WorkState

LIVE = (WorkState.queued, WorkState.running, WorkState.dispatched)


def _live(session: Session, model: Model, kind: str) -> WorkItem | None:
    return session.execute(select(WorkItem).where(WorkItem.model_id == model.id, WorkItem.kind == kind,
                                                  WorkItem.state.in_(LIVE))
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def _expire_stale(session: Session, model: Model, kind: str, stale_after: timedelta, now: datetime) -> None:
    item = _live(session, model, kind)
    if item is not None and item.state == WorkState.dispatched and item.started_at is not None \
            and item.started_at <= now - stale_after:
        hours = stale_after.total_seconds() / 3600
        fail(session=session, item_id=item.id, now=now,
             error=f"the trainer did not call back within {hours:g} hours, so a new request replaced it")


def expire_overdue(*, session: Session, stale_after: timedelta, now: datetime | None = None) -> list[WorkItem]:
    """Fail every dispatched item whose trainer has not called back within `stale_after`: the worker's
    sweep, so the person who asked hears of it instead of waiting on a retrain that will never come."""
    now = now or utcnow()
    overdue = list(session.execute(select(WorkItem).where(WorkItem.state == WorkState.dispatched,
                                                          WorkItem.started_at <= now - stale_after)
                                   .with_for_update()).scalars())
    hours = stale_after.total_seconds() / 3600
    for item in overdue:
        fail(session=session, item_id=item.id, now=now,
             error=f"the trainer did not call back within {hours:g} hours; nothing was registered")
    return overdue


def request(*, session: Session, model: Model, kind: str, requested_by: str, payload: dict[str, Any],
            now: datetime | None = None, stale_after: timedelta | None = None) -> tuple[WorkItem, bool]:
    """Queue one piece of work; if the same kind is already live for the model, return that one.

    With `stale_after`, a dispatched item older than that is failed first: a trainer that never called
    back must not block retraining forever.
    """
    now = now or utcnow()
    if stale_after is not None:
        _expire_stale(session, model, kind, stale_after, now)
    for _ in range(3):
        item = WorkItem(kind=kind, model_id=model.id, requested_by=requested_by, payload=payload,
                        state=WorkState.queued, created_at=now)
        session.flush()  # pending changes first: the savepoint below must hold only this insert
        try:
            with session.begin_nested():
                session.add(item)
                session.flush()
            break
        except IntegrityError:
            if item in session:
                session.expunge(item)
            live = _live(session, model, kind)
            if live is not None:
                return live, False
            # the live one finished between our insert and the lookup: try again
    else:
        raise RuntimeError(f"could not queue {kind} work for {model.key}")
    audit.record(session=session, actor=requested_by, action=f"work.{kind}.requested",
                 subject=f"model:{model.key}", details={"work": item.id, **payload}, at=now)
    return item, True


def request_at_most_every(*, session: Session, model: Model, kind: str, requested_by: str, payload: dict[str, Any],
                          every: timedelta, now: datetime | None = None, stale_after: timedelta | None = None
                          ) -> tuple[WorkItem | None, bool]:
    """Queue work unless `requested_by` already asked for this kind on the model less than `every` ago.

    The model's row is locked first, so two checks breaching at once queue one item.
    """
    now = now or utcnow()
    session.refresh(model, with_for_update=True)
    last = last_requested(session=session, model=model, kind=kind, requested_by=requested_by)
    if last is not None and now - last < every:
        return None, False
    return request(session=session, model=model, kind=kind, requested_by=requested_by, payload=payload, now=now,
                   stale_after=stale_after)


def request_evaluation(*, session: Session, model: Model, entry: dict[str, Any], requested_by: str,
                       now: datetime | None = None) -> tuple[WorkItem, bool]:
    """Queue the comparison of a version with production; False when the version already waits in it.

    One evaluate item is live per model; a version registered while it is live joins its list, and the
    worker runs the item again for versions that joined after it started.
    """
    for _ in range(3):
        item, created = request(session=session, model=model, kind="evaluate", requested_by=requested_by,
                                payload={"versions": [entry]}, now=now)
        if created:
            return item, True
        item = lock(session=session, item_id=item.id)
        if item.state not in LIVE:  # it finished between the lookup and the lock: queue a new one
            continue
        versions = list(item.payload.get("versions", []))
        if any(v["number"] == entry["number"] for v in versions):
            return item, False
        item.payload = {**item.payload, "versions": [*versions, entry]}
        session.flush()
        return item, True
    raise RuntimeError(f"could not queue the evaluation of {model.key} v{entry['number']}")


def latest(*, session: Session, model: Model, kind: str) -> WorkItem | None:
    """The model's most recently requested work of this kind, in any state."""
    return session.execute(select(WorkItem).where(WorkItem.model_id == model.id, WorkItem.kind == kind)
                           .order_by(WorkItem.id.desc()).limit(1)).scalar_one_or_none()


def lock(*, session: Session, item_id: int) -> WorkItem | None:
    """The item, read afresh and locked until the unit of work ends."""
    return session.get(WorkItem, item_id, with_for_update=True, populate_existing=True)


def claim(*, session: Session, item_id: int, now: datetime | None = None) -> WorkItem | None:
    """Move a queued item to running; None when someone else already took it."""
    item = lock(session=session, item_id=item_id)
    if item is None or item.state != WorkState.queued:
        return None
    item.state, item.started_at = WorkState.running, now or utcnow()
    session.flush()
    return item


def mark_dispatched(*, session: Session, item_id: int, result: dict[str, Any],
                    now: datetime | None = None) -> bool:
    """A running item now waits for its trainer. False when the trainer already called back (done)."""
    item = lock(session=session, item_id=item_id)
    if item is None or item.state != WorkState.running:
        return False
    item.state, item.result, item.started_at = WorkState.dispatched, result, now or utcnow()
    audit.record(session=session, actor="flywheel", action=f"work.{item.kind}.dispatched",
                 subject=f"model:{item.model.key}", details={"work": item.id, **result}, at=now)
    session.flush()
    return True


def requeue(*, session: Session, item_id: int, payload: dict[str, Any], result: dict[str, Any]) -> None:
    item = lock(session=session, item_id=item_id)
    item.state, item.payload, item.result, item.started_at = WorkState.queued, payload, result, None
    session.flush()


def interrupted(*, session: Session, item_id: int) -> bool:
    """A running item whose worker lost the database mid-run goes back to the queue (it resumes from
    what it recorded); False when it is not running."""
    item = lock(session=session, item_id=item_id)
    if item is None or item.state != WorkState.running:
        return False
    item.state, item.started_at = WorkState.queued, None
    session.flush()
    return True


def record_progress(*, session: Session, item_id: int, result: dict[str, Any]) -> None:
    """Save what a running item has done so far: a resumed worker skips it."""
    item = lock(session=session, item_id=item_id)
    item.result = result
    session.flush()


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


def last_requested(*, session: Session, model: Model, kind: str, requested_by: str) -> datetime | None:
    """When `requested_by` last asked for this kind of work on the model, whatever became of it."""
    return session.execute(select(func.max(WorkItem.created_at)).where(
        WorkItem.model_id == model.id, WorkItem.kind == kind, WorkItem.requested_by == requested_by)).scalar()
