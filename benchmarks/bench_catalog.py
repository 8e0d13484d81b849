"""Catalog search latency at 100k assets, on SQLite (FTS5, bm25) and PostgreSQL (tsvector, ts_rank, GIN).

The script fills a fresh registry with synthetic assets (titles, descriptions, tags, owners and projects
drawn from a Zipf-distributed vocabulary, so some words are in a third of the assets and most in a few),
then times `store.catalog.search` exactly as /catalog calls it: one unit of work per query, results
loaded with their live status. Printed per mix of queries: p50, p99 and max milliseconds and the median
number of matching assets. Target: p99 under 50 ms.

    python benchmarks/bench_catalog.py                                   # SQLite file, 100k assets
    python benchmarks/bench_catalog.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/bench_catalog.py --assets 20000 --queries 100 --database-url sqlite --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/test

A PostgreSQL URL names the server to use: the script creates its own database there and drops it on exit.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from benchmarks.harness import main_running, scratch_registry  # noqa: E402
from store import catalog  # noqa: E402
from store.models import AssetKind, AssetOrigin, CatalogAsset, CatalogTag  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import Person, Project, RiskTier  # noqa: E402

DOMAIN = """customer churn fraud card payment transaction review sentiment forecast demand store sales price
pricing margin elasticity promotion inventory warehouse supplier delivery route logistics ticket support agent
satisfaction credit loan default risk scorecard bureau limit collections recommendation ranking search query click
session embedding product image vision text language translation summary invoice contract expense ledger account
employee attrition hiring shift schedule absence payroll marketing campaign email attribution spend budget channel
survey feedback complaint chatbot speech transcript anomaly drift monitoring latency serving feature pipeline
training evaluation calibration fairness privacy consent retention lifetime value segment cohort experiment uplift
weekly daily monthly model dataset notebook dashboard repository plugin report table stream batch real time label
annotation quality metric threshold alert incident audit compliance regulation identity document verification
address geography weather energy emission carbon waste fresh returns size fashion bundle coupon subscription
plan upgrade downgrade cancellation onboarding activation engagement growth revenue cost gpu cluster storage""".split()
KINDS = [AssetKind.dataset] * 30 + [AssetKind.model] * 15 + [AssetKind.model_version] * 20 + \
    [AssetKind.notebook] * 20 + [AssetKind.dashboard] * 8 + [AssetKind.repository] * 5 + [AssetKind.plugin] * 2
STATUSES = [None] * 8 + ["live", "deprecated"]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """Domain words first (the frequent ones), then made-up words for the long tail."""
    syllables = ["ka", "lo", "mi", "ter", "ven", "dor", "sa", "qu", "ril", "nex", "tal", "bo", "fi", "gan", "zu"]
    words = list(dict.fromkeys(DOMAIN))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Zipf:
    """Zipf-Mandelbrot word frequencies: 1 / (rank + q). With q = 10 over 20,000 words and about 20 words
    per asset, the most common word is in about a fifth of the assets, as "model" or "customer" might be."""

    def __init__(self, words: list[str], rng: random.Random, q: float = 10):
        self.words, self.rng = words, rng
        self.weights = [1 / (rank + q) for rank in range(len(words))]

    def pick(self, k: int) -> list[str]:
        return self.rng.choices(self.words, weights=self.weights, k=k)


def fill(db: Database, assets: int, seed: int) -> dict[str, list[str]]:
    """`assets` synthetic assets; returns the projects, owners and tags used, for the queries."""
    rng = random.Random(seed)
    zipf = Zipf(_vocabulary(rng, 20_000), rng)
    tags = [f"{a}-{b}" if i % 3 else a for i, (a, b) in enumerate(zip(zipf.pick(400), zipf.pick(400)))]
    tags = list(dict.fromkeys(tags))
    people = {f"U{n:08d}": f"{rng.choice(DOMAIN).capitalize()} {rng.choice(DOMAIN).capitalize()}{n}"
              for n in range(500)}
    projects = {f"project-{n}": " ".join(zipf.pick(3)).capitalize() for n in range(200)}
    start = datetime(2024, 1, 1)
    with db.session() as s:
        s.execute(insert(Person), [{"slack_id": k, "name": v, "roles": ["ml_engineer"]} for k, v in people.items()])
        s.execute(insert(Project), [{"key": k, "name": v, "owner": rng.choice(list(people)), "risk_tier": RiskTier.low}
                                    for k, v in projects.items()])
    owners = list(people)
    project_keys = list(projects)
    batch = 5000
    for first in range(0, assets, batch):
        rows, tag_rows = [], []
        for n in range(first, min(first + batch, assets)):
            kind, owner, project = rng.choice(KINDS), rng.choice(owners), rng.choice(project_keys)
            chosen = list(dict.fromkeys(rng.sample(tags, rng.randint(0, 4))))
            changed = start + timedelta(minutes=rng.randint(0, 60 * 24 * 700))
            rows.append({"id": n + 1, "key": f"{kind.value}:{project}/asset-{n}", "kind": kind,
                         "origin": AssetOrigin.cli, "title": " ".join(zipf.pick(rng.randint(2, 5))).capitalize(),
                         "description": " ".join(zipf.pick(rng.randint(5, 30))).capitalize() + ".",
                         "project_key": project, "project_name": projects[project], "owner": owner,
                         "owner_name": people[owner], "tags": chosen, "links": [],
                         "status": rng.choice(STATUSES), "created_at": changed, "updated_at": changed})
            tag_rows += [{"asset_id": n + 1, "tag": t} for t in chosen]
        with db.session() as s:
            s.execute(insert(CatalogAsset), rows)
            if tag_rows:
                s.execute(insert(CatalogTag), tag_rows)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return {"words": zipf.words, "tags": tags, "owners": ["".join(people[o].split()).lower() for o in owners[:50]],
            "projects": project_keys, "zipf": zipf}


def mixes(pool: dict, rng: random.Random) -> dict[str, Callable[[], str]]:
    zipf: Zipf = pool["zipf"]
    common = pool["words"][:30]

    def kinds() -> str:
        return rng.choice(["kind:model", "kind:dataset", "kind:notebook", "kind:dashboard"])

    return {
        "1 word": lambda: zipf.pick(1)[0],
        "1 common word": lambda: rng.choice(common),
        "2-3 words": lambda: " ".join(zipf.pick(rng.randint(2, 3))),
        "3 common words": lambda: " ".join(rng.sample(common, 3)),
        "words + kind + tag": lambda: f"{zipf.pick(1)[0]} {kinds()} tag:{rng.choice(pool['tags'])}",
        "words + project": lambda: f"{' '.join(zipf.pick(2))} project:{rng.choice(pool['projects'])}",
        "words + owner": lambda: f"{zipf.pick(1)[0]} owner:@{rng.choice(pool['owners'])}",
        "filters only": lambda: f"{kinds()} tag:{rng.choice(pool['tags'])}",
        "status:deprecated": lambda: f"status:deprecated {kinds()}",
        "no match (suggestions)": lambda: rng.choice(common)[:-1] + "zq",
    }


def run(db: Database, queries: int, warmup: int, pool: dict, seed: int) -> list[tuple[str, list[float], list[int]]]:
    rng = random.Random(seed + 1)
    results = []
    for name, make in mixes(pool, rng).items():
        timings, counts = [], []
        for n in range(warmup + queries):
            query = make()
            began = time.perf_counter()
            with db.read() as s:
                found = catalog.search(session=s, query=query)
            elapsed = (time.perf_counter() - began) * 1000
            if n >= warmup:
                timings.append(elapsed)
                counts.append(len(found.assets))
        results.append((name, timings, counts))
    return results


def matches(db: Database, word: str) -> int:
    """How many assets a word matches: the size of the ranked set behind a common-word query."""
    with db.session() as s:
        if db.engine.dialect.name == "sqlite":
            return s.execute(text("SELECT count(*) FROM catalog_fts WHERE catalog_fts MATCH :w"), {"w": word}).scalar()
        return s.execute(select(func.count()).select_from(CatalogAsset).where(text(
            "catalog_fts @@ plainto_tsquery('english', :w)")), {"w": word}).scalar()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", action="append", dest="urls",
                        help="'sqlite' (a temporary file) or a PostgreSQL server URL; repeatable. Default: sqlite.")
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="Timed queries per mix.")
    parser.add_argument("--warmup", type=int, default=20, help="Untimed queries per mix, first.")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, stack: ExitStack) -> None:
    for url in args.urls or ["sqlite"]:
        with scratch_registry(None if url == "sqlite" else url, prefix="bench_catalog") as db:
            began = time.perf_counter()
            pool = fill(db, args.assets, args.seed)
            loaded = time.perf_counter() - began
            common = pool["words"][0]
            print(f"\n{db.engine.dialect.name}: {args.assets:,} assets loaded in {loaded:.0f} s; the most common "
                  f"word, {common!r}, is in {matches(db, common):,} of them")
            print(f"{'mix':<24}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'results':>9}")
            for name, timings, counts in run(db, args.queries, args.warmup, pool, args.seed):
                print(f"{name:<24}{percentile(timings, 50):>8.1f}{percentile(timings, 99):>8.1f}"
                      f"{max(timings):>8.1f}{statistics.median(counts):>9.0f}")


main = main_running("bench_catalog", parse_args, bench, interrupted="the scratch databases are removed.")


if __name__ == "__main__":
    sys.exit(main())
