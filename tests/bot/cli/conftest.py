"""The terminal's governed commands run as a user runs them (click's runner, the real `flywheel` group) on
the test's database, with the fraud model registered: v1 in production."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli import main
from bot.services.specs import apply_spec
from jobs import synthetic
from jobs.artifacts import check_for_registration
from jobs.spec import load_spec
from store import registry
from store.clock import utcnow
from store.db import Database
from store.models import AuditEvent, ModelVersion
from tests.support.once import built_once
from tests.support.projects import write_project
from tests.support.slack_world import (
    ELI,
    MODEL,
    SCENARIO,
    register_fraud_model,
    write_fraud_data,
)

SECRET_KEY = "k" * 40
LENA = "U0LOAN01"  # an ML engineer on the loans project only
# Six production weeks ending today: what a retrain or an adoption reads is "the latest labelled window".
_TODAY = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
RECENT = synthetic.Scenario(start=_TODAY - timedelta(weeks=7), weeks=6, rows_per_week=4000, drift_from_week=5)


class Cli:
    def __init__(self, db: Database, folder: Path, tmp_path: Path):
        self.db, self.folder = db, folder
        self.env = {"FLYWHEEL_DATABASE_URL": db.url, "FLYWHEEL_ARTIFACTS": str(folder / "artifacts"),
                    "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"), "FLYWHEEL_SECRET_KEY": SECRET_KEY,
                    "FLYWHEEL_PUBLIC_URL": "http://dashboard.test", "FLYWHEEL_AS": None,
                    "SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None, "SLACK_APP_TOKEN": None}

    def __call__(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**self.env, **env}, catch_exceptions=False)

    def audit(self, action: str | None = None) -> list[AuditEvent]:
        with self.db.session() as s:
            query = select(AuditEvent).order_by(AuditEvent.seq)
            if action is not None:
                query = query.where(AuditEvent.action == action)
            events = list(s.execute(query).scalars())
            s.expunge_all()
            return events

    def stages(self) -> dict[int, str]:
        with self.db.session() as s:
            model = registry.get_model(session=s, key=MODEL)
            return {v.number: v.status.value for v in s.execute(
                select(ModelVersion).where(ModelVersion.model_id == model.id)).scalars()}

    def add_candidate(self) -> int:
        """A copy of v1's file registered as the next candidate (what a retrain would leave)."""
        copy = self.folder / "artifacts" / f"candidate-{uuid.uuid4().hex[:8]}.joblib"
        shutil.copyfile(v1_file(self.folder), copy)
        artifact = check_for_registration(copy.as_uri(), roots=[self.folder / "artifacts"])
        with self.db.session() as s:
            version = registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=artifact.uri,
                                                artifact_sha256=artifact.sha256, metrics={"recall": 0.9})
            for evaluated, metrics in ((registry.production_version(session=s, model=version.model), 0.7),
                                       (version, 0.81)):
                registry.record_evaluation(session=s, version=evaluated, window_start=SCENARIO.week_start(6),
                                           window_end=SCENARIO.week_start(7), rows=100,
                                           metrics={"recall": metrics, "precision": 0.62, "roc_auc": 0.93})
            return version.number


def v1_file(folder: Path) -> Path:
    return Path(url2pathname(urlparse(json.loads((folder / "v1.json").read_text())["uri"]).path))


def add_lena(db: Database, folder: Path) -> None:
    spec = write_project(folder / "loans")
    spec.write_text(spec.read_text().replace(
        "people:\n", f"people:\n  - {{slack_id: {LENA}, name: Lena, roles: [ml_engineer, admin]}}\n"))
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(spec))


@pytest.fixture
def cli(db, fraud_data, tmp_path) -> Cli:
    """v1 of the fraud model in production (the Slack tests' data); Lena holds roles on loans only."""
    register_fraud_model(db, fraud_data)
    add_lena(db, tmp_path)
    return Cli(db, fraud_data, tmp_path)


@pytest.fixture(scope="session")
def recent_data(tmp_path_factory) -> Path:
    """Scored transactions up to today and v1's artifact, for what reads the latest labelled window."""
    return built_once(tmp_path_factory, "recent-fraud", lambda folder: write_fraud_data(folder, RECENT))


@pytest.fixture
def recent(db, recent_data, tmp_path) -> Cli:
    """The fraud project applied on data up to today, with no version registered yet."""
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(recent_data / "card-fraud.yml"))
    return Cli(db, recent_data, tmp_path)
