"""Projects, people and their grants, blueprints, models, versions, evaluations and sign-offs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.clock import utcnow
from store.models.base import Base, _enum
from store.models.enums import ChannelDelivery, Decision, RiskTier, Role, VersionStatus


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
    # The spec's `project: deploy_policy:` (block, warn, allow); None: its blueprint's policy stands.
    deploy_policy: Mapped[str | None] = mapped_column(String(10))
    # The Slack workspace the project belongs to (the spec's `workspace`); None on a single-token install.
    team_id: Mapped[str | None] = mapped_column(String(32), index=True)

    channels: Mapped[list[PersonaChannel]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="PersonaChannel.persona")
    blueprint: Mapped[Blueprint | None] = relationship(
        back_populates="project", cascade="all, delete-orphan", uselist=False)
    models: Mapped[list[Model]] = relationship(back_populates="project", order_by="Model.key")

    def channel_for(self, persona: Role | str) -> str | None:
        return next((c.channel for c in self.channels if c.persona == str(persona)), None)


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


class LibraryBlueprint(Base):
    """A blueprint of the library (`flywheel apply blueprints.yml`), as its file said it: projects that name
    it, or whose risk tier it lists, get a copy of its steps as their own Blueprint."""

    __tablename__ = "blueprint_library"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tiers: Mapped[list[str]] = mapped_column(default=list)
    policy: Mapped[str] = mapped_column(String(10), default="block")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the validated blueprint, as JSON
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Blueprint(Base):
    """A project's own blueprint: its sign-off history is per project, whichever library blueprint it copies."""

    __tablename__ = "blueprints"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Where it came from: the library blueprint's name (None: inline in the project's spec), and whether the
    # project's risk tier chose it (the spec named none).
    library: Mapped[str | None] = mapped_column(String(200))
    by_tier: Mapped[bool] = mapped_column(default=False, server_default=false())
    policy: Mapped[str] = mapped_column(String(10), default="block", server_default="block")

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
    role: Mapped[str] = mapped_column(String(20))  # AUTOMATED for a step Flywheel signs by its check
    quorum: Mapped[int] = mapped_column(Integer, default=1)
    people: Mapped[list[str] | None] = mapped_column(JSON)  # M of these N may sign it; None: anyone with the role
    parallel: Mapped[bool] = mapped_column(default=False, server_default=false())  # due with the step before
    check: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the automated step's check (jobs.spec.CheckSpec)

    blueprint: Mapped[Blueprint] = relationship(back_populates="steps")

    @property
    def automated(self) -> bool:
        return self.check is not None


AUTOMATED = "automated"  # the role of an automated step, and who signs it is FLYWHEEL
FLYWHEEL = "flywheel"


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
    # Where its sign-off request was posted (CHANNEL:TS, or an outbox ref until sent): settled in place.
    signoff_ref: Mapped[str | None] = mapped_column(String(64))

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
    # What its decisions would have cost on the window (jobs.stakes); None for evaluations made before.
    outcomes: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Which features it relies on there (jobs.explain); None for evaluations made before, or unmeasurable.
    importances: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    version: Mapped[ModelVersion] = relationship()


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
