"""The alert page: what was found, what happened since, and the evidence the viewer's roles allow."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.blocks.dates import when_text
from bot.services.pages.constants import MAX_EVENTS, TREND_RUNS
from bot.services.pages.reads import alert_row, crosses, person_names, run_line, shows_evidence, threshold_of
from bot.services.pages.shapes import AlertRow, Point, RunLine, Series
from bot.services.pages.viewer import Viewer
from store.errors import NotFound
from store.models import Alert, AuditEvent, CheckKind, CheckRun


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


def happening(e: AuditEvent) -> Happening:
    """One audit event as a sentence that follows the actor's name: "Noor signed off v2 (technical ...)"."""
    d = e.details or {}
    words = _SAID.get(e.action, e.action.replace(".", " ").replace("_", " ")).format(
        v=e.subject.partition("/")[2] or "a version")
    if e.action == "alert.snoozed" and d.get("until"):
        words += f" until {when_text(datetime.fromisoformat(d['until']))}"
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
    evidence = shows_evidence(viewer, alert.kind)
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
                    points[metric].append(Point(r.as_of, float(value), crosses(float(value), rules.get(metric) or {})))
        trends = tuple(Series(m, m, None, tuple(points[m]), threshold_of(rules.get(m) or {})) for m in
                       run.figures.get("breaches", []) if points[m])
    return AlertPage(alert=alert_row(alert, viewer), model_key=model.key, model_owner=model.owner,
                     project_key=model.project.key, project_name=model.project.name,
                     version=run.version.label if run.version else None, channel=alert.channel,
                     run=replace(run_line(run), **hide), evidence=evidence,
                     figures=dict(run.figures) if evidence else {}, since=tuple(happening(e) for e in events),
                     later=tuple(replace(run_line(r), **hide) for r in later), trends=trends,
                     names=person_names(session, [model.owner, *(e.actor for e in events)]))
