"""Check runs, the alerts they raise, feedback on alerts, digests and scheduled check firings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.clock import utcnow
from store.models.base import Base, _enum
from store.models.enums import AlertState, CheckKind, DigestKind, Verdict
from store.models.registry import Model, ModelVersion


class CheckRun(Base):
    __tablename__ = "check_runs"
    __table_args__ = (Index("ix_check_runs_model_kind_as_of", "model_id", "kind", "as_of"),
                      Index("ix_check_runs_model_latest", "model_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[CheckKind] = mapped_column(_enum(CheckKind))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    as_of: Mapped[datetime]
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verdict: Mapped[Verdict] = mapped_column(_enum(Verdict))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship()
    version: Mapped[ModelVersion | None] = relationship()


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One live alert per fingerprint: a repeated breach updates it instead of posting anew.
        Index("uq_alerts_one_live_per_fingerprint", "fingerprint", unique=True,
              sqlite_where=text("state != 'resolved'"), postgresql_where=text("state != 'resolved'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[CheckKind] = mapped_column(_enum(CheckKind))
    persona: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(64))
    subjects: Mapped[list[str]] = mapped_column(default=list)
    state: Mapped[AlertState] = mapped_column(_enum(AlertState), default=AlertState.open)
    snoozed_until: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))  # the latest acknowledgement's
    acknowledged_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(64))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    # Set when a storm folded this alert into a digest message: its news goes to the digest's thread.
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id"), index=True)
    # The alert's full message posted on demand in the digest's thread (outbox ref until sent, then CHANNEL:TS).
    digest_thread_ref: Mapped[str | None] = mapped_column(String(64))

    check_run: Mapped[CheckRun] = relationship()
    model: Mapped[Model] = relationship()
    digest: Mapped[Digest | None] = relationship()


class AlertFeedback(Base):
    """A person's verdict on an alert: useful or noise. Their latest vote counts."""

    __tablename__ = "alert_feedback"
    __table_args__ = (UniqueConstraint("alert_id", "person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    person: Mapped[str] = mapped_column(String(32))
    noise: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    alert: Mapped[Alert] = relationship()


class Digest(Base):
    """One digest message in a channel. A daily digest covers [period_start, period_end) once."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("kind", "channel", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DigestKind] = mapped_column(_enum(DigestKind))
    channel: Mapped[str] = mapped_column(String(64))
    persona: Mapped[str] = mapped_column(String(20))
    message_ref: Mapped[str | None] = mapped_column(String(64))  # outbox ref until sent, then CHANNEL:TS
    alert_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # storm: its lines, in order
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckTick(Base):
    """One scheduled firing of one model's check, claimed before it runs: two workers firing the same
    tick run it once, and a tick a dead worker left running is run again by the next leader."""

    __tablename__ = "check_ticks"
    __table_args__ = (UniqueConstraint("model_key", "kind", "tick"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    tick: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10))  # running, done, failed
    worker: Mapped[str] = mapped_column(String(100))  # host:pid of the process that claimed it
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
