"""What keeps the service running: work items, the Slack outbox, worker heartbeats, App Home viewers, claimed Slack requests and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.clock import utcnow
from store.models.base import Base, _enum
from store.models.enums import OutboxState, WorkState
from store.models.registry import Model


class WorkItem(Base):
    """Work a person asked for (retrain, evaluate, deploy, rollback), recorded before the ack.

    At most one live item per model and kind: a double click or a Slack retry finds the first one.
    """

    __tablename__ = "work_items"
    __table_args__ = (
        Index("uq_work_items_one_live", "model_id", "kind", unique=True,
              sqlite_where=text("state IN ('queued', 'running', 'dispatched')"),
              postgresql_where=text("state IN ('queued', 'running', 'dispatched')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    state: Mapped[WorkState] = mapped_column(_enum(WorkState), default=WorkState.queued)
    requested_by: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The Slack request that asked for it (bot/logs.py), bound again when the worker runs it.
    request_id: Mapped[str | None] = mapped_column(String(64))

    model: Mapped[Model] = relationship()


class OutboxMessage(Base):
    """A Slack message, reply or update written before it is sent; the worker sends each row once.

    `parent_id` is the post a reply or update belongs to, so thread order survives an outage.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # post | reply | update | home (an App Home to publish)
    channel: Mapped[str | None] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    target_ref: Mapped[str | None] = mapped_column(String(64))  # CHANNEL:TS when the parent was sent elsewhere
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState), default=OutboxState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The alert a post announces. Such posts are held briefly (`held`) so a storm becomes one digest.
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    held: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When a post or reply first went to Slack without its answer being recorded yet (wall-clock UTC).
    # Set, on a pending row, it means "perhaps in Slack already": the sender looks the row's id up in the
    # channel's message metadata from this moment on before posting again (bot/outbox.py).
    send_attempt_at: Mapped[datetime | None]
    # The request whose handling or work queued the message (bot/logs.py), bound again as it is sent.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # The Slack workspace it goes to, from its project, parent, channel or person when queued (store/outbox.py).
    team_id: Mapped[str | None] = mapped_column(String(32))


class WorkerHeartbeat(Base):
    """The leading worker's sign of life, written every few seconds: `/readyz` says the app is not ready
    when the newest is older than two minutes."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)  # host:pid
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]


class HomeViewer(Base):
    """Someone who has opened Flywheel's App Home: whose home is published again when what it shows
    changes, by whichever process made the change (the worker's checks included)."""

    __tablename__ = "home_viewers"

    slack_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    opened_at: Mapped[datetime]


class SlackRequest(Base):
    """A Slack request that changed, or tried to change, something governed: its identity (the click's
    team, user, action and action_ts; a command's trigger_id) is claimed before it acts, so Slack's
    retry or the same payload sent twice finds the claim and does nothing, in every process."""

    __tablename__ = "slack_requests"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    """Append-only; each row carries the hash of the one before it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row locked by every append, so concurrent writers cannot fork the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # The seq of the latest event that changed something (not a command merely typed): what cached
    # views such as `/flywheel status` check to know they are still current.
    changed_seq: Mapped[int] = mapped_column(Integer, default=0)
