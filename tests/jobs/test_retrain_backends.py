"""Retraining through the team's own trainer, end to end: the worker dispatches a signed webhook, the
trainer calls back POST /api/versions over HTTP, the worker compares the new version with production and
the ML engineer's channel hears that it is ready."""

import json

import httpx
from sqlalchemy import select

from jobs.backends.signing import verify_signature
from store import registry
from store.models import AuditEvent, WorkItem, WorkState
from tests.support.backend_world import (
    API_TOKEN,
    WEBHOOK_SECRET,
    actor,
    make_worker,
    outbox_messages,
    set_spec,
    web_api,
)
from tests.support.receiver import Answer, Receiver
from tests.support.slack_world import ELI, MODEL, register_fraud_model


def callback_for(request_body: dict, fraud_data) -> dict:
    """What the trainer sends back: here it 'trains' by reusing v1's artifact, which is enough to score."""
    v1 = json.loads((fraud_data / "v1.json").read_text())
    return {"model": request_body["model"], "artifact_uri": v1["uri"], "metrics": v1["metrics"],
            "parameters": {"trainer": "team-ci", "run": 42}, "train_start": request_body["train_start"],
            "train_end": request_body["train_end"], "work_item": request_body["work_item"]}


def call_back(url: str, body: dict) -> httpx.Response:
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60)


def items(db) -> dict[str, WorkItem]:
    with db.session() as s:
        return {i.kind: i for i in s.query(WorkItem).order_by(WorkItem.id)}


def test_a_webhook_retrain_runs_from_request_to_candidate_ready(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    outbox = tmp_path / "outbox"
    with Receiver() as trainer, web_api(db, fraud_data) as web:
        set_spec(db, retrain={"backend": "webhook", "url": f"{trainer.url}/train"})
        trainer.answer(202)
        worker, ops = make_worker(db, fraud_data, outbox, public_url=web.url)
        reply = ops.retraining.request_retrain(actor(db, ELI), MODEL, reason="drift on card_age_days")
        assert reply == "Retraining fraud-detector (drift on card_age_days). I'll post here when the new version is ready."
        assert worker.drain_work() == 1

        got = trainer.requests[0]
        assert verify_signature(WEBHOOK_SECRET, got.header("X-Flywheel-Timestamp"), got.body,
                                got.header("X-Flywheel-Signature"))
        request = got.json()
        assert request["callback_url"] == f"{web.url}/api/versions"
        assert (request["model"], request["version"], request["reason"]) == (MODEL, 2, "drift on card_age_days")
        retrain = items(db)["retrain"]
        assert retrain.state == WorkState.dispatched and request["work_item"] == retrain.id
        assert got.header("Idempotency-Key") == f"flywheel-work-{retrain.id}"
        assert worker.drain_work() == 0  # waiting for the trainer is not work for the worker

        answer = call_back(request["callback_url"], callback_for(request, fraud_data))
        assert answer.status_code == 201 and answer.json()["version"] == 2
        assert items(db)["evaluate"].state == WorkState.queued
        assert not any(m["kind"] == "candidate" for m in outbox_messages(outbox))  # the web process scores nothing
        assert worker.drain_work() == 1

        ready = [m for m in outbox_messages(outbox) if m["kind"] == "candidate"]
        assert len(ready) == 1 and ready[0]["channel"] == "C0ML"
        assert ready[0]["text"].startswith(f"{MODEL} v2 is ready for review")
        context = json.dumps(ready[0]["blocks"])
        assert "drift on card_age_days" in context and "<@U0ML0001>" in context
        assert {k: i.state for k, i in items(db).items()} == {"retrain": WorkState.done, "evaluate": WorkState.done}
        with db.session() as s:
            version = registry.get_version(session=s, model_key=MODEL, number=2)
            assert version.created_by == ELI and version.parameters["trainer"] == "team-ci"
            assert registry.latest_evaluation(session=s, version=version) is not None

        # A trainer that retries its callback gets the same version and nothing runs again.
        again = call_back(request["callback_url"], callback_for(request, fraud_data))
        assert again.status_code == 200 and again.json()["version"] == 2
        assert worker.drain_work() == 0
        assert len([m for m in outbox_messages(outbox) if m["kind"] == "candidate"]) == 1
        with db.session() as s:
            assert [v.number for v in registry.get_model(session=s, key=MODEL).versions] == [1, 2]


def test_a_trainer_that_calls_back_before_answering_the_webhook_still_finishes_once(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    outbox = tmp_path / "outbox"
    with Receiver() as trainer, web_api(db, fraud_data) as web:
        answers = []

        def train_at_once(received):
            answers.append(call_back(received.json()["callback_url"], callback_for(received.json(), fraud_data)))
            return Answer(200)

        trainer.answer(train_at_once)
        set_spec(db, retrain={"backend": "webhook", "url": f"{trainer.url}/train"})
        worker, ops = make_worker(db, fraud_data, outbox, public_url=web.url)
        ops.retraining.request_retrain(actor(db, ELI), MODEL)
        worker.drain_work()
        assert [a.status_code for a in answers] == [201]
        assert items(db)["retrain"].state == WorkState.done  # not dispatched: its trainer already answered
        worker.drain_work()
        assert [m["text"][:30] for m in outbox_messages(outbox) if m["kind"] == "candidate"] == \
            [f"{MODEL} v2 is ready for review"[:30]]


def test_a_trainer_that_keeps_failing_fails_the_retrain_and_tells_the_ml_engineer(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    outbox = tmp_path / "outbox"
    with Receiver() as trainer:
        trainer.default = Answer(500, {"error": f"boom (signed {WEBHOOK_SECRET})"})
        set_spec(db, retrain={"backend": "webhook", "url": f"{trainer.url}/train?key=hunter2"})
        worker, ops = make_worker(db, fraud_data, outbox)
        ops.retraining.request_retrain(actor(db, ELI), MODEL)
        worker.drain_work()
    assert len(trainer.requests) == 3
    retrain = items(db)["retrain"]
    assert retrain.state == WorkState.failed
    told = [m for m in outbox_messages(outbox) if m["kind"] == "work_failed"]
    assert len(told) == 1 and told[0]["channel"] == "C0ML"
    assert told[0]["text"] == (f"Retraining {MODEL} failed: The retrain webhook at {trainer.url}/train answered "
                               "500 Internal Server Error: boom (signed [secret]) (3 attempts)")
    everything = json.dumps(outbox_messages(outbox)) + retrain.error
    with db.session() as s:
        everything += json.dumps([e.details for e in s.execute(select(AuditEvent)).scalars()])
    assert WEBHOOK_SECRET not in everything and "hunter2" not in everything
    # A new request is possible at once: the failed one is not live.
    assert ops.retraining.request_retrain(actor(db, ELI), MODEL).startswith("Retraining")


def test_a_dispatched_retrain_blocks_another_until_its_trainer_is_overdue(db, fraud_data, tmp_path):
    from datetime import timedelta

    from tests.support.slack_world import NOW

    register_fraud_model(db, fraud_data)
    now = [NOW]
    with Receiver() as trainer:
        set_spec(db, retrain={"backend": "webhook", "url": f"{trainer.url}/train"})
        worker, ops = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: now[0],
                                  FLYWHEEL_TRAINING_TIMEOUT_HOURS=6)
        ops.retraining.request_retrain(actor(db, ELI), MODEL)
        worker.drain_work()
        now[0] = NOW + timedelta(hours=5)
        assert ops.retraining.request_retrain(actor(db, ELI), MODEL) == f"{MODEL} is already retraining (requested by <@{ELI}>)."
        now[0] = NOW + timedelta(hours=7)
        assert ops.retraining.request_retrain(actor(db, ELI), MODEL).startswith("Retraining")
    with db.session() as s:
        first, second = s.query(WorkItem).order_by(WorkItem.id).all()
        assert first.state == WorkState.failed and "did not call back within 6 hours" in first.error
        assert second.state == WorkState.queued


def test_the_worker_sweep_tells_the_asker_when_the_trainer_never_calls_back(db, fraud_data, tmp_path):
    from datetime import timedelta

    from tests.support.slack_world import NOW

    register_fraud_model(db, fraud_data)
    now = [NOW]
    with Receiver() as trainer:
        set_spec(db, retrain={"backend": "webhook", "url": f"{trainer.url}/train"})
        worker, ops = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: now[0],
                                  FLYWHEEL_TRAINING_TIMEOUT_HOURS=6)
        ops.retraining.request_retrain(actor(db, ELI), MODEL)
        worker.drain_work()
        now[0] = NOW + timedelta(hours=5)
        assert ops.work.expire_overdue() == 0
        now[0] = NOW + timedelta(hours=7)
        assert ops.work.expire_overdue() == 1
        assert ops.work.expire_overdue() == 0  # told once
    with db.session() as s:
        (item,) = s.query(WorkItem).all()
        assert item.state == WorkState.failed and "did not call back within 6 hours" in item.error
    told = [m for m in outbox_messages(tmp_path / "outbox") if "did not call back" in json.dumps(m)]
    assert len(told) == 1 and f"Retraining {MODEL} failed" in json.dumps(told[0])


def test_a_version_called_back_while_the_comparison_runs_is_compared_next(db, fraud_data, tmp_path):
    """The evaluate item is live while it runs; a second version joins it and gets its own turn."""
    from bot.notifier import Notifier

    import shutil
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    register_fraud_model(db, fraud_data)
    outbox = tmp_path / "outbox"
    v1 = json.loads((fraud_data / "v1.json").read_text())
    (tmp_path / "trained").mkdir()
    set_spec(db, artifact_roots=[str(tmp_path / "trained")])  # where the team's trainers write
    trained = {}
    for name in ("v2", "v3"):  # two trainers' artifacts (copies of v1's model: enough to score)
        trained[name] = shutil.copyfile(url2pathname(urlparse(v1["uri"]).path),
                                        tmp_path / "trained" / f"{name}.joblib").as_uri()
    window = {"train_start": "2026-10-05T00:00:00", "train_end": "2026-11-02T00:00:00"}
    with web_api(db, fraud_data) as web:
        worker, ops = make_worker(db, fraud_data, outbox, public_url=web.url)
        late = []

        class CallbackDuringComparison(Notifier):
            def candidate_ready(self, model_key, number, *, alert_id):
                if not late:  # the second trainer finishes while v2 is being announced
                    late.append(call_back(f"{web.url}/api/versions", {
                        "model": MODEL, "artifact_uri": trained["v3"], "metrics": v1["metrics"], **window}))
                return super().candidate_ready(model_key, number, alert_id=alert_id)

        notifier = ops.notifier
        ops.notifier = ops.work.notifier = CallbackDuringComparison(
            db=notifier.db, settings=notifier.settings, delivery=notifier.delivery, charts_dir=notifier.charts_dir)
        first = call_back(f"{web.url}/api/versions", {"model": MODEL, "artifact_uri": trained["v2"],
                                                      "metrics": v1["metrics"], **window})
        assert first.status_code == 201
        assert worker.drain_work() == 1
        assert [a.json()["evaluation"] for a in late] == [first.json()["evaluation"]]  # joined the running item
        evaluate = items(db)["evaluate"]
        assert evaluate.state == WorkState.queued and evaluate.result == {"evaluated": [2], "failed": []}
        assert worker.drain_work() == 1
    ready = [m["text"].split(" is ready")[0] for m in outbox_messages(outbox) if m["kind"] == "candidate"]
    assert ready == [f"{MODEL} v2", f"{MODEL} v3"]
    assert items(db)["evaluate"].state == WorkState.done


def test_an_airflow_run_started_before_a_crash_is_not_started_twice(db, fraud_data, tmp_path):
    from store import work

    register_fraud_model(db, fraud_data)
    with Receiver() as airflow:
        set_spec(db, retrain={"backend": "airflow", "url": airflow.url, "dag_id": "train_fraud"})
        worker, ops = make_worker(db, fraud_data, tmp_path / "outbox", FLYWHEEL_AIRFLOW_USERNAME="flywheel",
                                  FLYWHEEL_AIRFLOW_PASSWORD="pw")
        ops.retraining.request_retrain(actor(db, ELI), MODEL)
        item_id = items(db)["retrain"].id
        with db.session() as s:  # a worker took it, triggered the DAG run, and died before recording that
            work.claim(session=s, item_id=item_id)
        assert worker.resume_interrupted_work() == 1
        airflow.answer(Answer(409, {"title": "Conflict", "detail": "DAGRun already exists"}))
        worker.drain_work()
    run_id = f"flywheel-{MODEL}-work-{item_id}"
    assert [r.json()["dag_run_id"] for r in airflow.requests] == [run_id]
    retrain = items(db)["retrain"]
    assert retrain.state == WorkState.dispatched and retrain.result["reference"] == run_id
