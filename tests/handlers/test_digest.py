"""Digests in Slack, over HTTP against the fake Web API: a storm digest's per-model threads, opened once
whoever clicks, and a business channel's daily digest chosen with `/flywheel subscribe ... digest`."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from slack_sdk import WebClient

from bot.blocks.dates import when
from bot.charts import format_value
from bot.ids import ActionId, BlockId
from bot.outbox import OutboxSender, StormPolicy
from bot.slack_delivery import SlackDelivery
from handlers.actions import Clicked
from jobs.monitor import check_model
from store import monitoring, registry
from store.models import Alert, AuditEvent, ChannelDelivery, CheckKind, Digest, OutboxMessage, PersonaChannel
from tests.support.fleet import Clock, cycle, drain, header, lines, register_fleet, top_level
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import DANA, ELI, MODEL, NOOR, NOW, World, register_fraud_model

USAGE = "Usage: `/flywheel subscribe PERSONA [#channel] [PROJECT] [immediate|digest]`"


@pytest.fixture
def queued_world(db, fraud_data):
    """The app as `flywheel serve` runs it next to a worker: every message goes through the outbox."""
    register_fraud_model(db, fraud_data)
    with FakeSlack() as fake:
        app = World(db, fraud_data, fake, queued=True)
        yield app
        app.close()
        assert fake.invalid == []


def _storm(world, tmp_path):
    keys = register_fleet(world.db, tmp_path, 6)
    cycle(world.db, world.ops.notifier, keys, 4)
    clock = Clock(NOW + timedelta(seconds=61))
    sender = OutboxSender(world.db, SlackDelivery(WebClient(token=world.fake.token, base_url=world.fake.api_url,
                                                            timeout=5)), clock, storm=StormPolicy())
    drain(sender, clock)
    (ts, digest), = top_level(world.fake, "C0ML")
    return sender, clock, ts, digest


def _open_thread_value(digest, model_key):
    line = next(b for b in lines(digest) if b["block_id"] == f"{BlockId.digest_line}:{model_key}")
    return line["accessory"]["value"]


@pytest.mark.charts
def test_open_thread_posts_the_models_full_alert_in_the_digest_thread_once(queued_world, tmp_path):
    world = queued_world
    sender, clock, ts, digest = _storm(world, tmp_path)
    value = _open_thread_value(digest, "risk-2")
    first = world.click(ActionId.digest_thread, ("C0ML", ts), ELI, value=value)
    assert first.status == 200
    assert world.responses(first.response_url)[0]["text"] == "Posting risk-2's full alert in this message's thread."
    drain(sender, clock)
    (reply,) = world.fake.thread("C0ML", ts)
    with world.db.session() as s:
        alert = s.query(Alert).join(Alert.model).filter_by(key="risk-2").one()
        kept = s.query(OutboxMessage).filter_by(alert_id=alert.id, kind="post").one()
        assert alert.digest_thread_ref == f"C0ML:{reply['ts']}"
    assert reply["blocks"] == kept.payload["blocks"]  # the same blocks as the alert on its own
    assert header(reply).startswith("Input drift on risk-2 v1")
    charts = [u for u in world.fake.uploads.values() if u.completed]
    assert {(u.channel, u.thread_ts) for u in charts} == {("C0ML", ts)} and len(charts) == 2

    again = world.click(ActionId.digest_thread, ("C0ML", ts), NOOR, value=value)
    drain(sender, clock)
    assert len(world.fake.thread("C0ML", ts)) == 1  # nothing posted twice
    said = world.responses(again.response_url)[0]["text"]
    assert said.startswith("risk-2's full alert is already in this thread: <https://flywheel-test.slack.com/"
                           f"archives/C0ML/p{reply['ts'].replace('.', '')}?thread_ts={ts}")


def test_two_people_clicking_at_once_get_one_reply(queued_world, tmp_path):
    world = queued_world
    sender, clock, ts, digest = _storm(world, tmp_path)
    value = _open_thread_value(digest, "risk-4")
    clicks = [threading.Thread(target=world.click, args=(ActionId.digest_thread, ("C0ML", ts), who),
                               kwargs={"value": value}) for who in (ELI, NOOR, DANA)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    world.ops.join()
    drain(sender, clock)
    assert len(world.fake.thread("C0ML", ts)) == 1
    with world.db.session() as s:
        assert s.query(OutboxMessage).filter_by(kind="reply").count() == 1


def test_a_button_on_the_thread_copy_answers_in_the_digest_thread(queued_world, tmp_path):
    """Slack wants a thread's parent ts for replies: a click on a reply answers under the digest."""
    world = queued_world
    sender, clock, ts, digest = _storm(world, tmp_path)
    world.click(ActionId.digest_thread, ("C0ML", ts), ELI, value=_open_thread_value(digest, "risk-1"))
    drain(sender, clock)
    (reply,) = world.fake.thread("C0ML", ts)
    body = {"channel": {"id": "C0ML"}, "message": reply,
            "container": {"type": "message", "channel_id": "C0ML", "message_ts": reply["ts"], "thread_ts": ts}}
    Clicked(body, WebClient(token=world.fake.token, base_url=world.fake.api_url), respond=None).thread("noted")
    assert [m["text"] for m in world.fake.thread("C0ML", ts)][-1] == "noted"


# --- daily digest ------------------------------------------------------------------------------

def _delivery(world) -> ChannelDelivery:
    with world.db.session() as s:
        return s.query(PersonaChannel).filter_by(persona="business").one().delivery


def test_a_business_channel_on_the_daily_digest_hears_once_a_day_in_money(world):
    said = world.command("subscribe business <#C0BIZ|fraud-business> card-fraud digest", ELI)
    assert said.body["text"] == "business alerts of card-fraud now go to <#C0BIZ> as a daily digest, sent every day at 09:00 UTC."
    assert _delivery(world) == ChannelDelivery.digest
    assert world.ops.notifier.daily_digest(NOW + timedelta(hours=9)) == []  # nothing yet: no message
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    assert not [k for k in world.fake.messages if k[0] == "C0BIZ"]  # the KPI alert waits for the digest
    world.posted("C0ML", f"Input drift on {MODEL} v1")  # ML alerts still go out as they happen

    nine = NOW.replace(hour=9)
    (ref,) = world.ops.notifier.daily_digest(nine + timedelta(minutes=2))
    channel, ts = ref.split(":")
    digest = world.fake.messages[(channel, ts)]
    assert channel == "C0BIZ"
    with world.db.session() as s:
        alert = s.query(Alert).filter_by(kind=CheckKind.kpi).one()
        kpis = {k["name"]: k for k in alert.check_run.figures["kpis"]}
        made = s.query(Digest).one()
        assert (made.period_start, made.period_end, made.alert_ids) == (nine - timedelta(days=1), nine, [alert.id])
    amount = kpis["missed_fraud_amount"]
    line = next(b for b in digest["blocks"] if b.get("block_id") == f"{BlockId.digest_model}:{MODEL}")
    text = line["text"]["text"]
    assert text.startswith(f"*{MODEL}* v1 · Card fraud detection\n:new: Opened ")
    assert f"Fraud amount missed *{format_value(amount['value'], 'USD')}* this week" in text
    assert f"(alert above {format_value(amount['threshold'], 'USD')})" in text
    breached = next(k for k in kpis.values() if k["breached"])
    assert text.index(breached["label"]) < text.index("Fraud amount missed")  # what breached, then the money
    assert line["accessory"]["text"]["text"] == "View details"
    assert line["accessory"]["value"] == f"https://flywheel.example.com/models/{MODEL}"
    assert digest["blocks"][1]["text"]["text"] == "One KPI alert open (1 new), none resolved in the last 24 hours."

    assert world.ops.notifier.daily_digest(nine + timedelta(minutes=5)) == []  # a period goes out once
    assert len([k for k in world.fake.messages if k[0] == "C0BIZ"]) == 1


def test_switching_back_to_immediate_posts_the_waiting_alert_on_its_next_check(world):
    world.command("subscribe business <#C0BIZ> card-fraud digest", ELI)
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    said = world.command("subscribe business <#C0BIZ> card-fraud immediate", ELI)
    assert said.body["text"] == "business alerts of card-fraud now go to <#C0BIZ> as they happen."
    assert _delivery(world) == ChannelDelivery.immediate
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    kpi = world.posted("C0BIZ", "")
    assert kpi[0] == "C0BIZ"
    assert world.ops.notifier.daily_digest(NOW.replace(hour=9)) == []  # no digest channel any more
    world.command("subscribe business <#C0BIZ> card-fraud", ELI)  # no mode word: the mode stays
    assert _delivery(world) == ChannelDelivery.immediate


@pytest.mark.parametrize("text, problem", [
    ("subscribe business <#C0BIZ> card-fraud daily", "'daily' is not a way to deliver alerts: use `digest`"),
    ("subscribe business <#C0BIZ> digets", "'digets' is not a way to deliver alerts: use `digest`"),
    ("subscribe business <#C0BIZ> card-fraud digest now", "'digest' is one word too many"),
])
def test_a_bad_mode_word_gets_the_usage_line_and_changes_nothing(world, text, problem):
    said = world.command(text, ELI)
    assert said.body["text"].startswith(problem) and said.body["text"].endswith(USAGE)
    assert _delivery(world) == ChannelDelivery.immediate
    with world.db.session() as s:
        assert s.query(AuditEvent).filter_by(action="channel.subscribed").count() == 0


def test_only_business_channels_take_a_digest(world):
    said = world.command("subscribe ml_engineer <#C0ML> card-fraud digest", ELI)
    assert said.body["text"].startswith("Only business channels can take a daily digest")
    with world.db.session() as s:
        assert {c.delivery for c in s.query(PersonaChannel)} == {ChannelDelivery.immediate}


def test_help_shows_the_delivery_modes(world):
    said = world.command("help", DANA)
    assert "subscribe PERSONA [#channel] [PROJECT] [immediate|digest]" in said.body["text"]


def test_a_resolved_alert_is_reported_the_next_day_with_where_it_is_now(world):
    world.command("subscribe business <#C0BIZ> card-fraud digest", ELI)
    world.ops.notifier.on_checks(check_model(db=world.db, model_key=MODEL, as_of=NOW, now=NOW))
    later = NOW + timedelta(hours=2)
    with world.db.session() as s:  # the KPI check passed two hours later
        model = registry.get_model(session=s, key=MODEL)
        monitoring.resolve_alerts(session=s, model=model, kind=CheckKind.kpi, now=later)
    (ref,) = world.ops.notifier.daily_digest(datetime(NOW.year, NOW.month, NOW.day, 9))
    digest = world.fake.messages[tuple(ref.split(":"))]
    assert digest["blocks"][0]["text"]["text"] == "All clear: one KPI alert resolved in the last 24 hours"
    line = next(b for b in digest["blocks"] if b.get("block_id") == f"{BlockId.digest_model}:{MODEL}")
    assert line["text"]["text"].split("\n")[1].startswith(f":white_check_mark: Resolved {when(later)}: ")
