"""Digests: many alerts in one message.

A storm digest replaces the alert posts the outbox held for one channel when more models breached
in one check cycle than a channel should take one by one. A daily digest is what a business channel
subscribed with `digest` gets instead of immediate alerts: once a day, the KPI alerts opened, still
open and resolved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from store import outbox
from store.errors import Conflict, InvalidTransition, NotFound
from store.models import (
    Alert,
    AlertState,
    ChannelDelivery,
    CheckKind,
    CheckRun,
    Digest,
    DigestKind,
    Model,
    ModelVersion,
    OutboxMessage,
    OutboxState,
    PersonaChannel,
    VersionStatus,
)

FAR, WELL = 3.0, 1.5  # how many times its line a figure is: far past it, well past it, else just past


@dataclass(frozen=True)
class DigestAlert:
    """One alert as a digest line shows it: plain data read in one unit of work."""

    alert_id: int
    model_key: str
    project_name: str
    version: str | None  # the production version's label
    kind: CheckKind
    persona: str
    state: AlertState
    snoozed_until: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    window_start: datetime
    window_end: datetime
    figures: dict[str, Any]  # of the run that raised it or last repeated it
    latest: dict[str, Any] = field(default_factory=dict)  # of the model's latest run of this kind
    rules: dict[str, dict[str, float]] = field(default_factory=dict)  # performance: metric -> {"below": x}

    @property
    def overshoot(self) -> float:
        """How many times its alert line the worst breaching figure is (1 = on the line)."""
        return max(_overshoots(self), default=1.0)


def _ratio(value: float | None, line: float | None, above: bool) -> float | None:
    if value is None or line is None:
        return None
    if above:
        return value / line if line > 0 else None
    return line / value if value > 0 else FAR


def _overshoots(alert: DigestAlert) -> list[float]:
    figures = alert.figures
    if alert.kind == CheckKind.drift:
        return [f.get("severity") or (f["statistic"] / f["threshold"] if f["threshold"] else 1.0)
                for f in figures.get("features", []) if f.get("drifted")]
    if alert.kind == CheckKind.kpi:
        found = []
        for k in figures.get("kpis", []):
            if not k.get("breached"):
                continue
            above = "below" not in k.get("rule", "")
            found.append(_ratio(k["value"], k["threshold"], above) if k.get("threshold") is not None
                         else _ratio(k["value"], k.get("baseline"), above))
        return [r for r in found if r is not None]
    if alert.kind == CheckKind.performance:
        found = []
        for metric in figures.get("breaches", []):
            rule, value = alert.rules.get(metric, {}), figures.get("metrics", {}).get(metric)
            found.append(_ratio(value, rule.get("below"), False) if rule.get("below") is not None
                         else _ratio(value, rule.get("above"), True))
        return [r for r in found if r is not None]
    # Data quality: a missing or retyped column, or no rows at all, breaks scoring outright.
    schema = figures.get("schema", {})
    broken = schema.get("missing") or schema.get("changed") or figures.get("rows") == 0
    return [FAR if broken else WELL]


def _rules(model: Model) -> dict[str, dict[str, float]]:
    alert = ((model.spec or {}).get("performance") or {}).get("alert") or {}
    return {m: {k: v for k, v in (r or {}).items() if k in ("below", "above") and v is not None}
            for m, r in alert.items()}


def _describe(session: Session, alerts: list[Alert]) -> dict[int, DigestAlert]:
    if not alerts:
        return {}
    runs = {r.id: r for r in session.execute(
        select(CheckRun).where(CheckRun.id.in_({a.check_run_id for a in alerts}))).scalars()}
    models = {m.id: m for m in session.execute(
        select(Model).where(Model.id.in_({a.model_id for a in alerts}))).scalars()}
    production = dict(session.execute(
        select(ModelVersion.model_id, ModelVersion.number).where(
            ModelVersion.model_id.in_(models), ModelVersion.status == VersionStatus.production)).all())
    latest: dict[tuple[int, CheckKind], dict] = {}
    for alert in alerts:
        key = (alert.model_id, alert.kind)
        if key not in latest:
            run = session.execute(select(CheckRun.figures).where(
                CheckRun.model_id == alert.model_id, CheckRun.kind == alert.kind)
                .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(1)).scalar_one_or_none()
            latest[key] = dict(run or {})
    described = {}
    for alert in alerts:
        run, model = runs[alert.check_run_id], models[alert.model_id]
        number = production.get(model.id)
        described[alert.id] = DigestAlert(
            alert_id=alert.id, model_key=model.key, project_name=model.project.name,
            version=f"v{number}" if number is not None else None, kind=alert.kind, persona=alert.persona,
            state=alert.state, snoozed_until=alert.snoozed_until, opened_at=alert.created_at,
            resolved_at=alert.resolved_at, window_start=run.window_start, window_end=run.window_end,
            figures=dict(run.figures), latest=latest[(alert.model_id, alert.kind)], rules=_rules(model))
    return described


# --- storms -------------------------------------------------------------------------------------

def held_models(*, session: Session, rows: list[OutboxMessage]) -> set[int]:
    """The distinct models whose alerts these held posts announce."""
    ids = [r.alert_id for r in rows if r.alert_id is not None]
    return set(session.execute(select(Alert.model_id).where(Alert.id.in_(ids))).scalars()) if ids else set()


def fold_storm(*, session: Session, channel: str, rows: list[OutboxMessage], now: datetime) -> Digest:
    """Replace held alert posts by one storm digest (its message is the caller's to queue).

    The posts are marked digested and never go out alone; each alert remembers its digest, so its
    repeats and resolution reach the digest's thread. Lines are ordered worst model first.
    """
    alerts = list(session.execute(select(Alert).where(Alert.id.in_([r.alert_id for r in rows]))).scalars())
    described = _describe(session, alerts)
    worst: dict[str, float] = defaultdict(float)
    for d in described.values():
        worst[d.model_key] = max(worst[d.model_key], d.overshoot)
    ordered = sorted(described.values(), key=lambda d: (-worst[d.model_key], d.model_key, -d.overshoot, d.alert_id))
    persona = Counter(d.persona for d in ordered).most_common(1)[0][0]
    digest = Digest(kind=DigestKind.storm, channel=channel, persona=persona,
                    alert_ids=[d.alert_id for d in ordered], created_at=now)
    session.add(digest)
    session.flush()
    for alert in alerts:
        alert.digest_id, alert.message_ts = digest.id, None
    for row in rows:
        row.state, row.held = OutboxState.digested, False
    session.flush()
    return digest


def adopt_children(*, session: Session) -> int:
    """What was queued for alert posts a storm digest replaced follows them into the digest.

    An update becomes the content a click will post; a reply moves to the digest's thread, naming
    the model, since many models share that thread. Run on every pass of the sender, so a reply
    queued while the storm was being folded is not left waiting for a post that never goes out.
    """
    parent = aliased(OutboxMessage)
    found = session.execute(
        select(OutboxMessage, parent).join(parent, OutboxMessage.parent_id == parent.id)
        .where(OutboxMessage.state == OutboxState.pending, parent.state == OutboxState.digested)
        .order_by(OutboxMessage.id)).all()
    for child, post in found:
        if child.kind == "update":
            post.payload = dict(child.payload)
            child.state = OutboxState.digested
            continue
        alert = session.get(Alert, post.alert_id)
        thread = alert.digest.message_ref if alert is not None and alert.digest is not None else None
        if thread is None:
            continue
        child.parent_id = outbox.row_id_of(thread)
        child.target_ref = None if child.parent_id else thread
        child.payload = {**child.payload, "text": f"*{alert.model.key}* · {child.payload.get('text', '')}"}
    session.flush()
    return len(found)


def storm_lines(*, session: Session, digest: Digest) -> list[DigestAlert]:
    alerts = list(session.execute(select(Alert).where(Alert.digest_id == digest.id)).scalars())
    described = _describe(session, alerts)
    return [described[i] for i in digest.alert_ids if i in described]


def full_message_row(*, session: Session, alert_id: int) -> OutboxMessage | None:
    """The alert's own message, kept (and kept current) for posting on demand in the digest's thread."""
    return session.execute(select(OutboxMessage).where(
        OutboxMessage.alert_id == alert_id, OutboxMessage.kind == "post",
        OutboxMessage.state == OutboxState.digested).order_by(OutboxMessage.id.desc()).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class Opened:
    model_key: str
    refs: tuple[str, ...]  # each alert's full message in the digest's thread (outbox ref or CHANNEL:TS)
    queued_now: bool  # False: an earlier click had already put them there

    @property
    def posted(self) -> str | None:
        """The first of them already in Slack, as CHANNEL:TS."""
        return next((r for r in self.refs if outbox.row_id_of(r) is None), None)


def open_thread(*, session: Session, alert_id: int, now: datetime) -> Opened:
    """Queue the full alerts of the clicked model into the digest's thread, once whoever clicks.

    Each alert is claimed with a conditional update in the same unit of work as its reply row: of
    two simultaneous clicks one queues the reply, the other finds it.
    """
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"Alert {alert_id} no longer exists.")
    digest = alert.digest
    if digest is None or not digest.message_ref:
        raise InvalidTransition("That alert is not part of a digest, so it has no thread to open.")
    siblings = [a for a in session.execute(select(Alert).where(
        Alert.digest_id == digest.id, Alert.model_id == alert.model_id)).scalars()]
    siblings.sort(key=lambda a: digest.alert_ids.index(a.id) if a.id in digest.alert_ids else a.id)
    queued = False
    for sibling in siblings:
        if sibling.digest_thread_ref:
            continue
        full = full_message_row(session=session, alert_id=sibling.id)
        if full is None:
            continue
        savepoint = session.begin_nested()
        row_id = outbox.enqueue(session=session, kind="reply", channel=None, payload=dict(full.payload),
                                thread=digest.message_ref, now=now)
        claimed = session.execute(update(Alert).where(Alert.id == sibling.id, Alert.digest_thread_ref.is_(None))
                                  .values(digest_thread_ref=outbox.ref_of(row_id))).rowcount
        if claimed:
            savepoint.commit()
            queued = True
        else:
            savepoint.rollback()
    for sibling in siblings:
        session.refresh(sibling)
    return Opened(alert.model.key, tuple(a.digest_thread_ref for a in siblings if a.digest_thread_ref), queued)


# --- daily digests ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DailyChannel:
    """What a digest channel hears about one period: each alert opened, still open or resolved in it."""

    channel: str
    persona: str
    alerts: tuple[DigestAlert, ...]


def digest_channels(*, session: Session) -> dict[str, list[PersonaChannel]]:
    rows = session.execute(select(PersonaChannel).where(PersonaChannel.delivery == ChannelDelivery.digest)
                           .order_by(PersonaChannel.channel, PersonaChannel.id)).scalars()
    found: dict[str, list[PersonaChannel]] = defaultdict(list)
    for row in rows:
        found[row.channel].append(row)
    return dict(found)


def held_for_daily(*, session: Session, alert: Alert) -> bool:
    """Does this alert wait for its channel's daily digest instead of being posted now?"""
    return session.execute(select(PersonaChannel.id).join(Model, Model.project_id == PersonaChannel.project_id).where(
        Model.id == alert.model_id, PersonaChannel.persona == alert.persona,
        PersonaChannel.channel == alert.channel,
        PersonaChannel.delivery == ChannelDelivery.digest)).first() is not None


def daily_report(*, session: Session, since: datetime, until: datetime) -> list[DailyChannel]:
    """Per digest channel not yet sent for this period: alerts opened, still open or resolved in it."""
    report = []
    for channel, subscriptions in digest_channels(session=session).items():
        if daily_sent(session=session, channel=channel, period_end=until):
            continue
        alerts = []
        for sub in subscriptions:
            alerts += session.execute(select(Alert).join(Model, Alert.model_id == Model.id).where(
                Model.project_id == sub.project_id, Alert.persona == sub.persona, Alert.created_at < until,
                (Alert.state != AlertState.resolved) | (Alert.resolved_at >= since))).scalars()
        described = _describe(session, alerts)
        ordered = sorted(described.values(), key=lambda d: (d.model_key, d.opened_at, d.alert_id))
        report.append(DailyChannel(channel, subscriptions[0].persona, tuple(ordered)))
    return report


def daily_sent(*, session: Session, channel: str, period_end: datetime) -> bool:
    found = session.execute(select(Digest.id).where(
        Digest.kind == DigestKind.daily, Digest.channel == channel, Digest.period_end == period_end)).first()
    return found is not None


def record_daily(*, session: Session, channel: str, persona: str, since: datetime, until: datetime,
                 message_ref: str, alert_ids: list[int], now: datetime) -> Digest:
    digest = Digest(kind=DigestKind.daily, channel=channel, persona=persona, message_ref=message_ref,
                    alert_ids=alert_ids, period_start=since, period_end=until, created_at=now)
    try:
        with session.begin_nested():
            session.add(digest)
            session.flush()
    except IntegrityError:
        raise Conflict(f"the daily digest for {channel} up to {until:%Y-%m-%d %H:%M} was already sent") from None
    return digest
