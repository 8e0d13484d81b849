"""The audit log: append-only events, each holding the hash of the one before it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.clock import utcnow
from store.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _digest(*, seq: int, at: datetime, actor: str, action: str, subject: str,
            details: dict[str, Any], prev_hash: str) -> str:
    body = json.dumps(
        {"seq": seq, "at": at.isoformat(timespec="microseconds"), "actor": actor, "action": action,
         "subject": subject, "details": details, "prev": prev_hash},
        sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record(*, session: Session, actor: str, action: str, subject: str,
           details: dict[str, Any] | None = None, at: datetime | None = None) -> AuditEvent:
    """Append one event in the caller's unit of work; it commits or rolls back with it."""
    # Writing the head first takes the row lock (PostgreSQL) or the write lock (SQLite) before
    # reading it, so two writers can never link to the same previous event.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    seq, prev_hash = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    details = json.loads(json.dumps(details or {}, default=str))
    at = at or utcnow()
    digest = _digest(seq=seq, at=at, actor=actor, action=action, subject=subject,
                     details=details, prev_hash=prev_hash)
    event = AuditEvent(seq=seq, at=at, actor=actor, action=action, subject=subject,
                       details=details, prev_hash=prev_hash, hash=digest)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None
    problem: str

    @property
    def whole(self) -> bool:
        return self.broken_at is None


def verify(*, session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order and report the first event that does not follow from the one before."""
    prev_hash, expected_seq, count, last_id = GENESIS, 1, 0, 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for event in rows:
            where = f"audit event #{event.seq} ({event.action} by {event.actor} at {event.at:%Y-%m-%d %H:%M:%S})"
            if event.seq != expected_seq:
                return ChainReport(count, event.seq, f"{where}: expected event #{expected_seq} here; "
                                   "events are missing or out of order")
            if event.prev_hash != prev_hash:
                return ChainReport(count, event.seq, f"{where}: does not link to the event before it")
            recomputed = _digest(seq=event.seq, at=event.at, actor=event.actor, action=event.action,
                                 subject=event.subject, details=event.details, prev_hash=event.prev_hash)
            if recomputed != event.hash:
                return ChainReport(count, event.seq, f"{where}: its contents were changed after it was written")
            prev_hash, expected_seq, count, last_id = event.hash, expected_seq + 1, count + 1, event.id
        session.expunge_all()
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq != count or head.last_hash != prev_hash:
        return ChainReport(count, count + 1, f"the chain ends at event #{count} but the log recorded "
                           f"#{head.seq}: the latest events were removed")
    return ChainReport(count, None, f"the audit chain is whole: {count} events")


def events_for(*, session: Session, subject_prefix: str, limit: int = 200) -> list[AuditEvent]:
    return list(session.execute(
        select(AuditEvent).where(AuditEvent.subject.startswith(subject_prefix))
        .order_by(AuditEvent.seq.desc()).limit(limit)).scalars())
