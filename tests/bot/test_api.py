"""POST /api/versions over real HTTP: who may call it, what it refuses, and that a trainer's callback
registers one version, finishes its retrain and queues the comparison, however often it is repeated."""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pydantic import SecretStr
from slack_bolt import App
from sqlalchemy import select

from bot.api import build_api
from bot.app import make_operations
from bot.config import Settings
from bot.web import build_web
from store import registry, work
from store.models import AuditEvent, ModelVersion, WorkItem, WorkState
from tests.support.factories import fraud_project
from tests.support.hostile_artifacts import write_hostile_pickle
from tests.support.receiver import AsgiServer

TOKEN = "api-token-0123456789abcdef"
MODEL = "fraud-detector"
ELI = "U0ML0001"
GOOD = {"model": MODEL, "artifact_uri": "file:///nowhere/v1.joblib", "metrics": {"recall": 0.81, "precision": 0.4},
        "parameters": {"max_iter": 100}, "train_start": "2026-10-01T00:00:00Z", "train_end": "2026-11-20T00:00:00+00:00"}


@pytest.fixture
def artifacts(tmp_path):
    """FLYWHEEL_ARTIFACTS with two trainers' files; registration only hashes them, so any bytes do."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in ("v1", "v2"):
        (folder / f"{name}.joblib").write_bytes(f"the model of {name}".encode())
    return folder


@pytest.fixture
def good(artifacts):
    return {**GOOD, "artifact_uri": (artifacts / "v1.joblib").as_uri()}


@pytest.fixture
def api(db, artifacts):
    with db.session() as s:
        fraud_project(s)
    settings = Settings(FLYWHEEL_API_TOKEN=SecretStr(TOKEN), FLYWHEEL_PUBLIC_URL="https://fw.example.com",
                        FLYWHEEL_ARTIFACTS=artifacts)
    with AsgiServer(build_api(make_operations(settings, db, notifier=None))) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def post(client, body, token=TOKEN, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/versions", json=body, headers=headers, **kwargs)


def dispatched_retrain(db, *, reason="retrained after input drift on card_age_days", requested_by=ELI) -> int:
    """A retrain the worker has handed to an external trainer."""
    with db.session() as s:
        model = registry.get_model(session=s, key=MODEL)
        item, _ = work.request(session=s, model=model, kind="retrain", requested_by=requested_by,
                               payload={"reason": reason, "alert": 7, "response_url": None})
        work.claim(session=s, item_id=item.id)
        work.mark_dispatched(session=s, item_id=item.id, result={"backend": "webhook"})
        return item.id


def test_without_an_api_token_configured_the_api_says_it_is_off(db):
    with db.session() as s:
        fraud_project(s)
    with AsgiServer(build_api(make_operations(Settings(), db, notifier=None))) as server:
        response = httpx.post(f"{server.url}/versions", json=GOOD, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert "FLYWHEEL_API_TOKEN" in response.json()["error"]


@pytest.mark.parametrize("header", [None, "Basic " + TOKEN, "Bearer", "Bearer wrong-token", f"Bearer {TOKEN}x"])
def test_a_missing_or_wrong_token_is_refused(api, db, header):
    response = api.post("/versions", json=GOOD, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "token" in response.json()["error"].lower() and TOKEN not in response.text
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0


def test_a_body_that_is_not_json_or_has_bad_fields_is_refused_naming_them(api, db):
    response = api.post("/versions", content=b"{not json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400 and "not JSON" in response.json()["error"]
    response = post(api, {"model": MODEL, "artefact_uri": "s3://x", "metrics": {"recall": "high"}, "work_item": 0})
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert set(fields) == {"artifact_uri", "artefact_uri", "metrics.recall", "work_item"}
    assert fields["artifact_uri"] == "Field required" and "artefact_uri" in response.json()["error"]
    response = post(api, {**GOOD, "train_start": "2026-12-01T00:00:00Z"})
    assert response.status_code == 422 and "train_start is after train_end" in response.json()["error"]
    response = post(api, ["not", "an", "object"])
    assert response.status_code == 422
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0


def test_an_unknown_model_is_refused_with_a_suggestion(api):
    response = post(api, {**GOOD, "model": "fraud-detectr"})
    assert response.status_code == 404
    assert response.json()["error"] == "No model called fraud-detectr. Did you mean fraud-detector?"


def test_a_callback_registers_the_version_finishes_the_retrain_and_queues_the_comparison_once(api, db, good):
    item_id = dispatched_retrain(db)
    first = post(api, {**good, "work_item": item_id})
    assert first.status_code == 201
    assert first.json() == {"model": MODEL, "version": 1, "label": "v1", "created": True, "work_item": item_id,
                            "evaluation": first.json()["evaluation"],
                            "url": "https://fw.example.com/models/fraud-detector/versions/1"}
    again = post(api, {**good, "work_item": item_id})
    assert again.status_code == 200
    assert again.json()["version"] == 1 and again.json()["created"] is False
    with db.session() as s:
        versions = s.query(ModelVersion).all()
        digest = hashlib.sha256(b"the model of v1").hexdigest()
        assert [(v.number, v.created_by, v.artifact_uri, v.artifact_sha256) for v in versions] == [
            (1, ELI, good["artifact_uri"], digest)]
        version = versions[0]
        assert version.metrics == {"recall": 0.81, "precision": 0.4}
        assert version.parameters == {"max_iter": 100, "work_item": item_id,
                                      "trigger": "retrained after input drift on card_age_days"}
        assert (str(version.train_start), str(version.train_end)) == ("2026-10-01 00:00:00", "2026-11-20 00:00:00")
        items = {i.kind: i for i in s.query(WorkItem)}
        assert items["retrain"].state == WorkState.done and items["retrain"].result["version"] == 1
        assert items["evaluate"].state == WorkState.queued
        assert items["evaluate"].payload == {"versions": [{"number": 1, "alert": 7, "response_url": None}]}
        assert s.query(WorkItem).count() == 2
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
        assert actions.count("version.registered") == 1 and actions.count("version.called_back") == 1


def test_a_version_registered_while_an_evaluation_waits_joins_it(api, db, good, artifacts):
    first = post(api, good)
    second = post(api, {**good, "artifact_uri": (artifacts / "v2.joblib").as_uri()})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["evaluation"] == second.json()["evaluation"]
    with db.session() as s:
        evaluation = s.query(WorkItem).filter_by(kind="evaluate").one()
        assert [v["number"] for v in evaluation.payload["versions"]] == [1, 2]
        assert [v.created_by for v in s.query(ModelVersion).order_by(ModelVersion.number)] == ["api", "api"]


def test_without_a_work_item_the_same_artifact_twice_is_one_version(api, db, good):
    assert post(api, good).status_code == 201
    repeat = post(api, good)
    assert repeat.status_code == 200 and repeat.json()["version"] == 1
    with db.session() as s:
        assert s.query(ModelVersion).count() == 1


def test_a_work_item_that_is_not_this_models_retrain_is_refused(api, db, good):
    with db.session() as s:
        model = registry.get_model(session=s, key=MODEL)
        deploy, _ = work.request(session=s, model=model, kind="deploy", requested_by=ELI, payload={"version": 1})
        deploy_id = deploy.id
    for work_item in (deploy_id, 9999):
        response = post(api, {**good, "work_item": work_item})
        assert response.status_code == 404
        assert response.json()["error"] == f"Work item {work_item} is not a retrain of {MODEL}."
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0


def test_callbacks_arriving_together_register_one_version(api, db, good):
    item_id = dispatched_retrain(db)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(api, {**good, "work_item": item_id}), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert {a.json()["version"] for a in answers} == {1}
    with db.session() as s:
        assert s.query(ModelVersion).count() == 1
        assert s.query(WorkItem).filter_by(kind="evaluate").count() == 1


def test_the_web_process_serves_the_api_next_to_slack(db, artifacts, good):
    with db.session() as s:
        fraud_project(s)
    settings = Settings(FLYWHEEL_API_TOKEN=SecretStr(TOKEN), FLYWHEEL_ARTIFACTS=artifacts)
    bolt = App(signing_secret="secret", token="xoxb-test", token_verification_enabled=False)
    with AsgiServer(build_web(bolt, api=build_api(make_operations(settings, db, notifier=None)))) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/api/versions", json=good).status_code == 401
        assert client.post("/api/versions", json=good, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
        assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(("case", "rule"), [
    ("outside", "outside the artifact roots. Flywheel loads models only from files under FLYWHEEL_ARTIFACTS"),
    ("traversal", "outside the artifact roots. Flywheel loads models only from files under FLYWHEEL_ARTIFACTS"),
    ("symlink", "outside the artifact roots. Flywheel loads models only from files under FLYWHEEL_ARTIFACTS"),
    ("fifo outside", "outside the artifact roots. Flywheel loads models only from files under FLYWHEEL_ARTIFACTS"),
    ("s3", "only file:// artifacts can be checked. Flywheel loads models only from files under FLYWHEEL_ARTIFACTS"),
    ("missing", "there is no file at"),
])
def test_an_artifact_outside_the_roots_or_missing_is_refused_with_422_and_never_opened(
        api, db, artifacts, tmp_path, case, rule):
    marker = tmp_path / "code-ran"
    evil = write_hostile_pickle(tmp_path / "evil.pkl", marker)
    os.mkfifo(tmp_path / "pipe.joblib")  # opened before the roots were checked, it would be "not a regular file"
    (artifacts / "link.joblib").symlink_to(evil)
    uri = {"outside": evil.as_uri(), "traversal": f"{artifacts.as_uri()}/../evil.pkl",
           "symlink": (artifacts / "link.joblib").as_uri(), "fifo outside": (tmp_path / "pipe.joblib").as_uri(),
           "s3": "s3://models/fraud/v1.joblib", "missing": (artifacts / "v9.joblib").as_uri()}[case]
    response = post(api, {**GOOD, "artifact_uri": uri})
    assert response.status_code == 422
    assert response.json()["error"].startswith(f"Refused {uri}: ") and rule in response.json()["error"]
    assert not marker.exists()
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0 and s.query(WorkItem).count() == 0


def test_a_sent_artifact_sha256_must_be_the_files_and_is_recorded(api, db, good, artifacts):
    digest = hashlib.sha256((artifacts / "v1.joblib").read_bytes()).hexdigest()
    wrong = post(api, {**good, "artifact_sha256": "0" * 64})
    assert wrong.status_code == 422
    assert wrong.json()["error"] == (f"Refused {good['artifact_uri']}: its SHA-256 is {digest}, not the "
                                     f"artifact_sha256 sent ({'0' * 64}); send the digest of the file you wrote.")
    malformed = post(api, {**good, "artifact_sha256": "sha256:abc"})
    assert malformed.status_code == 422 and set(malformed.json()["fields"]) == {"artifact_sha256"}
    with db.session() as s:
        assert s.query(ModelVersion).count() == 0
    assert post(api, {**good, "artifact_sha256": digest.upper()}).status_code == 201
    with db.session() as s:
        assert s.query(ModelVersion).one().artifact_sha256 == digest


def test_the_same_uri_with_other_bytes_is_a_new_version_with_its_own_digest(api, db, good, artifacts):
    assert post(api, good).status_code == 201
    (artifacts / "v1.joblib").write_bytes(b"a retrained model written over the first")
    again = post(api, good)
    assert again.status_code == 201 and again.json()["version"] == 2
    with db.session() as s:
        digests = [v.artifact_sha256 for v in s.query(ModelVersion).order_by(ModelVersion.number)]
    assert digests == [hashlib.sha256(b"the model of v1").hexdigest(),
                       hashlib.sha256(b"a retrained model written over the first").hexdigest()]
