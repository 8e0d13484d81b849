"""The model page: its versions and where each stands in its blueprint, its checks over time, its alerts and audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.services.pages.constants import DEFAULT_DAYS, MAX_ALERTS, MAX_RUNS, RANGES
from bot.services.pages.reads import (
    alert_row,
    audit_row,
    audit_rows,
    blueprint_steps,
    drift_series,
    history,
    kpi_series,
    latest_runs,
    performance,
    person_names,
    sample,
    signoffs_of,
    version_row,
)
from bot.services.pages.shapes import Decided, ModelPage, RunLine
from bot.services.pages.viewer import Viewer
from store import governance, registry
from store.clock import utcnow
from store.errors import NotFound
from store.models import Alert, AlertState, CheckKind, CheckRun, VersionStatus


def model_page(*, session: Session, key: str, viewer: Viewer, days: int = DEFAULT_DAYS,
               now: datetime | None = None) -> ModelPage:
    if days not in RANGES:
        raise NotFound(f"{days} days is not a range the page shows; use one of {', '.join(map(str, RANGES))}.")
    model = registry.get_model(session=session, key=key)
    viewer = viewer.within(model.project)
    recent = latest_runs(session, model.id, limit=MAX_RUNS)
    until = recent[0].as_of if recent else now or utcnow()
    since = until - timedelta(days=days)
    first = min((session.scalar(select(func.min(CheckRun.as_of)).where(
        CheckRun.model_id == model.id, CheckRun.kind == kind, CheckRun.as_of > since)) for kind in CheckKind),
        key=lambda at: at or until)
    versions = sorted(model.versions, key=lambda v: -v.number)
    reviewed = [v for v in versions if v.status in (VersionStatus.in_review, VersionStatus.approved)]
    names = person_names(session, [model.owner, *(v.created_by for v in versions), *(v.deployed_by or "" for v in versions)])
    steps = blueprint_steps(session, reviewed, names)
    rows = tuple(version_row(v, steps) for v in versions)
    kpi_runs = sample(session, (CheckRun.model_id == model.id, CheckRun.kind == CheckKind.kpi,
                                 CheckRun.as_of > since, CheckRun.as_of <= until))
    alerts = session.execute(select(Alert).where(Alert.model_id == model.id).options(selectinload(Alert.check_run))
                             .order_by((Alert.state == AlertState.resolved), Alert.created_at.desc())
                             .limit(MAX_ALERTS)).scalars()
    page: dict[str, Any] = {
        "key": model.key, "description": model.description, "task": model.task, "tags": tuple(model.tags),
        "owner": model.owner, "project_key": model.project.key, "project_name": model.project.name, "days": days,
        "since": since, "until": until, "start": max(since, first or since), "versions": rows,
        "production": next((r for r in rows if r.status == "production"), None),
        "kpis": kpi_series(kpi_runs, model.spec), "alerts": tuple(alert_row(a, viewer) for a in alerts),
        "monitoring": viewer.sees_monitoring}
    signoffs = signoffs_of(session, model, names)
    if viewer.sees_monitoring:
        drift_runs = sample(session, (CheckRun.model_id == model.id, CheckRun.kind == CheckKind.drift,
                                       CheckRun.as_of > since, CheckRun.as_of <= until))
        audit = audit_rows(session, model.key)
        latest: dict[str, RunLine] = {}
        for run in recent:
            latest.setdefault(run.kind, run)
        page.update(checks=history(session, model, since, until, latest), runs=tuple(recent[:MAX_RUNS]),
                    drift=drift_series(drift_runs), performance=performance(session, model, since, until),
                    audit=tuple(audit_row(e) for e in audit))
        names.update(person_names(session, [e.actor for e in audit]))
    names.update(person_names(session, [s.person for s in signoffs]))
    signoffs = tuple(Decided(s.step, s.person, names.get(s.person, s.person), s.decision, s.reason, s.at, s.version)
                     for s in signoffs)
    blueprint = model.project.blueprint
    shown = blueprint.name + (f" (library blueprint {blueprint.library})" if blueprint and blueprint.library
                              and blueprint.library != blueprint.name else "") if blueprint else "none"
    return ModelPage(**page, signoffs=signoffs, names=names, policy=governance.policy_of(model.project),
                     blueprint=shown)
