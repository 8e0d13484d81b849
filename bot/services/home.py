"""What a person's App Home shows, per their roles: plain data for bot/blocks/home.py.

Every list is read with a fixed number of queries whatever its length (no query per row), and capped:
`HomeData.more` says how many rows each capped list left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot.services.home_urgency import (
    OpenAlert,
    alert_urgency,
    open_alert,
    open_alerts_for,
    signoff_urgency,
)
from jobs.incidents import StepStatus
from store import catalog, governance, registry
from store.clock import utcnow
from store.governance import StepProgress
from store.models import (
    Alert,
    AlertState,
    Blueprint,
    BlueprintStep,
    CheckKind,
    CheckRun,
    Decision,
    Grant,
    HomeViewer,
    Model,
    ModelVersion,
    Person,
    Project,
    Role,
    SignOff,
    VersionStatus,
)

MAX_PROJECTS = 8
MAX_MODELS = 8
MAX_VERSIONS = 4  # unreleased versions listed per model
MAX_SIGNOFFS = 6
MAX_GOVERNED = 8
MAX_DEPLOYMENTS = 10
MAX_ASSETS = 8  # the viewer's own catalog assets
UNRELEASED = (VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved)


@dataclass(frozen=True)
class Kpi:
    name: str
    label: str
    unit: str | None
    value: float | None
    baseline: float | None
    baseline_windows: int
    threshold: float | None
    breached: bool
    rule: str
    baseline_end: str | None = None
    baseline_earliest: bool = False
    aggregate: str | None = None  # "sum", "count", "mean", "rate"; None in runs stored before it was kept


@dataclass(frozen=True)
class ModelKpis:
    model_key: str
    owner: str
    open_alerts: int
    verdict: str | None  # of the latest KPI check; None when none has run
    message: str
    checked_at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    kpis: tuple[Kpi, ...]


@dataclass(frozen=True)
class ProjectKpis:
    key: str
    name: str
    models: tuple[ModelKpis, ...]

    @property
    def open_alerts(self) -> int:
        return sum(m.open_alerts for m in self.models)


@dataclass(frozen=True)
class CheckVerdict:
    kind: str
    verdict: str
    message: str
    checked_at: datetime


@dataclass(frozen=True)
class VersionLine:
    number: int
    status: str
    created_by: str
    train_start: datetime | None
    train_end: datetime | None
    steps: tuple[StepStatus, ...]  # blueprint progress, for versions in review

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class OwnedModel:
    key: str
    project_name: str
    production: str | None  # "v1"
    open_alerts: int
    verdicts: tuple[CheckVerdict, ...]  # latest run of each check kind, in CheckKind order
    versions: tuple[VersionLine, ...]  # candidate, in review or approved, newest first
    more_versions: int


@dataclass(frozen=True)
class PendingSignOff:
    model_key: str
    number: int
    project_name: str
    initiative: str
    risk_tier: str
    requested_by: str
    train_start: datetime | None
    train_end: datetime | None
    steps: tuple[StepStatus, ...]
    yours: tuple[str, ...] = ()  # the steps due now that the viewer may sign (governance.signable_by)

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def due(self) -> StepStatus:
        return next((s for s in self.steps if s.name in self.yours), None) or next(s for s in self.steps if not s.done)


@dataclass(frozen=True)
class GovernedModel:
    key: str
    number: int | None  # the latest version in review or approved, else production; None: no such version
    status: str | None
    steps: tuple[StepStatus, ...]


@dataclass(frozen=True)
class GovernedProject:
    key: str
    name: str
    initiative: str
    sponsors: tuple[str, ...]  # names
    risk_tier: str
    blueprint: str
    models: tuple[GovernedModel, ...]


@dataclass(frozen=True)
class RecentDeployment:
    model_key: str
    number: int
    deployed_by: str
    deployed_at: datetime
    in_production: bool
    previous: str | None  # the version that served before this one: where a rollback goes

    @property
    def previous_number(self) -> int | None:
        return int(self.previous.removeprefix("v")) if self.previous else None

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class More:
    """Rows each capped list left out."""

    business: int = 0
    models: int = 0
    pending_signoffs: int = 0
    governed: int = 0
    assets: int = 0
    alerts: int = 0


@dataclass(frozen=True)
class HomeData:
    slack_id: str
    person_name: str | None  # None: not in the registry
    roles: tuple[str, ...]
    as_of: datetime
    business: tuple[ProjectKpis, ...] = ()
    models: tuple[OwnedModel, ...] = ()
    pending_signoffs: tuple[PendingSignOff, ...] = ()
    governed: tuple[GovernedProject, ...] = ()
    deployments: tuple[RecentDeployment, ...] = ()
    more: More = More()
    assets: tuple[catalog.Asset, ...] = ()  # the viewer's own, from the catalog
    alerts: tuple[OpenAlert, ...] = ()  # most urgent first (bot/services/home_urgency.py)

    @property
    def known(self) -> bool:
        return self.person_name is not None

    def sees(self, role: Role | str) -> bool:
        return str(role) in self.roles or Role.admin.value in self.roles


def home_for(*, session: Session, slack_id: str, now: datetime | None = None) -> HomeData:
    """The viewer's portfolio: their models, open alerts and the sign-offs they can give now, each list
    ordered by urgency as bot/services/home_urgency.py says (unacknowledged, deploy-blocking and high-risk
    first, then the oldest)."""
    as_of = now or utcnow()
    person = registry.get_person(session=session, slack_id=slack_id)
    if person is None:
        return HomeData(slack_id=slack_id, person_name=None, roles=(), as_of=as_of)
    business, more_business = _business(session, person) if person.holds_anywhere(Role.business) else ((), 0)
    models, more_models = _owned_models(session, person) if person.holds_anywhere(Role.ml_engineer) else ((), 0)
    pending, more_pending = _pending_signoffs(session, person)
    governed, more_governed = _governed(session, person) if person.holds_anywhere(Role.risk_manager) else ((), 0)
    deployments = _deployments(session, person.project_ids(Role.it_ops)) if person.holds_anywhere(Role.it_ops) \
        else ()
    assets, more_assets = catalog.owned_by(session=session, slack_id=slack_id, limit=MAX_ASSETS)
    alerts, more_alerts = open_alerts_for(session, person)
    return HomeData(slack_id=slack_id, person_name=person.name, roles=tuple(person.roles), as_of=as_of,
                    business=business, models=models, pending_signoffs=pending, governed=governed,
                    deployments=deployments,
                    more=More(business=more_business, models=more_models, pending_signoffs=more_pending,
                              governed=more_governed, assets=more_assets, alerts=more_alerts), assets=assets,
                    alerts=tuple(open_alert(a) for a in alerts))


def audience(*, session: Session, model_key: str) -> tuple[str, ...]:
    """Slack ids whose App Home may show this model: the homes to refresh after it changes.

    A superset by design: refreshing one home too many costs a call, missing one leaves it stale.
    """
    model = registry.get_model(session=session, key=model_key)
    project = model.project
    granted = select(Grant.person_id).where(Grant.project_id == project.id)
    people = session.execute(select(Person.slack_id).where(
        or_(Person.id.in_(granted), Person.slack_id.in_({model.owner, project.owner, *project.sponsors})))
        .order_by(Person.slack_id)).scalars()
    return tuple(people)


# --- shared reads --------------------------------------------------------------------------------

_WITH_BLUEPRINT = selectinload(ModelVersion.model).selectinload(Model.project) \
    .selectinload(Project.blueprint).selectinload(Blueprint.steps)


def _open_alerts(session: Session, model_ids: Sequence[int]) -> dict[int, int]:
    if not model_ids:
        return {}
    rows = session.execute(select(Alert.model_id, func.count()).where(
        Alert.model_id.in_(model_ids), Alert.state != AlertState.resolved).group_by(Alert.model_id))
    return {model_id: count for model_id, count in rows}


def _latest_runs(session: Session, model_ids: Sequence[int], kinds: Sequence[CheckKind]) -> list[CheckRun]:
    """The latest run of each (model, kind), in one query."""
    if not model_ids:
        return []
    ranked = select(CheckRun.id, func.row_number().over(
        partition_by=(CheckRun.model_id, CheckRun.kind),
        order_by=(CheckRun.as_of.desc(), CheckRun.id.desc())).label("rank")
    ).where(CheckRun.model_id.in_(model_ids), CheckRun.kind.in_(kinds)).subquery()
    return list(session.execute(select(CheckRun).join(ranked, CheckRun.id == ranked.c.id)
                                .where(ranked.c.rank == 1)).scalars())


def _progress(session: Session, versions: Sequence[ModelVersion]) -> dict[int, list[StepProgress]]:
    """governance.progress of many versions with one query for their approvals."""
    approvals: dict[tuple[int, int], list[SignOff]] = defaultdict(list)
    if versions:
        for s in session.execute(select(SignOff).where(SignOff.version_id.in_([v.id for v in versions]),
                                                       SignOff.decision == Decision.approve)
                                 .order_by(SignOff.id)).scalars():
            approvals[(s.version_id, s.step_id)].append(s)
    return {v.id: [StepProgress(step, tuple(approvals[(v.id, step.id)]))
                   for step in governance.blueprint_steps(v)] for v in versions}


def _steps(progress: Sequence[StepProgress]) -> tuple[StepStatus, ...]:
    return tuple(StepStatus(p.step.name, p.step.role, p.step.quorum, tuple(a.person for a in p.approvals))
                 for p in progress)


def _models_of(session: Session, project_ids: Sequence[int]) -> dict[int, list[Model]]:
    by_project: dict[int, list[Model]] = defaultdict(list)
    if project_ids:
        for model in session.execute(select(Model).where(Model.project_id.in_(project_ids))
                                     .order_by(Model.key)).scalars():
            by_project[model.project_id].append(model)
    return by_project


# --- business: their projects' KPIs and open alerts ----------------------------------------------

def _business(session: Session, person: Person) -> tuple[tuple[ProjectKpis, ...], int]:
    rows = session.execute(select(Project.id, Project.owner, Project.sponsors).order_by(Project.key)).all()
    readable = person.project_ids()
    backed = [r.id for r in rows if r.id in readable
              and (person.slack_id == r.owner or person.slack_id in (r.sponsors or []))]
    # A business reader who backs no project follows every project they hold the business role on.
    ids = backed or [r.id for r in rows if person.holds(Role.business, r.id)]
    alerting = dict(session.execute(
        select(Model.project_id, func.count(Alert.id)).join(Alert, Alert.model_id == Model.id)
        .where(Model.project_id.in_(ids), Alert.state != AlertState.resolved).group_by(Model.project_id)).all())
    order = {project_id: i for i, project_id in enumerate(ids)}
    shown = sorted(ids, key=lambda i: (-alerting.get(i, 0), order[i]))[:MAX_PROJECTS]
    projects = {p.id: p for p in session.execute(select(Project).where(Project.id.in_(shown))).scalars()}
    models = _models_of(session, shown)
    model_ids = [m.id for ms in models.values() for m in ms]
    alerts = _open_alerts(session, model_ids)
    runs = {r.model_id: r for r in _latest_runs(session, model_ids, [CheckKind.kpi])}
    result = tuple(ProjectKpis(key=projects[i].key, name=projects[i].name,
                               models=tuple(_model_kpis(m, runs.get(m.id), alerts.get(m.id, 0)) for m in models[i]))
                   for i in shown)
    return result, len(ids) - len(shown)


def _model_kpis(model: Model, run: CheckRun | None, open_alerts: int) -> ModelKpis:
    if run is None:
        return ModelKpis(model.key, model.owner, open_alerts, None, "", None, None, None, ())
    kpis = tuple(Kpi(name=k["name"], label=k["label"], unit=k.get("unit"), value=k.get("value"),
                     baseline=k.get("baseline"), baseline_windows=k.get("baseline_windows", 4),
                     threshold=k.get("threshold"), breached=bool(k.get("breached")), rule=k.get("rule", ""),
                     baseline_end=k.get("baseline_end"), baseline_earliest=bool(k.get("baseline_earliest")),
                     aggregate=k.get("aggregate"))
                 for k in run.figures.get("kpis", []))
    return ModelKpis(model.key, model.owner, open_alerts, run.verdict.value, run.message, run.created_at,
                     run.window_start, run.window_end, kpis)


# --- ML engineer: models they own ----------------------------------------------------------------

def _owned_models(session: Session, person: Person) -> tuple[tuple[OwnedModel, ...], int]:
    rows = session.execute(select(Model.id, Model.owner, Model.project_id).order_by(Model.key)).all()
    ids = [r.id for r in rows if r.owner == person.slack_id and r.project_id in person.project_ids()]
    if not ids:  # an admin who owns no model sees those of the projects they administer
        ids = [r.id for r in rows if Role.admin.value in person.roles_on(r.project_id)]
    alerts = _open_alerts(session, ids)
    worst: dict[int, tuple] = {}
    if ids:
        for alert in session.execute(select(Alert).where(Alert.model_id.in_(ids), Alert.state != AlertState.resolved)
                                     .options(selectinload(Alert.model).selectinload(Model.project))).scalars():
            worst[alert.model_id] = min(worst.get(alert.model_id, (9,)), alert_urgency(alert))
    shown = sorted(ids, key=lambda i: worst.get(i, (9,)))[:MAX_MODELS]  # ids are in key order: a stable tie
    models = {m.id: m for m in session.execute(
        select(Model).where(Model.id.in_(shown)).options(selectinload(Model.project))).scalars()}
    versions: dict[int, list[ModelVersion]] = defaultdict(list)
    for v in session.execute(select(ModelVersion).where(
            ModelVersion.model_id.in_(shown), ModelVersion.status.in_([*UNRELEASED, VersionStatus.production]))
            .options(_WITH_BLUEPRINT).order_by(ModelVersion.number.desc())).scalars():
        versions[v.model_id].append(v)
    reviewed = [v for vs in versions.values() for v in vs if v.status == VersionStatus.in_review]
    progress = _progress(session, reviewed)
    runs: dict[int, list[CheckRun]] = defaultdict(list)
    for run in _latest_runs(session, shown, list(CheckKind)):
        runs[run.model_id].append(run)
    kinds = list(CheckKind)
    result = []
    for i in shown:
        production = next((v.label for v in versions[i] if v.status == VersionStatus.production), None)
        unreleased = [v for v in versions[i] if v.status in UNRELEASED]
        result.append(OwnedModel(
            key=models[i].key, project_name=models[i].project.name, production=production,
            open_alerts=alerts.get(i, 0),
            verdicts=tuple(CheckVerdict(r.kind.value, r.verdict.value, r.message, r.created_at)
                           for r in sorted(runs[i], key=lambda r: kinds.index(r.kind))),
            versions=tuple(VersionLine(v.number, v.status.value, v.created_by, v.train_start, v.train_end,
                                       _steps(progress.get(v.id, []))) for v in unreleased[:MAX_VERSIONS]),
            more_versions=max(0, len(unreleased) - MAX_VERSIONS)))
    return tuple(result), len(ids) - len(shown)


# --- sign-offs due from this person --------------------------------------------------------------

def _pending_signoffs(session: Session, person: Person) -> tuple[tuple[PendingSignOff, ...], int]:
    in_review = list(session.execute(select(ModelVersion).where(ModelVersion.status == VersionStatus.in_review)
                                     .options(_WITH_BLUEPRINT).order_by(ModelVersion.id)).scalars())
    progress = _progress(session, in_review)
    yours = {v.id: governance.signable_by(person, v, progress[v.id]) for v in in_review}
    mine = sorted((v for v in in_review if yours[v.id]), key=lambda v: signoff_urgency(v, progress[v.id]))
    result = tuple(PendingSignOff(
        model_key=v.model.key, number=v.number, project_name=v.model.project.name,
        initiative=v.model.project.initiative, risk_tier=v.model.project.risk_tier.value,
        requested_by=v.submitted_by or v.created_by, train_start=v.train_start, train_end=v.train_end,
        steps=_steps(progress[v.id]), yours=tuple(p.step.name for p in yours[v.id])) for v in mine[:MAX_SIGNOFFS])
    return result, len(mine) - len(result)


# --- risk manager: projects whose blueprint has a step for their roles ---------------------------

def _governed(session: Session, person: Person) -> tuple[tuple[GovernedProject, ...], int]:
    step_roles = session.execute(select(Blueprint.project_id, BlueprintStep.role)
                                 .join(BlueprintStep, BlueprintStep.blueprint_id == Blueprint.id)).all()
    governed = {project_id for project_id, role in step_roles if person.holds(role, project_id)}
    ids = list(session.execute(select(Project.id).where(Project.id.in_(governed)).order_by(Project.key)).scalars())
    shown = ids[:MAX_GOVERNED]
    projects = list(session.execute(select(Project).where(Project.id.in_(shown)).order_by(Project.key)
                                    .options(selectinload(Project.blueprint))).scalars())
    models = _models_of(session, shown)
    latest: dict[int, ModelVersion] = {}
    for v in session.execute(select(ModelVersion).where(
            ModelVersion.model_id.in_([m.id for ms in models.values() for m in ms]),
            ModelVersion.status.in_([VersionStatus.in_review, VersionStatus.approved, VersionStatus.production]))
            .options(_WITH_BLUEPRINT)).scalars():
        current = latest.get(v.model_id)
        # A version on its way to production says more than the one already there.
        rank = (v.status != VersionStatus.production, v.number)
        if current is None or rank > (current.status != VersionStatus.production, current.number):
            latest[v.model_id] = v
    progress = _progress(session, list(latest.values()))
    names = {p.slack_id: p.name for p in registry.people_by_id(
        session=session, slack_ids=sorted({s for p in projects for s in p.sponsors})).values()}
    result = tuple(GovernedProject(
        key=p.key, name=p.name, initiative=p.initiative, sponsors=tuple(names.get(s, s) for s in p.sponsors),
        risk_tier=p.risk_tier.value, blueprint=p.blueprint.name if p.blueprint else "",
        models=tuple(_governed_model(m, latest.get(m.id), progress) for m in models[p.id])) for p in projects)
    return result, len(ids) - len(shown)


def _governed_model(model: Model, version: ModelVersion | None,
                    progress: dict[int, list[StepProgress]]) -> GovernedModel:
    if version is None:
        return GovernedModel(model.key, None, None, ())
    return GovernedModel(model.key, version.number, version.status.value, _steps(progress[version.id]))


# --- IT ops: recent deployments ------------------------------------------------------------------

def _deployments(session: Session, project_ids: set[int]) -> tuple[RecentDeployment, ...]:
    recent = list(session.execute(
        select(ModelVersion).join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.deployed_at.is_not(None), Model.project_id.in_(project_ids))
        .options(selectinload(ModelVersion.model))
        .order_by(ModelVersion.deployed_at.desc(), ModelVersion.id.desc()).limit(MAX_DEPLOYMENTS)).scalars())
    history: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    if recent:
        for model_id, at, version_id, number in session.execute(
                select(ModelVersion.model_id, ModelVersion.deployed_at, ModelVersion.id, ModelVersion.number)
                .where(ModelVersion.model_id.in_({v.model_id for v in recent}),
                       ModelVersion.deployed_at.is_not(None))):
            history[model_id].append((at, version_id, number))

    def previous(v: ModelVersion) -> str | None:
        # The same choice governance.rollback makes: the latest other version that was in production.
        earlier = [h for h in history[v.model_id] if (h[0], h[1]) < (v.deployed_at, v.id)]
        return f"v{max(earlier)[2]}" if earlier else None

    return tuple(RecentDeployment(model_key=v.model.key, number=v.number, deployed_by=v.deployed_by or "",
                                  deployed_at=v.deployed_at, in_production=v.status == VersionStatus.production,
                                  previous=previous(v)) for v in recent)


VIEWERS_KEPT = timedelta(days=30)  # someone who hasn't opened their App Home for a month isn't kept up to date


def record_viewer(*, session: Session, slack_id: str, now: datetime) -> None:
    """Someone opened the App Home: theirs is published again whenever what it shows changes."""
    viewer = session.get(HomeViewer, slack_id)
    if viewer is None:
        session.add(HomeViewer(slack_id=slack_id, opened_at=now))
    else:
        viewer.opened_at = now


def recent_viewers(*, session: Session, now: datetime) -> list[str]:
    """Whose App Home is kept up to date: who opened it within VIEWERS_KEPT of `now`."""
    return list(session.execute(select(HomeViewer.slack_id).where(HomeViewer.opened_at >= now - VIEWERS_KEPT)
                                .order_by(HomeViewer.slack_id)).scalars())
