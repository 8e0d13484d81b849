"""Acknowledge, Snooze and Useful / Noise on an alert, as `flywheel serve` runs them: each click's change,
its audit event and the edit that shows it are one unit of work, committed together with the other
clicks of a burst."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from sqlalchemy import update

from bot.blocks.dates import when
from bot.ids import ActionContext, ActionId
from bot.outbox import OutboxSender, StormPolicy
from bot.slack_delivery import SlackDelivery
from jobs.monitor import check_model
from store import audit
from store.models import Alert, AlertFeedback, AlertState, AuditEvent, OutboxMessage
from tests.support.fleet import Clock, drain
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import DANA, ELI, MODEL, NOOR, NOW, OMAR, RITA, World, register_fraud_model


@pytest.fixture
def drift_alert(db, fraud_data):
    """The fraud model's drift alert, posted to the ML channel through the outbox and the sender."""
    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        world = World(db, fraud_data, fake, queued=True, FLYWHEEL_SECRET_KEY=SecretStr("k" * 40))
        clock = Clock(NOW)
        sender = OutboxSender(db, SlackDelivery(WebClient(token=fake.token, base_url=fake.api_url, timeout=5)),
                              clock, storm=StormPolicy(window=timedelta(0)))
        world.ops.notifier.on_checks(check_model(db=db, model_key=MODEL, as_of=NOW, now=NOW))
        drain(sender, clock)
        yield world, world.posted("C0ML", f"Input drift on {MODEL} v1"), sender, clock
        world.close()
        assert fake.invalid == [], "the app sent a payload Slack would refuse"


def _alert_id(world, message) -> int:
    blocks = world.fake.messages[message]["blocks"]
    value = next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                 if e.get("action_id") == ActionId.acknowledge)
    return ActionContext.decode(value).alert


def _edits(db) -> list[dict]:
    """The payloads of the message edits written to the outbox, oldest first."""
    with db.read() as s:
        return [r.payload for r in s.query(OutboxMessage).order_by(OutboxMessage.id) if r.kind == "update"]


def _snooze_value(world, message, choice: str) -> str:
    blocks = world.fake.messages[message]["blocks"]
    select = next(e for b in blocks if b["type"] == "actions" for e in b["elements"]
                  if e.get("action_id") == ActionId.snooze)
    return next(o["value"] for o in select["options"] if ActionContext.decode(o["value"]).choice == choice)


def test_snooze_from_the_menu_silences_the_alert_and_says_until_when(drift_alert):
    world, message, sender, clock = drift_alert
    assert world.click(ActionId.snooze, message, NOOR, value=_snooze_value(world, message, "4h")).status == 200
    world.ops.join()
    with world.db.read() as s:
        alert = s.get(Alert, _alert_id(world, message))
        assert (alert.state, alert.snoozed_until) == (AlertState.snoozed, NOW + timedelta(hours=4))
    drain(sender, clock)
    blocks = json.dumps(world.fake.messages[message]["blocks"])
    assert f"Snoozed by <@{NOOR}> until {when(NOW + timedelta(hours=4))}" in blocks
    assert '"type": "actions"' not in blocks


def test_a_refused_click_changes_nothing_and_edits_nothing(drift_alert):
    world, message, _, _ = drift_alert
    alert_id = _alert_id(world, message)
    with world.db.session() as s:  # the check passed again meanwhile
        s.execute(update(Alert).where(Alert.id == alert_id).values(state=AlertState.resolved))
    sent = world.click(ActionId.acknowledge, message, ELI)
    assert sent.status == 200
    assert [r["text"] for r in world.responses(sent.response_url)] == ["This alert is already resolved."]
    assert _edits(world.db) == []
    with world.db.read() as s:
        assert s.get(Alert, alert_id).state == AlertState.resolved
        actions = [e.action for e in s.query(AuditEvent)]
        assert "alert.acknowledge.refused" in actions and "alert.acknowledged" not in actions


def test_a_burst_of_clicks_gives_each_its_change_its_event_and_its_edit(drift_alert):
    """Twenty-four people's clicks at once: every one answered, every change audited once in an unbroken
    chain, one message edit per change (an Acknowledge of an alert acknowledged already is refused and edits
    nothing), one vote per person."""
    world, message, _, _ = drift_alert
    alert_id = _alert_id(world, message)
    people = [ELI, NOOR, RITA, OMAR, DANA]
    clicks = [(ActionId.acknowledge, None), (ActionId.snooze, _snooze_value(world, message, "1h")),
              (ActionId.useful, None), (ActionId.noise, None)]
    burst = [(action, value, people[i % len(people)]) for i in range(6) for action, value in clicks]
    with world.db.read() as s:
        events_before = s.query(AuditEvent).count()

    with ThreadPoolExecutor(len(burst)) as pool:
        sent = list(pool.map(lambda c: world.click(c[0], message, c[2], value=c[1]), burst))
    world.ops.join()

    assert [s.status for s in sent] == [200] * len(burst)
    with world.db.read() as s:
        assert audit.verify(session=s).whole
        new = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq).offset(events_before)
               if e.action != "command"]
        acknowledged = new.count("alert.acknowledged")
        assert 1 <= acknowledged and acknowledged + new.count("alert.acknowledge.refused") == 6
        assert sorted(a for a in new if not a.startswith("alert.acknowledge")) == \
            sorted(["alert.snoozed"] * 6 + ["alert.feedback"] * 12)
        votes = {(v.person, v.noise) for v in s.query(AlertFeedback).filter_by(alert_id=alert_id)}
        assert {person for person, _ in votes} == set(people)
        assert len(votes) == len(people)  # one vote each, whatever the order of their clicks
    assert len(_edits(world.db)) == acknowledged + 6


def test_slack_gets_its_answer_before_the_commit_and_the_change_and_its_edit_land_together(drift_alert):
    """An alert click starts no work: the app answers once the click is checked and queued, without
    waiting for the group commit; the state change, its audit event and the message edit then commit as
    one unit."""
    world, message, _, _ = drift_alert
    alert_id = _alert_id(world, message)
    started, release = threading.Event(), threading.Event()

    def busy_writer(_session):
        started.set()
        release.wait(30)

    held = world.db.submit(busy_writer)  # the committing thread is busy: the click's unit has to queue
    try:
        assert started.wait(10)
        assert world.click(ActionId.acknowledge, message, ELI).status == 200
        with world.db.read() as s:
            assert s.get(Alert, alert_id).state == AlertState.open
            assert s.query(AuditEvent).filter_by(action="alert.acknowledged").count() == 0
        assert _edits(world.db) == []
    finally:
        release.set()
    held.result(10)
    world.ops.join()
    with world.db.read() as s:
        assert s.get(Alert, alert_id).state == AlertState.acknowledged
        assert s.query(AuditEvent).filter_by(action="alert.acknowledged").count() == 1
    (edit,) = _edits(world.db)
    assert f"Acknowledged by <@{ELI}>" in json.dumps(edit["blocks"])


def test_view_details_answers_the_clicker_privately(drift_alert):
    """Each click is answered with a link signed for the clicker, through its response URL."""
    world, message, _, _ = drift_alert
    answers = []
    for user in (ELI, NOOR, ELI):
        sent = world.click(ActionId.view_details, message, user)
        assert sent.status == 200
        answers += world.responses(sent.response_url)  # joins: the answer has been posted
    assert [a["response_type"] for a in answers] == ["ephemeral"] * 3
    assert all(a["text"].startswith("Your link to") and a["replace_original"] is False for a in answers), answers


def test_a_click_committed_with_others_keeps_its_request_id_on_the_edit_it_queues(drift_alert):
    """Alert clicks commit on the group-commit thread; the message edit each queues still names the request
    that asked for it, so an operator can follow one click from its HTTP line to its Slack edit."""
    world, message, _, _ = drift_alert
    sent = world.click(ActionId.acknowledge, message, ELI, headers={"X-Request-Id": "click-4711-ack"})
    assert sent.status == 200
    world.ops.join()
    assert world.db.drain_submitted()
    with world.db.read() as s:
        edits = [(r.kind, r.request_id) for r in s.query(OutboxMessage).order_by(OutboxMessage.id)
                 if r.kind == "update"]
    assert edits == [("update", "click-4711-ack")]
