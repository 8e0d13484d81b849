"""The catalog's use cases that take what people declare: a spec's `catalog:` section, and `flywheel catalog add`.

Each entry is checked with the spec model's own CatalogEntrySpec before it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from bot.services.common import Actor, Service
from jobs.spec import CatalogEntrySpec, LoadedSpec
from store import audit, catalog, catalog_writes, projects
from store.catalog import KIND_LABELS, Asset, InvalidAsset, SearchResult, get_asset, resolve_owner
from store.clock import utcnow
from store.errors import NotFound
from store.models import AssetKind, AssetOrigin, CatalogAsset, Project


def sync_spec(*, session: Session, loaded: LoadedSpec, now: datetime | None = None) -> list[str]:
    """Bring the catalog in step with a spec just applied (called at the end of bot.services.specs.apply_spec).

    The project, its models, their versions and datasets follow the registry silently; the entries of
    the spec's `catalog:` section are added, updated or removed, and those changes are returned.
    """
    now = now or utcnow()
    project = projects.get_project(session=session, key=loaded.spec.project.key)
    catalog_writes.sync_project(session=session, project=project, now=now)
    catalog_writes.rename(session, {p.slack_id: p.name for p in loaded.spec.people}, project)
    return _sync_declared(session, project, loaded.spec.catalog, now)


def _sync_declared(session: Session, project: Project, entries: Sequence[CatalogEntrySpec],
                   now: datetime) -> list[str]:
    existing = catalog_writes.existing_assets(session, CatalogAsset.project_key == project.key, CatalogAsset.origin == AssetOrigin.spec)
    names = catalog_writes.names_of(session, [e.owner for e in entries])
    changes, wanted = [], set()
    for entry in entries:
        key = catalog_writes.slug_key(entry.kind, project.key, entry.slug)
        wanted.add(key)
        if key not in existing:
            catalog_writes.refuse_taken(session, key, f"the {project.key} spec")
        values = dict(kind=AssetKind(entry.kind), origin=AssetOrigin.spec, title=entry.title,
                      description=entry.description, owner=entry.owner, owner_name=names.get(entry.owner, ""),
                      project_key=project.key, project_name=project.name, tags=list(entry.tags),
                      links=list(entry.links), status=_status(entry.status))
        if done := catalog_writes.put(session, existing, key, values, now):
            changes.append(f"{done} catalog {KIND_LABELS[AssetKind(entry.kind)]} {entry.slug}")
    for key, asset in existing.items():
        if key not in wanted:
            session.delete(asset)
            changes.append(f"removed catalog {KIND_LABELS[asset.kind]} {key.partition('/')[2]}")
    session.flush()
    return changes


def add_asset(*, session: Session, kind: str, title: str, owner: str, actor: str, project: str | None = None,
              description: str = "", tags: Sequence[str] = (), links: Sequence[str] = (),
              status: str | None = None, key: str | None = None, now: datetime | None = None) -> tuple[Asset, str]:
    """Add (or update, by key) an asset by hand, checked like a spec's catalog entry.

    Returns the asset and "added", "updated" or "unchanged".
    """
    now = now or utcnow()
    if kind not in {k.value for k in AssetKind}:
        raise InvalidAsset(f"'{kind}' is not a kind of asset; kinds: {', '.join(k.value for k in AssetKind)}.")
    try:
        entry = CatalogEntrySpec(kind=kind, title=title, key=key, description=description, owner=owner,
                                 tags=list(tags), links=list(links), status=status)
    except ValidationError as exc:
        raise InvalidAsset("; ".join(_problem(e) for e in exc.errors())) from None
    owners = resolve_owner(session=session, text=entry.owner)
    if len(owners) != 1:
        raise InvalidAsset(f"{entry.owner} names {len(owners)} people in Flywheel; give the owner's Slack id.")
    if projects.get_person(session=session, slack_id=owners[0]) is None:
        raise NotFound(f"{owners[0]} is not in Flywheel: an owner must be one of the people in a project spec.")
    found = projects.get_project(session=session, key=project) if project else None
    asset_key = catalog_writes.slug_key(entry.kind, found.key if found else None, entry.slug)
    existing = catalog_writes.existing_assets(session, CatalogAsset.key == asset_key, CatalogAsset.origin == AssetOrigin.cli)
    if asset_key not in existing:
        catalog_writes.refuse_taken(session, asset_key, "You")
    values = dict(kind=AssetKind(entry.kind), origin=AssetOrigin.cli, title=entry.title,
                  description=entry.description, owner=owners[0], owner_name=catalog_writes.names_of(session, owners)[owners[0]],
                  project_key=found.key if found else None, project_name=found.name if found else "",
                  tags=list(entry.tags), links=list(entry.links), status=_status(entry.status))
    done = catalog_writes.put(session, existing, asset_key, values, now) or "unchanged"
    session.flush()
    if done != "unchanged":
        audit.record(session=session, actor=actor, action=f"catalog.{done}", subject=f"catalog:{asset_key}",
                     details={"title": entry.title, "owner": owners[0]}, at=now)
    return get_asset(session=session, key=asset_key), done


def _status(status: str | None) -> str | None:
    return status.lower().replace("-", "_").replace(" ", "_") if status else None


def _problem(error: Any) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    message = str(error.get("ctx", {}).get("error") or error["msg"])
    return f"{where}: {message}" if where else message


class Catalog(Service):
    """`/catalog` in Slack and on the dashboard: search, and share a result in a channel."""

    def search(self, actor: Actor, query: str, *, offset: int = 0) -> SearchResult:
        with self.db.read() as s:
            return catalog.search(session=s, query=query, offset=offset, viewer=actor.slack_id)

    def share(self, actor: Actor, key: str, *, channel: str | None) -> Asset:
        with self.db.session() as s:
            return catalog.share(session=s, key=key, by=actor.slack_id, channel=channel, now=self.clock())
