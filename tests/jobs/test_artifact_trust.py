"""Artifacts cannot run code, end to end: a trainer registers through POST /api/versions over HTTP and
the worker evaluates as `flywheel worker` does. Only files under the artifact roots whose bytes still
have the SHA-256 recorded at registration are ever unpickled."""

import hashlib
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
import pytest

from jobs.training import TrainResult
from store import registry
from store.models import Evaluation, WorkItem, WorkState
from tests.support.backend_world import API_TOKEN, actor, make_worker, outbox_messages, set_spec, web_api
from tests.support.hostile_artifacts import write_hostile_pickle
from tests.support.slack_world import ELI, MODEL, register_fraud_model

WINDOW = {"train_start": "2026-10-05T00:00:00", "train_end": "2026-11-02T00:00:00"}


@pytest.fixture
def trained(db, fraud_data, tmp_path) -> Path:
    """The team trainer's output folder, listed in the model spec's artifact_roots, with a copy of v1."""
    register_fraud_model(db, fraud_data)
    folder = tmp_path / "trained"
    folder.mkdir()
    set_spec(db, artifact_roots=[str(folder)])
    v1 = json.loads((fraud_data / "v1.json").read_text())
    shutil.copyfile(url2pathname(urlparse(v1["uri"]).path), folder / "v2.joblib")
    return folder


def call_back(web, uri: str, **extra) -> httpx.Response:
    return httpx.post(f"{web.url}/api/versions", json={"model": MODEL, "artifact_uri": uri, **WINDOW, **extra},
                      headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60)


def failures(outbox: Path) -> list[str]:
    return [m["text"] for m in outbox_messages(outbox) if m["kind"] == "work_failed"]


def test_a_legit_artifact_in_a_root_registers_with_its_digest_and_is_evaluated(db, fraud_data, trained, tmp_path):
    path = trained / "v2.joblib"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with web_api(db, fraud_data) as web:
        answer = call_back(web, path.as_uri(), artifact_sha256=digest)
    assert answer.status_code == 201 and answer.json()["version"] == 2
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox")
    assert worker.drain_work() == 1
    with db.session() as s:
        v2 = registry.get_version(session=s, model_key=MODEL, number=2)
        assert v2.artifact_sha256 == digest
        assert s.query(Evaluation).filter_by(version_id=v2.id).count() == 1
        assert s.query(WorkItem).one().state == WorkState.done
    assert [m["kind"] for m in outbox_messages(tmp_path / "outbox")] == ["candidate"]


def test_an_artifact_changed_after_registration_is_refused_by_the_evaluation_and_never_unpickled(
        db, fraud_data, trained, tmp_path):
    path, marker = trained / "v2.joblib", tmp_path / "code-ran"
    with web_api(db, fraud_data) as web:
        assert call_back(web, path.as_uri()).status_code == 201
    write_hostile_pickle(path, marker)  # someone with write access to the folder swaps the model
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox")
    worker.drain_work()
    assert not marker.exists()
    with db.session() as s:
        assert s.query(WorkItem).one().state == WorkState.failed
        assert s.query(Evaluation).count() == 0
    [told] = failures(tmp_path / "outbox")
    assert f"Comparing {MODEL} v2 with production failed: Refused to load {path.as_uri()}: its SHA-256 is now " in told
    assert "as recorded at registration, so the file changed since; register it again" in told


@pytest.mark.parametrize("where", ["outside", "traversal"])
def test_a_code_running_pickle_outside_the_roots_is_refused_by_the_api_and_never_loaded(
        db, fraud_data, trained, tmp_path, where):
    marker = tmp_path / "code-ran"
    evil = write_hostile_pickle(tmp_path / "evil.pkl", marker)
    uri = evil.as_uri() if where == "outside" else f"{trained.as_uri()}/../evil.pkl"
    with web_api(db, fraud_data) as web:
        answer = call_back(web, uri, artifact_sha256=hashlib.sha256(evil.read_bytes()).hexdigest())
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(f"Refused {uri}: with links and '..' resolved it is {evil}, outside "
                                             "the artifact roots. Flywheel loads models only from files under "
                                             "FLYWHEEL_ARTIFACTS or the model spec's artifact_roots")
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox")
    assert worker.drain_work() == 0
    assert not marker.exists()
    with db.session() as s:
        assert [v.number for v in registry.get_model(session=s, key=MODEL).versions] == [1]


def test_a_version_registered_before_digests_is_never_loaded(db, fraud_data, trained, tmp_path):
    """Rows from before migration 0014 have no digest: refused with the fix, not trusted on first use."""
    marker = tmp_path / "code-ran"
    path = write_hostile_pickle(trained / "old.joblib", marker)
    with db.session() as s:
        registry.register_version(session=s, model_key=MODEL, created_by=ELI, artifact_uri=path.as_uri())
    worker, ops = make_worker(db, fraud_data, tmp_path / "outbox")
    ops.retraining.request_evaluation(actor(db, ELI), MODEL, 2)
    worker.drain_work()
    assert not marker.exists()
    [told] = failures(tmp_path / "outbox")
    assert (f"Refused to load {path.as_uri()}: no SHA-256 was recorded when its version was registered "
            "(registered before Flywheel checked artifacts); register the model again") in told


def train_outside_the_roots(*, artifacts_dir: Path, name: str, **_) -> TrainResult:
    """A `python` retrain entrypoint that writes its model somewhere Flywheel does not trust."""
    evil = write_hostile_pickle(artifacts_dir.parent / "elsewhere" / f"{name}.joblib",
                                artifacts_dir.parent / "code-ran")
    return TrainResult(evil.as_uri(), {"recall": 0.9}, {}, 100)


def test_the_python_backend_registers_nothing_it_wrote_outside_the_roots(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    set_spec(db, retrain={"backend": "python", "entrypoint": f"{__name__}:train_outside_the_roots"})
    worker, ops = make_worker(db, tmp_path / "run", tmp_path / "outbox")  # FLYWHEEL_ARTIFACTS: run/artifacts
    ops.retraining.request_retrain(actor(db, ELI), MODEL)
    worker.drain_work()
    assert not (tmp_path / "run" / "code-ran").exists()
    with db.session() as s:
        assert [v.number for v in registry.get_model(session=s, key=MODEL).versions] == [1]
        assert s.query(WorkItem).one().state == WorkState.failed
    [told] = failures(tmp_path / "outbox")
    assert "outside the artifact roots" in told
