"""Automatic retraining on breach (`retrain.auto: true`): the worker's scheduled check asks for a retrain
as Flywheel, at most once per the spec's cooldown."""

from datetime import timedelta

from sqlalchemy import select

from store import work
from store.models import AuditEvent, CheckKind, WorkItem, WorkState
from tests.support.backend_world import make_worker, set_spec
from tests.support.slack_world import MODEL, NOW, register_fraud_model

T0 = NOW - timedelta(days=2)  # week six: card age has drifted since week five


def retrains(db) -> list[WorkItem]:
    with db.session() as s:
        return list(s.query(WorkItem).filter_by(kind="retrain").order_by(WorkItem.id))


def settle(db, item_id: int) -> None:
    """The retrain ran (here: it is marked done), so only the cooldown can hold back the next one."""
    with db.session() as s:
        work.claim(session=s, item_id=item_id)
        work.finish(session=s, item_id=item_id, result={"version": 2})


def test_breaches_within_the_cooldown_ask_for_one_retrain_and_after_it_another(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    set_spec(db, retrain={"backend": "python", "entrypoint": "jobs.training:retrain", "auto": True,
                          "cooldown": "24h"})
    now = [T0]
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: now[0])

    worker.check(MODEL, CheckKind.drift)
    first = retrains(db)
    assert [(i.requested_by, i.state) for i in first] == [("flywheel", WorkState.queued)]
    reason = first[0].payload["reason"]
    assert reason.startswith("retrained automatically after input drift on ") and "card_age_days" in reason
    assert first[0].payload["alert"] is not None  # the retrain reports in the alert's thread
    with db.session() as s:
        requested = s.execute(select(AuditEvent).where(AuditEvent.action == "work.retrain.requested")).scalars().all()
        assert [(e.actor, e.details["work"]) for e in requested] == [("flywheel", first[0].id)]
    settle(db, first[0].id)

    now[0] = T0 + timedelta(hours=6)
    worker.check(MODEL, CheckKind.drift)  # breaching still, inside the cooldown
    assert len(retrains(db)) == 1

    now[0] = T0 + timedelta(hours=25)
    worker.check(MODEL, CheckKind.drift)
    after = retrains(db)
    assert len(after) == 2 and after[1].requested_by == "flywheel" and after[1].state == WorkState.queued


def test_without_auto_a_breach_asks_for_nothing_and_a_passing_check_never_does(db, fraud_data, tmp_path):
    register_fraud_model(db, fraud_data)
    set_spec(db, retrain={"backend": "python", "entrypoint": "jobs.training:retrain", "auto": False})
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: T0)
    worker.check(MODEL, CheckKind.drift)
    assert retrains(db) == []

    set_spec(db, retrain={"backend": "python", "entrypoint": "jobs.training:retrain", "auto": True})
    early = NOW - timedelta(weeks=4)  # week three: nothing has drifted yet
    worker, _ = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: early)
    worker.check(MODEL, CheckKind.drift)
    assert retrains(db) == []


def test_a_person_retraining_does_not_use_up_the_cooldown_but_a_live_retrain_is_not_doubled(db, fraud_data, tmp_path):
    from tests.support.backend_world import actor
    from tests.support.slack_world import ELI

    register_fraud_model(db, fraud_data)
    set_spec(db, retrain={"backend": "python", "entrypoint": "jobs.training:retrain", "auto": True,
                          "cooldown": "24h"})
    worker, ops = make_worker(db, fraud_data, tmp_path / "outbox", clock=lambda: T0)
    ops.retraining.request_retrain(actor(db, ELI), MODEL, reason="looking into drift")
    worker.check(MODEL, CheckKind.drift)
    assert [(i.requested_by, i.state) for i in retrains(db)] == [(ELI, WorkState.queued)]
    settle(db, retrains(db)[0].id)
    worker.check(MODEL, CheckKind.drift)
    assert [i.requested_by for i in retrains(db)] == [ELI, "flywheel"]
