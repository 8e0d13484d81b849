"""What `/flywheel status MODEL` and `models` show, gathered in one read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, governance, registry
from store.errors import InvalidTransition
from store.models import ChannelDelivery
from store.models import (PERSONAS, Alert, AlertState, AuditHead, CheckKind, CheckRun, Model, ModelVersion, PersonaChannel,
                          Project, Role, VersionStatus)


@dataclass(frozen=True)
class VersionLine:
    label: str
    number: int
    status: str
    progress: str  # "technical validation: 1 of 1, risk review: 0 of 1" for versions in review


@dataclass(frozen=True)
class ModelStatus:
    key: str
    project: str
    owner: str
    production: str | None
    verdicts: tuple[tuple[str, str, str], ...]  # (kind, verdict, message) of the latest run of each kind
    live_alerts: int
    versions: tuple[VersionLine, ...]  # not in production, newest first


def model_status(*, session: Session, key: str) -> ModelStatus:
    """Three narrow queries: this answers a slash command inside Slack's ack, so it reads only the columns
    it shows (no specs, no check figures)."""
    live = select(func.count(Alert.id)).where(Alert.model_id == Model.id, Alert.state != AlertState.resolved) \
        .scalar_subquery()
    row = session.execute(select(Model.id, Model.key, Model.owner, Project.name, live)
                          .join(Project, Project.id == Model.project_id).where(Model.key == key)).one_or_none()
    if row is None:
        registry.get_model(session=session, key=key)  # raises NotFound with a did-you-mean
    model_id, model_key, owner, project_name, live_alerts = row
    latest = select(CheckRun.kind, CheckRun.verdict, CheckRun.message,
                    func.row_number().over(partition_by=CheckRun.kind,
                                           order_by=(CheckRun.as_of.desc(), CheckRun.id.desc())).label("rank")) \
        .where(CheckRun.model_id == model_id).subquery()
    found = {kind: (verdict, message) for kind, verdict, message, _ in
             session.execute(select(latest).where(latest.c.rank == 1))}
    verdicts = tuple((kind.value, found[kind][0].value, found[kind][1]) for kind in CheckKind if kind in found)
    production, others = None, []
    versions = session.execute(
        select(ModelVersion.id, ModelVersion.number, ModelVersion.status)
        .where(ModelVersion.model_id == model_id, ModelVersion.status.in_(_SHOWN))
        .order_by(ModelVersion.number.desc())).all()
    for version_id, number, status in versions:
        if status == VersionStatus.production:
            production = f"v{number}"
            continue
        progress = ""
        if status == VersionStatus.in_review:
            version = session.get(ModelVersion, version_id)
            progress = ", ".join(p.describe() for p in governance.progress(session=session, version=version))
        others.append(VersionLine(f"v{number}", number, status.value, progress))
    return ModelStatus(model_key, project_name, owner, production, verdicts, live_alerts, tuple(others))


def freshness(*, session: Session, model_key: str) -> tuple[int, int]:
    """Changes whenever the model's status could: every version, sign-off and alert change is audited
    (commands typed are audited too but change nothing), and every check of it writes a run; checks of
    other models (a whole cycle of them) leave it alone. Two index lookups, so a cached status is checked
    in well under a millisecond."""
    audit_seq = select(AuditHead.changed_seq).where(AuditHead.id == 1).scalar_subquery()
    model_id = select(Model.id).where(Model.key == model_key).scalar_subquery()
    last_run = select(func.max(CheckRun.id)).where(CheckRun.model_id == model_id).scalar_subquery()
    seq, run = session.execute(select(audit_seq, last_run)).one()
    return seq or 0, run or 0


_SHOWN = (VersionStatus.production, VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved)


def set_channel(*, session: Session, project_key: str, persona: str, channel: str, actor: str,
                delivery: ChannelDelivery | str | None = None) -> ChannelDelivery:
    """Point a persona's alerts at a channel; `delivery` None keeps the channel's current mode.

    Returns the mode in force. Only business channels take a daily digest: the other personas act on
    alerts (retrain, sign off, roll back), so theirs arrive as they happen.
    """
    if persona not in {p.value for p in PERSONAS}:
        raise InvalidTransition(f"'{persona}' is not a persona; use one of "
                                f"{', '.join(p.value for p in PERSONAS)}.")
    if delivery is not None and delivery not in {d.value for d in ChannelDelivery}:
        raise InvalidTransition(f"'{delivery}' is not a way to deliver alerts; use "
                                f"{' or '.join(d.value for d in ChannelDelivery)}.")
    if delivery == ChannelDelivery.digest and persona != Role.business:
        raise InvalidTransition(f"Only business channels can take a daily digest; {persona.replace('_', ' ')} "
                                "alerts need acting on, so they arrive as they happen.")
    project = registry.get_project(session=session, key=project_key)
    existing = next((c for c in project.channels if c.persona == persona), None)
    if existing:
        existing.channel = channel
        if delivery is not None:
            existing.delivery = ChannelDelivery(delivery)
    else:
        existing = PersonaChannel(persona=persona, channel=channel,
                                  delivery=ChannelDelivery(delivery or ChannelDelivery.immediate))
        project.channels.append(existing)
    session.flush()
    audit.record(session=session, actor=actor, action="channel.subscribed", subject=f"project:{project.key}",
                 details={"persona": persona, "channel": channel, "delivery": existing.delivery.value})
    return existing.delivery


def projects_of(*, session: Session, slack_id: str) -> list[str]:
    """Projects a person holds a role on, owns, sponsors or owns a model in."""
    person = registry.get_person(session=session, slack_id=slack_id)
    granted = person.project_ids() if person else set()
    keys = []
    for project in registry.list_projects(session=session):
        if project.id in granted or slack_id == project.owner or slack_id in project.sponsors or \
                any(m.owner == slack_id for m in project.models):
            keys.append(project.key)
    return keys


ROLE_WORDS = {Role.business: "business", Role.ml_engineer: "ML engineer", Role.risk_manager: "risk manager",
              Role.it_ops: "IT operations", Role.admin: "admin"}
