"""Who may do what: one answer for every entry point (Slack, the CLI, the API, the dashboard).

A role is held on one project (a `Grant`); an admin of a project holds every role there. Each check
reads the grants afresh in the caller's unit of work, so a spec applied a moment ago counts at once.

Workspaces: on an install in several Slack workspaces (OAuth) a project names its workspace (`team_id`).
A person asking from workspace A never sees nor acts on a project of workspace B: while a request from A
is served (`acting_in("A")`), every ORM query of this process reads projects, models and catalog assets
of A's projects and of projects with no workspace only, so B's are answered exactly as unknown ones
("did you mean" included), and `require` refuses an explicit team that is not the project's. A project
without a workspace (single-token install) has no team rule, and neither has an actor without a team
(the terminal, the API, the worker).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from store.errors import Forbidden, NotFound
from store.models import PERSONAS, CatalogAsset, Grant, Model, Person, Project, Role

_workspace: ContextVar[str | None] = ContextVar("flywheel_workspace", default=None)
# The workspace of a request that names none where Flywheel is installed in several (an org-wide Enterprise
# Grid install can send such): no project has it, so only projects of no workspace are seen. Fails closed.
NO_WORKSPACE = "-"


def current_team() -> str | None:
    """The Slack workspace the request being served comes from; None outside a Slack or dashboard request."""
    return _workspace.get()


def serve_as(team: str | None) -> None:
    """From here on in this context, serve as a request from `team` (None: no workspace rule). For Bolt's
    middleware, whose `next()` returns before the listener runs: every request sets it anew."""
    _workspace.set(team or None)


@contextmanager
def acting_in(team: str | None) -> Iterator[None]:
    """Serve what runs inside as a request from `team` (None: no workspace rule)."""
    token = _workspace.set(team or None)
    try:
        yield
    finally:
        _workspace.reset(token)


def sees(project: Project, team: str | None = None) -> bool:
    """Whether a person of `team` (default: the current request's) may see the project at all."""
    team = team or current_team()
    return team is None or project.team_id is None or project.team_id == team


# The subqueries read the tables, not the mapped classes, so the criteria below never apply inside them.
_projects, _grants, _people = Project.__table__, Grant.__table__, Person.__table__


def _other_workspaces(team: str):
    """The ids of projects of a workspace other than `team`'s (a project naming none is everyone's)."""
    return select(_projects.c.id).where(_projects.c.team_id.is_not(None), _projects.c.team_id != team)


def _visible_projects(team: str):
    return select(_projects.c.id).where(or_(_projects.c.team_id.is_(None), _projects.c.team_id == team))


def _granted_on(project_ids):
    return (select(_people.c.slack_id).join(_grants, _grants.c.person_id == _people.c.id)
            .where(_grants.c.project_id.in_(project_ids)))


@event.listens_for(Session, "do_orm_execute")
def _only_this_workspace(state: ORMExecuteState) -> None:
    # Every ORM select, joins and subqueries included; a relationship or column load follows from a row
    # that was already visible, and is left alone so `version.model.project` still loads.
    team = _workspace.get()
    if team is None or not state.is_select or state.is_relationship_load or state.is_column_load:
        return
    others = _other_workspaces(team)
    state.statement = state.statement.options(
        with_loader_criteria(Project, or_(Project.team_id.is_(None), Project.team_id == team), include_aliases=True),
        with_loader_criteria(Model, Model.project_id.not_in(others), include_aliases=True),
        # An asset of a project is the project's. One without a project goes with its owner: hidden only
        # when every project the owner is in is another workspace's.
        with_loader_criteria(CatalogAsset, or_(
            CatalogAsset.project_key.not_in(select(_projects.c.key).where(_projects.c.id.in_(others))),
            CatalogAsset.project_key.is_(None) & or_(CatalogAsset.owner.in_(_granted_on(_visible_projects(team))),
                                                     CatalogAsset.owner.not_in(_granted_on(others))),
        ), include_aliases=True))


ROLE_NAMES = {Role.business: "business", Role.ml_engineer: "ML engineer", Role.risk_manager: "risk manager",
              Role.it_ops: "IT operations", Role.admin: "admin"}


def role_name(role: Role | str) -> str:
    try:
        return ROLE_NAMES[Role(role)]
    except ValueError:
        return str(role).replace("_", " ")


def roles_on(*, session: Session, slack_id: str, project: Project, team: str | None = None) -> list[str]:
    """The person's roles on the project: none on a project of another workspace than `team`'s."""
    if not sees(project, team):
        return []
    return sorted(session.execute(
        select(Grant.role).join(Person, Person.id == Grant.person_id)
        .where(Person.slack_id == slack_id, Grant.project_id == project.id)).scalars())


def grants_of(*, session: Session, slack_id: str, team: str | None = None) -> dict[str, list[str]]:
    """Project key -> the person's roles there (the projects `team` sees only)."""
    held: dict[str, list[str]] = {}
    query = (select(Project.key, Grant.role).join(Grant, Grant.project_id == Project.id)
             .join(Person, Person.id == Grant.person_id).where(Person.slack_id == slack_id)
             .order_by(Project.key, Grant.role))
    if team:
        query = query.where(Project.id.not_in(_other_workspaces(team)))
    for key, role in session.execute(query):
        held.setdefault(key, []).append(role)
    return held


def holds(*, session: Session, slack_id: str, project: Project, roles: Iterable[Role | str],
          team: str | None = None) -> bool:
    held = set(roles_on(session=session, slack_id=slack_id, project=project, team=team))
    return Role.admin.value in held or any(str(r) in held for r in roles)


def require(*, session: Session, slack_id: str, project: Project, roles: Role | Iterable[Role | str],
            doing: str, team: str | None = None) -> None:
    """Raise Forbidden unless the person holds one of `roles` on `project`.

    `doing` is what was asked, as a sentence starts: "Deploying fraud-detector". The refusal names the
    role and the project, and the roles the person does have there. A person of another workspace than the
    project's (`team`, or the current request's) is told the project does not exist, as for an unknown key."""
    if not sees(project, team):
        raise NotFound(f"No project called {project.key}.")
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
