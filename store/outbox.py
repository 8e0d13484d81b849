"""The Slack outbox: rows written in the caller's unit of work, sent later by the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.clock import utcnow
from store.models import Alert, OutboxMessage, OutboxState

REF_PREFIX = "outbox:"


def ref_of(row_id: int) -> str:
    return f"{REF_PREFIX}{row_id}"


def row_id_of(ref: str) -> int | None:
    return int(ref.removeprefix(REF_PREFIX)) if ref.startswith(REF_PREFIX) else None


def enqueue(*, session: Session, kind: str, channel: str | None, payload: dict[str, Any],
            thread: str | None = None, now: datetime | None = None) -> OutboxMessage:
    """Queue a post, or a reply/update to `thread` (an outbox ref or a CHANNEL:TS already sent)."""
    parent = row_id_of(thread) if thread else None
    row = OutboxMessage(kind=kind, channel=channel, payload=payload, parent_id=parent,
                        target_ref=None if parent else thread, state=OutboxState.pending,
                        next_attempt_at=now or utcnow(), created_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


def due(*, session: Session, now: datetime, limit: int = 200) -> list[OutboxMessage]:
    return list(session.execute(
        select(OutboxMessage).where(OutboxMessage.state == OutboxState.pending,
                                    OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id).limit(limit)).scalars())


def pending_before(*, session: Session, row: OutboxMessage) -> bool:
    """Is an earlier row of the same thread still unsent? Then this one waits, to keep the order."""
    thread = OutboxMessage.parent_id == row.parent_id if row.parent_id else \
        OutboxMessage.target_ref == row.target_ref
    if row.kind == "post":
        return False
    return session.execute(select(OutboxMessage.id).where(
        thread, OutboxMessage.id < row.id, OutboxMessage.state == OutboxState.pending).limit(1)).first() is not None


def target(*, session: Session, row: OutboxMessage) -> str | None:
    """Where a reply or update goes: its parent's CHANNEL:TS once sent, else None (wait)."""
    if row.parent_id is None:
        return row.target_ref
    parent = session.get(OutboxMessage, row.parent_id)
    return parent.sent_ref if parent is not None and parent.state == OutboxState.sent else None


def mark_sent(*, session: Session, row_id: int, sent_ref: str | None, now: datetime) -> None:
    row = session.get(OutboxMessage, row_id)
    row.state, row.sent_ref, row.sent_at, row.attempts = OutboxState.sent, sent_ref, now, row.attempts + 1
    if row.kind == "post" and sent_ref:
        # Alerts remember the outbox ref until their message exists; then its real timestamp.
        _, _, ts = sent_ref.partition(":")
        session.execute(update(Alert).where(Alert.message_ts == ref_of(row_id)).values(message_ts=ts))
    session.flush()


def retry_later(*, session: Session, row_id: int, error: str, at: datetime) -> None:
    row = session.get(OutboxMessage, row_id)
    row.attempts, row.last_error, row.next_attempt_at = row.attempts + 1, error, at
    session.flush()


def mark_failed(*, session: Session, row_id: int, error: str) -> None:
    row = session.get(OutboxMessage, row_id)
    row.state, row.last_error, row.attempts = OutboxState.failed, error, row.attempts + 1
    session.flush()
