"""Check runs and the alerts they raise."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from store import audit
from store.clock import utcnow
from store.errors import InvalidTransition, NotFound
from store.models import Alert, AlertFeedback, AlertState, CheckKind, CheckRun, Model, ModelVersion, Verdict


def record_check_run(*, session: Session, model: Model, version: ModelVersion | None, kind: CheckKind,
                     window_start: datetime, window_end: datetime, as_of: datetime,
                     figures: dict[str, Any], verdict: Verdict, message: str,
                     now: datetime | None = None) -> CheckRun:
    run = CheckRun(model_id=model.id, version_id=version.id if version else None, kind=kind,
                   window_start=window_start, window_end=window_end, as_of=as_of, figures=figures,
                   verdict=verdict, message=message, created_at=now or utcnow())
    session.add(run)
    session.flush()
    return run


def check_history(*, session: Session, model: Model, kind: CheckKind, before: datetime | None = None,
                  limit: int = 52) -> list[CheckRun]:
    """The model's latest runs of one kind, oldest first."""
    query = select(CheckRun).where(CheckRun.model_id == model.id, CheckRun.kind == kind)
    if before is not None:
        query = query.where(CheckRun.as_of < before)
    rows = session.execute(query.order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(limit)).scalars()
    return list(reversed(list(rows)))


def fingerprint(*, model_key: str, kind: CheckKind | str, persona: str, subjects: Iterable[str]) -> str:
    """Same model, check, persona and set of breaching features/KPIs = the same incident."""
    key = "|".join([model_key, str(kind), persona, ",".join(sorted(set(subjects)))])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def raise_alert(*, session: Session, run: CheckRun, persona: str, subjects: Iterable[str],
                channel: str | None, now: datetime | None = None) -> tuple[Alert, bool]:
    """Open an alert for a breaching run, or attach the run to the live alert of the same incident.

    The same incident is the same fingerprint, or a live alert of the same model, check and persona
    whose breaching features/KPIs overlap these: one KPI recovering while another still breaches
    is the incident going on, not a new one. Returns the alert and whether it is new.
    """
    now = now or utcnow()
    subjects = sorted(set(subjects))
    model = session.get(Model, run.model_id)
    print_ = fingerprint(model_key=model.key, kind=run.kind, persona=persona, subjects=subjects)
    live = session.execute(select(Alert).where(Alert.fingerprint == print_,
                                               Alert.state != AlertState.resolved)).scalar_one_or_none()
    if live is None:
        live = next((a for a in session.execute(
            select(Alert).where(Alert.model_id == model.id, Alert.kind == run.kind, Alert.persona == persona,
                                Alert.state != AlertState.resolved)).scalars()
            if set(a.subjects) & set(subjects)), None)
    if live is not None:
        live.check_run_id = run.id
        live.fingerprint, live.subjects = print_, subjects
        live.updated_at = now
        session.flush()
        return live, False
    alert = Alert(check_run_id=run.id, model_id=run.model_id, kind=run.kind, persona=persona,
                  fingerprint=print_, subjects=subjects, state=AlertState.open, channel=channel,
                  created_at=now, updated_at=now)
    session.add(alert)
    session.flush()
    # The run, written in this unit of work, already moves the model's status freshness (its latest run).
    audit.record(session=session, actor="flywheel", action="alert.opened",
                 subject=f"model:{model.key}", at=now, changes_status=False,
                 details={"alert": alert.id, "kind": run.kind.value, "persona": persona, "subjects": subjects})
    return alert, True


def resolve_alerts(*, session: Session, model: Model, kind: CheckKind, now: datetime | None = None) -> list[Alert]:
    """Resolve the model's live alerts of one kind after a passing check, in the unit of work that records
    its run: the run is what tells a cached status that the model's open alerts changed."""
    now = now or utcnow()
    live = session.execute(select(Alert).where(Alert.model_id == model.id, Alert.kind == kind,
                                               Alert.state != AlertState.resolved)).scalars().all()
    for alert in live:
        alert.state = AlertState.resolved
        alert.resolved_at = now
        alert.updated_at = now
        audit.record(session=session, actor="flywheel", action="alert.resolved",
                     subject=f"model:{model.key}", details={"alert": alert.id}, at=now, changes_status=False)
    session.flush()
    return list(live)


@dataclass(frozen=True)
class Superseded:
    """The alerts a new production version resolved: their ids, oldest first, and each one's persona."""
    ids: tuple[int, ...] = ()
    personas: tuple[str, ...] = ()


def resolve_superseded(*, session: Session, live: ModelVersion, now: datetime | None = None) -> Superseded:
    """Resolve the model's live alerts opened against another version than `live`, which has just gone to
    production: what they were about no longer serves."""
    now = now or utcnow()
    stale = session.execute(
        select(Alert).join(CheckRun, CheckRun.id == Alert.check_run_id)
        .where(Alert.model_id == live.model_id, Alert.state != AlertState.resolved,
               CheckRun.version_id.is_not(None), CheckRun.version_id != live.id)
        .order_by(Alert.created_at, Alert.id)).scalars().all()
    for alert in stale:
        alert.state, alert.resolved_at, alert.updated_at = AlertState.resolved, now, now
        audit.record(session=session, actor="flywheel", action="alert.resolved", subject=f"model:{live.model.key}",
                     details={"alert": alert.id, "superseded_by": live.label}, at=now)
    session.flush()
    return Superseded(tuple(a.id for a in stale), tuple(a.persona for a in stale))


def live_alerts(*, session: Session, model: Model | None = None) -> list[Alert]:
    query = select(Alert).where(Alert.state != AlertState.resolved)
    if model is not None:
        query = query.where(Alert.model_id == model.id)
    return list(session.execute(query.order_by(Alert.created_at)).scalars())


_ALERTS, _MODELS = Alert.__table__, Model.__table__
# Built once: Acknowledge is the most clicked button, and building a statement costs more than running it.
_ALERT_STATE = (select(_ALERTS.c.state, _ALERTS.c.acknowledged_by, _ALERTS.c.acknowledged_at, _MODELS.c.key)
                .join(_MODELS, _MODELS.c.id == _ALERTS.c.model_id).where(_ALERTS.c.id == bindparam("alert_id")))
# Conditional on the state: of two acknowledgements at once, the second changes no row.
_ACKNOWLEDGE = (update(_ALERTS).where(_ALERTS.c.id == bindparam("alert_id"),
                                      _ALERTS.c.state.in_([AlertState.open, AlertState.snoozed]))
                .values(state=AlertState.acknowledged, updated_at=bindparam("now"), acknowledged_by=bindparam("by"),
                        acknowledged_at=bindparam("now")))


class AlreadyAcknowledged(InvalidTransition):
    """Refused because the alert is acknowledged already: `by` and `at` say whose acknowledgement stands."""

    def __init__(self, by: str | None, at: datetime | None):
        super().__init__("This alert is already acknowledged.")
        self.by, self.at = by, at


def acknowledge(*, session: Session, alert_id: int, now: datetime, by: str | None = None) -> str:
    """Mark an alert acknowledged (reminders stop); returns its model's key. A resolved alert stays resolved;
    an acknowledged one is refused with `AlreadyAcknowledged`, so a repeated click changes nothing."""
    connection = session.connection()
    found = connection.execute(_ALERT_STATE, {"alert_id": alert_id}).one_or_none()
    if found is None:
        raise NotFound(f"Alert {alert_id} no longer exists.")
    if found.state == AlertState.resolved:
        raise InvalidTransition("This alert is already resolved.")
    if found.state == AlertState.acknowledged:
        raise AlreadyAcknowledged(found.acknowledged_by, found.acknowledged_at)
    if connection.execute(_ACKNOWLEDGE, {"alert_id": alert_id, "now": now, "by": by}).rowcount != 1:
        again = connection.execute(_ALERT_STATE, {"alert_id": alert_id}).one()
        raise AlreadyAcknowledged(again.acknowledged_by, again.acknowledged_at)
    return found.key


def mark_posted(*, session: Session, alert: Alert, channel: str, message_ts: str) -> None:
    alert.channel = channel
    alert.message_ts = message_ts
    session.flush()


def record_feedback(*, session: Session, alert_id: int, person: str, noise: bool,
                    now: datetime | None = None) -> None:
    """A person marks an alert useful or noise; asking again changes their vote, never adds one."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alert {alert_id} no longer exists.")
    vote = session.execute(select(AlertFeedback).where(AlertFeedback.alert_id == alert_id,
                                                       AlertFeedback.person == person)).scalar_one_or_none()
    if vote is None:
        session.add(AlertFeedback(alert_id=alert_id, person=person, noise=noise, created_at=now or utcnow()))
    else:
        vote.noise, vote.created_at = noise, now or utcnow()
    session.flush()
    audit.record(session=session, actor=person, action="alert.feedback", subject=f"model:{alert.model.key}",
                 details={"alert": alert_id, "noise": noise}, at=now, changes_status=False)


@dataclass(frozen=True)
class NoiseRow:
    model: str
    kind: str
    subject: str  # a feature, KPI, metric or data problem
    alerts: int
    noise: int
    useful: int

    @property
    def noise_share(self) -> float:
        votes = self.noise + self.useful
        return self.noise / votes if votes else 0.0


def noise_report(*, session: Session) -> list[NoiseRow]:
    """Per model and breaching feature or KPI: how many alerts, and how people judged them."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    votes = session.execute(select(AlertFeedback.alert_id, AlertFeedback.noise)).all()
    by_alert: dict[int, list[bool]] = {}
    for alert_id, noise in votes:
        by_alert.setdefault(alert_id, []).append(noise)
    for alert, model_key in session.execute(select(Alert, Model.key).join(Model, Alert.model_id == Model.id)):
        for subject in alert.subjects or ["(none)"]:
            row = counts.setdefault((model_key, alert.kind.value, subject), [0, 0, 0])
            row[0] += 1
            row[1] += sum(by_alert.get(alert.id, []))
            row[2] += sum(not v for v in by_alert.get(alert.id, []))
    rows = [NoiseRow(m, k, s, *c) for (m, k, s), c in counts.items()]
    return sorted(rows, key=lambda r: (-r.noise_share, -r.noise, r.model, r.subject))
