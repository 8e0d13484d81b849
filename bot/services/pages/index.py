"""The index page: the models of the viewer's projects, one line each."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.services.pages.project import open_alerts
from bot.services.pages.viewer import Viewer
from store import registry
from store.models import VersionStatus


@dataclass(frozen=True)
class IndexLine:
    key: str
    project_key: str
    project_name: str
    production: str | None
    open_alerts: int


def index(*, session: Session, viewer: Viewer) -> tuple[IndexLine, ...]:
    models = [m for m in registry.list_models(session=session) if m.project_id in viewer.grants]
    alerts = open_alerts(session, [m.id for m in models])
    return tuple(IndexLine(m.key, m.project.key, m.project.name,
                           next((v.label for v in m.versions if v.status == VersionStatus.production), None),
                           alerts.get(m.id, 0)) for m in models)
