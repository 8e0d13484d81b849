"""MLflow's registry and Flywheel's kept in step, against a real `mlflow server` on 127.0.0.1 (SQLite backend,
artifacts proxied by the server) started for this module: a churn classifier trained here and logged to MLflow
appears in Flywheel after one sync (once), a version registered later appears on the worker's next tick, a
Flywheel deploy or rollback moves MLflow's alias and tags the version, and a retrain through Flywheel registers
its version in MLflow under the same number."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

mlflow = pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'flywheel[mlflow]'")

from bot.app import build_worker, make_notifier, make_operations  # noqa: E402
from bot.cli import main  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services.specs import apply_spec  # noqa: E402
from jobs import mlflow_sync  # noqa: E402
from jobs.schedule import cron_trigger  # noqa: E402
from jobs.spec import load_spec  # noqa: E402
from jobs.worker import leadership_for  # noqa: E402
from store import registry  # noqa: E402
from store.errors import InvalidTransition, UntrustedArtifact  # noqa: E402
from store.models import AuditEvent, Decision, Evaluation  # noqa: E402
from tests.support.backend_world import WEBHOOK_SECRET, actor  # noqa: E402
from tests.support.churn import ELI, FEATURES, NOOR, NOW, OMAR, SPEC, fit_churn, subscribers  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402



def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free port with a SQLite backend store; stopped after the module."""
    import httpx

    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = (folder / "server.log").open("wb")
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{uri}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 120, "mlflow server to answer /health", poll=0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def log_version(uri: str, name: str, frame: pd.DataFrame) -> int:
    """Log a freshly trained churn model to MLflow and register it, as the team does outside Flywheel."""
    from sklearn.metrics import recall_score, roc_auc_score

    client = mlflow.MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    try:
        fitted = fit_churn(frame)
        with mlflow.start_run() as run:
            scores = fitted.predict_proba(frame[FEATURES])[:, 1]
            mlflow.log_metrics({"roc_auc": roc_auc_score(frame["churned"], scores),
                                "recall": recall_score(frame["churned"], scores >= 0.5)})
            mlflow.sklearn.log_model(fitted, name="model", registered_model_name=name)
    finally:
        mlflow.set_tracking_uri("file:///nowhere-flywheel-must-pass-its-own-uri")
    return max(int(v.version) for v in client.search_model_versions(f"name = '{name}'")
               if v.run_id == run.info.run_id)


class Team:
    """The churn project applied to the test's database, MLflow-backed, and the operations Slack would use."""

    def __init__(self, db, folder: Path, uri: str, *, deploy_url: str | None = None):
        self.db, self.folder, self.uri = db, folder, uri
        self.name = f"churn-{uuid.uuid4().hex[:8]}"
        (folder / "data").mkdir(parents=True)
        subscribers(NOW - timedelta(weeks=10), 28, seed=1).to_parquet(folder / "data" / "reference.parquet",
                                                                      index=False)
        with sqlite3.connect(folder / "data" / "production.db") as connection:
            subscribers(NOW - timedelta(weeks=6), 42, seed=2, n=6000).to_sql("scored", connection, index=False)
        registry_line = f"    registry: {{kind: mlflow, tracking_uri: '{uri}', name: {self.name}, alias: champion}}\n"
        if deploy_url is not None:
            registry_line += f"    deploy: {{backend: webhook, url: '{deploy_url}'}}\n"
        self.spec = folder / "retention.yml"
        self.spec.write_text(SPEC.format(eli=ELI, noor=NOOR, omar=OMAR, registry=registry_line))
        with db.session() as s:
            apply_spec(session=s, loaded=load_spec(self.spec), actor=ELI)
        self.settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=folder / "artifacts",
                                 FLYWHEEL_OUTBOX=folder / "outbox", FLYWHEEL_WEBHOOK_SECRET=SecretStr(WEBHOOK_SECRET),
                                 FLYWHEEL_BACKEND_BACKOFF=0)
        self.ops = make_operations(self.settings, db, make_notifier(self.settings, db), inline_work=True,
                                   clock=lambda: NOW)
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.registry_spec = load_spec(self.spec).spec.models[0].registry

    def versions(self) -> dict[int, tuple[str, str, str | None, dict]]:
        with self.db.read() as s:
            return {v.number: (v.status.value, v.artifact_uri, v.artifact_sha256, dict(v.metrics))
                    for v in registry.get_model(session=s, key="churn").versions}

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.read() as s:
            found = list(s.execute(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)).scalars())
            s.expunge_all()
            return found

    def champion(self) -> int:
        return int(self.client.get_registered_model(self.name).aliases["champion"])

    def tags(self, number: int) -> dict[str, str]:
        return dict(self.client.get_model_version(self.name, str(number)).tags)

    def cli(self, *args: str):
        env = {"FLYWHEEL_DATABASE_URL": self.db.url, "FLYWHEEL_ARTIFACTS": str(self.folder / "artifacts"),
               "FLYWHEEL_OUTBOX": str(self.folder / "outbox"), "FLYWHEEL_AS": None, "SLACK_BOT_TOKEN": None,
               "SLACK_SIGNING_SECRET": None, "SLACK_APP_TOKEN": None}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    def close(self) -> None:
        self.ops.join()


@pytest.fixture
def team(db, tmp_path, mlflow_server):
    built = Team(db, tmp_path / "retention", mlflow_server)
    yield built
    built.close()


def test_versions_metrics_and_the_alias_holder_appear_after_one_sync_and_a_second_adds_nothing(team):
    history = subscribers(NOW - timedelta(weeks=12), 28, seed=3)
    first = log_version(team.uri, team.name, history)
    second = log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=9), 28, seed=4))
    team.client.set_registered_model_alias(team.name, "champion", str(first))
    team.client.set_model_version_tag(team.name, str(second), "stage_note", "shadow")

    result = team.cli("mlflow", "sync", "churn", "--as", ELI)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"churn is in step with MLflow's {team.name}: added v1, v2, the new candidates "
                                     "are queued for comparison with production. v1 holds the alias champion, so it "
                                     "is shown as production.")
    versions = team.versions()
    assert sorted(versions) == [first, second] == [1, 2]
    assert [versions[n][:2] for n in (1, 2)] == [("production", f"models:/{team.name}/1"),
                                                 ("candidate", f"models:/{team.name}/2")]
    run_metrics = team.client.get_run(team.client.get_model_version(team.name, "2").run_id).data.metrics
    assert versions[2][3] == pytest.approx(run_metrics) and set(run_metrics) == {"roc_auc", "recall"}
    with team.db.read() as s:
        v2 = registry.get_version(session=s, model_key="churn", number=2)
        assert v2.parameters["mlflow"]["tags"] == {"stage_note": "shadow"}
        assert registry.get_version(session=s, model_key="churn", number=1).parameters["mlflow"]["aliases"] == \
            ["champion"]
    # Each version's model folder is under FLYWHEEL_ARTIFACTS with its digest recorded, and loads by its flavour.
    copy = mlflow_sync.local_copy(team.registry_spec, 2, team.settings.artifacts)
    assert versions[2][2] == mlflow_sync.tree_sha256(copy) and (copy / "MLmodel").is_file()
    loaded = mlflow_sync.load_version(team.registry_spec, 2, sha256=versions[2][2],
                                      artifacts_dir=team.settings.artifacts)
    assert loaded.predict_proba(history[FEATURES].head(5)).shape == (5, 2)

    synced = [e.seq for e in team.audit("mlflow.synced")]
    again = team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    assert again == f"churn is in step with MLflow's {team.name}: no new versions."
    assert team.versions() == versions and [e.seq for e in team.audit("mlflow.synced")] == synced
    assert [e.action for e in team.audit("version.registered")] == ["version.registered"] * 2

    # Until Flywheel governs production, it follows the alias when the team moves it in MLflow.
    team.client.set_registered_model_alias(team.name, "champion", "2")
    assert team.ops.mlflow.sync(actor(team.db, ELI), "churn") == (
        f"churn is in step with MLflow's {team.name}: updated tags or aliases of v1, v2. v2 holds the alias "
        "champion, so it is shown as production.")
    assert {n: v[0] for n, v in team.versions().items()} == {1: "archived", 2: "production"}


def test_a_changed_local_copy_is_never_loaded(team):
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    sha256 = team.versions()[1][2]
    copy = mlflow_sync.local_copy(team.registry_spec, 1, team.settings.artifacts)
    with (copy / "MLmodel").open("a") as handle:
        handle.write("\n# edited after registration\n")
    with pytest.raises(UntrustedArtifact, match="changed since"):
        mlflow_sync.load_version(team.registry_spec, 1, sha256=sha256, artifacts_dir=team.settings.artifacts)


def test_a_version_registered_in_mlflow_appears_on_the_workers_next_tick(team):
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    later = log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=8), 28, seed=5))

    worker, ops = build_worker(team.settings, db=team.db, clock=lambda: NOW, poll_seconds=0.05)
    running = threading.Thread(target=worker.run, args=(leadership_for(team.db),), daemon=True)
    running.start()
    try:
        job = wait_until(lambda: worker.scheduler and worker.scheduler.get_job("mlflow:churn"), 60,
                         "the worker to schedule the MLflow sync of churn")
        assert str(job.trigger) == str(cron_trigger("*/5 * * * *"))
        assert later not in team.versions()
        job.modify(next_run_time=datetime.now(timezone.utc))  # the tick, now rather than in five minutes
        wait_until(lambda: later in team.versions(), 60, f"v{later} to appear in Flywheel")
    finally:
        worker.stop()
        running.join(timeout=60)
        ops.join()
    assert team.versions()[later][:2] == ("candidate", f"models:/{team.name}/{later}")


def deploy_signed_off(team: Team, number: int) -> str:
    team.ops.releases.submit(actor(team.db, ELI), "churn", number)
    team.ops.releases.sign(actor(team.db, NOOR), "churn", number, Decision.approve, "holds up on the latest month")
    return team.ops.releases.deploy(actor(team.db, ELI), "churn", number).note


def test_deploy_and_rollback_move_the_alias_and_tag_the_version_audited_on_both_sides(team):
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=9), 28, seed=4))
    team.client.set_registered_model_alias(team.name, "champion", "1")
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    team.ops.join()  # v2 compared with production (both loaded by MLflow's flavour loader): it can be submitted
    with team.db.read() as s:
        assert {e.version.number for e in s.execute(select(Evaluation)).scalars()} == {1, 2}

    deploy_signed_off(team, 2)
    team.ops.join()
    assert team.champion() == 2
    deployed = team.audit("version.deployed")[-1]
    tags = team.tags(2)
    assert (tags["flywheel.action"], tags["flywheel.by"], tags["flywheel.audit_id"]) == ("deploy", ELI,
                                                                                          str(deployed.seq))
    assert tags["flywheel.at"] == NOW.isoformat(timespec="seconds") + "Z"
    [moved] = team.audit("mlflow.alias_moved")
    assert (moved.subject, moved.actor, moved.details["from"], moved.details["to"], moved.details["audit_id"]) == \
        ("model:churn/v2", ELI, 1, 2, deployed.seq)

    said = team.ops.releases.rollback(actor(team.db, OMAR), "churn", seen_live=2)
    team.ops.join()
    assert "v1 is live again" in said
    assert team.champion() == 1
    rolled = team.audit("version.rolled_back")[-1]
    assert (team.tags(1)["flywheel.action"], team.tags(1)["flywheel.by"], team.tags(1)["flywheel.audit_id"]) == \
        ("rollback", OMAR, str(rolled.seq))
    assert [(e.subject, e.details["from"], e.details["to"]) for e in team.audit("mlflow.alias_moved")] == \
        [("model:churn/v2", 1, 2), ("model:churn/v1", 2, 1)]
    # MLflow's alias now follows Flywheel's deploys: a sync leaves production where Flywheel put it.
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    assert {n: v[0] for n, v in team.versions().items()} == {1: "production", 2: "archived"}


def test_a_retrain_through_flywheel_registers_its_version_in_mlflow_under_the_same_number(team):
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    team.client.set_registered_model_alias(team.name, "champion", "1")
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")

    team.ops.retraining.request_retrain(actor(team.db, ELI), "churn", reason="plans changed in February")
    team.ops.join()
    versions = team.versions()
    assert sorted(versions) == [1, 2]
    status, uri, sha256, metrics = versions[2]
    assert (status, uri) == ("candidate", f"models:/{team.name}/2")
    remote = team.client.get_model_version(team.name, "2")
    assert remote.tags["flywheel.registered_by"] == ELI
    run = team.client.get_run(remote.run_id)
    assert run.data.metrics == pytest.approx(metrics) and run.data.params["trigger"] == "plans changed in February"
    assert sha256 == mlflow_sync.tree_sha256(mlflow_sync.local_copy(team.registry_spec, 2, team.settings.artifacts))
    # Compared with production: both models were loaded through MLflow's flavour loader, digests checked.
    with team.db.read() as s:
        evaluated = {e.version.number for e in s.execute(select(Evaluation)).scalars()}
    assert evaluated == {1, 2}
    # Both registries agree: a sync finds nothing to add.
    assert team.ops.mlflow.sync(actor(team.db, ELI), "churn") == \
        f"churn is in step with MLflow's {team.name}: updated tags or aliases of v2."
    assert sorted(team.versions()) == [1, 2]


def test_without_the_extra_a_sync_says_how_to_install_it_in_one_line(team, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if `flywheel[mlflow]` were not installed
    result = team.cli("mlflow", "sync", "churn", "--as", ELI)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: MLflow support is not installed: pip install 'flywheel[mlflow]' (or pip install 'mlflow>=2.10')."]


def test_a_deploy_through_the_webhook_backend_moves_the_alias_once_the_teams_system_said_yes(db, tmp_path,
                                                                                              mlflow_server):
    with Receiver() as serving:
        team = Team(db, tmp_path / "retention", mlflow_server, deploy_url=f"{serving.url}/deploy")
        try:
            log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
            log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=9), 28, seed=4))
            team.client.set_registered_model_alias(team.name, "champion", "1")
            team.ops.mlflow.sync(actor(team.db, ELI), "churn")
            team.ops.join()
            assert deploy_signed_off(team, 2).startswith("Deploying churn v2 through its deploy webhook.")
            team.ops.join()
            assert [r.json()["version"] for r in serving.requests] == [2]
            assert team.champion() == 2
            deployed = team.audit("version.deployed")[-1]
            assert (team.tags(2)["flywheel.by"], team.tags(2)["flywheel.audit_id"]) == (ELI, str(deployed.seq))
        finally:
            team.close()


def test_an_alias_mlflow_refuses_to_move_is_audited_and_told_and_production_stands(team):
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=9), 28, seed=4))
    team.client.set_registered_model_alias(team.name, "champion", "1")
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    team.ops.join()
    team.client.delete_registered_model(team.name)  # someone removed it in MLflow meanwhile

    assert deploy_signed_off(team, 2).startswith("churn v2 is live.")
    refusal = f"MLflow at {team.uri} failed while reading the alias champion: RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(mlflow_sync.MlflowError, match=refusal):
        team.ops.join()
    assert team.versions()[2][0] == "production"
    [failed] = team.audit("mlflow.alias_failed")
    assert (failed.subject, failed.actor, failed.details["alias"]) == ("model:churn/v2", ELI, "champion")
    assert team.audit("mlflow.alias_moved") == []
    told = [json.loads(p.read_text()) for p in sorted((team.folder / "outbox").rglob("*.json"))]
    assert any("MLflow's alias champion was not moved" in json.dumps(m) for m in told), told


def test_an_external_trainers_version_is_registered_in_mlflow_first_and_once(team):
    import joblib

    log_version(team.uri, team.name, subscribers(NOW - timedelta(weeks=12), 28, seed=3))
    team.ops.mlflow.sync(actor(team.db, ELI), "churn")
    (team.folder / "artifacts").mkdir(exist_ok=True)
    trained = team.folder / "artifacts" / "churn-from-airflow.joblib"
    joblib.dump(fit_churn(subscribers(NOW - timedelta(weeks=8), 28, seed=6)), trained)

    def call_back():
        return team.ops.retraining.register_trained(
            model_key="churn", artifact_uri=trained.as_uri(), artifact_sha256=None, metrics={"recall": 0.7},
            parameters={"dag_run": "retrain-42"}, train_start=NOW - timedelta(weeks=8),
            train_end=NOW - timedelta(weeks=4), work_item=None)

    first = call_back()
    assert (first.number, first.created) == (2, True)
    assert team.versions()[2][1] == f"models:/{team.name}/2"
    run = team.client.get_run(team.client.get_model_version(team.name, "2").run_id)
    assert run.data.params["dag_run"] == "retrain-42" and run.data.metrics == {"recall": 0.7}
    again = call_back()  # the trainer's retry: the same version, nothing new in MLflow
    assert (again.number, again.created) == (2, False)
    assert sorted(int(v.version) for v in team.client.search_model_versions(f"name = '{team.name}'")) == [1, 2]


def test_registering_a_file_in_flywheel_is_refused_for_a_model_kept_in_mlflow(team):
    trained = team.folder / "artifacts" / "churn-by-hand.joblib"
    trained.parent.mkdir(exist_ok=True)
    trained.write_bytes(b"not opened: refused before")
    with pytest.raises(InvalidTransition) as refused:
        team.ops.retraining.register_file(actor(team.db, ELI), "churn", trained.as_uri())
    assert str(refused.value) == (f"churn keeps its versions in MLflow ({team.name}, its spec's registry): register "
                                  "the model there, and `flywheel mlflow sync churn` brings it here.")
    assert team.versions() == {}
