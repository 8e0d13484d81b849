"""The project page and the portfolio: every model of the viewer's projects and what waits for review."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, defer, selectinload

from bot.services.pages.constants import MAX_ALERTS, VERDICT_ORDER
from bot.services.pages.reads import (
    alert_row,
    blueprint_steps,
    kpi_series,
    person_names,
)
from bot.services.pages.shapes import AlertRow, Decided, Series, StepStatus
from bot.services.pages.viewer import Viewer
from store import governance, registry
from store.clock import utcnow
from store.errors import Forbidden
from store.models import (
    Alert,
    AlertState,
    AuditEvent,
    Blueprint,
    BlueprintStep,
    CheckKind,
    CheckRun,
    Model,
    ModelVersion,
    Project,
    SignOff,
    VersionStatus,
)


@dataclass(frozen=True)
class ProjectModel:
    key: str
    description: str
    owner: str
    production: str | None
    open_alerts: int
    verdicts: tuple[tuple[str, str, str], ...]  # (kind, verdict, message) of each latest run


@dataclass(frozen=True)
class Review:
    model_key: str
    number: int
    status: str
    requested_by: str
    created_at: datetime
    steps: tuple[StepStatus, ...]

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def waiting(self) -> tuple[StepStatus, ...]:
        return tuple(s for s in self.steps if not s.done)


@dataclass(frozen=True)
class ProjectPage:
    key: str
    name: str
    description: str
    initiative: str
    owner: str
    sponsors: tuple[str, ...]
    risk_tier: str
    tags: tuple[str, ...]
    blueprint: str
    steps: tuple[tuple[str, str, int], ...]  # (name, role, quorum) in order
    models: tuple[ProjectModel, ...]
    reviews: tuple[Review, ...]  # versions in review or approved, waiting for deploy
    decisions: tuple[Decided, ...]  # latest sign-offs and rejections, with reasons
    names: dict[str, str] = field(default_factory=dict)
    places: tuple[Review, ...] = ()  # every version in production or review: where it stands on the blueprint
    alerts: tuple[tuple[str, AlertRow], ...] = ()  # (model key, open alert), most recently updated first
    kpis: tuple[tuple[str, Series], ...] = ()  # (model key, KPI trend over its latest checks)


KPI_TREND_RUNS = 12  # latest KPI checks of each model charted on the project page


def open_alerts(session: Session, model_ids: Sequence[int]) -> dict[int, int]:
    if not model_ids:
        return {}
    return dict(session.execute(select(Alert.model_id, func.count()).where(
        Alert.model_id.in_(model_ids), Alert.state != AlertState.resolved).group_by(Alert.model_id)).all())


def _latest_of_models(session: Session, model_ids: Sequence[int]) -> dict[int, list[CheckRun]]:
    """The latest run of each check of each model; the maxima come from the (model, kind, as_of) index alone."""
    if not model_ids:
        return {}
    newest = select(CheckRun.model_id, CheckRun.kind, func.max(CheckRun.as_of).label("as_of")) \
        .where(CheckRun.model_id.in_(model_ids)).group_by(CheckRun.model_id, CheckRun.kind).subquery()
    runs: dict[int, list[CheckRun]] = defaultdict(list)
    kinds = list(CheckKind)
    for run in session.execute(select(CheckRun).options(defer(CheckRun.figures)).join(newest, and_(
            CheckRun.model_id == newest.c.model_id, CheckRun.kind == newest.c.kind, CheckRun.as_of == newest.c.as_of))
            .order_by(CheckRun.id.desc())).scalars():
        if not any(r.kind == run.kind for r in runs[run.model_id]):  # two runs at the same instant: the last
            runs[run.model_id].append(run)
    return {m: sorted(rs, key=lambda r: kinds.index(r.kind)) for m, rs in runs.items()}


def _unreleased(session: Session, model_ids: Sequence[int]) -> list[ModelVersion]:
    if not model_ids:
        return []
    return list(session.execute(select(ModelVersion).where(
        ModelVersion.model_id.in_(model_ids),
        ModelVersion.status.in_([VersionStatus.in_review, VersionStatus.approved]))
        .options(selectinload(ModelVersion.model).selectinload(Model.project).selectinload(Project.blueprint)
                 .selectinload(Blueprint.steps)).order_by(ModelVersion.model_id, ModelVersion.number)).scalars())


def project_page(*, session: Session, key: str, viewer: Viewer) -> ProjectPage:
    project = registry.get_project(session=session, key=key)
    viewer = viewer.within(project)
    models = list(project.models)
    ids = [m.id for m in models]
    production = {v.model_id: v.label for v in session.execute(select(ModelVersion).where(
        ModelVersion.model_id.in_(ids), ModelVersion.status == VersionStatus.production)).scalars()} if ids else {}
    alerts, runs = open_alerts(session, ids), _latest_of_models(session, ids)
    pending = _unreleased(session, ids)
    decisions = list(session.execute(
        select(SignOff).join(ModelVersion, SignOff.version_id == ModelVersion.id).where(ModelVersion.model_id.in_(ids))
        .options(selectinload(SignOff.step), selectinload(SignOff.version).selectinload(ModelVersion.model))
        .order_by(SignOff.created_at.desc(), SignOff.id.desc()).limit(20)).scalars()) if ids else []
    live = list(session.execute(select(ModelVersion).where(
        ModelVersion.model_id.in_(ids), ModelVersion.status == VersionStatus.production)
        .options(selectinload(ModelVersion.model))).scalars()) if ids else []
    names = person_names(session, [project.owner, *project.sponsors, *(m.owner for m in models),
                             *(v.submitted_by or v.created_by for v in [*pending, *live]),
                             *(d.person for d in decisions), *(s.person for v in live for s in v.sign_offs)])
    steps = blueprint_steps(session, [*live, *pending], names)
    open_rows = list(session.execute(select(Alert).where(Alert.model_id.in_(ids), Alert.state != AlertState.resolved)
                                     .options(selectinload(Alert.check_run), selectinload(Alert.model))
                                     .order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(MAX_ALERTS))
                     .scalars()) if ids else []
    kpi_runs: dict[int, list[CheckRun]] = defaultdict(list)
    if ids:  # the latest KPI_TREND_RUNS of each model, in one query
        ranked = select(CheckRun.id, func.row_number().over(
            partition_by=CheckRun.model_id, order_by=(CheckRun.as_of.desc(), CheckRun.id.desc())).label("rank")) \
            .where(CheckRun.model_id.in_(ids), CheckRun.kind == CheckKind.kpi).subquery()
        for run in session.execute(select(CheckRun).join(ranked, CheckRun.id == ranked.c.id)
                                   .where(ranked.c.rank <= KPI_TREND_RUNS).order_by(CheckRun.as_of, CheckRun.id)).scalars():
            kpi_runs[run.model_id].append(run)
    trends = [(m.key, k) for m in models for k in kpi_series(kpi_runs[m.id], m.spec or {})]
    blueprint = project.blueprint
    return ProjectPage(
        key=project.key, name=project.name, description=project.description, initiative=project.initiative,
        owner=project.owner, sponsors=tuple(project.sponsors), risk_tier=project.risk_tier.value,
        tags=tuple(project.tags), blueprint=blueprint.name if blueprint else "",
        steps=tuple((s.name, s.role, s.quorum) for s in blueprint.steps) if blueprint else (),
        models=tuple(ProjectModel(m.key, m.description, m.owner, production.get(m.id), alerts.get(m.id, 0),
                                  tuple((r.kind.value, r.verdict.value, r.message) for r in runs.get(m.id, [])))
                     for m in models),
        reviews=tuple(Review(v.model.key, v.number, v.status.value, v.submitted_by or v.created_by, v.created_at,
                             steps[v.id]) for v in pending),
        decisions=tuple(Decided(d.step.name, d.person, names.get(d.person, d.person), d.decision.value, d.reason,
                                d.created_at, f"{d.version.model.key} {d.version.label}") for d in decisions),
        names=names,
        places=tuple(Review(v.model.key, v.number, v.status.value, v.submitted_by or v.created_by, v.created_at,
                            steps[v.id]) for v in sorted([*live, *pending], key=lambda v: (v.model.key, v.number))),
        alerts=tuple((a.model.key, alert_row(a, viewer)) for a in open_rows), kpis=tuple(trends))


OVERDUE = timedelta(days=3)  # a step due longer than this is overdue


@dataclass(frozen=True)
class PortfolioLine:
    key: str
    name: str
    initiative: str
    risk_tier: str
    owner: str
    production: tuple[str, ...]  # "fraud-detector v2"
    open_alerts: int
    worst: str | None  # worst latest verdict over its models; None: never checked
    waiting: tuple[str, ...]  # "fraud-detector v3: risk review 0 of 1"
    # The versions whose due step has waited longer than OVERDUE, oldest first: "fraud-detector v3: risk review".
    overdue: tuple[str, ...] = ()
    waiting_since: datetime | None = None  # when the longest-waiting due step became due
    policy: str = "block"  # the deploy policy in force (governance.policy_of)

    @property
    def status(self) -> str:
        if self.overdue:
            return "sign-off overdue"
        if self.waiting:
            return "waiting for sign-off"
        if self.open_alerts:
            return "open alerts"
        return {None: "not checked yet", "ok": "healthy"}.get(self.worst, f"latest checks: {self.worst}")


@dataclass(frozen=True)
class Portfolio:
    lines: tuple[PortfolioLine, ...]
    names: dict[str, str]


def portfolio(*, session: Session, viewer: Viewer, now: datetime | None = None) -> Portfolio:
    """Every project whose blueprint has a step for the viewer's roles (all of them for an admin), the ones
    with a sign-off overdue first."""
    if not viewer.governs:
        raise Forbidden(f"The portfolio lists the projects a risk manager governs; you are "
                        f"{', '.join(r.replace('_', ' ') for r in viewer.roles) or 'without a role'}.")
    step_roles = session.execute(select(Blueprint.project_id, BlueprintStep.role)
                                 .join(BlueprintStep, BlueprintStep.blueprint_id == Blueprint.id)).all()
    governed = {project_id for project_id, role in step_roles if viewer.holds(role, project_id)}
    query = select(Project).where(Project.id.in_(governed)).order_by(Project.key) \
        .options(selectinload(Project.models), selectinload(Project.blueprint))
    projects = list(session.execute(query).scalars())
    ids = [m.id for p in projects for m in p.models]
    production: dict[int, list[str]] = defaultdict(list)
    if ids:
        for v in session.execute(select(ModelVersion).where(ModelVersion.model_id.in_(ids),
                                                            ModelVersion.status == VersionStatus.production)
                                 .options(selectinload(ModelVersion.model))).scalars():
            production[v.model.project_id].append(f"{v.model.key} {v.label}")
    alerts, runs = open_alerts(session, ids), _latest_of_models(session, ids)
    pending = _unreleased(session, ids)
    steps = blueprint_steps(session, pending, {})
    since = _due_since(session, pending, steps)
    now = now or utcnow()
    waiting: dict[int, list[str]] = defaultdict(list)
    late: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for v in pending:
        missing = [f"{s.name} {len(s.approvals)} of {s.quorum}" for s in steps[v.id] if not s.done]
        waiting[v.model.project_id].append(f"{v.model.key} {v.label}: " + (", ".join(missing) or "ready to deploy"))
        due = next((s for s in steps[v.id] if not s.done), None)
        if due is not None and v.id in since and now - since[v.id] > OVERDUE:
            late[v.model.project_id].append((since[v.id], f"{v.model.key} {v.label}: {due.name}"))
    lines = []
    for p in projects:
        verdicts = [r.verdict.value for m in p.models for r in runs.get(m.id, [])]
        worst = next((v for v in VERDICT_ORDER if v in verdicts), None)
        overdue = sorted(late[p.id])
        oldest = min((since[v.id] for v in pending if v.model.project_id == p.id and v.id in since), default=None)
        lines.append(PortfolioLine(p.key, p.name, p.initiative, p.risk_tier.value, p.owner, tuple(production[p.id]),
                                   sum(alerts.get(m.id, 0) for m in p.models), worst, tuple(waiting[p.id]),
                                   tuple(text for _, text in overdue), oldest, governance.policy_of(p)))
    # Overdue sign-offs first (the longest waiting first), then sign-offs waiting, then open alerts.
    lines.sort(key=lambda line: (not line.overdue, not line.waiting, line.waiting_since or now,
                                 -line.open_alerts, line.key))
    return Portfolio(tuple(lines), person_names(session, [p.owner for p in projects]))


def _due_since(session: Session, pending: Sequence[ModelVersion], steps: dict) -> dict[int, datetime]:
    """When each pending version's due step became due: its latest approval, or its submission."""
    if not pending:
        return {}
    subjects = {f"model:{v.model.key}/{v.label}": v.id for v in pending}
    submitted = dict(session.execute(
        select(AuditEvent.subject, func.max(AuditEvent.at))
        .where(AuditEvent.action == "version.submitted", AuditEvent.subject.in_(list(subjects)))
        .group_by(AuditEvent.subject)).all())
    found = {}
    for subject, version_id in subjects.items():
        approvals = [a.at for s in steps[version_id] for a in s.approvals]
        moments = [m for m in (*approvals, submitted.get(subject)) if m is not None]
        if moments:
            found[version_id] = max(moments)
    return found
