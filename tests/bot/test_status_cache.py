"""`/flywheel status` answers from a cached status only while nothing it shows has changed."""

from datetime import datetime

import pytest

from bot.app import make_operations
from bot.config import Settings
from bot.services.common import Actor
from store import monitoring, registry
from store.db import Database
from store.errors import NotFound
from store.models import Alert, AlertState, CheckKind, Model, Verdict
from tests.support.factories import fraud_project

NOW = datetime(2026, 11, 9, 8, 0)


def _check(db, verdict, message):
    with db.session() as s:
        model = registry.get_model(session=s, key="fraud-detector")
        monitoring.record_check_run(session=s, model=model, version=None, kind=CheckKind.drift, window_start=NOW,
                                    window_end=NOW, as_of=NOW, figures={}, verdict=verdict, message=message)


@pytest.fixture
def ops(db):
    with db.session() as s:
        fraud_project(s)
    return make_operations(Settings(), db, notifier=None, clock=lambda: NOW)


def test_a_change_made_in_this_process_shows_at_once(ops, db):
    assert ops.statuses.of("fraud-detector").verdicts == ()
    _check(db, Verdict.breach, "card_age_days drifted")
    assert ops.statuses.of("fraud-detector").verdicts == (("drift", "breach", "card_age_days drifted"),)


def test_a_change_made_by_another_process_shows_once_the_recheck_is_due(ops, db):
    ops.statuses.recheck_seconds = 3600.0
    assert ops.statuses.of("fraud-detector").verdicts == ()
    worker = Database(db.url)  # another engine and pool: what the worker process writes through
    try:
        _check(worker, Verdict.ok, "no drift")
    finally:
        worker.dispose()
    assert ops.statuses.of("fraud-detector").verdicts == ()  # cached, and not yet due for a recheck
    ops.statuses.recheck_seconds = 0.0
    assert ops.statuses.of("fraud-detector").verdicts == (("drift", "ok", "no drift"),)


def test_an_audited_change_such_as_a_new_version_refreshes_the_status(ops, db):
    ops.statuses.recheck_seconds = 0.0
    assert ops.statuses.of("fraud-detector").versions == ()
    worker = Database(db.url)
    try:
        with worker.session() as s:
            registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001",
                                      artifact_uri="file:///m.joblib")
    finally:
        worker.dispose()
    assert [(v.label, v.status) for v in ops.statuses.of("fraud-detector").versions] == [("v1", "candidate")]


def test_an_unknown_model_is_named_with_a_suggestion(ops):
    with pytest.raises(NotFound, match="No model called fraud-detecter. Did you mean fraud-detector"):
        ops.statuses.of("fraud-detecter")


def test_commands_typed_in_a_burst_do_not_invalidate_the_cached_status(ops, db):
    ops.statuses.recheck_seconds = 0.0  # every call checks the freshness stamp
    first = ops.statuses.of("fraud-detector")
    for _ in range(20):
        ops.commands_audit.put(actor="U0ML0001", action="command", subject="slack:/flywheel",
                               details={"text": "status fraud-detector"})
    assert ops.commands_audit.drain(timeout=30)
    assert ops.statuses.of("fraud-detector") is first  # audited, but nothing a status shows changed
    with db.session() as s:
        registry.register_version(session=s, model_key="fraud-detector", created_by="U0ML0001",
                                  artifact_uri="file:///m.joblib")
    assert ops.statuses.of("fraud-detector") is not first


def test_checks_of_other_models_leave_the_cached_status_valid(ops, db):
    """A worker's check cycle writes runs for every model; a status asked meanwhile stays cached unless
    its own model was checked."""
    with db.session() as s:
        fraud = registry.get_model(session=s, key="fraud-detector")
        s.add(Model(key="churn-predictor", project=fraud.project, description="Scores churn", owner="U0ML0001",
                    task="binary_classification"))
    ops.statuses.recheck_seconds = 0.0  # every call checks the freshness stamp
    first = ops.statuses.of("fraud-detector")
    worker = Database(db.url)
    try:
        with worker.session() as s:
            churn = registry.get_model(session=s, key="churn-predictor")
            monitoring.record_check_run(session=s, model=churn, version=None, kind=CheckKind.drift,
                                        window_start=NOW, window_end=NOW, as_of=NOW, figures={},
                                        verdict=Verdict.ok, message="no drift")
    finally:
        worker.dispose()
    assert ops.statuses.of("fraud-detector") is first
    _check(db, Verdict.breach, "card_age_days drifted")
    assert ops.statuses.of("fraud-detector").verdicts == (("drift", "breach", "card_age_days drifted"),)


def _breach_with_alert(db) -> int:
    """A drift breach and the alert it opens, written together as the worker's check does."""
    with db.session() as s:
        model = registry.get_model(session=s, key="fraud-detector")
        run = monitoring.record_check_run(session=s, model=model, version=None, kind=CheckKind.drift,
                                          window_start=NOW, window_end=NOW, as_of=NOW, figures={},
                                          verdict=Verdict.breach, message="card_age_days drifted")
        alert, _ = monitoring.raise_alert(session=s, run=run, persona="ml_engineer", subjects=["card_age_days"],
                                          channel="C0ML")
        return alert.id


def test_an_alert_opened_or_resolved_by_a_check_shows_at_once(ops, db):
    ops.statuses.recheck_seconds = 0.0
    assert ops.statuses.of("fraud-detector").live_alerts == 0
    _breach_with_alert(db)
    assert ops.statuses.of("fraud-detector").live_alerts == 1
    with db.session() as s:
        model = registry.get_model(session=s, key="fraud-detector")
        monitoring.record_check_run(session=s, model=model, version=None, kind=CheckKind.drift, window_start=NOW,
                                    window_end=NOW, as_of=NOW, figures={}, verdict=Verdict.ok, message="no drift")
        monitoring.resolve_alerts(session=s, model=model, kind=CheckKind.drift, now=NOW)
    assert ops.statuses.of("fraud-detector").live_alerts == 0


def test_clicks_on_an_alert_leave_the_cached_status_valid(ops, db):
    """Acknowledge, Snooze and Useful / Noise keep the alert open: during an incident a channel clicks them
    while people ask for the status, and each click must not make the next status read the database again."""
    alert_id = _breach_with_alert(db)
    ops.statuses.recheck_seconds = 0.0  # every call checks the freshness stamp
    first = ops.statuses.of("fraud-detector")
    with db.session() as s:
        eli = registry.get_person(session=s, slack_id="U0ML0001")
        s.expunge(eli)
    actor = Actor("U0ML0001", eli)
    commits, status_commits = db.commits, db.status_commits
    ops.alerts.acknowledge(actor, alert_id).result(timeout=30)
    ops.alerts.feedback(actor, alert_id, noise=True).result(timeout=30)
    ops.alerts.snooze(actor, alert_id=alert_id, duration="4h").result(timeout=30)
    assert ops.commands_audit.drain(timeout=30)
    with db.read() as s:
        assert s.get(Alert, alert_id).state == AlertState.snoozed  # the clicks were committed
    # Nor do they count as this process's changes, which make the next status check its stamp at once.
    assert db.commits > commits and db.status_commits == status_commits
    assert ops.statuses.of("fraud-detector") is first
    assert first.live_alerts == 1


def test_while_one_request_rechecks_a_due_status_the_others_answer_from_the_cache(ops, db):
    ops.statuses.recheck_seconds = 0.0  # every call is due for its recheck
    first = ops.statuses.of("fraud-detector")
    worker = Database(db.url)
    try:
        _check(worker, Verdict.breach, "card_age_days drifted")  # a change made by another process
    finally:
        worker.dispose()
    ops.statuses._rechecking.add("fraud-detector")  # as while another request's recheck is under way
    assert ops.statuses.of("fraud-detector") is first
    ops.statuses._rechecking.discard("fraud-detector")
    assert ops.statuses.of("fraud-detector").verdicts == (("drift", "breach", "card_age_days drifted"),)
    assert not ops.statuses._rechecking
