"""Under `flywheel serve` a click's Slack follow-ups (the settled message, a thread reply) are written to
the outbox and sent by the worker's sender, so they are retried and ordered like every other message."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.ids import ActionId
from bot.outbox import OutboxSender, StormPolicy
from bot.slack_delivery import SlackDelivery
from jobs.monitor import check_model
from store.models import Alert, OutboxMessage, OutboxState
from tests.support.fleet import Clock, drain
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, NOW, World, register_fraud_model


@pytest.fixture
def queued_world(db, fraud_data):
    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        app = World(db, fraud_data, fake, queued=True)
        yield app
        app.close()
        assert fake.invalid == []


def _alert_sent(world) -> tuple[OutboxSender, Clock, tuple[str, str]]:
    """The worker's sender (no storm hold) and the drift alert it has sent."""
    clock = Clock(NOW)
    sender = OutboxSender(world.db, SlackDelivery(WebClient(token=world.fake.token, base_url=world.fake.api_url,
                                                            timeout=5)), clock, storm=StormPolicy(window=timedelta(0)))
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    drain(sender, clock)
    return sender, clock, world.posted("C0ML", f"Input drift on {MODEL} v1")


def test_an_acknowledge_click_is_settled_through_the_outbox_even_while_slack_is_failing(queued_world):
    world = queued_world
    sender, clock, alert = _alert_sent(world)

    world.fake.fail("chat.update", status=500, times=2)  # Slack is having a bad minute
    assert world.click(ActionId.acknowledge, alert, ELI).status == 200
    world.ops.join()
    assert world.fake.calls_to("chat.update") == []  # written, not yet sent: the worker sends it
    with world.db.session() as s:
        (row,) = [r for r in s.query(OutboxMessage) if r.kind == "update"]
        assert (row.state, row.target_ref) == (OutboxState.pending, f"{alert[0]}:{alert[1]}")

    for _ in range(6):  # backoff 1 s, 2 s after the two failures
        sender.send_due()
        clock.advance(seconds=2)
    assert len(world.fake.calls_to("chat.update")) == 3  # two refused, then the one that took
    blocks = json.dumps(world.fake.messages[alert]["blocks"])
    assert f"Acknowledged by <@{ELI}>" in blocks and '"type": "actions"' not in blocks
    with world.db.session() as s:
        assert {r.state for r in s.query(OutboxMessage)} == {OutboxState.sent}


def test_a_reply_with_a_button_reaches_the_alert_thread_through_the_outbox_with_its_blocks(queued_world):
    """A failed comparison told in the alert's thread: written to the outbox, sent by the worker with its
    Compare again button, under the alert."""
    world = queued_world
    sender, clock, alert = _alert_sent(world)
    with world.db.read() as s:
        alert_id = s.execute(select(Alert.id).where(Alert.message_ts == alert[1])).scalar_one()
    text = f"Comparing {MODEL} v1 with production failed: the source is down."
    world.ops.notifier.comparison_failed(MODEL, 1, text, alert_id=alert_id, response_url=None)
    assert [m for m in world.fake.thread(*alert) if m["text"] == text] == []  # written, not yet sent
    drain(sender, clock)
    [reply] = [m for m in world.fake.thread(*alert) if m["text"] == text]
    [button] = [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["text"]["text"]) == (ActionId.compare_again, "Compare again")
