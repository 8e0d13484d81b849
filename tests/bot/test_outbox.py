"""The Slack outbox: written first, sent by the worker, nothing lost or doubled when Slack falls over."""

from datetime import datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import HeaderBlock, SectionBlock

from bot.blocks.common import Message, md
from bot.outbox import OutboxDelivery, OutboxSender
from bot.slack_delivery import SlackDelivery
from store.models import Alert, CheckKind, CheckRun, OutboxMessage, OutboxState, Verdict
from tests.support.factories import fraud_project
from tests.support.slack_fake import FakeSlack

T0 = datetime(2026, 11, 23, 6, 0)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


def _message(channel, title):
    return Message(kind="kpi_alert", persona="business", model_key="fraud-detector", text=title, channel=channel,
                   blocks=(HeaderBlock(text=title), SectionBlock(text=md(f"*{title}*"))))


@pytest.fixture
def rig(db):
    clock = Clock()
    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url, timeout=5)  # no SDK retries: ours
        yield db, fake, OutboxDelivery(db, clock), OutboxSender(db, SlackDelivery(client), clock), clock


def _texts(fake, channel, ts):
    return [m["text"] for m in fake.thread(channel, ts)]


def _posts(fake):
    """Top-level messages Slack accepted, in the order it accepted them."""
    return [m["text"] for (_, ts), m in sorted(fake.messages.items(), key=lambda kv: float(kv[0][1]))
            if not m.get("thread_ts")]


def test_nothing_reaches_slack_until_the_sender_runs_and_threads_keep_their_order(rig):
    db, fake, delivery, sender, clock = rig
    first = delivery.post(_message("C0BIZ", "Missed fraud is up 41%"))
    delivery.reply(first, "still breaching: $21,000")
    delivery.reply(first, "resolved")
    delivery.post(_message("C0ML", "Input drift"))
    assert fake.calls_to("chat.postMessage") == []
    assert sender.send_due() == 4
    (channel, ts), = [k for k, m in fake.messages.items() if m["text"] == "Missed fraud is up 41%"]
    assert _texts(fake, channel, ts) == ["still breaching: $21,000", "resolved"]
    assert sender.send_due() == 0  # sent means sent: a second pass sends nothing again
    with db.session() as s:
        assert {r.state for r in s.query(OutboxMessage)} == {OutboxState.sent}


def test_rate_limits_are_waited_out_and_nothing_is_doubled(rig):
    db, fake, delivery, sender, clock = rig
    fake.fail("chat.postMessage", status=429, retry_after=30, times=2)
    ref = delivery.post(_message("C0BIZ", "Missed fraud is up 41%"))
    delivery.reply(ref, "first reply")
    delivery.post(_message("C0ML", "Input drift"))
    assert sender.send_due() == 0  # both posts hit the limit; the reply waits for its message
    clock.advance(seconds=10)
    assert sender.send_due() == 0  # Retry-After not over yet
    clock.advance(seconds=25)
    assert sender.send_due() == 3
    assert sorted(_posts(fake)) == ["Input drift", "Missed fraud is up 41%"]  # each exactly once
    assert len(fake.calls_to("chat.postMessage")) == 2 + 2 + 1  # two refused, two posts, one reply


def test_an_hour_long_outage_then_everything_in_order(rig):
    db, fake, delivery, sender, clock = rig
    fake.fail("chat.postMessage", status=503, times=12)
    ref = delivery.post(_message("C0BIZ", "alert"))
    for n in range(5):
        delivery.reply(ref, f"update {n}")
    for _ in range(12):  # an hour of Slack answering 503, one pass every five minutes
        sender.send_due()
        clock.advance(minutes=5)
    with db.session() as s:
        assert s.query(OutboxMessage).filter_by(state=OutboxState.sent).count() == 0
    for _ in range(3):
        sender.send_due()
        clock.advance(minutes=5)
    (channel, ts), = [k for k, m in fake.messages.items() if m["text"] == "alert"]
    assert _texts(fake, channel, ts) == [f"update {n}" for n in range(5)]
    assert _posts(fake).count("alert") == 1


def test_posts_to_one_channel_are_paced(rig):
    db, fake, delivery, sender, clock = rig
    delivery.post(_message("C0ML", "one"))
    delivery.post(_message("C0ML", "two"))
    assert sender.send_due() == 1
    assert sender.send_due() == 0
    clock.advance(seconds=1)
    assert sender.send_due() == 1
    assert _posts(fake) == ["one", "two"]


def test_a_permanent_error_fails_that_row_and_the_rest_go_out(rig):
    db, fake, delivery, sender, clock = rig
    fake.fail("chat.postMessage", error="channel_not_found", times=1)
    delivery.post(_message("C0GONE", "lost channel"))
    delivery.post(_message("C0ML", "fine"))
    sender.send_due()
    with db.session() as s:
        failed = s.query(OutboxMessage).filter_by(state=OutboxState.failed).one()
        assert "channel_not_found" in failed.last_error and fake.token not in failed.last_error
    assert _posts(fake)[-1] == "fine"


def test_an_alert_learns_its_slack_timestamp_when_its_message_goes_out(rig):
    db, fake, delivery, sender, clock = rig
    ref = delivery.post(_message("C0BIZ", "Missed fraud is up 41%"))
    with db.session() as s:
        model = fraud_project(s)
        run = CheckRun(model_id=model.id, kind=CheckKind.kpi, window_start=T0, window_end=T0, as_of=T0,
                       verdict=Verdict.breach)
        s.add(run)
        s.flush()
        s.add(Alert(check_run_id=run.id, model_id=model.id, kind=CheckKind.kpi, persona="business",
                    fingerprint="f", subjects=[], channel="C0BIZ", message_ts=ref))
    sender.send_due()
    with db.session() as s:
        ts = s.query(Alert).one().message_ts
    assert ("C0BIZ", ts) in fake.messages
