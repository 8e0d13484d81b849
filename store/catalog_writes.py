"""Writing the catalog: registry assets kept in step with the registry, declared entries added, updated or removed.

The registry is the source of truth for projects, models, versions and datasets; entries declared in a
spec or added by hand are checked by bot/services/catalog.py before they reach these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from store import audit, projects
from store.models import AssetKind, AssetOrigin, CatalogAsset, CatalogTag
from store.clock import utcnow
from store.errors import Conflict, NotFound
from store.models import Model, ModelVersion, Project


def slug_key(kind: str, project_key: str | None, slug: str) -> str:
    return f"{kind}:{project_key}/{slug}" if project_key else f"{kind}:{slug}"


def names_of(session: Session, slack_ids: Iterable[str]) -> dict[str, str]:
    people = projects.people_by_id(session=session, slack_ids=sorted(set(slack_ids)))
    return {p.slack_id: p.name for p in people.values()}


def put(session: Session, existing: dict[str, CatalogAsset], key: str, values: dict[str, Any],
         now: datetime) -> str | None:
    """Create or update one asset; returns "added", "updated" or None when nothing changed."""
    values = {**values, "tags": list(dict.fromkeys(values.get("tags", []))),
              "links": list(dict.fromkeys(values.get("links", [])))}
    asset = existing.get(key)
    if asset is None:
        asset = CatalogAsset(key=key, created_at=values.pop("created_at", now),
                             updated_at=values.pop("updated_at", now), **values)
        asset.tag_rows = [CatalogTag(tag=t) for t in _tag_keys(asset.tags)]
        session.add(asset)
        existing[key] = asset
        return "added"
    values.pop("created_at", None)
    changed_at = values.pop("updated_at", now)
    changed = [name for name, value in values.items() if getattr(asset, name) != value]
    if not changed:
        return None
    for name in changed:
        setattr(asset, name, values[name])
    asset.updated_at = max(asset.updated_at, changed_at)
    if "tags" in changed:
        wanted = _tag_keys(asset.tags)
        asset.tag_rows = [r for r in asset.tag_rows if r.tag in wanted] + \
            [CatalogTag(tag=t) for t in wanted if t not in {r.tag for r in asset.tag_rows}]
    return "updated"


def _tag_keys(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t.strip().lower()[:100] for t in tags if t.strip()))


def existing_assets(session: Session, *where: ColumnElement[bool]) -> dict[str, CatalogAsset]:
    rows = session.execute(select(CatalogAsset).where(*where).options(selectinload(CatalogAsset.tag_rows)))
    return {a.key: a for a in rows.scalars()}


def sync_registry(*, session: Session, now: datetime | None = None) -> int:
    """Every project's registry assets (a catalog created after the registry, or repaired); returns the
    number of projects synced."""
    found = projects.list_projects(session=session)
    for project in found:
        sync_project(session=session, project=project, now=now or utcnow())
    return len(found)


def sync_project(*, session: Session, project: Project, now: datetime) -> None:
    models = list(session.execute(select(Model).where(Model.project_id == project.id).order_by(Model.key)
                                  .options(selectinload(Model.versions))).scalars())
    names = names_of(session, [project.owner, *(m.owner for m in models)])
    wanted: dict[str, dict[str, Any]] = {f"project:{project.key}": dict(
        kind=AssetKind.project, title=project.name, description=_sentences(project.description, project.initiative),
        owner=project.owner, tags=list(project.tags), updated_at=project.updated_at, created_at=project.created_at)}
    for model in models:
        wanted[f"model:{model.key}"] = dict(
            kind=AssetKind.model, title=model.key, description=model.description, owner=model.owner,
            tags=list(model.tags), model_id=model.id, updated_at=model.updated_at, created_at=model.created_at)
        for version in model.versions:
            wanted[_version_key(model, version)] = _version_values(model, version)
    wanted.update(_datasets(project, models, now))
    # An entry added by hand under a key the registry now needs gives way: the registry is the source of
    # truth for projects, models, versions and datasets.
    existing = existing_assets(session, or_(and_(CatalogAsset.project_key == project.key,
                                           CatalogAsset.origin == AssetOrigin.registry),
                                      CatalogAsset.key.in_(list(wanted))))
    for key, values in wanted.items():
        values.update(origin=AssetOrigin.registry, project_key=project.key, project_name=project.name,
                      owner_name=names.get(values["owner"], ""))
        put(session, existing, key, values, now)
    for key, asset in existing.items():
        if key not in wanted:
            session.delete(asset)
    session.flush()


def _sentences(*parts: str) -> str:
    return " ".join(p.strip() if p.strip().endswith(".") else f"{p.strip()}." for p in parts if p.strip())


def _version_key(model: Model, version: ModelVersion) -> str:
    return f"model_version:{model.key}/{version.label}"


def _version_values(model: Model, version: ModelVersion) -> dict[str, Any]:
    facts = [f"Version {version.number} of {model.key}"]
    if version.train_start and version.train_end:
        facts.append(f"trained on data from {version.train_start:%b %d %Y} to {version.train_end:%b %d %Y}")
    if version.parent is not None:
        facts.append(f"retrained from {version.parent.label}")
    metrics = ", ".join(f"{k} {v:.2f}" for k, v in sorted(version.metrics.items()) if isinstance(v, int | float))
    description = ", ".join(facts) + (f". Metrics: {metrics}." if metrics else ".")
    return dict(kind=AssetKind.model_version, title=f"{model.key} {version.label}", description=description,
                owner=model.owner, tags=list(model.tags), model_id=model.id, version_id=version.id,
                updated_at=version.created_at, created_at=version.created_at)


def _datasets(project: Project, models: Sequence[Model], now: datetime) -> dict[str, dict[str, Any]]:
    """The reference and production data named in each model's spec; one asset per file or table."""
    found: dict[str, dict[str, Any]] = {}
    for model in models:
        data, features = model.spec.get("data") or {}, model.spec.get("features") or {}
        columns = [*features.get("numeric", []), *features.get("categorical", [])]
        for role in ("reference", "production"):
            source = data.get(role) or {}
            name = source.get("path") or source.get("table") or f"{model.key} {role} query"
            entry = found.setdefault(f"dataset:{project.key}/{name}"[:300], dict(
                kind=AssetKind.dataset, title=name[:300], uses=[], columns=[], owner=model.owner, tags=[],
                model_id=model.id, updated_at=now))
            entry["uses"].append(f"{role} data of {model.key}")
            entry["columns"] += [c for c in [*columns, data.get("label")] if c and c not in entry["columns"]]
            entry["tags"] += [t for t in model.tags if t not in entry["tags"]]
    for entry in found.values():
        uses, columns = entry.pop("uses"), entry.pop("columns")
        entry["description"] = _sentences(f"{'; '.join(uses).capitalize()}",
                                          f"Columns: {', '.join(columns)}" if columns else "")
    return found


def index_version(*, session: Session, version: ModelVersion) -> None:
    """A version just registered enters the catalog (called from store.projects.register_version)."""
    model = version.model
    values = _version_values(model, version)
    values.update(origin=AssetOrigin.registry, project_key=model.project.key, project_name=model.project.name,
                  owner_name=names_of(session, [model.owner]).get(model.owner, ""))
    key = _version_key(model, version)
    put(session, existing_assets(session, CatalogAsset.key == key), key, values, version.created_at)
    session.flush()


def rename(session: Session, people: dict[str, str], project: Project) -> None:
    """Names copied into assets follow the people and the project a spec renames."""
    for slack_id, name in people.items():
        for asset in session.execute(select(CatalogAsset).where(CatalogAsset.owner == slack_id,
                                                                CatalogAsset.owner_name != name)).scalars():
            asset.owner_name = name
    for asset in session.execute(select(CatalogAsset).where(CatalogAsset.project_key == project.key,
                                                            CatalogAsset.project_name != project.name)).scalars():
        asset.project_name = project.name
    session.flush()


def refuse_taken(session: Session, key: str, by: str) -> None:
    taken = session.execute(select(CatalogAsset.origin, CatalogAsset.project_key)
                            .where(CatalogAsset.key == key)).first()
    if taken is None:
        return
    where = {AssetOrigin.registry: "comes from the registry",
             AssetOrigin.spec: f"is declared in the {taken.project_key} spec's catalog: section",
             AssetOrigin.cli: "was added with `flywheel catalog add`; `flywheel catalog remove` it first"}
    raise Conflict(f"{by} can't add catalog entry {key}: it {where[taken.origin]}. Give this one another key.")


def remove_asset(*, session: Session, key: str, actor: str, now: datetime | None = None) -> None:
    """Remove an asset added by hand; declared and registry assets leave with their source."""
    asset = session.execute(select(CatalogAsset).where(CatalogAsset.key == key)).scalar_one_or_none()
    if asset is None:
        known = list(session.execute(select(CatalogAsset.key).where(CatalogAsset.origin == AssetOrigin.cli))
                     .scalars())
        raise NotFound(f"No catalog entry {key}.{projects.did_you_mean(key, known)}")
    if asset.origin == AssetOrigin.spec:
        raise Conflict(f"{key} is declared in the {asset.project_key} spec: remove it from its catalog: section "
                       "and apply the spec again.")
    if asset.origin == AssetOrigin.registry:
        raise Conflict(f"{key} follows the registry and leaves the catalog with its source.")
    session.execute(delete(CatalogTag).where(CatalogTag.asset_id == asset.id))
    session.delete(asset)
    session.flush()
    audit.record(session=session, actor=actor, action="catalog.removed", subject=f"catalog:{key}", at=now)
