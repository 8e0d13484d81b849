"""What the dashboard's pages show, as plain data for bot/dashboard: read with a fixed number of queries
per page whatever the history holds, and only the parts the viewer's roles allow.

Long histories are sampled in SQL (every k-th run, always the latest), so a year of hourly checks costs
the same few hundred rows as a week of them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, defer, selectinload

from store import governance, registry
from store.clock import utcnow
from store.errors import Forbidden, NotFound
from store.models import (
    Alert,
    AlertState,
    AuditEvent,
    Blueprint,
    BlueprintStep,
    CheckKind,
    CheckRun,
    Decision,
    Evaluation,
    Model,
    ModelVersion,
    Project,
    Role,
    SignOff,
    Verdict,
    VersionStatus,
)

RANGES = (7, 30, 90, 365)  # days of history a model page can show
DEFAULT_DAYS = 90
CHART_POINTS = 120  # points per line at most
MAX_MARKS = 400  # non-ok runs marked on the check timeline
MAX_RUNS = 20  # latest runs listed
MAX_ALERTS = 20
MAX_AUDIT = 50
MAX_EVENTS = 200
TREND_RUNS = 26  # runs on an alert's trend chart
MONITORING = (Role.ml_engineer, Role.risk_manager, Role.it_ops)
UNRELEASED = (VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved)
VERDICT_ORDER = ("error", "breach", "warn", "ok")


@dataclass(frozen=True)
class Viewer:
    """Who opened a page. `roles` are every role they hold somewhere (what the header shows) until
    `within(project)` narrows them to that project's, which is what a page about a project goes by."""

    slack_id: str
    name: str
    roles: tuple[str, ...]
    grants: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False)  # project id -> roles

    def has(self, role: Role | str) -> bool:
        return str(role) in self.roles or Role.admin.value in self.roles

    @property
    def sees_monitoring(self) -> bool:
        """Check history, drift, performance, alert evidence and the audit trail."""
        return any(self.has(r) for r in MONITORING)

    @property
    def governs(self) -> bool:
        return self.has(Role.risk_manager)

    def holds(self, role: Role | str, project_id: int) -> bool:
        held = self.grants.get(project_id, ())
        return str(role) in held or Role.admin.value in held

    def within(self, project: Project) -> Viewer:
        """The viewer as seen by one project's pages; Forbidden when they hold no role on it."""
        if project.id not in self.grants:
            raise Forbidden(f"{project.name} is not one of your projects: you hold no role on it. Its owner can "
                            "add you to its spec's people.")
        return replace(self, roles=self.grants[project.id])


def project_of_page(*, session: Session, path: str) -> str | None:
    """The key of the project a dashboard path is about; None for pages across projects (the index, the
    portfolio, the catalog) and for paths naming nothing that exists (the page then says it is not found)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        return None
    if parts[0] == "projects":
        return parts[1]
    if parts[0] == "models":
        return session.execute(select(Project.key).join(Model, Model.project_id == Project.id)
                               .where(Model.key == parts[1])).scalar_one_or_none()
    if parts[0] == "alerts" and parts[1].isdigit() and len(parts[1]) < 19:
        return session.execute(select(Project.key).join(Model, Model.project_id == Project.id)
                               .join(Alert, Alert.model_id == Model.id)
                               .where(Alert.id == int(parts[1]))).scalar_one_or_none()
    return None


def viewer(*, session: Session, slack_id: str) -> Viewer | None:
    person = registry.get_person(session=session, slack_id=slack_id)
    if person is None:
        return None
    grants = {project_id: tuple(person.roles_on(project_id)) for project_id in person.project_ids()}
    return Viewer(person.slack_id, person.name, tuple(person.roles), grants)


# --- shapes ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    flagged: bool = False  # breached, drifted


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    unit: str | None
    points: tuple[Point, ...]
    threshold: float | None = None  # a fixed alert line
    limits: tuple[Point, ...] = ()  # a moving alert line (relative to a baseline)
    rule: str = ""

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True)
class MetricHistory:
    metric: str
    rule: str
    threshold: float | None
    lines: tuple[Series, ...]  # one per version


@dataclass(frozen=True)
class RunLine:
    id: int
    kind: str
    as_of: datetime
    window_start: datetime
    window_end: datetime
    verdict: str
    message: str


@dataclass(frozen=True)
class KindHistory:
    kind: str
    counts: tuple[tuple[str, int], ...]  # (verdict, runs), worst first
    latest: RunLine | None
    marks: tuple[tuple[datetime, str], ...]  # non-ok runs: (as_of, verdict)
    first: datetime | None

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class Decided:
    step: str
    person: str
    name: str
    decision: str
    reason: str
    at: datetime
    version: str = ""


@dataclass(frozen=True)
class StepState:
    position: int
    name: str
    role: str
    quorum: int
    approvals: tuple[Decided, ...]
    due: bool

    @property
    def done(self) -> bool:
        return len(self.approvals) >= self.quorum


@dataclass(frozen=True)
class VersionRow:
    number: int
    status: str
    created_at: datetime
    created_by: str
    train_start: datetime | None
    train_end: datetime | None
    deployed_at: datetime | None
    deployed_by: str
    metrics: dict[str, Any]
    trigger: str
    steps: tuple[StepState, ...] = ()  # for versions in review or approved

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class AlertRow:
    id: int
    kind: str
    persona: str
    state: str
    subjects: tuple[str, ...]
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    snoozed_until: datetime | None
    message: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True)
class ModelPage:
    key: str
    description: str
    task: str
    tags: tuple[str, ...]
    owner: str
    project_key: str
    project_name: str
    days: int
    since: datetime
    until: datetime
    start: datetime  # where the charts begin: the first run in the range
    production: VersionRow | None
    versions: tuple[VersionRow, ...]  # newest first
    kpis: tuple[Series, ...]
    alerts: tuple[AlertRow, ...]
    signoffs: tuple[Decided, ...]
    monitoring: bool  # whether the viewer sees the next four
    checks: tuple[KindHistory, ...] = ()
    runs: tuple[RunLine, ...] = ()
    drift: tuple[Series, ...] = ()
    performance: tuple[MetricHistory, ...] = ()
    audit: tuple[AuditRow, ...] = ()
    names: dict[str, str] = field(default_factory=dict)


# --- shared reads ----------------------------------------------------------------------------------

def _names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    return {k: p.name for k, p in registry.people_by_id(session=session, slack_ids=wanted).items()}


def _run_line(run: CheckRun) -> RunLine:
    return RunLine(run.id, run.kind.value, run.as_of, run.window_start, run.window_end, run.verdict.value,
                   run.message)


def _sample(session: Session, filters: Sequence[Any], limit: int = CHART_POINTS) -> list[CheckRun]:
    """At most `limit` runs matching the filters, evenly spread, the latest always among them; oldest first."""
    total = session.scalar(select(func.count()).select_from(CheckRun).where(*filters)) or 0
    step = max(1, math.ceil(total / limit))
    ranked = select(CheckRun.id.label("id"), func.row_number().over(
        order_by=(CheckRun.as_of.desc(), CheckRun.id.desc())).label("rn")).where(*filters).subquery()
    keep = select(ranked.c.id).where((ranked.c.rn - 1) % step == 0)
    return list(session.execute(select(CheckRun).where(CheckRun.id.in_(keep))
                                .order_by(CheckRun.as_of, CheckRun.id)).scalars())


def _kpi_series(runs: Sequence[CheckRun], spec: dict[str, Any]) -> tuple[Series, ...]:
    relative = {k["name"]: (k.get("alert") or {}) for k in spec.get("kpis", [])}
    points: dict[str, list[Point]] = defaultdict(list)
    limits: dict[str, list[Point]] = defaultdict(list)
    last: dict[str, dict[str, Any]] = {}
    for run in runs:
        for k in run.figures.get("kpis", []):
            if k.get("value") is None:
                continue
            points[k["name"]].append(Point(run.as_of, float(k["value"]), bool(k.get("breached"))))
            last[k["name"]] = k
            alert, baseline = relative.get(k["name"], {}), k.get("baseline")
            if baseline is not None and alert.get("above_baseline_pct") is not None:
                limits[k["name"]].append(Point(run.as_of, baseline * (1 + alert["above_baseline_pct"] / 100)))
            elif baseline is not None and alert.get("below_baseline_pct") is not None:
                limits[k["name"]].append(Point(run.as_of, baseline * (1 - alert["below_baseline_pct"] / 100)))
    return tuple(Series(name, k["label"], k.get("unit"), tuple(points[name]), k.get("threshold"),
                        tuple(limits[name]), k.get("rule", "")) for name, k in last.items())


def _drift_series(runs: Sequence[CheckRun]) -> tuple[Series, ...]:
    points: dict[str, list[Point]] = defaultdict(list)
    last: dict[str, dict[str, Any]] = {}
    for run in runs:
        for f in run.figures.get("features", []):
            points[f["feature"]].append(Point(run.as_of, float(f["statistic"]), bool(f.get("drifted"))))
            last[f["feature"]] = f
    ordered = sorted(last.values(), key=lambda f: (not f.get("drifted"), -f["statistic"] / (f["threshold"] or 1)))
    return tuple(Series(f["feature"], f["feature"], None, tuple(points[f["feature"]]), f["threshold"],
                        rule=f"{f['method_label']} alert at {f['threshold']:g}") for f in ordered)


def _history(session: Session, model: Model, since: datetime, until: datetime,
             latest: dict[str, RunLine]) -> tuple[KindHistory, ...]:
    # `kind IN (...)` lets the (model, kind, as_of) index range-scan each kind instead of the whole model.
    window = (CheckRun.model_id == model.id, CheckRun.kind.in_(list(CheckKind)), CheckRun.as_of > since,
              CheckRun.as_of <= until)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    firsts: dict[str, datetime] = {}
    for kind, verdict, n, first in session.execute(
            select(CheckRun.kind, CheckRun.verdict, func.count(), func.min(CheckRun.as_of)).where(*window)
            .group_by(CheckRun.kind, CheckRun.verdict)):
        counts[kind.value][verdict.value] = n
        firsts[kind.value] = min(first, firsts.get(kind.value, first))
    marks: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for kind, at, verdict in session.execute(
            select(CheckRun.kind, CheckRun.as_of, CheckRun.verdict).where(*window, CheckRun.verdict != Verdict.ok)
            .order_by(CheckRun.as_of.desc()).limit(MAX_MARKS)):
        marks[kind.value].append((at, verdict.value))
    return tuple(KindHistory(kind.value, tuple((v, counts[kind.value][v]) for v in VERDICT_ORDER
                                               if v in counts[kind.value]),
                             latest.get(kind.value), tuple(reversed(marks[kind.value])), firsts.get(kind.value))
                 for kind in CheckKind if kind.value in counts or kind.value in latest)


def _latest_runs(session: Session, model_id: int, limit: int = 1) -> list[RunLine]:
    """The latest `limit` runs of each check kind, newest first; each kind walks its index from the end."""
    runs = []
    for kind in CheckKind:
        runs += session.execute(select(CheckRun).options(defer(CheckRun.figures))
                                .where(CheckRun.model_id == model_id, CheckRun.kind == kind)
                                .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(limit)).scalars()
    return sorted((_run_line(r) for r in runs), key=lambda r: (r.as_of, r.id), reverse=True)


def _performance(session: Session, model: Model, since: datetime, until: datetime) -> tuple[MetricHistory, ...]:
    labels = {v.id: v.label for v in model.versions}
    filters = (Evaluation.version_id.in_(list(labels)), Evaluation.window_end > since, Evaluation.window_end <= until)
    total = session.scalar(select(func.count()).select_from(Evaluation).where(*filters)) or 0
    step = max(1, math.ceil(total / CHART_POINTS))
    ranked = select(Evaluation.id.label("id"), func.row_number().over(
        partition_by=Evaluation.version_id, order_by=(Evaluation.window_end.desc(), Evaluation.id.desc())
    ).label("rn")).where(*filters).subquery()
    rows = session.execute(select(Evaluation).where(Evaluation.id.in_(select(ranked.c.id).where(
        (ranked.c.rn - 1) % step == 0))).order_by(Evaluation.window_end, Evaluation.id)).scalars()
    by_metric: dict[str, dict[int, dict[datetime, float]]] = defaultdict(lambda: defaultdict(dict))
    for e in rows:
        for metric, value in e.metrics.items():
            if value is not None and not math.isnan(value):
                by_metric[metric][e.version_id][e.window_end] = float(value)  # one point per window
    alerts = (model.spec.get("performance") or {}).get("alert") or {}
    result = []
    for metric, versions in by_metric.items():
        rule = alerts.get(metric) or {}
        line = _line(rule)
        words = f"alert {'below' if rule.get('below') is not None else 'above'} {line:.2f}" if line is not None else ""
        result.append(MetricHistory(metric, words, line, tuple(
            Series(labels[v], labels[v], None, tuple(Point(at, value, _crosses(value, rule))
                                                      for at, value in sorted(points.items())))
            for v, points in sorted(versions.items(), key=lambda kv: labels[kv[0]]))))
    return tuple(sorted(result, key=lambda m: (m.threshold is None, m.metric)))


def _line(rule: dict[str, Any]) -> float | None:
    return rule.get("below") if rule.get("below") is not None else rule.get("above")


def _crosses(value: float, rule: dict[str, Any]) -> bool:
    return (rule.get("below") is not None and value < rule["below"]) or \
        (rule.get("above") is not None and value > rule["above"])


def _steps(session: Session, versions: Sequence[ModelVersion],
           names: dict[str, str]) -> dict[int, tuple[StepState, ...]]:
    """Blueprint progress of each version, from one query for their sign-offs."""
    if not versions:
        return {}
    signed: dict[tuple[int, int], list[SignOff]] = defaultdict(list)
    approvals = select(SignOff).where(SignOff.version_id.in_([v.id for v in versions]),
                                      SignOff.decision == Decision.approve).order_by(SignOff.id)
    for s in session.execute(approvals).scalars():
        signed[(s.version_id, s.step_id)].append(s)
    result = {}
    for version in versions:
        steps, due_found = [], version.status != VersionStatus.in_review
        for step in governance.blueprint_steps(version):
            approvals = tuple(Decided(step.name, s.person, names.get(s.person, s.person), s.decision.value, s.reason,
                                      s.created_at) for s in signed[(version.id, step.id)])
            due = not due_found and len(approvals) < step.quorum
            due_found = due_found or due
            steps.append(StepState(step.position, step.name, step.role, step.quorum, approvals, due))
        result[version.id] = tuple(steps)
    return result


def _version_row(v: ModelVersion, steps: dict[int, tuple[StepState, ...]]) -> VersionRow:
    return VersionRow(v.number, v.status.value, v.created_at, v.created_by, v.train_start, v.train_end,
                      v.deployed_at, v.deployed_by or "", dict(v.metrics), str(v.parameters.get("trigger", "")),
                      steps.get(v.id, ()))


def _signoffs(session: Session, model: Model, names: dict[str, str], limit: int = 50) -> tuple[Decided, ...]:
    rows = session.execute(select(SignOff).join(ModelVersion, SignOff.version_id == ModelVersion.id)
                           .where(ModelVersion.model_id == model.id).options(selectinload(SignOff.step),
                                                                             selectinload(SignOff.version))
                           .order_by(SignOff.created_at.desc(), SignOff.id.desc()).limit(limit)).scalars()
    return tuple(Decided(s.step.name, s.person, names.get(s.person, s.person), s.decision.value, s.reason,
                         s.created_at, s.version.label) for s in rows)


def _audit(session: Session, model_key: str, limit: int = MAX_AUDIT,
           actions: Sequence[str] = ()) -> list[AuditEvent]:
    """The model's latest audit events (of these actions, when given), newest first."""
    subject = f"model:{model_key}"
    query = select(AuditEvent).where(or_(AuditEvent.subject == subject, AuditEvent.subject.startswith(subject + "/")))
    if actions:
        query = query.where(AuditEvent.action.in_(actions))
    return list(session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit)).scalars())


def _audit_row(e: AuditEvent) -> AuditRow:
    return AuditRow(e.seq, e.at, e.actor, e.action, e.subject, dict(e.details))


def _shows_evidence(viewer: Viewer, kind: CheckKind) -> bool:
    """A business reader sees KPI evidence (money, rates); model internals need a technical role."""
    return kind == CheckKind.kpi or viewer.sees_monitoring


def _alert_row(alert: Alert, viewer: Viewer) -> AlertRow:
    return AlertRow(alert.id, alert.kind.value, alert.persona, alert.state.value, tuple(alert.subjects),
                    alert.created_at, alert.updated_at, alert.resolved_at, alert.snoozed_until,
                    alert.check_run.message if _shows_evidence(viewer, alert.kind) else "")


# --- model page ------------------------------------------------------------------------------------

def model_page(*, session: Session, key: str, viewer: Viewer, days: int = DEFAULT_DAYS,
               now: datetime | None = None) -> ModelPage:
    if days not in RANGES:
        raise NotFound(f"{days} days is not a range the page shows; use one of {', '.join(map(str, RANGES))}.")
    model = registry.get_model(session=session, key=key)
    viewer = viewer.within(model.project)
    recent = _latest_runs(session, model.id, limit=MAX_RUNS)
    until = recent[0].as_of if recent else now or utcnow()
    since = until - timedelta(days=days)
    first = min((session.scalar(select(func.min(CheckRun.as_of)).where(
        CheckRun.model_id == model.id, CheckRun.kind == kind, CheckRun.as_of > since)) for kind in CheckKind),
        key=lambda at: at or until)
    versions = sorted(model.versions, key=lambda v: -v.number)
    reviewed = [v for v in versions if v.status in (VersionStatus.in_review, VersionStatus.approved)]
    names = _names(session, [model.owner, *(v.created_by for v in versions), *(v.deployed_by or "" for v in versions)])
    steps = _steps(session, reviewed, names)
    rows = tuple(_version_row(v, steps) for v in versions)
    kpi_runs = _sample(session, (CheckRun.model_id == model.id, CheckRun.kind == CheckKind.kpi,
                                 CheckRun.as_of > since, CheckRun.as_of <= until))
    alerts = session.execute(select(Alert).where(Alert.model_id == model.id).options(selectinload(Alert.check_run))
                             .order_by((Alert.state == AlertState.resolved), Alert.created_at.desc())
                             .limit(MAX_ALERTS)).scalars()
    page: dict[str, Any] = {
        "key": model.key, "description": model.description, "task": model.task, "tags": tuple(model.tags),
        "owner": model.owner, "project_key": model.project.key, "project_name": model.project.name, "days": days,
        "since": since, "until": until, "start": max(since, first or since), "versions": rows,
        "production": next((r for r in rows if r.status == "production"), None),
        "kpis": _kpi_series(kpi_runs, model.spec), "alerts": tuple(_alert_row(a, viewer) for a in alerts),
        "monitoring": viewer.sees_monitoring}
    signoffs = _signoffs(session, model, names)
    if viewer.sees_monitoring:
        drift_runs = _sample(session, (CheckRun.model_id == model.id, CheckRun.kind == CheckKind.drift,
                                       CheckRun.as_of > since, CheckRun.as_of <= until))
        audit = _audit(session, model.key)
        latest: dict[str, RunLine] = {}
        for run in recent:
            latest.setdefault(run.kind, run)
        page.update(checks=_history(session, model, since, until, latest), runs=tuple(recent[:MAX_RUNS]),
                    drift=_drift_series(drift_runs), performance=_performance(session, model, since, until),
                    audit=tuple(_audit_row(e) for e in audit))
        names.update(_names(session, [e.actor for e in audit]))
    names.update(_names(session, [s.person for s in signoffs]))
    signoffs = tuple(Decided(s.step, s.person, names.get(s.person, s.person), s.decision, s.reason, s.at, s.version)
                     for s in signoffs)
    return ModelPage(**page, signoffs=signoffs, names=names)


# --- alert page ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Happening:
    at: datetime
    actor: str
    action: str
    text: str


@dataclass(frozen=True)
class AlertPage:
    alert: AlertRow
    model_key: str
    model_owner: str
    project_key: str
    project_name: str
    version: str | None
    channel: str | None
    run: RunLine
    evidence: bool  # whether the viewer sees the figures
    figures: dict[str, Any]
    since: tuple[Happening, ...]
    later: tuple[RunLine, ...]  # runs of the same check after the one that raised it, newest first
    trends: tuple[Series, ...] = ()  # a performance alert's breaching metrics over the recent runs
    names: dict[str, str] = field(default_factory=dict)


_SAID = {
    "alert.opened": "opened the alert", "alert.acknowledged": "acknowledged it", "alert.snoozed": "snoozed it",
    "alert.resolved": "resolved it: the check passed again", "work.retrain.requested": "asked for a retrain",
    "work.retrain.failed": "reported that retraining failed", "version.registered": "registered {v}",
    "version.compared": "compared {v} with production", "version.submitted": "submitted {v} for sign-off",
    "version.approved": "approved {v}: every step is signed", "version.rejected": "rejected {v}",
    "version.deployed": "deployed {v}", "version.adopted": "recorded {v} as the production version",
    "signoff.approve": "signed off {v}", "signoff.reject": "rejected {v}",
}


def _happening(e: AuditEvent) -> Happening:
    """One audit event as a sentence that follows the actor's name: "Noor signed off v2 (technical ...)"."""
    d = e.details or {}
    words = _SAID.get(e.action, e.action.replace(".", " ").replace("_", " ")).format(
        v=e.subject.partition("/")[2] or "a version")
    if e.action == "alert.snoozed" and d.get("until"):
        words += f" until {datetime.fromisoformat(d['until']):%b %d %H:%M} UTC"
    if e.action == "version.rolled_back":
        words = f"rolled back from {d.get('from')} to {d.get('to')}"
    if e.action.startswith("signoff.") and d.get("step"):
        words += f" ({d['step']})"
    if d.get("reason") and (e.action.startswith(("signoff.", "version.rejected", "work."))):
        words += f': "{d["reason"]}"' if not e.action.startswith("work.") else f" ({d['reason']})"
    return Happening(e.at, e.actor, e.action, words)


def _about(e: AuditEvent, alert: Alert, model_key: str) -> bool:
    """Whether an audit event belongs in the story of this alert."""
    d = e.details or {}
    if e.action.startswith("alert.") or e.action.startswith("work."):
        return d.get("alert") == alert.id or alert.id in (d.get("alerts") or []) or e.subject == f"alert:{alert.id}"
    # What was done to the model while the alert was live: retrained, signed off, deployed.
    return e.subject.startswith(f"model:{model_key}") and (alert.resolved_at is None or e.at <= alert.resolved_at)


def alert_page(*, session: Session, alert_id: int, viewer: Viewer) -> AlertPage:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"There is no alert {alert_id}; it may belong to another Flywheel.")
    model = alert.model
    viewer = viewer.within(model.project)
    run = alert.check_run
    events = [e for e in session.execute(
        select(AuditEvent).where(AuditEvent.at >= alert.created_at, or_(
            AuditEvent.subject == f"model:{model.key}", AuditEvent.subject.startswith(f"model:{model.key}/"),
            AuditEvent.subject == f"alert:{alert.id}"))
        .order_by(AuditEvent.seq).limit(MAX_EVENTS)).scalars() if _about(e, alert, model.key)]
    later = session.execute(select(CheckRun).where(CheckRun.model_id == model.id, CheckRun.kind == alert.kind,
                                                   CheckRun.as_of > run.as_of)
                            .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(10)).scalars()
    evidence = _shows_evidence(viewer, alert.kind)
    hide = {} if evidence else {"message": ""}
    trends: tuple[Series, ...] = ()
    if evidence and alert.kind == CheckKind.performance:
        recent = reversed(list(session.execute(
            select(CheckRun).where(CheckRun.model_id == model.id, CheckRun.kind == CheckKind.performance)
            .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(TREND_RUNS)).scalars()))
        rules = ((model.spec.get("performance") or {}).get("alert") or {})
        points: dict[str, list[Point]] = defaultdict(list)
        for r in recent:
            for metric, value in (r.figures.get("metrics") or {}).items():
                if value is not None:
                    points[metric].append(Point(r.as_of, float(value), _crosses(float(value), rules.get(metric) or {})))
        trends = tuple(Series(m, m, None, tuple(points[m]), _line(rules.get(m) or {})) for m in
                       run.figures.get("breaches", []) if points[m])
    return AlertPage(alert=_alert_row(alert, viewer), model_key=model.key, model_owner=model.owner,
                     project_key=model.project.key, project_name=model.project.name,
                     version=run.version.label if run.version else None, channel=alert.channel,
                     run=replace(_run_line(run), **hide), evidence=evidence,
                     figures=dict(run.figures) if evidence else {}, since=tuple(_happening(e) for e in events),
                     later=tuple(replace(_run_line(r), **hide) for r in later), trends=trends,
                     names=_names(session, [model.owner, *(e.actor for e in events)]))


# --- project and portfolio -------------------------------------------------------------------------

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
    steps: tuple[StepState, ...]

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def waiting(self) -> tuple[StepState, ...]:
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


def _open_alerts(session: Session, model_ids: Sequence[int]) -> dict[int, int]:
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
    alerts, runs = _open_alerts(session, ids), _latest_of_models(session, ids)
    pending = _unreleased(session, ids)
    decisions = list(session.execute(
        select(SignOff).join(ModelVersion, SignOff.version_id == ModelVersion.id).where(ModelVersion.model_id.in_(ids))
        .options(selectinload(SignOff.step), selectinload(SignOff.version).selectinload(ModelVersion.model))
        .order_by(SignOff.created_at.desc(), SignOff.id.desc()).limit(20)).scalars()) if ids else []
    names = _names(session, [project.owner, *project.sponsors, *(m.owner for m in models),
                             *(v.submitted_by or v.created_by for v in pending), *(d.person for d in decisions)])
    steps = _steps(session, pending, names)
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
        names=names)


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

    @property
    def status(self) -> str:
        if self.waiting:
            return "waiting for sign-off"
        if self.open_alerts:
            return "open alerts"
        return {None: "not checked yet", "ok": "healthy"}.get(self.worst, f"latest checks: {self.worst}")


@dataclass(frozen=True)
class Portfolio:
    lines: tuple[PortfolioLine, ...]
    names: dict[str, str]


def portfolio(*, session: Session, viewer: Viewer) -> Portfolio:
    """Every project whose blueprint has a step for the viewer's roles (all of them for an admin)."""
    if not viewer.governs:
        raise Forbidden(f"The portfolio lists the projects a risk manager governs; you are "
                        f"{', '.join(r.replace('_', ' ') for r in viewer.roles) or 'without a role'}.")
    step_roles = session.execute(select(Blueprint.project_id, BlueprintStep.role)
                                 .join(BlueprintStep, BlueprintStep.blueprint_id == Blueprint.id)).all()
    governed = {project_id for project_id, role in step_roles if viewer.holds(role, project_id)}
    query = select(Project).where(Project.id.in_(governed)).order_by(Project.key) \
        .options(selectinload(Project.models))
    projects = list(session.execute(query).scalars())
    ids = [m.id for p in projects for m in p.models]
    production: dict[int, list[str]] = defaultdict(list)
    if ids:
        for v in session.execute(select(ModelVersion).where(ModelVersion.model_id.in_(ids),
                                                            ModelVersion.status == VersionStatus.production)
                                 .options(selectinload(ModelVersion.model))).scalars():
            production[v.model.project_id].append(f"{v.model.key} {v.label}")
    alerts, runs = _open_alerts(session, ids), _latest_of_models(session, ids)
    pending = _unreleased(session, ids)
    steps = _steps(session, pending, {})
    waiting: dict[int, list[str]] = defaultdict(list)
    for v in pending:
        missing = [f"{s.name} {len(s.approvals)} of {s.quorum}" for s in steps[v.id] if not s.done]
        waiting[v.model.project_id].append(f"{v.model.key} {v.label}: " + (", ".join(missing) or "ready to deploy"))
    lines = []
    for p in projects:
        verdicts = [r.verdict.value for m in p.models for r in runs.get(m.id, [])]
        worst = next((v for v in VERDICT_ORDER if v in verdicts), None)
        lines.append(PortfolioLine(p.key, p.name, p.initiative, p.risk_tier.value, p.owner, tuple(production[p.id]),
                                   sum(alerts.get(m.id, 0) for m in p.models), worst, tuple(waiting[p.id])))
    return Portfolio(tuple(lines), _names(session, [p.owner for p in projects]))


# --- model card ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    champion: str
    window_start: datetime
    window_end: datetime
    rows: int
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float]


@dataclass(frozen=True)
class Card:
    model_key: str
    description: str
    task: str
    tags: tuple[str, ...]
    project_key: str
    project_name: str
    initiative: str
    project_description: str
    risk_tier: str
    owner: str
    sponsors: tuple[str, ...]
    version: VersionRow
    parent: str | None
    data: tuple[tuple[str, str], ...]  # (what, where): sources and columns, without hosts or credentials
    features: tuple[tuple[str, str], ...]  # (name, numeric | categorical)
    evaluations: tuple[tuple[datetime, datetime, int, dict[str, float]], ...]  # latest of this version
    comparison: Comparison | None
    drift: tuple[tuple[str, int, int, float | None, float | None], ...]  # feature, runs drifted, runs, last, line
    drift_runs: int
    kpis: tuple[Series, ...]
    signoffs: tuple[Decided, ...]
    blueprint: str
    deployments: tuple[Happening, ...]
    generated_at: datetime
    names: dict[str, str] = field(default_factory=dict)


def _source(spec: dict[str, Any] | None) -> str:
    if not spec:
        return "not set"
    if spec.get("path"):
        return f"file {spec['path']}"
    try:
        backend = make_url(spec["url"]).get_backend_name()
    except Exception:  # noqa: BLE001 - an unparsable URL is described, never shown (it may hold a password)
        backend = "SQL"
    what = f"table {spec['table']}" if spec.get("table") else "a query"
    return f"{what} in a {backend} database"


def model_card(*, session: Session, key: str, number: int, viewer: Viewer, now: datetime | None = None) -> Card:
    version = registry.get_version(session=session, model_key=key, number=number)
    model, project = version.model, version.model.project
    viewer = viewer.within(project)
    spec = model.spec or {}
    data = spec.get("data") or {}
    evaluations = list(session.execute(select(Evaluation).where(Evaluation.version_id == version.id)
                                       .order_by(Evaluation.window_end.desc(), Evaluation.id.desc())
                                       .limit(8)).scalars())
    comparison = None
    parent = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    if evaluations and parent is not None:
        theirs = registry.latest_evaluation(session=session, version=parent, window_end=evaluations[0].window_end)
        if theirs is not None:
            mine = evaluations[0]
            comparison = Comparison(parent.label, mine.window_start, mine.window_end, mine.rows, dict(mine.metrics),
                                    dict(theirs.metrics))
    mine = (CheckRun.model_id == model.id, CheckRun.version_id == version.id)
    drift_runs = _sample(session, (*mine, CheckRun.kind == CheckKind.drift))
    drifted: dict[str, int] = defaultdict(int)
    for run in drift_runs:
        for f in run.figures.get("features", []):
            drifted[f["feature"]] += bool(f.get("drifted"))
    last = {f["feature"]: f for f in (drift_runs[-1].figures.get("features", []) if drift_runs else [])}
    drift_total = session.scalar(select(func.count()).select_from(CheckRun)
                                 .where(*mine, CheckRun.kind == CheckKind.drift))
    kpi_runs = _sample(session, (*mine, CheckRun.kind == CheckKind.kpi))
    deployments = _audit(session, model.key, limit=MAX_EVENTS,
                         actions=("version.adopted", "version.deployed", "version.rolled_back"))
    names = _names(session, [model.owner, project.owner, *project.sponsors, version.created_by,
                             version.deployed_by or "", *(e.actor for e in deployments),
                             *(s.person for s in version.sign_offs)])
    signoffs = tuple(Decided(s.step.name, s.person, names.get(s.person, s.person), s.decision.value, s.reason,
                             s.created_at, version.label) for s in version.sign_offs)
    columns = [("production data", _source(data.get("production"))), ("reference data", _source(data.get("reference"))),
               ("time column", data.get("timestamp") or ""), ("label", data.get("label") or "none"),
               ("prediction", data.get("prediction") or ""), ("score", data.get("score") or "")]
    features = spec.get("features") or {}
    return Card(
        model_key=model.key, description=model.description, task=model.task, tags=tuple(model.tags),
        project_key=project.key, project_name=project.name, initiative=project.initiative,
        project_description=project.description, risk_tier=project.risk_tier.value, owner=model.owner,
        sponsors=tuple(project.sponsors), version=_version_row(version, _steps(session, [version], names)),
        parent=parent.label if parent else None, data=tuple((a, b) for a, b in columns if b),
        features=tuple((f, "numeric") for f in features.get("numeric", []))
        + tuple((f, "categorical") for f in features.get("categorical", [])),
        evaluations=tuple((e.window_start, e.window_end, e.rows, dict(e.metrics)) for e in evaluations),
        comparison=comparison,
        drift=tuple((name, drifted[name], len(drift_runs), last.get(name, {}).get("statistic"),
                     last.get(name, {}).get("threshold")) for name in (last or drifted)),
        drift_runs=drift_total or 0, kpis=_kpi_series(kpi_runs, spec), signoffs=signoffs,
        blueprint=project.blueprint.name if project.blueprint else "",
        deployments=tuple(_happening(e) for e in reversed(deployments)), generated_at=now or utcnow(), names=names)


# --- index -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IndexLine:
    key: str
    project_key: str
    project_name: str
    production: str | None
    open_alerts: int


def index(*, session: Session, viewer: Viewer) -> tuple[IndexLine, ...]:
    models = [m for m in registry.list_models(session=session) if m.project_id in viewer.grants]
    alerts = _open_alerts(session, [m.id for m in models])
    return tuple(IndexLine(m.key, m.project.key, m.project.name,
                           next((v.label for v in m.versions if v.status == VersionStatus.production), None),
                           alerts.get(m.id, 0)) for m in models)
