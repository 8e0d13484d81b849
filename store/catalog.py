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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from store import audit, authority, projects
from store import catalog_index as text_index
from store.catalog_index import WORD_PARTS
from store.models import AssetKind, AssetOrigin, CatalogAsset, CatalogTag
from store.errors import FlywheelError, NotFound
from store.models import Model, ModelVersion, Person, Project, VersionStatus

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
    # SQLite's text index is read as a table, out of reach of store.authority's criteria: a filter on the
    # assets themselves brings them in, so another workspace's matches are neither paged, counted nor hinted.
    workspace = [CatalogAsset.id.is_not(None)] if authority.current_team() else []
    filters = _filters(session, q, viewer) or workspace
    ids, has_more, partial = text_index.page(session, q.words, filters, limit, offset)
    assets = _load(session, ids)
    if assets or offset:
        return SearchResult(q, assets, offset, has_more, partial)
    unfiltered = bool(q.words and q.filtered and text_index.page(session, q.words, workspace, 1, 0)[0])
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
                projects.get_project(session=session, key=key)  # raises NotFound with a suggestion
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
