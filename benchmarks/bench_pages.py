"""Render time of the dashboard's model page with one year of hourly check history.

The script fills a registry (a SQLite file in a temporary folder, or a fresh PostgreSQL database it
creates and drops) with one model checked every hour for a year: 8,760 runs of each of the four checks
with the figures the real checks store (7 drift features, 3 KPIs with their trailing history, 3 metrics,
data quality), an evaluation per performance run, two versions, alerts opening and resolving, their audit
events. Then it requests the pages in-process through the dashboard's ASGI app (Starlette's test client:
routing, session check, queries, templates and inline SVG, without a network hop) after a warm-up, and
prints p50, p99 and max milliseconds per page. Target: model page p99 under 200 ms.

    python benchmarks/bench_pages.py                          # SQLite, 200 requests per page
    python benchmarks/bench_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/bench_pages.py --requests 500
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from benchmarks.harness import main_running, scratch_registry
from bot.config import Settings
from bot.dashboard.access import Signer
from bot.dashboard.app import build_dashboard
from store import audit, monitoring, registry
from store.db import Database
from store.models import (
    Alert,
    AlertState,
    Blueprint,
    BlueprintStep,
    CheckKind,
    CheckRun,
    Evaluation,
    Grant,
    Model,
    Person,
    Project,
    RiskTier,
    Verdict,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

START = datetime(2025, 11, 24)
HOURS = 365 * 24
FEATURES = [("amount", "numeric", "Wasserstein", 0.1), ("card_age_days", "numeric", "Wasserstein", 0.15),
            ("hour", "numeric", "Wasserstein", 0.1), ("distance_km", "numeric", "Wasserstein", 0.1),
            ("merchant_category", "categorical", "Jensen-Shannon", 0.1),
            ("country", "categorical", "Jensen-Shannon", 0.1), ("channel", "categorical", "Jensen-Shannon", 0.1)]
ELI, DANA = "U0ML0001", "U0BIZ001"
SECRET = "bench-secret-" + "x" * 32
BASE = "https://flywheel.example.com"


def _figures(kind: CheckKind, hour: int, rng: random.Random) -> tuple[dict, Verdict, str]:
    drifting = 24 * 200 < hour < 24 * 230  # a month of drift on card_age_days
    if kind == CheckKind.drift:
        features = [{"feature": f, "kind": k, "method": m.lower(), "method_label": m,
                     "statistic": 0.2 + rng.random() / 10 if drifting and f == "card_age_days" else rng.random() / 16,
                     "threshold": t, "p_value": 1e-9 if drifting and f == "card_age_days" else rng.random(),
                     "drifted": drifting and f == "card_age_days", "severity": 0, "reference_missing": 0,
                     "current_missing": 0, "unseen_categories": []} for f, k, m, t in FEATURES]
        return ({"reference_rows": 100_000, "current_rows": 100_000, "alpha": 0.05, "features": features},
                Verdict.breach if drifting else Verdict.ok, "1 of 7 features drifted" if drifting else "no drift")
    if kind == CheckKind.kpi:
        amount = 6000 + rng.random() * 3000 + (6000 if drifting else 0)
        history = [[(START + timedelta(hours=hour - 168 * i)).isoformat(), 6000 + rng.random() * 3000]
                   for i in range(7, 0, -1)]
        kpis = [{"name": "missed_fraud_amount", "label": "Fraud amount missed", "unit": "USD", "value": amount,
                 "baseline": None, "baseline_windows": 4, "threshold": 10000.0, "rule": "above $10,000",
                 "breached": amount > 10000, "history": history},
                {"name": "missed_fraud_rate", "label": "Missed fraud", "unit": "rate",
                 "value": 0.02 + rng.random() / 100,
                 "baseline": 0.022, "baseline_windows": 4, "threshold": None, "rule": "25% above the 4-window baseline",
                 "breached": False, "history": history},
                {"name": "false_alarm_rate", "label": "Good customers blocked", "unit": "rate", "value": 0.001,
                 "baseline": 0.001, "baseline_windows": 4, "threshold": None, "rule": "50% above the 4-window baseline",
                 "breached": False, "history": history}]
        breached = amount > 10000
        return {"kpis": kpis, "rows": 100_000}, Verdict.breach if breached else Verdict.ok, "KPIs"
    if kind == CheckKind.performance:
        metrics = {"precision": 0.8 + rng.random() / 20, "recall": (0.55 if drifting else 0.7) + rng.random() / 20,
                   "roc_auc": 0.93 + rng.random() / 50}
        return ({"metrics": metrics, "training_metrics": metrics, "rows": 100_000, "labelled_rows": 90_000,
                 "breaches": ["recall"] if drifting else []}, Verdict.breach if drifting else Verdict.ok, "metrics")
    return ({"rows": 100_000, "baseline_rows": 100_000.0, "null_share": {f: 0.0 for f, *_ in FEATURES},
             "schema": {"missing": [], "new": [], "changed": []}, "problems": []}, Verdict.ok, "100,000 rows")


def fill(db: Database) -> None:
    rng = random.Random(7)
    with db.session() as s:
        people = [Person(slack_id=ELI, name="Eli"), Person(slack_id=DANA, name="Dana"),
                  Person(slack_id="U0RISK01", name="Rita")]
        s.add_all(people)
        project = Project(key="card-fraud", name="Card fraud detection", initiative="Reduce payment fraud losses",
                          owner=ELI, sponsors=[DANA], risk_tier=RiskTier.high)
        for person, role in zip(people, ("ml_engineer", "business", "risk_manager")):
            person.grants.append(Grant(project=project, role=role))
        project.blueprint = Blueprint(name="customer-facing", steps=[
            BlueprintStep(position=1, name="technical validation", role="ml_engineer", quorum=1),
            BlueprintStep(position=2, name="risk review", role="risk_manager", quorum=1)])
        model = Model(key="fraud-detector", project=project, owner=ELI, task="binary_classification",
                      description="Scores card transactions",
                      spec={"performance": {"alert": {"recall": {"below": 0.6}}},
                            "kpis": [{"name": "missed_fraud_rate", "alert": {"above_baseline_pct": 25}}]})
        s.add(model)
        s.flush()
        v1 = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri="v1", now=START)
        registry.adopt_as_production(session=s, version=v1, actor=ELI, now=START)
        model_id, version_id = model.id, v1.id
    for kind in CheckKind:
        rows, evaluations = [], []
        for hour in range(1, HOURS + 1):
            as_of = START + timedelta(hours=hour)
            figures, verdict, message = _figures(kind, hour, rng)
            rows.append({"model_id": model_id, "version_id": version_id, "kind": kind, "as_of": as_of,
                         "window_start": as_of - timedelta(days=7), "window_end": as_of, "figures": figures,
                         "verdict": verdict, "message": message, "created_at": as_of})
            if kind == CheckKind.performance:
                evaluations.append({"version_id": version_id, "window_start": as_of - timedelta(days=7),
                                    "window_end": as_of, "metrics": figures["metrics"], "rows": 90_000,
                                    "created_at": as_of})
        with db.session() as s:
            for chunk in range(0, len(rows), 2000):
                s.execute(insert(CheckRun), rows[chunk:chunk + 2000])
            for chunk in range(0, len(evaluations), 2000):
                s.execute(insert(Evaluation), evaluations[chunk:chunk + 2000])
    with db.session() as s:  # the month of drift raised alerts; the last one resolved
        model = registry.get_model(session=s, key="fraud-detector")
        for kind in (CheckKind.drift, CheckKind.performance):
            run = s.query(CheckRun).filter_by(model_id=model.id, kind=kind, verdict=Verdict.breach) \
                .order_by(CheckRun.as_of).first()
            alert, _ = monitoring.raise_alert(session=s, run=run, persona="ml_engineer", subjects=[kind.value],
                                              channel="C0ML", now=run.as_of)
            alert.state, alert.resolved_at = AlertState.resolved, run.as_of + timedelta(days=30)
        for day in range(0, 365, 3):  # audit noise on the model: commands and refusals
            audit.record(session=s, actor=ELI, action="command", subject="model:fraud-detector",
                         details={"text": "status"}, at=START + timedelta(days=day))
        v2 = registry.register_version(session=s, model_key=model.key, created_by=ELI, artifact_uri="v2",
                                       parent=registry.production_version(session=s, model=model),
                                       now=START + timedelta(days=360))
        registry.record_evaluation(session=s, version=v2, window_start=START + timedelta(days=357),
                                   window_end=START + timedelta(days=364), metrics={"recall": 0.8}, rows=1000)
        assert s.query(Alert).count() == 2


def measure(client: TestClient, path: str, requests: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per request; CPU time is the steadier figure on a shared machine."""
    for _ in range(10):
        assert client.get(path).status_code == 200, path
    wall, cpu = [], []
    for _ in range(requests):
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert response.status_code == 200
    return wall, cpu


def _p(values: list[float], q: float) -> float:
    return sorted(values)[math.ceil(q * len(values)) - 1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server to create a scratch database on")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the imports' objects to the garbage collector (see the README)")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, stack: ExitStack) -> None:
    db = stack.enter_context(scratch_registry(args.database_url))
    began = time.perf_counter()
    fill(db)
    print(f"{db.engine.dialect.name}: filled {4 * HOURS:,} check runs and {HOURS:,} evaluations "
          f"in {time.perf_counter() - began:.0f} s")
    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_PUBLIC_URL=BASE, FLYWHEEL_SECRET_KEY=SECRET,
                        FLYWHEEL_ARTIFACTS=Path(stack.enter_context(tempfile.TemporaryDirectory())))
    now = START + timedelta(days=366)
    app = build_dashboard(settings, db, clock=lambda: now)
    signer = Signer(settings)
    if not args.no_freeze:
        # What a long-running server does once started: the imports' million objects (pandas, matplotlib,
        # SQLAlchemy) leave the collector's view, so a full collection no longer rescans them per page.
        gc.collect()
        gc.freeze()
    print(f"{'page':<40} {'viewer':<11} {'wall p50':>8} {'p99':>6} {'max':>6} {'CPU p50':>8} {'p99':>6} {'KB':>4}")
    for path, who, label in (("/models/fraud-detector", ELI, "ML engineer"),
                             ("/models/fraud-detector?days=365", ELI, "ML engineer"),
                             ("/models/fraud-detector?days=7", ELI, "ML engineer"),
                             ("/models/fraud-detector", DANA, "business"),
                             ("/models/fraud-detector/versions/1/card", ELI, "ML engineer"),
                             ("/projects/card-fraud", ELI, "ML engineer")):
        client = TestClient(app, base_url=BASE)
        client.get(signer.link(BASE + path, slack_id=who, now=now)[0])
        wall, cpu = measure(client, path, args.requests)
        size = len(client.get(path).content) / 1024
        print(f"{path:<40} {label:<11} {statistics.median(wall):>8.1f} {_p(wall, 0.99):>6.1f} {max(wall):>6.1f} "
              f"{statistics.median(cpu):>8.1f} {_p(cpu, 0.99):>6.1f} {size:>4.0f}")


main = main_running("bench_pages", parse_args, bench, interrupted="the scratch database is removed.")


if __name__ == "__main__":
    sys.exit(main())
