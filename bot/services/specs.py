"""Write validated project specs into the registry. Applying the same file twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.services import catalog
from bot.services.tuning import overrides_against
from jobs.spec import BlueprintSpec, BlueprintStepSpec, LoadedSpec, ModelSpec
from store import audit
from store.clock import utcnow
from store.errors import Conflict
from store.models import (
    AUTOMATED,
    Blueprint,
    BlueprintStep,
    Grant,
    Model,
    Person,
    PersonaChannel,
    Project,
    SignOff,
)


@dataclass
class ApplyResult:
    project: str
    changes: list[str] = field(default_factory=list)
    # Not changes: what the registry does differently from the spec (a threshold accepted from feedback).
    differences: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _assign(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set the attributes that differ; return their names."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    return changed


def _people(session: Session, loaded: LoadedSpec, result: ApplyResult) -> dict[str, Person]:
    people = {}
    for spec in loaded.spec.people:
        person = session.execute(select(Person).where(Person.slack_id == spec.slack_id)).scalar_one_or_none()
        if person is None:
            person = Person(slack_id=spec.slack_id, name=spec.name)
            session.add(person)
            result.changes.append(f"added person {spec.name} ({spec.slack_id})")
        elif _assign(person, {"name": spec.name}):
            result.changes.append(f"renamed person {spec.slack_id} to {spec.name}")
        people[spec.slack_id] = person
    return people


def _grants(session: Session, loaded: LoadedSpec, project: Project, people: dict[str, Person],
            result: ApplyResult) -> None:
    """Make this project's grants what its spec says; grants on other projects are not touched."""
    wanted = {(p.slack_id, str(r)) for p in loaded.spec.people for r in p.roles}
    held = {(g.person.slack_id, g.role): g for g in session.execute(
        select(Grant).where(Grant.project_id == project.id)).scalars()}
    for slack_id, role in sorted(wanted - held.keys()):
        people[slack_id].grants.append(Grant(project=project, role=role))
        result.changes.append(f"granted {people[slack_id].name} the {role} role on {project.key}")
    for slack_id, role in sorted(held.keys() - wanted):
        grant = held[(slack_id, role)]
        person = grant.person
        person.grants.remove(grant)
        result.changes.append(f"took the {role} role on {project.key} from {person.name}")


def _project(session: Session, loaded: LoadedSpec, result: ApplyResult, now: datetime) -> Project:
    info = loaded.spec.project
    values = {"name": info.name, "initiative": info.initiative, "description": info.description,
              "owner": info.owner, "sponsors": list(info.sponsors), "risk_tier": str(info.risk_tier),
              "tags": list(info.tags), "deploy_policy": info.deploy_policy,
              "team_id": info.workspace}
    project = session.execute(select(Project).where(Project.key == info.key)).scalar_one_or_none()
    if project is None:
        project = Project(key=info.key, created_at=now, updated_at=now, **values)
        session.add(project)
        result.changes.append(f"created project {info.key}")
    elif changed := _assign(project, values):
        project.updated_at = now
        result.changes.append(f"updated project {info.key}: {', '.join(changed)}")
    _channels(loaded, project, result)
    return project


def _channels(loaded: LoadedSpec, project: Project, result: ApplyResult) -> None:
    """Follow the spec's persona channels where the spec changed them since it was last applied; a channel
    or delivery chosen in Slack (`/flywheel subscribe`) stands while the spec still says what it said."""
    named = {p: c for p, c in loaded.spec.channels.model_dump().items() if c}
    rows = {c.persona: c for c in project.channels}
    for persona in sorted(set(named) | set(rows)):
        wanted, row = named.get(persona), rows.get(persona)
        if row is None:
            project.channels.append(PersonaChannel(persona=persona, channel=wanted, spec_channel=wanted))
            result.changes.append(f"set the {persona} channel of {project.key} to {wanted}")
        elif row.spec_channel == wanted:
            continue  # the spec did not change here: whatever Slack set stands
        elif wanted is not None:
            row.channel, row.spec_channel = wanted, wanted
            result.changes.append(f"set the {persona} channel of {project.key} to {wanted}")
        elif row.channel == row.spec_channel:  # dropped from the spec, and not re-chosen in Slack since
            project.channels.remove(row)
            result.changes.append(f"removed the {persona} channel of {project.key}")
        else:
            row.spec_channel = None  # dropped from the spec, but chosen in Slack: Slack's choice stands


def _blueprint(session: Session, loaded: LoadedSpec, project: Project, result: ApplyResult) -> None:
    result.changes += materialise(session=session, project=project, spec=loaded.blueprint, library=loaded.library,
                                  by_tier=loaded.by_tier, origin=loaded.path.name)


def _step_values(step: BlueprintStepSpec) -> dict[str, Any]:
    return {"name": step.name, "role": str(step.role) if step.role else AUTOMATED, "quorum": step.quorum,
            "people": list(step.people) or None, "parallel": step.parallel,
            "check": step.check.model_dump(mode="json", exclude_none=True) if step.check else None}


def materialise(*, session: Session, project: Project, spec: BlueprintSpec, library: str | None, by_tier: bool,
                origin: str) -> list[str]:
    """Make the project's own blueprint rows what `spec` says (its sign-off history stays the project's); a step
    some version has signed can't be removed. `library`: the library blueprint it copies (None: inline)."""
    changes = []
    created = project.blueprint is None
    if created:
        project.blueprint = Blueprint(name=spec.name)
        changes.append(f"created blueprint {spec.name}")
    blueprint = project.blueprint
    if _assign(blueprint, {"name": spec.name}):
        changes.append(f"renamed blueprint to {spec.name}")
    changed = _assign(blueprint, {"library": library, "by_tier": by_tier, "policy": str(spec.policy)})
    if changed and not created:  # a new blueprint's origin and policy are not news
        changes.append(f"blueprint {spec.name} of {project.key}: {', '.join(changed)} now "
                       f"{', '.join(str(getattr(blueprint, c)) for c in changed)}")
    existing = {s.position: s for s in blueprint.steps}
    for position, step in enumerate(spec.steps, start=1):
        values = _step_values(step)
        if position not in existing:
            blueprint.steps.append(BlueprintStep(position=position, **values))
            changes.append(f"added blueprint step {step.name}")
        elif changed := _assign(existing[position], values):
            changes.append(f"updated blueprint step {position}: {', '.join(changed)}")
    for position, step in existing.items():
        if position > len(spec.steps):
            signed = session.execute(select(func.count()).select_from(SignOff)
                                     .where(SignOff.step_id == step.id)).scalar()
            if signed:
                raise Conflict(f"{origin}: blueprint step '{step.name}' has {signed} sign-offs recorded against it "
                               f"on {project.key} and can't be removed; keep it, or rename it.")
            blueprint.steps.remove(step)
            changes.append(f"removed blueprint step {step.name}")
    return changes


def _models(session: Session, loaded: LoadedSpec, project: Project, result: ApplyResult, now: datetime,
            actor: str) -> None:
    for spec in loaded.spec.models:
        values = {"description": spec.description, "owner": spec.owner, "task": str(spec.task),
                  "tags": list(spec.tags), "spec": spec.model_dump(mode="json"),
                  "spec_dir": str(loaded.base_dir.resolve())}
        model = session.execute(select(Model).where(Model.key == spec.key)).scalar_one_or_none()
        if model is None:
            session.add(Model(key=spec.key, project=project, created_at=now, updated_at=now, **values))
            result.changes.append(f"created model {spec.key}")
            continue
        if model.project_id != project.id:
            raise Conflict(f"{loaded.path.name}: model {spec.key} belongs to project {model.project.key}; "
                           "model keys are unique across projects.")
        if _says_the_same(model.spec, spec):
            model.spec = values.pop("spec")  # quietly: only keys a newer Flywheel added, with their defaults
        if changed := _assign(model, values):
            model.updated_at = now
            result.changes.append(f"updated model {spec.key}: {', '.join(changed)}")
        adopted, differing = overrides_against(session, model, spec, by=actor, now=now)
        result.changes += adopted
        result.differences += differing


def _says_the_same(stored: dict[str, Any], spec: ModelSpec) -> bool:
    """Whether a stored model spec, read as the worker reads it (through today's schema), is `spec`."""
    try:
        return ModelSpec.model_validate(stored).model_dump(mode="json") == spec.model_dump(mode="json")
    except ValidationError:  # written by an older schema that today's no longer reads: a change
        return False


def apply_spec(*, session: Session, loaded: LoadedSpec, actor: str = "flywheel",
               now: datetime | None = None) -> ApplyResult:
    now = now or utcnow()
    result = ApplyResult(project=loaded.spec.project.key)
    people = _people(session, loaded, result)
    session.flush()
    project = _project(session, loaded, result, now)
    session.flush()
    _grants(session, loaded, project, people, result)
    _blueprint(session, loaded, project, result)
    _models(session, loaded, project, result, now, actor)
    session.flush()
    result.changes += catalog.sync_spec(session=session, loaded=loaded, now=now)  # catalog: follows the spec
    if result.changed:
        audit.record(session=session, actor=actor, action="spec.applied", subject=f"project:{project.key}",
                     details={"file": str(loaded.path), "changes": result.changes}, at=now)
    return result
