"""The audit log: append-only events, each holding the hash of the one before it."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from store.clock import utcnow
from store.models import AuditEvent, AuditHead

log = logging.getLogger("flywheel.audit")

GENESIS = "0" * 64


def digest_fields(*, seq: int, at: datetime, actor: str, action: str, subject: str,
            details: dict[str, Any], prev_hash: str) -> str:
    body = json.dumps(
        {"seq": seq, "at": at.isoformat(timespec="microseconds"), "actor": actor, "action": action,
         "subject": subject, "details": details, "prev": prev_hash},
        sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Pending:
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    at: datetime
    changes_status: bool = True


_PENDING = "flywheel.audit"  # the session.info key of a unit of work's events not yet appended


class AuditedSession(Session):
    """The sessions store.db.Database opens: their pending audit events are appended as they commit.
    The hooks below are registered on this class only, so other code's SQLAlchemy sessions (another
    library's, a script's own engine) never run them."""


_HEAD, _EVENTS = AuditHead.__table__, AuditEvent.__table__
# Built once: every click appends, and building a statement costs more than running it.
_BUMP = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + bindparam("count"))
         .returning(_HEAD.c.seq, _HEAD.c.last_hash))
_APPEND = insert(_EVENTS)
_LINK = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("digest"))
_LINK_CHANGED = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("digest"),
                                                            changed_seq=bindparam("changed"))


def record(*, session: Session, actor: str, action: str, subject: str,
           details: dict[str, Any] | None = None, at: datetime | None = None, changes_status: bool = True) -> None:
    """Add one event to the caller's unit of work (a session from store.db.Database); it is appended when
    the unit commits and vanishes if it rolls back. `changes_status=False` for events that change nothing
    `/flywheel status` shows (a command typed, an alert acknowledged), so cached statuses stay valid
    (store.status.freshness)."""
    if not isinstance(session, AuditedSession):  # its commit would not append the event: lost without a word
        raise TypeError("audit events are recorded in a unit of work of store.db.Database, "
                        f"not in a {type(session).__name__}")
    details = json.loads(json.dumps(details or {}, default=str))
    session.info.setdefault(_PENDING, []).append(Pending(actor, action, subject, details, at or utcnow(), changes_status))


@orm_event.listens_for(AuditedSession, "before_commit")
def _append_pending(session: Session) -> None:
    """Append a unit of work's events as it commits: the head is locked (the row on PostgreSQL; SQLite
    has one writer anyway) only from here to the commit, not for the whole unit, so a long unit of work
    (a check cycle) never holds up a click; and however many events, it is one bump, one insert, one link.
    Bumping first takes the lock before the head is read, so two writers never link to the same event."""
    pending: list[Pending] = session.info.pop(_PENDING, None) or []
    if not pending:
        return
    session.flush()  # the unit's own writes first, so the head stays locked for as short as can be
    connection = session.connection()
    last, digest = connection.execute(_BUMP, {"count": len(pending)}).one()
    rows, changed = [], None
    for seq, e in enumerate(pending, start=last - len(pending) + 1):
        prev_hash, digest = digest, digest_fields(seq=seq, at=e.at, actor=e.actor, action=e.action,
                                            subject=e.subject, details=e.details, prev_hash=digest)
        rows.append({"seq": seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
                     "details": e.details, "prev_hash": prev_hash, "hash": digest})
        changed = seq if e.changes_status else changed
    connection.execute(_APPEND, rows)
    if changed is None:
        connection.execute(_LINK, {"digest": digest})
    else:
        connection.execute(_LINK_CHANGED, {"digest": digest, "changed": changed})


@orm_event.listens_for(AuditedSession, "after_transaction_end")
def _forget_pending(session: Session, transaction) -> None:
    if transaction.parent is None:  # the unit of work ended (committed or rolled back), not a savepoint
        session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None
    problem: str

    @property
    def whole(self) -> bool:
        return self.broken_at is None


def walk(*, session: Session, batch: int = 5000) -> Iterator[tuple[AuditEvent, str | None]]:
    """Every event in chain order, each with what is wrong with it (None when it follows from the one
    before). After a break the walk goes on from the broken event, so an export still holds everything."""
    prev_hash, expected_seq, last_id = GENESIS, 1, 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).scalars().all()
        if not rows:
            return
        for event in rows:
            yield event, _problem(event, expected_seq, prev_hash)
            prev_hash, expected_seq, last_id = event.hash, event.seq + 1, event.id
        session.expunge_all()


def _problem(event: AuditEvent, expected_seq: int, prev_hash: str) -> str | None:
    where = f"audit event #{event.seq} ({event.action} by {event.actor} at {event.at:%Y-%m-%d %H:%M:%S})"
    if event.seq != expected_seq:
        return f"{where}: expected event #{expected_seq} here; events are missing or out of order"
    if event.prev_hash != prev_hash:
        return f"{where}: does not link to the event before it"
    if digest_of(event) != event.hash:
        return f"{where}: its contents were changed after it was written"
    return None


def digest_of(event: AuditEvent) -> str:
    """The hash an event must carry, recomputed from its contents and the hash before it."""
    return digest_fields(seq=event.seq, at=event.at, actor=event.actor, action=event.action, subject=event.subject,
                   details=event.details, prev_hash=event.prev_hash)


def verify(*, session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain in order and report the first event that does not follow from the one before."""
    count, last_hash = 0, GENESIS
    for event, problem in walk(session=session, batch=batch):
        if problem is not None:
            return ChainReport(count, event.seq, problem)
        count, last_hash = count + 1, event.hash
    return head_report(session=session, count=count, last_hash=last_hash)


def head_report(*, session: Session, count: int, last_hash: str) -> ChainReport:
    """Whether the chain walked (count events ending in last_hash) is all the log recorded."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq != count or head.last_hash != last_hash:
        return ChainReport(count, count + 1, f"the chain ends at event #{count} but the log recorded "
                           f"#{head.seq}: the latest events were removed")
    return ChainReport(count, None, f"the audit chain is whole: {count} events")


def events_of(*, session: Session, subject: str) -> list[AuditEvent]:
    """Every event about exactly this subject ("model:fraud-detector/v2"), in chain order."""
    return list(session.execute(select(AuditEvent).where(AuditEvent.subject == subject)
                                .order_by(AuditEvent.seq)).scalars())


def events_for(*, session: Session, subject_prefix: str, limit: int = 200) -> list[AuditEvent]:
    return list(session.execute(
        select(AuditEvent).where(AuditEvent.subject.startswith(subject_prefix))
        .order_by(AuditEvent.seq.desc()).limit(limit)).scalars())


# Kept: what it buys at 50 concurrent commands during a check cycle (p99 and server CPU a command; bench_ack
# --with-cycle --cycle-nice 0 --requests 2000, 2 cores shared, alternating runs, 2026-12-05):
# /flywheel help on SQLite 60-148 ms, 0.49 ms with it; 175-255 ms, 0.97-1.27 ms without (a commit per command).
# On PostgreSQL 70-220 ms, 0.45 ms with it; 1,141-1,261 ms, 1.9-2.3 ms without.
class AuditQueue:
    """Events that need no unit of work of their own and change nothing (a command was typed), appended
    in batches.

    One thread writes whatever has queued up in a single transaction: under a burst of commands that is
    one commit for many events instead of one each. Events still queued when the process is killed are
    lost; `drain()` on shutdown writes the rest.
    """

    def __init__(self, db, *, batch: int = 500):
        self.db, self.batch = db, batch
        self._queue: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self._unwritten = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, *, actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
            at: datetime | None = None) -> None:
        with self._changed:
            self._unwritten += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
                self._thread.start()
        self._queue.put(Pending(actor, action, subject, details or {}, at or utcnow(), changes_status=False))

    def _run(self) -> None:
        while True:
            events = [self._queue.get()]
            while len(events) < self.batch:
                try:
                    events.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(events)
            with self._changed:
                self._unwritten -= len(events)
                self._changed.notify_all()

    def _write(self, events: list[Pending]) -> None:
        try:
            with self.db.session(changes_status=False) as s:
                for e in events:
                    record(session=s, actor=e.actor, action=e.action, subject=e.subject, details=e.details,
                           at=e.at, changes_status=False)
        except Exception:  # the callers have long had their answers; the operator needs to know
            log.exception("could not write %d audit event(s): %s", len(events),
                          ", ".join(f"{e.action} by {e.actor}" for e in events[:10]))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unwritten == 0, timeout)
