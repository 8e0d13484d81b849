"""What `/flywheel status MODEL` and `models` show, gathered in one read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from store import audit, governance, monitoring, registry
from store.errors import InvalidTransition
from store.models import PERSONAS, CheckKind, PersonaChannel, Role, VersionStatus


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
    model = registry.get_model(session=session, key=key)
    production = registry.production_version(session=session, model=model)
    verdicts = []
    for kind in CheckKind:
        history = monitoring.check_history(session=session, model=model, kind=kind, limit=1)
        if history:
            verdicts.append((kind.value, history[-1].verdict.value, history[-1].message))
    others = []
    for version in sorted(model.versions, key=lambda v: -v.number):
        if version.status in (VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved):
            progress = ", ".join(p.describe() for p in governance.progress(session=session, version=version)) \
                if version.status == VersionStatus.in_review else ""
            others.append(VersionLine(version.label, version.number, version.status.value, progress))
    return ModelStatus(model.key, model.project.name, model.owner, production.label if production else None,
                       tuple(verdicts), len(monitoring.live_alerts(session=session, model=model)), tuple(others))


def set_channel(*, session: Session, project_key: str, persona: str, channel: str, actor: str) -> None:
    if persona not in {p.value for p in PERSONAS}:
        raise InvalidTransition(f"'{persona}' is not a persona; use one of "
                                f"{', '.join(p.value for p in PERSONAS)}.")
    project = registry.get_project(session=session, key=project_key)
    existing = next((c for c in project.channels if c.persona == persona), None)
    if existing:
        existing.channel = channel
    else:
        project.channels.append(PersonaChannel(persona=persona, channel=channel))
    session.flush()
    audit.record(session=session, actor=actor, action="channel.subscribed", subject=f"project:{project.key}",
                 details={"persona": persona, "channel": channel})


def projects_of(*, session: Session, slack_id: str) -> list[str]:
    """Projects a person owns, sponsors or owns a model in."""
    keys = []
    for project in registry.list_projects(session=session):
        if slack_id == project.owner or slack_id in project.sponsors or \
                any(m.owner == slack_id for m in project.models):
            keys.append(project.key)
    return keys


ROLE_WORDS = {Role.business: "business", Role.ml_engineer: "ML engineer", Role.risk_manager: "risk manager",
              Role.it_ops: "IT operations", Role.admin: "admin"}
