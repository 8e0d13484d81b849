"""The registry's tables, SQLAlchemy 2.0 typed ORM. The schema itself is owned by the Alembic
migrations in store/migrations; a test keeps the two in step."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.clock import utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: DateTime()}


class Role(enum.StrEnum):
    business = "business"
    ml_engineer = "ml_engineer"
    risk_manager = "risk_manager"
    it_ops = "it_ops"
    admin = "admin"


PERSONAS = (Role.business, Role.ml_engineer, Role.risk_manager, Role.it_ops)


class RiskTier(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class VersionStatus(enum.StrEnum):
    candidate = "candidate"
    in_review = "in_review"
    approved = "approved"
    production = "production"
    archived = "archived"
    rejected = "rejected"


class CheckKind(enum.StrEnum):
    drift = "drift"
    performance = "performance"
    kpi = "kpi"
    data_quality = "data_quality"


class Verdict(enum.StrEnum):
    ok = "ok"
    warn = "warn"
    breach = "breach"
    error = "error"


class AlertState(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"


class Decision(enum.StrEnum):
    approve = "approve"
    reject = "reject"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable and readable in SQL.
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, create_constraint=True, name=cls.__name__.lower())


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    slack_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    # Loaded with the person: an Actor resolved once per request keeps them after its session closed.
    grants: Mapped[list[Grant]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                               lazy="selectin", order_by="Grant.id")

    @property
    def roles(self) -> list[str]:
        """Every role the person holds on some project, for display only: authority is per project."""
        return sorted({g.role for g in self.grants})

    def roles_on(self, project_id: int) -> list[str]:
        return sorted({g.role for g in self.grants if g.project_id == project_id})

    def holds(self, role: Role | str, project_id: int) -> bool:
        """Whether the person has `role` on that project (an admin of the project holds every role there)."""
        held = self.roles_on(project_id)
        return str(role) in held or Role.admin.value in held

    def holds_anywhere(self, role: Role | str) -> bool:
        return any(self.holds(role, g.project_id) for g in self.grants)

    def project_ids(self, role: Role | str | None = None) -> set[int]:
        """The projects where the person holds `role` (any role when None)."""
        return {g.project_id for g in self.grants if role is None or self.holds(role, g.project_id)}


class Grant(Base):
    """One role of one person on one project: `flywheel apply` of a project's spec writes that project's."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("person_id", "project_id", "role"),
                      Index("ix_grants_project", "project_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))

    person: Mapped[Person] = relationship(back_populates="grants")
    project: Mapped[Project] = relationship()


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    initiative: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(32))
    sponsors: Mapped[list[str]] = mapped_column(default=list)
    risk_tier: Mapped[RiskTier] = mapped_column(_enum(RiskTier))
    tags: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    channels: Mapped[list[PersonaChannel]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="PersonaChannel.persona")
    blueprint: Mapped[Blueprint | None] = relationship(
        back_populates="project", cascade="all, delete-orphan", uselist=False)
    models: Mapped[list[Model]] = relationship(back_populates="project", order_by="Model.key")

    def channel_for(self, persona: Role | str) -> str | None:
        return next((c.channel for c in self.channels if c.persona == str(persona)), None)


class ChannelDelivery(enum.StrEnum):
    immediate = "immediate"  # each alert as it happens
    digest = "digest"  # one message a day (business channels)


class PersonaChannel(Base):
    __tablename__ = "persona_channels"
    __table_args__ = (UniqueConstraint("project_id", "persona"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    persona: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(64))
    delivery: Mapped[ChannelDelivery] = mapped_column(_enum(ChannelDelivery), default=ChannelDelivery.immediate,
                                                      server_default=ChannelDelivery.immediate.value)
    # The channel the project's spec named when last applied (None: set only in Slack). `flywheel apply`
    # changes `channel` only when the spec's value changed since, so a `/flywheel subscribe` survives it.
    spec_channel: Mapped[str | None] = mapped_column(String(64))

    project: Mapped[Project] = relationship(back_populates="channels")


class Blueprint(Base):
    __tablename__ = "blueprints"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    project: Mapped[Project] = relationship(back_populates="blueprint")
    steps: Mapped[list[BlueprintStep]] = relationship(
        back_populates="blueprint", cascade="all, delete-orphan", order_by="BlueprintStep.position")


class BlueprintStep(Base):
    __tablename__ = "blueprint_steps"
    __table_args__ = (UniqueConstraint("blueprint_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blueprint_id: Mapped[int] = mapped_column(ForeignKey("blueprints.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    quorum: Mapped[int] = mapped_column(Integer, default=1)

    blueprint: Mapped[Blueprint] = relationship(back_populates="steps")


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(50))
    tags: Mapped[list[str]] = mapped_column(default=list)
    # The model's monitoring section of its project spec, as validated JSON.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Folder the spec was applied from: relative data paths in the spec resolve against it.
    spec_dir: Mapped[str] = mapped_column(String(1000), default=".")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(back_populates="models")
    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.number", foreign_keys="ModelVersion.model_id")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        # Exactly one production version per model, whatever the code above it does.
        Index("uq_model_versions_one_production", "model_id", unique=True,
              sqlite_where=text("status = 'production'"), postgresql_where=text("status = 'production'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[VersionStatus] = mapped_column(_enum(VersionStatus), default=VersionStatus.candidate)
    artifact_uri: Mapped[str] = mapped_column(String(1000), default="")
    # SHA-256 of the artifact's bytes when it was registered; loading refuses any other bytes, and NULL.
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    train_start: Mapped[datetime | None]
    train_end: Mapped[datetime | None]
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    submitted_by: Mapped[str | None] = mapped_column(String(32))
    deployed_at: Mapped[datetime | None]
    deployed_by: Mapped[str | None] = mapped_column(String(32))
    # Whoever asked to deploy it before it was approved; separation of duties bars them from signing.
    deploy_requested_by: Mapped[str | None] = mapped_column(String(32))

    model: Mapped[Model] = relationship(back_populates="versions", foreign_keys=[model_id])
    parent: Mapped[ModelVersion | None] = relationship(remote_side=[id])
    sign_offs: Mapped[list[SignOff]] = relationship(back_populates="version", order_by="SignOff.id")

    @property
    def label(self) -> str:
        return f"v{self.number}"


class Evaluation(Base):
    """A version's metrics on a labelled window: the model evaluation store."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    version: Mapped[ModelVersion] = relationship()


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


class SignOff(Base):
    __tablename__ = "sign_offs"
    __table_args__ = (UniqueConstraint("version_id", "step_id", "person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    step_id: Mapped[int] = mapped_column(ForeignKey("blueprint_steps.id"))
    person: Mapped[str] = mapped_column(String(32))
    decision: Mapped[Decision] = mapped_column(_enum(Decision))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    version: Mapped[ModelVersion] = relationship(back_populates="sign_offs")
    step: Mapped[BlueprintStep] = relationship()


class WorkState(enum.StrEnum):
    queued = "queued"
    running = "running"
    dispatched = "dispatched"  # handed to an external trainer; live until it calls back /api/versions
    done = "done"
    failed = "failed"


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

    model: Mapped[Model] = relationship()


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


class OutboxState(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    digested = "digested"  # an alert post a storm digest replaced: never sent on its own


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


class DigestKind(enum.StrEnum):
    storm = "storm"  # many models breaching at once in one channel
    daily = "daily"  # a business channel's once-a-day summary


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


from store import catalog_models  # noqa: E402,F401 - the catalog's tables, so Base.metadata holds them
