"""Queries on the catalog's text index, one way per database: SQLite's FTS5 table (bm25, Porter
stemming) and PostgreSQL's tsvector columns (ts_rank, English stemming), both made by migration 0003.

Results come in tiers, each ranked on its own: every word in the title; every word anywhere; then,
rarest word first, assets holding that word. A tier is read only when the ones before it run out before
the page does, so a word held by a third of the assets is ranked among the titles holding it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, select
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session

from store.models import CatalogAsset

WORD_PARTS = re.compile(r"[^\W_]+")
PREFIX_FROM = 4
RARITY_CAP = 2000  # counting stops here: past it a word is common, and exact counts cost a scan
# bm25 weights, in the column order of the catalog_fts table (migration 0003): a title word says most.
BM25_WEIGHTS = (8.0, 1.0, 4.0, 2.0, 2.0, 1.5)  # title, description, tags, owner_name, project_name, kind


@dataclass(frozen=True)
class _Tier:
    """Assets holding every word of `holds` (all in the title, or anywhere but not all in the title),
    and not every word of any group in `lacks`. Tiers are shown in order, each ranked on its own."""

    holds: tuple[str, ...]
    in_title: bool
    lacks: tuple[tuple[str, ...], ...] = ()


def page(session: Session, words: Sequence[str], filters: list[ColumnElement[bool]], limit: int,
         offset: int) -> tuple[list[int], bool, bool]:
    """ids on the page, whether more follow, and whether the first page holds no asset with every word.

    Without words, the latest changed first.
    """
    if not words:
        query = select(CatalogAsset.id).where(*filters).order_by(CatalogAsset.updated_at.desc(),
                                                                  CatalogAsset.id.desc())
        ids = list(session.execute(query.limit(limit + 1).offset(offset)).scalars())
        return ids[:limit], len(ids) > limit, False
    sqlite = session.get_bind().dialect.name == "sqlite"
    ranked = functools.partial(_sqlite_ranked if sqlite else _postgres_ranked, words, filters)
    every = tuple(words)
    tiers = [_Tier(every, True), _Tier(every, False)]
    ids: list[int] = []
    skip, partial = offset, False
    while tiers and len(ids) <= limit:
        tier = tiers.pop(0)
        query = ranked(tier)
        passed = session.execute(select(func.count()).select_from(query.subquery())).scalar_one() if skip else 0
        if skip and passed <= skip:
            skip -= passed
        else:
            found = list(session.execute(query.limit(limit + 1 - len(ids)).offset(skip)).scalars())
            partial = partial or (tier.holds != every and not ids and not offset and bool(found))
            ids, skip = ids + found, 0
        if not tiers and len(words) > 1 and tier.holds == every and len(ids) <= limit:
            rarest = sorted(words, key=lambda w: _frequency(session, w, sqlite))
            for k, word in enumerate(rarest):
                lacks = (every, *((w,) for w in rarest[:k]))
                tiers += [_Tier((word,), True, lacks), _Tier((word,), False, lacks)]
    return ids[:limit], len(ids) > limit, partial


def _frequency(session: Session, word: str, sqlite: bool) -> int:
    if sqlite:
        holding = select(literal_column("1")).select_from(sql_table("catalog_fts")).where(
            literal_column("catalog_fts").op("MATCH")(_fts_phrase(word)))
    else:
        holding = select(literal_column("1")).select_from(CatalogAsset).where(
            literal_column("catalog_assets.catalog_fts").op("@@")(_tsquery([word], "&")))
    return session.execute(select(func.count()).select_from(holding.limit(RARITY_CAP).subquery())).scalar_one()


def _prefix(word: str) -> bool:
    # Stems alone don't join "predicts" and "predictor": a word of 4 letters or more also matches as the
    # start of longer ones (stemmed first, so "forecasting" finds "forecasts" and "forecaster").
    return len(word) >= PREFIX_FROM


def _fts_phrase(word: str) -> str:
    # A quoted FTS5 string is tokenized like the indexed text: "card-fraud" is the phrase "card fraud".
    return '"' + word.replace('"', '""') + '"' + ("*" if _prefix(WORD_PARTS.findall(word)[-1]) else "")


def _fts_all(words: Sequence[str]) -> str:
    return "(" + " AND ".join(_fts_phrase(w) for w in words) + ")"


def _sqlite_ranked(words: Sequence[str], filters: list[ColumnElement[bool]], tier: _Tier) -> Select:
    holds = _fts_all(tier.holds)
    expression = f"title : {holds}" if tier.in_title else f"{holds} NOT (title : {holds})"
    for group in tier.lacks:
        expression = f"({expression}) NOT {_fts_all(group)}"
    if len(tier.holds) < len(words):
        # The other words still count in bm25: an asset holding more of them ranks higher.
        expression = f"({expression}) AND ({' OR '.join(_fts_phrase(w) for w in words)})"
    fts = sql_table("catalog_fts", column("rowid"))
    query = select(fts.c.rowid).where(literal_column("catalog_fts").op("MATCH")(expression))
    if filters:
        # "rowid + 0": a filter set probed per match. Handed to FTS5 as a rowid constraint, each of its
        # ids would evaluate the whole expression again, prefix expansions included.
        query = query.where((fts.c.rowid + 0).in_(select(CatalogAsset.id).where(*filters)))
    rank = func.bm25(literal_column("catalog_fts"), *BM25_WEIGHTS)
    return query.order_by(rank, fts.c.rowid.desc())


def _tsquery(words: Sequence[str], joiner: str) -> ColumnElement[Any]:
    # "loan-feature" as the words it joins (the parser keeps hyphenated compounds whole otherwise); each
    # part is letters and digits only, so nothing typed is read as tsquery syntax.
    english = literal_column("'english'::regconfig")
    terms = [func.to_tsquery(english, " & ".join(f"{t}:*" if _prefix(t) else t for t in WORD_PARTS.findall(w)))
             for w in words]
    return functools.reduce(lambda x, y: x.op("&&" if joiner == "&" else "||")(y), terms)


def _postgres_ranked(words: Sequence[str], filters: list[ColumnElement[bool]], tier: _Tier) -> Select:
    a = CatalogAsset
    document, title = literal_column("catalog_assets.catalog_fts"), literal_column("catalog_assets.catalog_fts_title")
    holds = _tsquery(tier.holds, "&")
    where = [title.op("@@")(holds)] if tier.in_title else [document.op("@@")(holds), ~title.op("@@")(holds)]
    where += [~document.op("@@")(_tsquery(group, "&")) for group in tier.lacks]
    rank = func.ts_rank(document, _tsquery(words, "|"))
    return select(a.id).where(*where, *filters).order_by(rank.desc(), a.updated_at.desc(), a.id.desc())


def title_starts(session: Session, starts: set[str]) -> ColumnElement[bool]:
    """Assets with a title word starting with one of these (letters and digits only), by the text index."""
    if session.get_bind().dialect.name == "sqlite":
        holding = select(column("rowid")).select_from(sql_table("catalog_fts")).where(
            literal_column("catalog_fts").op("MATCH")(" OR ".join(f'title : "{s}"*' for s in sorted(starts))))
        return CatalogAsset.id.in_(holding.limit(300))
    prefixes = " | ".join(f"{s}:*" for s in sorted(starts))
    return literal_column("catalog_assets.catalog_fts_title").op("@@")(
        func.to_tsquery(literal_column("'english'::regconfig"), prefixes))
