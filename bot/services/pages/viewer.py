"""Who is looking at a dashboard page, and which of their projects the page may show."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.services.pages.constants import MONITORING
from store import registry
from store.errors import Forbidden
from store.models import Alert, Model, Project, Role


@dataclass(frozen=True)
class Viewer:
    """Who opened a page. `roles` are every role they hold somewhere (what the header shows) until
    `within(project)` narrows them to that project's, which is what a page about a project goes by."""

    slack_id: str
    name: str
    roles: tuple[str, ...]
    grants: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False)  # project id -> roles

    def has(self, role: Role | str) -> bool:
        return str(role) in self.roles or Role.admin.value in self.roles

    @property
    def sees_monitoring(self) -> bool:
        """Check history, drift, performance, alert evidence and the audit trail."""
        return any(self.has(r) for r in MONITORING)

    @property
    def governs(self) -> bool:
        return self.has(Role.risk_manager)

    def holds(self, role: Role | str, project_id: int) -> bool:
        held = self.grants.get(project_id, ())
        return str(role) in held or Role.admin.value in held

    def within(self, project: Project) -> Viewer:
        """The viewer as seen by one project's pages; Forbidden when they hold no role on it."""
        if project.id not in self.grants:
            raise Forbidden(f"{project.name} is not one of your projects: you hold no role on it. Its owner can "
                            "add you to its spec's people.")
        return replace(self, roles=self.grants[project.id])


def project_of_page(*, session: Session, path: str) -> str | None:
    """The key of the project a dashboard path is about; None for pages across projects (the index, the
    portfolio, the catalog) and for paths naming nothing that exists (the page then says it is not found)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 2:
        return None
    if parts[0] == "projects":
        return parts[1]
    if parts[0] == "models":
        return session.execute(select(Project.key).join(Model, Model.project_id == Project.id)
                               .where(Model.key == parts[1])).scalar_one_or_none()
    if parts[0] == "alerts" and parts[1].isdigit() and len(parts[1]) < 19:
        return session.execute(select(Project.key).join(Model, Model.project_id == Project.id)
                               .join(Alert, Alert.model_id == Model.id)
                               .where(Alert.id == int(parts[1]))).scalar_one_or_none()
    return None


def viewer(*, session: Session, slack_id: str) -> Viewer | None:
    person = registry.get_person(session=session, slack_id=slack_id)
    if person is None:
        return None
    grants = {project_id: tuple(person.roles_on(project_id)) for project_id in person.project_ids()}
    return Viewer(person.slack_id, person.name, tuple(person.roles), grants)
