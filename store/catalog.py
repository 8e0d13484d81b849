"""The catalog: every project, model, version and dataset the registry knows, plus the notebooks,
repositories, dashboards and plugins people declare, each with its owner, searchable by text and filters.

Registry assets follow the registry: `sync_spec` runs at the end of every apply and `index_version` when
a version is registered. A model's or a version's status is read from the registry when a search asks,
so a deploy or a rollback needs no sync. The text index (migration 0003) is kept in step by the database
itself: SQLite's FTS5 table through triggers, PostgreSQL's tsvectors as generated columns; the queries
on it are in store/catalog_index.py. `search` is the one way in, on either database.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session, selectinload

from store import audit, registry
from store import catalog_index as text_index
from store.catalog_index import WORD_PARTS
from store.catalog_models import AssetKind, AssetOrigin, CatalogAsset, CatalogTag
from store.clock import utcnow
from store.errors import Conflict, FlywheelError, NotFound
from store.models import Model, ModelVersion, Person, Project, VersionStatus
from store.spec import CatalogEntrySpec, LoadedSpec

PAGE = 5
MAX_QUERY = 500
MAX_SUGGESTIONS = 4
FILTERS = ("kind", "tag", "owner", "project", "status")
KIND_WORDS: dict[str, AssetKind] = {
    **{k.value: k for k in AssetKind}, **{f"{k.value}s": k for k in AssetKind},
    "version": AssetKind.model_version, "versions": AssetKind.model_version,
    "model-version": AssetKind.model_version, "data": AssetKind.dataset, "repositories": AssetKind.repository,
    "repo": AssetKind.repository, "repos": AssetKind.repository, "code": AssetKind.repository,
}
KIND_LABELS = {AssetKind.project: "project", AssetKind.model: "model", AssetKind.model_version: "model version",
               AssetKind.dataset: "dataset", AssetKind.notebook: "notebook", AssetKind.repository: "code repository",
               AssetKind.dashboard: "dashboard", AssetKind.plugin: "plugin"}
# Dropped from free words before searching: PostgreSQL's English configuration ignores them, and SQLite
# would otherwise require them in every result.
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before
being below between both but by can did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up very was we were what when
where which while who whom why will with you your yours yourself yourselves""".split())
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,}")


class InvalidQuery(FlywheelError):
    """A search the catalog can't run as typed; the message says how to write it."""


class InvalidAsset(FlywheelError):
    """An asset added by hand that fails the same checks as a spec's catalog entry."""


# --- queries -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A search as typed: free words plus filters. Filters of one name match any of their values,
    except tags, which must all be present."""

    text: str
    words: tuple[str, ...] = ()
    kinds: tuple[AssetKind, ...] = ()
    tags: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()  # Slack ids, @names or "me", as typed
    projects: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @property
    def filtered(self) -> bool:
        return bool(self.kinds or self.tags or self.owners or self.projects or self.statuses)

    def without_filters(self) -> str:
        return " ".join(self.words)


def parse_query(text: str) -> Query:
    """`customer reviews kind:model tag:nlp owner:@eli project:card-fraud status:production`."""
    text = html.unescape(text).strip()  # Slack escapes &, < and > in command text
    if len(text) > MAX_QUERY:
        raise InvalidQuery(f"A catalog search is at most {MAX_QUERY} characters; yours has {len(text)}.")
    found: dict[str, list[Any]] = {name: [] for name in ("words", *FILTERS)}
    for token in text.split():
        name, sep, value = token.partition(":")
        name = name.lower()
        if sep and name in FILTERS:
            if not value:
                raise InvalidQuery(f"`{name}:` needs a value, like {_EXAMPLES[name]}.")
            found[name].append(_filter_value(name, value))
        elif _MENTION.fullmatch(token) or (token.startswith("@") and len(token) > 1):
            found["owner"].append(token)
        elif WORD_PARTS.search(token) and token.lower().strip(".,;!?") not in STOPWORDS:
            found["words"].append(token)
    return Query(text=text, words=tuple(found["words"]), kinds=tuple(dict.fromkeys(found["kind"])),
                 tags=tuple(dict.fromkeys(found["tag"])), owners=tuple(dict.fromkeys(found["owner"])),
                 projects=tuple(dict.fromkeys(found["project"])), statuses=tuple(dict.fromkeys(found["status"])))


_EXAMPLES = {"kind": "kind:model", "tag": "tag:nlp", "owner": "owner:@eli", "project": "project:card-fraud",
             "status": "status:production"}


def _filter_value(name: str, value: str) -> Any:
    if name == "kind":
        kind = KIND_WORDS.get(value.lower())
        if kind is None:
            close = difflib.get_close_matches(value.lower(), list(KIND_WORDS), n=1)
            hint = f" Did you mean kind:{KIND_WORDS[close[0]].value}?" if close else ""
            raise InvalidQuery(f"'{value}' is not a kind of asset.{hint} Kinds: "
                               f"{', '.join(k.value for k in AssetKind)}.")
        return kind
    if name == "status":
        return value.lower().replace("-", "_")
    if name == "owner":
        return value
    return value.lower()


# --- what a search returns -----------------------------------------------------------------------

@dataclass(frozen=True)
class Asset:
    key: str
    kind: AssetKind
    title: str
    description: str
    project_key: str | None
    project_name: str
    owner: str  # Slack id
    owner_name: str
    tags: tuple[str, ...]
    links: tuple[str, ...]
    status: str | None  # live from the registry for models and versions
    status_text: str  # "v2 in production", "in review", a declared status, or ""
    changed_at: datetime
    origin: AssetOrigin
    model_key: str | None = None
    version_number: int | None = None

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True)
class Suggestion:
    kind: str  # "tag" or "title"
    text: str


@dataclass(frozen=True)
class SearchResult:
    query: Query
    assets: tuple[Asset, ...]
    offset: int
    has_more: bool
    partial: bool = False  # no asset holds every word: the first page holds those with some of them
    suggestions: tuple[Suggestion, ...] = ()  # when nothing matched
    unfiltered_matches: bool = False  # when nothing matched: the words alone would find something

    @property
    def empty(self) -> bool:
        return not self.assets


# --- search --------------------------------------------------------------------------------------

def search(*, session: Session, query: str | Query, limit: int = PAGE, offset: int = 0,
           viewer: str | None = None) -> SearchResult:
    """The page of assets at `offset` best matching the query, most relevant first.

    Assets holding every free word come first, then those holding some of them; within each, by
    relevance (bm25 on SQLite, ts_rank on PostgreSQL). With filters only, the latest changed first.
    """
    q = query if isinstance(query, Query) else parse_query(query)
    if not q.words and not q.filtered:
        raise InvalidQuery(f"Nothing to search for in '{q.text}': its words are too common. Try words from a "
                           "title or a description, or a filter like kind:model or tag:nlp.")
    filters = _filters(session, q, viewer)
    ids, has_more, partial = text_index.page(session, q.words, filters, limit, offset)
    assets = _load(session, ids)
    if assets or offset:
        return SearchResult(q, assets, offset, has_more, partial)
    unfiltered = bool(q.words and q.filtered and text_index.page(session, q.words, [], 1, 0)[0])
    return SearchResult(q, (), offset, False, suggestions=_suggestions(session, q),
                        unfiltered_matches=unfiltered)


def _filters(session: Session, q: Query, viewer: str | None) -> list[ColumnElement[bool]]:
    a = CatalogAsset
    filters: list[ColumnElement[bool]] = []
    if q.kinds:
        filters.append(a.kind.in_(q.kinds))
    for tag in q.tags:
        filters.append(a.id.in_(select(CatalogTag.asset_id).where(CatalogTag.tag == tag)))
    if q.owners:
        filters.append(a.owner.in_({p for o in q.owners for p in resolve_owner(session=session, text=o,
                                                                                 viewer=viewer)}))
    if q.projects:
        known = set(session.execute(select(Project.key).where(Project.key.in_(q.projects))).scalars())
        for key in q.projects:
            if key not in known:
                registry.get_project(session=session, key=key)  # raises NotFound with a suggestion
        filters.append(a.project_key.in_(q.projects))
    if q.statuses:
        filters.append(or_(*(_status_is(s) for s in q.statuses)))
    return filters


def _status_is(status: str) -> ColumnElement[bool]:
    a, v = CatalogAsset, ModelVersion
    declared = a.status == status  # stored lower-cased; registry assets have none of their own
    if status not in set(VersionStatus):
        return declared
    return or_(declared,
               and_(a.kind == AssetKind.model_version, a.version_id.in_(select(v.id).where(v.status == status))),
               # A model "is" production when one of its versions is: the status people ask about.
               and_(a.kind == AssetKind.model, a.model_id.in_(select(v.model_id).where(v.status == status))))


def resolve_owner(*, session: Session, text: str, viewer: str | None = None) -> list[str]:
    """Slack ids for `<@U123>`, `U123`, `@eli`, `eli` or `me`; NotFound naming the closest person."""
    text = text.strip()
    if mention := _MENTION.fullmatch(text):
        return [mention[1]]
    handle = text.removeprefix("@")
    if handle.lower() == "me" and viewer:
        return [viewer]
    if _SLACK_ID.fullmatch(handle):
        return [handle]
    people = list(session.execute(select(Person.slack_id, Person.name)).all())
    wanted = handle.casefold()
    ids = [p.slack_id for p in people if wanted in _handles(p.name)]
    if not ids:
        names = {h: p.name for p in people for h in _handles(p.name)}
        close = difflib.get_close_matches(wanted, list(names), n=1)
        hint = f" Did you mean @{names[close[0]]}?" if close else ""
        raise NotFound(f"No one called @{handle} is in Flywheel.{hint}")
    return ids


def _handles(name: str) -> set[str]:
    parts = name.casefold().split()
    return {name.casefold(), *(sep.join(parts) for sep in ("", ".", "_", "-")), *parts[:1]}


def _suggestions(session: Session, q: Query) -> tuple[Suggestion, ...]:
    """Known tags and titles closest to what was typed, for a search that found nothing.

    Candidates share the typed word's first letters (read through indexes), plus every project's name:
    difflib then picks the close ones.
    """
    typed = [*q.tags, *(w.lower().strip(".,;!?") for w in q.words)]
    typed = [w for w in typed if len(w) >= 3 and WORD_PARTS.fullmatch(w[:3])]
    if not typed:
        return ()
    tags: set[str] = set()
    for start in {w[:2] for w in typed}:
        after = start[:-1] + chr(ord(start[-1]) + 1)
        tags.update(session.execute(select(CatalogTag.tag).where(CatalogTag.tag >= start, CatalogTag.tag < after)
                                    .distinct().limit(1000)).scalars())
    titles = set(session.execute(select(Project.name)).scalars())
    starting = text_index.title_starts(session, {w[:3] for w in typed})
    titles.update(session.execute(select(CatalogAsset.title).where(starting).limit(300)).scalars())
    by_word: dict[str, set[str]] = {}
    for title in titles:
        for word in re.findall(r"\w+", title.lower()):
            by_word.setdefault(word, set()).add(title)
    found: list[Suggestion] = []
    for word in typed:
        found += [Suggestion("tag", t) for t in difflib.get_close_matches(word, sorted(tags), n=2, cutoff=0.7)]
        for close in difflib.get_close_matches(word, sorted(by_word), n=2, cutoff=0.75):
            found += [Suggestion("title", t) for t in sorted(by_word[close])[:2]]
    return tuple(dict.fromkeys(found))[:MAX_SUGGESTIONS]


# --- reading assets ------------------------------------------------------------------------------

def _load(session: Session, ids: Sequence[int]) -> tuple[Asset, ...]:
    if not ids:
        return ()
    rows = {r.id: r for r in session.execute(select(CatalogAsset).where(CatalogAsset.id.in_(ids))).scalars()}
    ordered = [rows[i] for i in ids if i in rows]
    model_ids = {r.model_id for r in ordered if r.model_id is not None}
    keys = dict(session.execute(select(Model.id, Model.key).where(Model.id.in_(model_ids))).all()) \
        if model_ids else {}
    versions: dict[int, list[ModelVersion]] = {}
    if model_ids:
        for v in session.execute(select(ModelVersion).where(ModelVersion.model_id.in_(model_ids))
                                 .order_by(ModelVersion.number)).scalars():
            versions.setdefault(v.model_id, []).append(v)
    return tuple(_asset(r, keys.get(r.model_id), versions.get(r.model_id, [])) for r in ordered)


def _asset(row: CatalogAsset, model_key: str | None, versions: list[ModelVersion]) -> Asset:
    status, status_text, changed, number = row.status, row.status or "", row.updated_at, None
    if row.kind == AssetKind.model:
        production = next((v for v in versions if v.status == VersionStatus.production), None)
        latest = versions[-1] if versions else None
        if production is not None:
            status, status_text = "production", f"{production.label} in production"
        elif latest is not None:
            status, status_text = None, f"nothing in production; {latest.label} {_words(latest.status)}"
        changed = max([changed, *(_changed(v) for v in versions)])
    elif row.kind == AssetKind.model_version:
        version = next((v for v in versions if v.id == row.version_id), None)
        if version is not None:
            status, status_text, number = version.status.value, _words(version.status), version.number
            changed = max(changed, _changed(version))
    return Asset(key=row.key, kind=row.kind, title=row.title, description=row.description,
                 project_key=row.project_key, project_name=row.project_name, owner=row.owner,
                 owner_name=row.owner_name, tags=tuple(row.tags), links=tuple(row.links), status=status,
                 status_text=status_text, changed_at=changed, origin=row.origin, model_key=model_key,
                 version_number=number)


def _words(status: VersionStatus) -> str:
    return status.value.replace("_", " ")


def _changed(version: ModelVersion) -> datetime:
    return max(version.created_at, version.deployed_at or version.created_at)


def get_asset(*, session: Session, key: str) -> Asset:
    found = session.execute(select(CatalogAsset.id).where(CatalogAsset.key == key)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"Nothing in the catalog is called {key} any more; search again with /catalog.")
    return _load(session, [found])[0]


def owned_by(*, session: Session, slack_id: str, limit: int) -> tuple[tuple[Asset, ...], int]:
    """A person's assets, latest change first, without model versions (their models stand for them);
    and how many more there are."""
    where = (CatalogAsset.owner == slack_id, CatalogAsset.kind != AssetKind.model_version)
    total = session.execute(select(func.count()).select_from(CatalogAsset).where(*where)).scalar_one()
    ids = list(session.execute(select(CatalogAsset.id).where(*where).order_by(
        CatalogAsset.updated_at.desc(), CatalogAsset.id.desc()).limit(limit)).scalars())
    return _load(session, ids), max(0, total - len(ids))


def share(*, session: Session, key: str, by: str, channel: str | None, now: datetime | None = None) -> Asset:
    """The asset to post for everyone in a channel; the share is audited."""
    asset = get_asset(session=session, key=key)
    audit.record(session=session, actor=by, action="catalog.shared", subject=f"catalog:{key}",
                 details={"channel": channel}, at=now)
    return asset


# --- writing assets ------------------------------------------------------------------------------

def _slug_key(kind: str, project_key: str | None, slug: str) -> str:
    return f"{kind}:{project_key}/{slug}" if project_key else f"{kind}:{slug}"


def _names(session: Session, slack_ids: Iterable[str]) -> dict[str, str]:
    people = registry.people_by_id(session=session, slack_ids=sorted(set(slack_ids)))
    return {p.slack_id: p.name for p in people.values()}


def _put(session: Session, existing: dict[str, CatalogAsset], key: str, values: dict[str, Any],
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


def _existing(session: Session, *where: ColumnElement[bool]) -> dict[str, CatalogAsset]:
    rows = session.execute(select(CatalogAsset).where(*where).options(selectinload(CatalogAsset.tag_rows)))
    return {a.key: a for a in rows.scalars()}


def sync_spec(*, session: Session, loaded: LoadedSpec, now: datetime | None = None) -> list[str]:
    """Bring the catalog in step with a spec just applied (called at the end of store.apply.apply_spec).

    The project, its models, their versions and datasets follow the registry silently; the entries of
    the spec's `catalog:` section are added, updated or removed, and those changes are returned.
    """
    now = now or utcnow()
    project = registry.get_project(session=session, key=loaded.spec.project.key)
    sync_project(session=session, project=project, now=now)
    _rename(session, {p.slack_id: p.name for p in loaded.spec.people}, project)
    return _sync_declared(session, project, loaded.spec.catalog, now)


def sync_registry(*, session: Session, now: datetime | None = None) -> int:
    """Every project's registry assets (a catalog created after the registry, or repaired); returns the
    number of projects synced."""
    projects = registry.list_projects(session=session)
    for project in projects:
        sync_project(session=session, project=project, now=now or utcnow())
    return len(projects)


def sync_project(*, session: Session, project: Project, now: datetime) -> None:
    models = list(session.execute(select(Model).where(Model.project_id == project.id).order_by(Model.key)
                                  .options(selectinload(Model.versions))).scalars())
    names = _names(session, [project.owner, *(m.owner for m in models)])
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
    existing = _existing(session, or_(and_(CatalogAsset.project_key == project.key,
                                           CatalogAsset.origin == AssetOrigin.registry),
                                      CatalogAsset.key.in_(list(wanted))))
    for key, values in wanted.items():
        values.update(origin=AssetOrigin.registry, project_key=project.key, project_name=project.name,
                      owner_name=names.get(values["owner"], ""))
        _put(session, existing, key, values, now)
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
    """A version just registered enters the catalog (called from store.registry.register_version)."""
    model = version.model
    values = _version_values(model, version)
    values.update(origin=AssetOrigin.registry, project_key=model.project.key, project_name=model.project.name,
                  owner_name=_names(session, [model.owner]).get(model.owner, ""))
    key = _version_key(model, version)
    _put(session, _existing(session, CatalogAsset.key == key), key, values, version.created_at)
    session.flush()


def _rename(session: Session, people: dict[str, str], project: Project) -> None:
    """Names copied into assets follow the people and the project a spec renames."""
    for slack_id, name in people.items():
        for asset in session.execute(select(CatalogAsset).where(CatalogAsset.owner == slack_id,
                                                                CatalogAsset.owner_name != name)).scalars():
            asset.owner_name = name
    for asset in session.execute(select(CatalogAsset).where(CatalogAsset.project_key == project.key,
                                                            CatalogAsset.project_name != project.name)).scalars():
        asset.project_name = project.name
    session.flush()


def _sync_declared(session: Session, project: Project, entries: Sequence[CatalogEntrySpec],
                   now: datetime) -> list[str]:
    existing = _existing(session, CatalogAsset.project_key == project.key, CatalogAsset.origin == AssetOrigin.spec)
    names = _names(session, [e.owner for e in entries])
    changes, wanted = [], set()
    for entry in entries:
        key = _slug_key(entry.kind, project.key, entry.slug)
        wanted.add(key)
        if key not in existing:
            _refuse_taken(session, key, f"the {project.key} spec")
        values = dict(kind=AssetKind(entry.kind), origin=AssetOrigin.spec, title=entry.title,
                      description=entry.description, owner=entry.owner, owner_name=names.get(entry.owner, ""),
                      project_key=project.key, project_name=project.name, tags=list(entry.tags),
                      links=list(entry.links), status=_status(entry.status))
        if done := _put(session, existing, key, values, now):
            changes.append(f"{done} catalog {KIND_LABELS[AssetKind(entry.kind)]} {entry.slug}")
    for key, asset in existing.items():
        if key not in wanted:
            session.delete(asset)
            changes.append(f"removed catalog {KIND_LABELS[asset.kind]} {key.partition('/')[2]}")
    session.flush()
    return changes


def _refuse_taken(session: Session, key: str, by: str) -> None:
    taken = session.execute(select(CatalogAsset.origin, CatalogAsset.project_key)
                            .where(CatalogAsset.key == key)).first()
    if taken is None:
        return
    where = {AssetOrigin.registry: "comes from the registry",
             AssetOrigin.spec: f"is declared in the {taken.project_key} spec's catalog: section",
             AssetOrigin.cli: "was added with `flywheel catalog add`; `flywheel catalog remove` it first"}
    raise Conflict(f"{by} can't add catalog entry {key}: it {where[taken.origin]}. Give this one another key.")


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
    if registry.get_person(session=session, slack_id=owners[0]) is None:
        raise NotFound(f"{owners[0]} is not in Flywheel: an owner must be one of the people in a project spec.")
    found = registry.get_project(session=session, key=project) if project else None
    asset_key = _slug_key(entry.kind, found.key if found else None, entry.slug)
    existing = _existing(session, CatalogAsset.key == asset_key, CatalogAsset.origin == AssetOrigin.cli)
    if asset_key not in existing:
        _refuse_taken(session, asset_key, "You")
    values = dict(kind=AssetKind(entry.kind), origin=AssetOrigin.cli, title=entry.title,
                  description=entry.description, owner=owners[0], owner_name=_names(session, owners)[owners[0]],
                  project_key=found.key if found else None, project_name=found.name if found else "",
                  tags=list(entry.tags), links=list(entry.links), status=_status(entry.status))
    done = _put(session, existing, asset_key, values, now) or "unchanged"
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


def remove_asset(*, session: Session, key: str, actor: str, now: datetime | None = None) -> None:
    """Remove an asset added by hand; declared and registry assets leave with their source."""
    asset = session.execute(select(CatalogAsset).where(CatalogAsset.key == key)).scalar_one_or_none()
    if asset is None:
        known = list(session.execute(select(CatalogAsset.key).where(CatalogAsset.origin == AssetOrigin.cli))
                     .scalars())
        raise NotFound(f"No catalog entry {key}.{registry.did_you_mean(key, known)}")
    if asset.origin == AssetOrigin.spec:
        raise Conflict(f"{key} is declared in the {asset.project_key} spec: remove it from its catalog: section "
                       "and apply the spec again.")
    if asset.origin == AssetOrigin.registry:
        raise Conflict(f"{key} follows the registry and leaves the catalog with its source.")
    session.execute(delete(CatalogTag).where(CatalogTag.asset_id == asset.id))
    session.delete(asset)
    session.flush()
    audit.record(session=session, actor=actor, action="catalog.removed", subject=f"catalog:{key}", at=now)
