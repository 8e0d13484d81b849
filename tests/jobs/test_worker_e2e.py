"""The worker process's loop end to end: queued work runs once, its messages go out through the outbox."""

import threading

from pydantic import SecretStr

from bot.app import build_worker
from bot.config import Settings
from bot.services.common import Actor
from jobs.worker import leadership_for
from store import registry
from store.models import OutboxMessage, OutboxState, WorkItem, WorkState
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, NOW, register_fraud_model
from tests.support.waiting import wait_until


def test_queued_retrain_runs_once_and_its_news_reaches_slack_through_the_outbox(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=fraud_data / "artifacts",
                            SLACK_BOT_TOKEN=SecretStr(fake.token), FLYWHEEL_SLACK_API_URL=fake.api_url)
        worker, ops = build_worker(settings, db=db, clock=lambda: NOW, poll_seconds=0.1)
        with db.session() as s:
            eli = registry.get_person(session=s, slack_id=ELI)
            s.expunge(eli)
        # The web process records the request; it has no runner, so nothing runs until the worker does.
        first = ops.retraining.request_retrain(Actor(ELI, eli), MODEL, reason="drift")
        again = ops.retraining.request_retrain(Actor(ELI, eli), MODEL, reason="drift")
        assert first.startswith("Retraining") and again.startswith(f"{MODEL} is already retraining")
        leadership = leadership_for(db) if db.engine.dialect.name == "postgresql" else \
            leadership_for_file(tmp_path)
        thread = threading.Thread(target=worker.run, args=(leadership,), daemon=True)
        thread.start()
        try:
            wait_until(lambda: any(m.get("text", "").startswith(f"{MODEL} v2 is ready for review")
                                   for m in fake.messages.values()), 120, "the candidate message")
        finally:
            worker.stop()
            thread.join(timeout=30)
        with db.session() as s:
            assert [w.state for w in s.query(WorkItem)] == [WorkState.done]
            assert [v.number for v in registry.get_model(session=s, key=MODEL).versions] == [1, 2]
            assert {r.state for r in s.query(OutboxMessage)} == {OutboxState.sent}
        assert fake.invalid == []


def leadership_for_file(folder):
    from jobs.worker import SqliteLeadership

    return SqliteLeadership(folder / "worker.db")


def test_a_worker_killed_after_registering_resumes_without_a_second_version(db, fraud_data, tmp_path):
    from jobs.retrain import retrain
    from store import work

    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=fraud_data / "artifacts",
                            SLACK_BOT_TOKEN=SecretStr(fake.token), FLYWHEEL_SLACK_API_URL=fake.api_url)
        worker, ops = build_worker(settings, db=db, clock=lambda: NOW, poll_seconds=0.1)
        with db.session() as s:
            eli = registry.get_person(session=s, slack_id=ELI)
            s.expunge(eli)
        ops.retraining.request_retrain(Actor(ELI, eli), MODEL)
        with db.session() as s:
            item = s.query(WorkItem).one()
            work.claim(session=s, item_id=item.id)
        # The killed worker had trained and registered v2 before it died.
        from datetime import timedelta

        retrain(db=db, model_key=MODEL, requested_by=ELI, trigger="drift", as_of=NOW - timedelta(days=7),
                artifacts_dir=fraud_data / "artifacts", now=NOW, work_item=item.id)
        thread = threading.Thread(target=worker.run, args=(leadership_for_file(tmp_path),), daemon=True)
        thread.start()
        try:
            wait_until(lambda: any(m.get("text", "").startswith(f"{MODEL} v2 is ready for review")
                                   for m in fake.messages.values()), 120, "the candidate message")
        finally:
            worker.stop()
            thread.join(timeout=30)
        with db.session() as s:
            assert [v.number for v in registry.get_model(session=s, key=MODEL).versions] == [1, 2]
            assert [w.state for w in s.query(WorkItem)] == [WorkState.done]
