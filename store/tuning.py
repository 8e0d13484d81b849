"""Threshold suggestions and accepted overrides: what feedback proposed and what people decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import audit
from store.clock import utcnow
from store.errors import NotFound
from store.models import (
    Alert,
    AlertFeedback,
    CheckKind,
    CheckRun,
    Model,
    SuggestionState,
    ThresholdSuggestion,
    Verdict,
)


@dataclass(frozen=True)
class AlertVotes:
    alert_id: int
    raised_at: datetime
    statistic: float | None  # the feature's statistic in the run that raised the alert
    noise: int
    useful: int


def _statistic(figures: dict[str, Any], feature: str) -> float | None:
    for row in figures.get("features") or []:
        if row.get("feature") == feature and isinstance(row.get("statistic"), int | float):
            return float(row["statistic"])
    return None


def judged_drift_alerts(*, session: Session, model: Model, feature: str, limit: int = 20) -> list[AlertVotes]:
    """The latest drift alerts on the feature that someone marked, newest first, with their votes."""
    alerts = session.execute(
        select(Alert, CheckRun.figures).join(CheckRun, CheckRun.id == Alert.check_run_id)
        .where(Alert.model_id == model.id, Alert.kind == CheckKind.drift)
        .where(Alert.id.in_(select(AlertFeedback.alert_id)))
        .order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit * 4)).all()
    votes: dict[int, list[bool]] = {}
    ids = [a.id for a, _ in alerts]
    for alert_id, noise in session.execute(select(AlertFeedback.alert_id, AlertFeedback.noise)
                                           .where(AlertFeedback.alert_id.in_(ids))):
        votes.setdefault(alert_id, []).append(noise)
    found = [AlertVotes(a.id, a.created_at, _statistic(figures, feature), sum(votes[a.id]),
                        sum(not v for v in votes[a.id]))
             for a, figures in alerts if feature in (a.subjects or [])]
    return found[:limit]


def recent_drift_statistics(*, session: Session, model: Model, feature: str, limit: int = 8
                            ) -> list[tuple[datetime, float]]:
    """The feature's drift statistic in the model's latest drift checks, oldest first."""
    runs = session.execute(
        select(CheckRun.window_end, CheckRun.figures)
        .where(CheckRun.model_id == model.id, CheckRun.kind == CheckKind.drift, CheckRun.verdict != Verdict.error)
        .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(limit)).all()
    found = [(end, value) for end, figures in runs if (value := _statistic(figures, feature)) is not None]
    return list(reversed(found))


def suggest(*, session: Session, model: Model, kind: CheckKind, subject: str, current: float, proposed: float,
            evidence: dict[str, Any], now: datetime | None = None) -> ThresholdSuggestion | None:
    """Record a suggestion, unless one for the same threshold is already waiting or the same proposal was
    dismissed (None then)."""
    dismissed = session.execute(select(ThresholdSuggestion.id).where(
        ThresholdSuggestion.model_id == model.id, ThresholdSuggestion.kind == kind,
        ThresholdSuggestion.subject == subject, ThresholdSuggestion.proposed == proposed,
        ThresholdSuggestion.state == SuggestionState.dismissed)).first()
    if dismissed is not None:
        return None
    suggestion = ThresholdSuggestion(model_id=model.id, kind=kind, subject=subject, current=current,
                                     proposed=proposed, evidence=evidence, created_at=now or utcnow())
    session.flush()
    try:
        with session.begin_nested():  # the partial unique index: one waiting per threshold, whoever races
            session.add(suggestion)
            session.flush()
    except IntegrityError:
        return None
    audit.record(session=session, actor="flywheel", action="threshold.suggested",
                 subject=f"model:{model.key}", details={"kind": kind.value, "subject": subject, "current": current,
                                                        "proposed": proposed, **evidence}, at=now)
    return suggestion


def last_dismissed(*, session: Session, model: Model, kind: CheckKind, subject: str) -> datetime | None:
    """When people last dismissed a suggestion for this threshold: only alerts raised after it count again."""
    return session.execute(select(ThresholdSuggestion.decided_at).where(
        ThresholdSuggestion.model_id == model.id, ThresholdSuggestion.kind == kind,
        ThresholdSuggestion.subject == subject, ThresholdSuggestion.state == SuggestionState.dismissed)
        .order_by(ThresholdSuggestion.decided_at.desc()).limit(1)).scalar_one_or_none()


def get_suggestion(*, session: Session, suggestion_id: int) -> ThresholdSuggestion:
    suggestion = session.get(ThresholdSuggestion, suggestion_id)
    if suggestion is None:
        raise NotFound(f"Threshold suggestion {suggestion_id} no longer exists.")
    return suggestion


def decide(*, session: Session, suggestion: ThresholdSuggestion, accept: bool, by: str, reason: str = "",
           now: datetime | None = None) -> bool:
    """Accept or dismiss a waiting suggestion, once: False when it was already decided (by anyone). An
    accepted one replaces the override accepted before it for the same threshold."""
    now = now or utcnow()
    state = SuggestionState.accepted if accept else SuggestionState.dismissed
    moved = session.execute(
        update(ThresholdSuggestion)
        .where(ThresholdSuggestion.id == suggestion.id, ThresholdSuggestion.state == SuggestionState.open)
        .values(state=state, decided_by=by, decided_at=now, reason=reason[:500])
        .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        session.refresh(suggestion)
        return False
    if accept:
        session.execute(
            update(ThresholdSuggestion)
            .where(ThresholdSuggestion.model_id == suggestion.model_id, ThresholdSuggestion.kind == suggestion.kind,
                   ThresholdSuggestion.subject == suggestion.subject, ThresholdSuggestion.id != suggestion.id,
                   ThresholdSuggestion.state == SuggestionState.accepted)
            .values(state=SuggestionState.replaced).execution_options(synchronize_session=False))
    session.refresh(suggestion)
    audit.record(session=session, actor=by, action=f"threshold.{state.value}", subject=f"model:{suggestion.model.key}",
                 details={"kind": suggestion.kind.value, "subject": suggestion.subject, "from": suggestion.current,
                          "to": suggestion.proposed, "reason": reason}, at=now)
    return True


def overrides(*, session: Session, model_id: int, kind: CheckKind = CheckKind.drift) -> dict[str, ThresholdSuggestion]:
    """The accepted overrides in force for a model's check: subject -> its accepted suggestion."""
    return {s.subject: s for s in session.execute(select(ThresholdSuggestion).where(
        ThresholdSuggestion.model_id == model_id, ThresholdSuggestion.kind == kind,
        ThresholdSuggestion.state == SuggestionState.accepted)).scalars()}


def adopt(*, session: Session, suggestion: ThresholdSuggestion, by: str, now: datetime | None = None) -> None:
    """The spec now says what the override said: the override steps aside (`flywheel apply`)."""
    suggestion.state = SuggestionState.adopted
    audit.record(session=session, actor=by, action="threshold.adopted", subject=f"model:{suggestion.model.key}",
                 details={"kind": suggestion.kind.value, "subject": suggestion.subject, "value": suggestion.proposed},
                 at=now)
    session.flush()
