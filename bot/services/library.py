"""`flywheel apply` of blueprint libraries with project specs: the library first, then the projects, then every
other project whose blueprint came from a library blueprint that changed (or from its risk tier) copied again.
The library files applied are the whole library: a blueprint they leave out is removed, refused while a project
still uses it. One unit of work: any refusal applies nothing."""

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
    """Write a library file's blueprints; returns the result and the changed names. Those it leaves out are
    apply_all's to remove (remove_left_out): other files applied with it may hold them."""
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


def _left_out(session: Session, libraries: list[LoadedLibrary], applied: set[str]) -> list[LibraryBlueprint]:
    """The stored blueprints no library file applied now holds; refused (Conflict) while a project not applied
    now still uses one: by name, or by its risk tier when no blueprint of the files lists that tier."""
    kept = {b.name: b for loaded in libraries for b in loaded.spec.blueprints}
    gone = [row for row in projects.library_blueprints(session=session) if row.name not in kept]
    files = " and ".join(loaded.path.name for loaded in libraries)
    for row in gone:
        users, keys = [], []
        for project in projects.projects_using(session=session, names={row.name}):
            if project.key in applied or project.blueprint.library != row.name:
                continue
            tier = project.risk_tier.value
            if not project.blueprint.by_tier:
                users.append(f"{project.key} (by name)")
            elif not any(tier in b.tiers for b in kept.values()):
                users.append(f"{project.key} (by its risk tier, {tier}, which no other blueprint lists)")
            else:
                continue
            keys.append(project.key)
        if users:
            many = len(users) > 1
            tiers = f", or list {'their' if many else 'its'} tier in another blueprint" if any("risk tier" in u for u in users) else ""
            raise Conflict(f"blueprint {row.name} is left out of {files}, but project{'s' if many else ''} "
                           f"{', '.join(users)} still use{'' if many else 's'} it: keep it in the file, or give "
                           f"{' and '.join(keys)} another blueprint first (blueprint: NAME in "
                           f"{'their specs' if many else 'its spec'}, applied with the file{tiers})")
    return gone


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
    """Libraries (removing the blueprints they leave out), then project specs, then the other projects their
    library changes reach."""
    now = now or utcnow()
    results, changed = [], set()
    applied = {one.spec.project.key for one in loaded.projects}
    gone = _left_out(session, loaded.libraries, applied) if loaded.libraries else []
    for library in loaded.libraries:
        result, names = apply_library(session=session, loaded=library, actor=actor, now=now)
        results.append(result)
        changed |= names
    if gone:
        for row in gone:
            session.delete(row)
            results[0].changes.append(f"removed library blueprint {row.name}")
        changed |= {row.name for row in gone}
        session.flush()
        audit.record(session=session, actor=actor, action="blueprints.removed", subject="blueprint-library",
                     details={"removed": [row.name for row in gone]}, at=now)
    results += [apply_spec(session=session, loaded=one, actor=actor, now=now) for one in loaded.projects]
    if changed:
        library = stored_library(session=session)
        for project in projects.projects_using(session=session, names=changed):
            if project.key in applied:
                continue
            chosen = _chosen(project, library)
            if chosen.name in changed or project.blueprint.library != chosen.name:
                results.append(_resync(session, project, chosen, actor, now))
    session.flush()
    return results
