"""Who may do what: one answer for every entry point (Slack, the CLI, the API, the dashboard).

A role is held on one project (a `Grant`); an admin of a project holds every role there. Each check
reads the grants afresh in the caller's unit of work, so a spec applied a moment ago counts at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import Forbidden
from store.models import PERSONAS, Grant, Person, Project, Role

ROLE_NAMES = {Role.business: "business", Role.ml_engineer: "ML engineer", Role.risk_manager: "risk manager",
              Role.it_ops: "IT operations", Role.admin: "admin"}


def role_name(role: Role | str) -> str:
    try:
        return ROLE_NAMES[Role(role)]
    except ValueError:
        return str(role).replace("_", " ")


def roles_on(*, session: Session, slack_id: str, project: Project) -> list[str]:
    return sorted(session.execute(
        select(Grant.role).join(Person, Person.id == Grant.person_id)
        .where(Person.slack_id == slack_id, Grant.project_id == project.id)).scalars())


def grants_of(*, session: Session, slack_id: str) -> dict[str, list[str]]:
    """Project key -> the person's roles there."""
    held: dict[str, list[str]] = {}
    for key, role in session.execute(
            select(Project.key, Grant.role).join(Grant, Grant.project_id == Project.id)
            .join(Person, Person.id == Grant.person_id).where(Person.slack_id == slack_id)
            .order_by(Project.key, Grant.role)):
        held.setdefault(key, []).append(role)
    return held


def holds(*, session: Session, slack_id: str, project: Project, roles: Iterable[Role | str]) -> bool:
    held = set(roles_on(session=session, slack_id=slack_id, project=project))
    return Role.admin.value in held or any(str(r) in held for r in roles)


def require(*, session: Session, slack_id: str, project: Project, roles: Role | Iterable[Role | str],
            doing: str) -> None:
    """Raise Forbidden unless the person holds one of `roles` on `project`.

    `doing` is what was asked, as a sentence starts: "Deploying fraud-detector". The refusal names the
    role and the project, and the roles the person does have there."""
    wanted = [roles] if isinstance(roles, (Role, str)) else list(roles)
    held = roles_on(session=session, slack_id=slack_id, project=project)
    if Role.admin.value in held or any(str(r) in held for r in wanted):
        return
    if {str(r) for r in wanted} >= {str(r) for r in PERSONAS}:
        needs = "a role"
    else:
        needs = f"the {' or '.join(role_name(r) for r in wanted)} role"
    if held:
        have = f"you have {', '.join(role_name(r) for r in held)} there"
    elif session.execute(select(Person.id).where(Person.slack_id == slack_id)).first() is None:
        have = "you are in no project's spec yet (an admin adds you to a spec's people)"
    else:
        have = "you have none there"
    raise Forbidden(f"{doing} needs {needs} on {project.name}; {have}.")
