"""`flywheel demo`: the fraud story of a model in production, offline, from an empty folder.

Eight weeks of card transactions scored by fraud-detector v1; card age drifts from week five and more
fraud slips through. Weekly checks raise a business KPI alert and an ML drift alert, Flywheel retrains
v2, compares it with v1 on the next labelled week, the team signs it off through the blueprint and
deploys it. Every message lands in an outbox folder with an HTML preview.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import pandas as pd

from bot.app import make_notifier
from bot.blocks.common import span
from bot.blocks.dates import day_text
from bot.config import Settings
from bot.delivery import FolderOutbox
from bot.services.specs import apply_spec
from jobs import synthetic, training
from jobs.monitor import check_model
from jobs.retrain import compare_with_production, retrain
from jobs.spec import load_spec
from store import governance, registry
from store.db import Database
from store.models import CheckKind, Decision

START = datetime(2026, 9, 21)  # a Monday: the reference week, then eight production weeks
MODEL = "fraud-detector"
SPEC_NAME = "card-fraud.yml"
OWNER, REVIEWER, RISK = "U0ML0001", "U0ML0002", "U0RISK01"


@dataclass
class DemoReport:
    out: Path
    database_url: str
    preview: Path
    weeks: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _write_week(db_path: Path, frame: pd.DataFrame) -> None:
    with sqlite3.connect(db_path) as connection:
        frame.to_sql("scored_transactions", connection, if_exists="append", index=False)


def _scored(model, frame: pd.DataFrame) -> pd.DataFrame:
    return training.score(model, frame, score_column="fraud_score", prediction_column="predicted_fraud")


def run_demo(out: Path, *, rows_per_week: int = 100_000, public_url: str = "http://localhost:3000",
             log=print) -> DemoReport:
    began = time.perf_counter()
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    spec_path = out / SPEC_NAME
    spec_path.write_text(resources.files("bot").joinpath("demo_spec", SPEC_NAME).read_text())
    database_url = f"sqlite:///{out / 'flywheel.db'}"
    settings = Settings(FLYWHEEL_DATABASE_URL=database_url, FLYWHEEL_PUBLIC_URL=public_url,
                        FLYWHEEL_ARTIFACTS=out / "artifacts")
    db = Database(database_url)
    db.upgrade()
    report = DemoReport(out, database_url, out / "preview" / "index.html")

    scenario = synthetic.Scenario(start=START, rows_per_week=rows_per_week)
    log(f"Writing {scenario.weeks + 1} weeks of synthetic card transactions ({rows_per_week:,} a week)...")
    reference = synthetic.generate_week(scenario, 0)
    features = dict(numeric=list(synthetic.NUMERIC_FEATURES), categorical=list(synthetic.CATEGORICAL_FEATURES))
    v1_trained = training.train(reference, **features, label=synthetic.LABEL, artifacts_dir=settings.artifacts,
                                name=f"{MODEL}-v1")
    v1 = training.load_model(v1_trained.artifact_uri, sha256=v1_trained.artifact_sha256, roots=[settings.artifacts])
    _scored(v1, reference).to_parquet(out / "data" / "reference.parquet", index=False)

    loaded = load_spec(spec_path)
    with db.session() as s:
        apply_spec(session=s, loaded=loaded, actor=OWNER)
        version = registry.register_version(
            session=s, model_key=MODEL, created_by=OWNER, artifact_uri=v1_trained.artifact_uri,
            artifact_sha256=v1_trained.artifact_sha256,
            train_start=scenario.week_start(0), train_end=scenario.week_start(1), metrics=v1_trained.metrics,
            parameters=v1_trained.parameters, now=scenario.week_start(1))
        registry.adopt_as_production(session=s, version=version, actor=OWNER, now=scenario.week_start(1))
        people = {p.slack_id: p.name for p in loaded.spec.people}

    outbox = FolderOutbox(out / "preview", people=people, title="Flywheel demo: card fraud detection")
    notifier = make_notifier(settings, db, delivery=outbox, charts_dir=out / "charts")
    spec = loaded.spec.get_model(MODEL)
    retrained = drift_alert = None
    compared = False
    for week in range(1, scenario.weeks + 1):
        as_of = scenario.week_start(week + 1)
        _write_week(out / "data" / "transactions.db", _scored(v1, synthetic.generate_week(scenario, week)))
        checked = check_model(db=db, model_key=MODEL, as_of=as_of, now=as_of)
        report.messages += notifier.on_checks(checked)
        verdicts = {r.kind.value: r.outcome.verdict.value for r in checked.results}
        report.weeks.append({"week": week, "as_of": as_of, **verdicts})
        log(f"  week {week} (to {day_text(as_of)}): " + ", ".join(f"{k} {v}" for k, v in verdicts.items()))
        drift = checked.result(CheckKind.drift)
        if retrained is None and drift and drift.alert_is_new and spec.retrain and spec.retrain.auto:
            drift_alert = drift.alert_id
            features_hit = ", ".join(drift.outcome.subjects)
            start = as_of - timedelta(days=28)
            notifier.say_in_thread(drift_alert, f"Retraining {MODEL} on {span(start, as_of)} (requested "
                                                  f"automatically after input drift on {features_hit})")
            retrained = retrain(db=db, model_key=MODEL, requested_by="flywheel",
                                trigger=f"retrained after input drift on {features_hit}", as_of=as_of,
                                artifacts_dir=settings.artifacts, now=as_of)
            log(f"  retrained v{retrained.number} on {span(start, as_of)} after drift on {features_hit}")
        elif retrained is not None and not compared:
            compared = True
            # The first labelled week the candidate never saw: compare it with production there.
            comparison = compare_with_production(db=db, model_key=MODEL, number=retrained.number,
                                                 window_start=as_of - timedelta(days=7), window_end=as_of,
                                                 artifacts_dir=settings.artifacts, now=as_of)
            report.messages.append(notifier.candidate_ready(MODEL, retrained.number, alert_id=drift_alert))
            with db.session() as s:
                v2 = registry.get_version(session=s, model_key=MODEL, number=retrained.number)
                governance.submit_for_review(session=s, version=v2, by=OWNER, now=as_of)
                governance.sign_off(session=s, version=v2, person=registry.require_person(session=s, slack_id=REVIEWER),
                                    decision=Decision.approve, reason="holdout and backtest look right", now=as_of)
            report.messages.append(notifier.signoff_requested(MODEL, retrained.number))
            log(f"  v{retrained.number} vs v1 on the week to {day_text(as_of)}: "
                + ", ".join(f"{m} {comparison.challenger_metrics[m]:.2f} vs {comparison.champion_metrics[m]:.2f}"
                            for m in comparison.challenger_metrics))

    if retrained is not None:
        deployed_at = scenario.week_start(scenario.weeks + 1) + timedelta(hours=14)
        with db.session() as s:
            v2 = registry.get_version(session=s, model_key=MODEL, number=retrained.number)
            governance.sign_off(session=s, version=v2, person=registry.require_person(session=s, slack_id=RISK),
                                decision=Decision.approve,
                                reason="recall gain outweighs the precision loss; fraud ops can absorb the reviews",
                                now=deployed_at)
            governance.deploy(session=s, version=v2, by=OWNER, now=deployed_at)
        report.messages.append(notifier.deployed(MODEL, retrained.number, previous="v1"))
        log(f"  v{retrained.number} signed off and deployed; v1 archived")
    db.dispose()
    report.seconds = time.perf_counter() - began
    return report
