"""Reads every page shares, each a fixed number of queries whatever the history holds.

Long histories are sampled in SQL (every k-th run, always the latest), so a year of hourly checks costs
the same few hundred rows as a week of them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer, selectinload

from bot.services.pages.constants import (
    CHART_POINTS,
    MAX_AUDIT,
    MAX_MARKS,
    VERDICT_ORDER,
)
from bot.services.pages.shapes import (
    AlertRow,
    AuditRow,
    Decided,
    KindHistory,
    MetricHistory,
    Point,
    RunLine,
    Series,
    StepStatus,
    VersionRow,
)
from bot.services.pages.viewer import Viewer
from jobs.checks import metric_value
from store import governance, registry
from store.models import (
    Alert,
    AuditEvent,
    CheckKind,
    CheckRun,
    Decision,
    Evaluation,
    Model,
    ModelVersion,
    SignOff,
    Verdict,
    VersionStatus,
)


def person_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    return {k: p.name for k, p in registry.people_by_id(session=session, slack_ids=wanted).items()}


def run_line(run: CheckRun) -> RunLine:
    return RunLine(run.id, run.kind.value, run.as_of, run.window_start, run.window_end, run.verdict.value,
                   run.message)


def sample(session: Session, filters: Sequence[Any], limit: int = CHART_POINTS) -> list[CheckRun]:
    """At most `limit` runs matching the filters, evenly spread, the latest always among them; oldest first."""
    total = session.scalar(select(func.count()).select_from(CheckRun).where(*filters)) or 0
    step = max(1, math.ceil(total / limit))
    ranked = select(CheckRun.id.label("id"), func.row_number().over(
        order_by=(CheckRun.as_of.desc(), CheckRun.id.desc())).label("rn")).where(*filters).subquery()
    keep = select(ranked.c.id).where((ranked.c.rn - 1) % step == 0)
    return list(session.execute(select(CheckRun).where(CheckRun.id.in_(keep))
                                .order_by(CheckRun.as_of, CheckRun.id)).scalars())


def kpi_series(runs: Sequence[CheckRun], spec: dict[str, Any]) -> tuple[Series, ...]:
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


def drift_series(runs: Sequence[CheckRun]) -> tuple[Series, ...]:
    points: dict[str, list[Point]] = defaultdict(list)
    last: dict[str, dict[str, Any]] = {}
    for run in runs:
        for f in run.figures.get("features", []):
            points[f["feature"]].append(Point(run.as_of, float(f["statistic"]), bool(f.get("drifted"))))
            last[f["feature"]] = f
    ordered = sorted(last.values(), key=lambda f: (not f.get("drifted"), -f["statistic"] / (f["threshold"] or 1)))
    return tuple(Series(f["feature"], f["feature"], None, tuple(points[f["feature"]]), f["threshold"],
                        rule=f"{f['method_label']} alert at {f['threshold']:g}") for f in ordered)


def history(session: Session, model: Model, since: datetime, until: datetime,
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


def latest_runs(session: Session, model_id: int, limit: int = 1) -> list[RunLine]:
    """The latest `limit` runs of each check kind, newest first; each kind walks its index from the end."""
    runs = []
    for kind in CheckKind:
        runs += session.execute(select(CheckRun).options(defer(CheckRun.figures))
                                .where(CheckRun.model_id == model_id, CheckRun.kind == kind)
                                .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(limit)).scalars()
    return sorted((run_line(r) for r in runs), key=lambda r: (r.as_of, r.id), reverse=True)


def performance(session: Session, model: Model, since: datetime, until: datetime) -> tuple[MetricHistory, ...]:
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
        line = threshold_of(rule)
        words = f"alert {'below' if rule.get('below') is not None else 'above'} {metric_value(line)}" \
            if line is not None else ""
        result.append(MetricHistory(metric, words, line, tuple(
            Series(labels[v], labels[v], None, tuple(Point(at, value, crosses(value, rule))
                                                      for at, value in sorted(points.items())))
            for v, points in sorted(versions.items(), key=lambda kv: labels[kv[0]]))))
    return tuple(sorted(result, key=lambda m: (m.threshold is None, m.metric)))


def threshold_of(rule: dict[str, Any]) -> float | None:
    return rule.get("below") if rule.get("below") is not None else rule.get("above")


def crosses(value: float, rule: dict[str, Any]) -> bool:
    return (rule.get("below") is not None and value < rule["below"]) or \
        (rule.get("above") is not None and value > rule["above"])


def blueprint_steps(session: Session, versions: Sequence[ModelVersion],
           names: dict[str, str]) -> dict[int, tuple[StepStatus, ...]]:
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
            steps.append(StepStatus(step.name, step.role, step.quorum, tuple(a.person for a in approvals),
                                     position=step.position, approvals=approvals, due=due))
        result[version.id] = tuple(steps)
    return result


def version_row(v: ModelVersion, steps: dict[int, tuple[StepStatus, ...]]) -> VersionRow:
    return VersionRow(v.number, v.status.value, v.created_at, v.created_by, v.train_start, v.train_end,
                      v.deployed_at, v.deployed_by or "", dict(v.metrics), str(v.parameters.get("trigger", "")),
                      steps.get(v.id, ()))


def signoffs_of(session: Session, model: Model, names: dict[str, str], limit: int = 50) -> tuple[Decided, ...]:
    rows = session.execute(select(SignOff).join(ModelVersion, SignOff.version_id == ModelVersion.id)
                           .where(ModelVersion.model_id == model.id).options(selectinload(SignOff.step),
                                                                             selectinload(SignOff.version))
                           .order_by(SignOff.created_at.desc(), SignOff.id.desc()).limit(limit)).scalars()
    return tuple(Decided(s.step.name, s.person, names.get(s.person, s.person), s.decision.value, s.reason,
                         s.created_at, s.version.label) for s in rows)


def audit_rows(session: Session, model_key: str, limit: int = MAX_AUDIT,
           actions: Sequence[str] = ()) -> list[AuditEvent]:
    """The model's latest audit events (of these actions, when given), newest first."""
    subject = f"model:{model_key}"
    query = select(AuditEvent).where(or_(AuditEvent.subject == subject, AuditEvent.subject.startswith(subject + "/")))
    if actions:
        query = query.where(AuditEvent.action.in_(actions))
    return list(session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit)).scalars())


def audit_row(e: AuditEvent) -> AuditRow:
    return AuditRow(e.seq, e.at, e.actor, e.action, e.subject, dict(e.details))


def shows_evidence(viewer: Viewer, kind: CheckKind) -> bool:
    """A business reader sees KPI evidence (money, rates); model internals need a technical role."""
    return kind == CheckKind.kpi or viewer.sees_monitoring


def alert_row(alert: Alert, viewer: Viewer) -> AlertRow:
    return AlertRow(alert.id, alert.kind.value, alert.persona, alert.state.value, tuple(alert.subjects),
                    alert.created_at, alert.updated_at, alert.resolved_at, alert.snoozed_until,
                    alert.check_run.message if shows_evidence(viewer, alert.kind) else "")
