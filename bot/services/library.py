"""`flywheel apply` of blueprint libraries with project specs: the library first, then the projects, then every
other project whose blueprint came from a library blueprint that changed (or from its risk tier) copied again.
One unit of work: any refusal applies nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.services.specs import ApplyResult, apply_spec, materialise
from jobs.spec import BlueprintSpec, LibraryBlueprintSpec, Loaded, LoadedLibrary
from store import audit, projects
from store.clock import utcnow
from store.errors import Conflict
from store.models import LibraryBlueprint, Project


def stored_library(*, session: Session) -> dict[str, LibraryBlueprintSpec]:
    """The registry's blueprint library, as the spec loader reads it (load_documents(library=...))."""
    return {row.name: LibraryBlueprintSpec.model_validate(row.spec)
            for row in projects.library_blueprints(session=session)}


def apply_library(*, session: Session, loaded: LoadedLibrary, actor: str = "flywheel",
                  now: datetime | None = None) -> tuple[ApplyResult, set[str]]:
    """Write a library file's blueprints (those it leaves out stay); returns the result and the changed names."""
    now = now or utcnow()
    result = ApplyResult(project=f"blueprint library {loaded.path.name}")
    rows = {row.name: row for row in projects.library_blueprints(session=session)}
    changed = set()
    for blueprint in loaded.spec.blueprints:
        values = {"tiers": list(blueprint.tiers), "policy": str(blueprint.policy),
                  "spec": blueprint.model_dump(mode="json", exclude_none=True)}
        row = rows.get(blueprint.name)
        if row is None:
            session.add(LibraryBlueprint(name=blueprint.name, updated_at=now, **values))
            result.changes.append(f"added library blueprint {blueprint.name}")
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            result.changes.append(f"updated library blueprint {blueprint.name}")
        else:
            continue
        changed.add(blueprint.name)
    session.flush()
    if result.changed:
        audit.record(session=session, actor=actor, action="blueprints.applied", subject="blueprint-library",
                     details={"file": str(loaded.path), "changes": result.changes}, at=now)
    return result, changed


def _chosen(project: Project, library: dict[str, LibraryBlueprintSpec]) -> LibraryBlueprintSpec:
    blueprint = project.blueprint
    if not blueprint.by_tier:
        if blueprint.library not in library:
            raise Conflict(f"project {project.key} uses library blueprint {blueprint.library}, which is gone")
        return library[blueprint.library]
    tier = project.risk_tier.value
    fits = [b for b in library.values() if tier in b.tiers]
    if len(fits) != 1:
        names = " and ".join(b.name for b in fits) or "none"
        raise Conflict(f"project {project.key} takes the library blueprint for risk tier {tier}; the library now "
                       f"has {names} for it")
    return fits[0]


def _resync(session: Session, project: Project, chosen: LibraryBlueprintSpec, actor: str,
            now: datetime) -> ApplyResult:
    """Copy a changed library blueprint into a project not applied now; its named people must still hold the role."""
    for step in chosen.steps:
        for slack_id in step.people:
            person = projects.get_person(session=session, slack_id=slack_id)
            if person is None or not person.holds(str(step.role), project.id):
                raise Conflict(f"library blueprint {chosen.name} names {slack_id} to sign {step.name} on "
                               f"{project.key}, who does not hold the {step.role} role there")
    result = ApplyResult(project=project.key)
    spec = BlueprintSpec.model_validate(chosen.model_dump(exclude={"tiers"}))
    result.changes = materialise(session=session, project=project, spec=spec, library=chosen.name,
                                 by_tier=project.blueprint.by_tier, origin=f"library blueprint {chosen.name}")
    if result.changed:
        audit.record(session=session, actor=actor, action="spec.applied", subject=f"project:{project.key}",
                     details={"library": chosen.name, "changes": result.changes}, at=now)
    return result


def apply_all(*, session: Session, loaded: Loaded, actor: str = "flywheel",
              now: datetime | None = None) -> list[ApplyResult]:
    """Libraries, then project specs, then the other projects their library changes reach."""
    now = now or utcnow()
    results, changed = [], set()
    for library in loaded.libraries:
        result, names = apply_library(session=session, loaded=library, actor=actor, now=now)
        results.append(result)
        changed |= names
    results += [apply_spec(session=session, loaded=one, actor=actor, now=now) for one in loaded.projects]
    if changed:
        applied = {one.spec.project.key for one in loaded.projects}
        library = stored_library(session=session)
        for project in projects.projects_using(session=session, names=changed):
            if project.key in applied:
                continue
            chosen = _chosen(project, library)
            if chosen.name in changed or project.blueprint.library != chosen.name:
                results.append(_resync(session, project, chosen, actor, now))
    session.flush()
    return results
