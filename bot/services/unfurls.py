"""Dashboard links pasted in Slack, unfurled into a compact card; and "Ask the model's owner" on a message.

A link is unfurled only when it points at this Flywheel's dashboard (FLYWHEEL_PUBLIC_URL) and at a model,
a model version or a project page. What the card shows is cut to the person who pasted it, as the dashboard
cuts its pages: a link to a project they hold no role on unfurls without any of its detail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.services.common import Service
from store import registry
from store.errors import NotFound
from store.models import Alert, AlertState, CheckKind, CheckRun, Model, Project, VersionStatus

MAX_ALERTS_SHOWN = 3
TREND_POINTS = 4
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{1,99}")


@dataclass(frozen=True)
class OpenAlert:
    kind: str
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class KpiTrend:
    label: str
    unit: str | None
    values: tuple[float, ...]  # oldest first, the latest window last
    breached: bool


@dataclass(frozen=True)
class ModelCard:
    url: str
    key: str
    project: str
    owner: str
    production: int | None
    alerts: tuple[OpenAlert, ...]
    open_alerts: int
    kpi: KpiTrend | None
    version: tuple[int, str] | None = None  # a version page: its number and status


@dataclass(frozen=True)
class ProjectCard:
    url: str
    key: str
    name: str
    models: tuple[tuple[str, int | None, int], ...]  # (model key, production version, open alerts)


@dataclass(frozen=True)
class Withheld:
    """A page of a project the person holds no role on: named by its link, nothing more."""

    url: str
    page: str


Card = ModelCard | ProjectCard | Withheld


@dataclass(frozen=True)
class OwnerAsk:
    model: str
    owner: str


class Unfurls(Service):
    def cards(self, slack_id: str, urls: list[str]) -> dict[str, Card]:
        """A card per link to a model, version or project page of this dashboard; other links are left out."""
        pages = {url: page for url in dict.fromkeys(urls) if (page := self._page(url)) is not None}
        if not pages:
            return {}
        found: dict[str, Card] = {}
        with self.db.read() as s:
            # the projects they hold a role on, as the dashboard's pages go by (bot/services/pages/viewer.py)
            person = registry.get_person(session=s, slack_id=slack_id)
            grants = person.project_ids() if person is not None else set()
            for url, (kind, key, number) in pages.items():
                # the card links the bare page: a signed link's token (?t=) was made for one person
                page = url.split("#")[0].split("?")[0]
                try:
                    found[url] = (_project_card(s, page, key, grants) if kind == "projects"
                                  else _model_card(s, page, key, number, grants))
                except NotFound:
                    continue  # a page that shows "not found" has nothing to unfurl
        return found

    def owner_to_ask(self, texts: list[str]) -> OwnerAsk | None:
        """The first model a message is about and its owner: Flywheel's own messages name it in their
        block ids and button values, other messages in their text. None when no model is named."""
        candidates: list[str] = []
        for text in texts:
            candidates.extend(_KEY.findall(text.lower()))
        if not candidates:
            return None
        with self.db.read() as s:
            owners = dict(s.execute(select(Model.key, Model.owner).where(Model.key.in_(set(candidates[:500])))).all())
        model = next((c for c in candidates if c in owners), None)
        return OwnerAsk(model, owners[model]) if model else None

    def _page(self, url: str) -> tuple[str, str, int | None] | None:
        base = self.settings.public_url.rstrip("/")
        if not url.startswith(base + "/"):
            return None
        parts = [p for p in urlsplit(url[len(base):]).path.split("/") if p]
        if len(parts) == 2 and parts[0] in ("models", "projects"):
            return parts[0], parts[1], None
        if len(parts) in (4, 5) and parts[0] == "models" and parts[2] == "versions" and parts[3].isdigit() \
                and len(parts[3]) < 10 and parts[4:] in ([], ["card"]):
            return "models", parts[1], int(parts[3])
        return None


def texts_of(message: dict) -> list[str]:
    """Where a message names a model, most telling first: block ids and button values (Flywheel's own
    messages), then what it says."""
    ids: list[str] = []
    words: list[str] = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        ids.append(block.get("block_id") or "")
        for element in (block.get("elements") or []) + [block.get("accessory") or {}]:
            value = element.get("value") if isinstance(element, dict) else None
            if value:
                ids.append(_context_model(value) or "")
        for text in [block.get("text")] + (block.get("fields") or []):
            if isinstance(text, dict):
                words.append(text.get("text") or "")
    return [t for t in ids + words if t]


def _context_model(value: str) -> str | None:
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return decoded.get("m") if isinstance(decoded, dict) and isinstance(decoded.get("m"), str) else None


def _model_card(s: Session, url: str, key: str, number: int | None, grants: set[int]) -> Card:
    model = registry.get_model(session=s, key=key)
    if model.project_id not in grants:
        return Withheld(url, f"model {model.key}")
    production = next((v.number for v in model.versions if v.status == VersionStatus.production), None)
    version = None
    if number is not None:
        found = next((v for v in model.versions if v.number == number), None)
        if found is None:
            raise NotFound(f"{key} has no version {number}")
        version = (found.number, found.status.value)
    alerts = list(s.execute(select(Alert.kind, Alert.subjects).where(
        Alert.model_id == model.id, Alert.state != AlertState.resolved).order_by(Alert.created_at.desc())).all())
    run = s.execute(select(CheckRun.figures).where(CheckRun.model_id == model.id, CheckRun.kind == CheckKind.kpi)
                    .order_by(CheckRun.as_of.desc(), CheckRun.id.desc()).limit(1)).scalar_one_or_none()
    return ModelCard(url, model.key, model.project.name, model.owner, production,
                     tuple(OpenAlert(kind.value, tuple(subjects or ())) for kind, subjects in alerts[:MAX_ALERTS_SHOWN]),
                     len(alerts), _trend(run or {}), version)


def _trend(figures: dict) -> KpiTrend | None:
    kpis = figures.get("kpis") or []
    if not kpis:
        return None
    first = kpis[0]
    values = tuple(float(v) for _, v in (first.get("history") or [])[-TREND_POINTS:])
    if not values:
        return None
    return KpiTrend(first.get("label") or first["name"], first.get("unit"), values, bool(first.get("breached")))


def _project_card(s: Session, url: str, key: str, grants: set[int]) -> Card:
    project = s.execute(select(Project).where(Project.key == key)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"no project {key}")
    if project.id not in grants:
        return Withheld(url, f"project {project.key}")
    rows = []
    for model in sorted(project.models, key=lambda m: m.key):
        production = next((v.number for v in model.versions if v.status == VersionStatus.production), None)
        live = s.scalar(select(func.count(Alert.id)).where(Alert.model_id == model.id,
                                                            Alert.state != AlertState.resolved)) or 0
        rows.append((model.key, production, live))
    return ProjectCard(url, project.key, project.name, tuple(rows))
