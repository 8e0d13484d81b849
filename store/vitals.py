"""Figures an operator watches, read at scrape time or by a readiness probe: the outbox's backlog, work items
by kind and state, the audit chain's length, the schema's migration. Each is one small query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import AuditEvent, OutboxMessage, OutboxState, WorkItem


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    oldest_created_at: datetime | None  # of the pending rows; None when none waits


def outbox_backlog(*, session: Session) -> OutboxBacklog:
    count, oldest = session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.state == OutboxState.pending)).one()
    return OutboxBacklog(int(count or 0), oldest)


def work_counts(*, session: Session) -> dict[tuple[str, str], int]:
    """(kind, state) -> how many work items are in it."""
    rows = session.execute(select(WorkItem.kind, WorkItem.state, func.count(WorkItem.id))
                           .group_by(WorkItem.kind, WorkItem.state))
    return {(kind, str(getattr(state, "value", state))): int(n) for kind, state, n in rows}


def audit_length(*, session: Session) -> int:
    """Events in the audit chain: its last sequence number (the chain starts at 1 and has no gaps)."""
    return int(session.execute(select(func.max(AuditEvent.seq))).scalar() or 0)


def schema_revision(*, session: Session) -> str | None:
    """The Alembic revision the database is at (None: no Flywheel schema), on the session's connection."""
    return MigrationContext.configure(session.connection()).get_current_revision()
