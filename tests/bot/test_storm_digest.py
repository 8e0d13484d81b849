"""A storm (more than five models breaching in one check cycle for one channel) is one digest message;
five or fewer go out one by one. The digest's alerts keep their lifecycle in the digest's thread."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.app import make_notifier
from bot.blocks.common import validate_payload
from bot.config import Settings
from bot.delivery import FolderOutbox
from bot.ids import ActionId
from bot.outbox import OutboxDelivery, OutboxSender, StormPolicy
from bot.slack_delivery import SlackDelivery
from store import status
from store.models import Alert, AlertState, Digest, OutboxMessage, OutboxState
from tests.support.fleet import Clock, cycle, drain, header, lines, register_fleet, top_level
from tests.support.projects import week_end
from tests.support.slack_fake import FakeSlack

WINDOW = timedelta(seconds=60)


@pytest.fixture
def rig(db, tmp_path):
    clock = Clock(week_end(4))
    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url, timeout=5)
        notifier = make_notifier(Settings(FLYWHEEL_PUBLIC_URL="https://f.example.com"), db,
                                 delivery=OutboxDelivery(db, clock), charts_dir=tmp_path / "charts")
        sender = OutboxSender(db, SlackDelivery(client), clock, storm=StormPolicy(WINDOW, 5))
        yield db, fake, notifier, sender, clock, tmp_path
        assert fake.invalid == []


def test_six_models_breaching_in_one_cycle_are_one_digest_listing_them(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 6)
    cycle(db, notifier, keys, 4)
    assert sender.send_due() == 0  # held: the rest of the cycle may still be coming
    assert fake.calls_to("chat.postMessage") == []
    clock.advance(seconds=61)
    drain(sender, clock)
    (ts, digest), = top_level(fake, "C0ML")
    assert header(digest).startswith("6 models breaching at once · input drift on 6")
    assert sorted(b["block_id"].split(":", 1)[1] for b in lines(digest)) == sorted(keys)
    assert all(b["accessory"]["action_id"] == ActionId.digest_thread for b in lines(digest))
    assert "Input drift on income" in lines(digest)[0]["text"]["text"]
    validate_payload({"text": digest["text"], "blocks": digest["blocks"]})
    assert len(fake.calls_to("chat.postMessage")) == 1  # no individual alert went out
    with db.session() as s:
        assert sorted(r.state for r in s.query(OutboxMessage)) == [OutboxState.digested] * 6 + [OutboxState.sent]
        made = s.query(Digest).one()
        assert made.message_ref == f"C0ML:{ts}"
        assert {(a.digest_id, a.message_ts) for a in s.query(Alert)} == {(made.id, None)}


def test_five_models_go_out_one_by_one_as_before(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 5)
    cycle(db, notifier, keys, 4)
    clock.advance(seconds=61)
    drain(sender, clock)
    posted = top_level(fake, "C0ML")
    assert sorted(header(m).split(" · ")[0] for _, m in posted) == sorted(f"Input drift on {k} v1" for k in keys)
    with db.session() as s:
        assert s.query(Digest).count() == 0
        assert {a.message_ts for a in s.query(Alert)} == {ts for ts, _ in posted}


def test_two_channels_are_counted_separately(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 9)
    with db.session() as s:  # three of the nine projects send their ML alerts elsewhere
        for n in range(6, 9):
            status.set_channel(session=s, project_key=f"loans-{n}", persona="ml_engineer", channel="C0MLB",
                               actor="U0ML0001")
    cycle(db, notifier, keys, 4)
    clock.advance(seconds=61)
    drain(sender, clock)
    (_, digest), = top_level(fake, "C0ML")
    assert len(lines(digest)) == 6
    assert sorted(header(m).split(" · ")[0] for _, m in top_level(fake, "C0MLB")) == \
        [f"Input drift on risk-{n} v1" for n in range(6, 9)]


def test_a_cycle_spread_over_minutes_is_still_one_storm(rig):
    """The window restarts with each alert for the channel: a cycle that takes minutes is one batch."""
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 6)
    for key in keys:
        cycle(db, notifier, [key], 4)
        clock.advance(seconds=40)
        sender.send_due()
    assert fake.calls_to("chat.postMessage") == []
    clock.advance(seconds=30)
    drain(sender, clock)
    (_, digest), = top_level(fake, "C0ML")
    assert len(lines(digest)) == 6


def test_repeat_and_resolve_of_a_digested_alert_reach_the_digest_thread(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 6)
    cycle(db, notifier, keys, 4)
    clock.advance(seconds=61)
    drain(sender, clock)
    (ts, _), = top_level(fake, "C0ML")
    cycle(db, notifier, ["risk-0"], 5)  # still drifting
    drain(sender, clock)
    cycle(db, notifier, ["risk-0"], 6)  # back to normal
    drain(sender, clock)
    assert len(top_level(fake, "C0ML")) == 1  # no ghost message of its own
    replies = [m["text"] for m in fake.thread("C0ML", ts)]
    assert replies[0].startswith("*risk-0* · Still drifting (Feb 16, 2026): income") and " -> " in replies[0]
    assert replies[1].startswith("*risk-0* · :white_check_mark: Resolved: drift check passed")
    line = next(b for b in lines(fake.messages[("C0ML", ts)]) if b["block_id"].endswith(":risk-0"))
    assert ":white_check_mark: Resolved" in line["text"]["text"]  # the digest was edited in place
    assert len(fake.calls_to("chat.update")) == 2
    with db.session() as s:
        assert {r.state for r in s.query(OutboxMessage)} == {OutboxState.sent, OutboxState.digested}
        assert s.query(Alert).filter_by(state=AlertState.resolved).count() == 1


@pytest.mark.charts
def test_a_repeat_queued_while_the_storm_was_held_follows_into_the_digest(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 6)
    cycle(db, notifier, keys, 4)
    cycle(db, notifier, ["risk-3"], 5)  # a manual re-check before the storm went out
    clock.advance(seconds=61)
    drain(sender, clock)
    (ts, digest), = top_level(fake, "C0ML")
    (reply,) = [m["text"] for m in fake.thread("C0ML", ts)]
    assert reply.startswith("*risk-3* · Still drifting")
    with db.session() as s:
        held = s.query(OutboxMessage).filter_by(state=OutboxState.digested, kind="post").all()
        risk3 = next(r for r in held if r.payload["model_key"] == "risk-3")
        # The kept message (posted on demand in the thread) has the newer figure, the one the reply names.
        newer = reply.rsplit(" -> ", 1)[1]
        assert f"Wasserstein {newer}" in json.dumps(risk3.payload["blocks"])
        # and still the charts it was posted with: the edit drew none, and must not take them away.
        assert [Path(c["path"]).name for c in risk3.payload["charts"]] == ["dist-income.png", "drift.png"]
        assert all(Path(c["path"]).is_file() for c in risk3.payload["charts"])
        assert s.query(OutboxMessage).filter_by(state=OutboxState.pending).count() == 0


def test_the_digest_survives_rate_limits_and_server_errors(rig):
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 7)
    fake.fail("chat.postMessage", status=429, retry_after=30, times=1)
    cycle(db, notifier, keys, 4)
    clock.advance(seconds=61)
    sender.send_due()
    fake.fail("chat.postMessage", status=500, times=2)
    for _ in range(20):
        sender.send_due()
        clock.advance(seconds=10)
    posted = top_level(fake, "C0ML")
    assert len(posted) == 1 and header(posted[0][1]).startswith("7 models breaching at once")
    assert len(fake.calls_to("chat.postMessage")) == 4  # refused three times, posted once
    with db.session() as s:
        assert s.query(OutboxMessage).filter_by(state=OutboxState.pending).count() == 0
        assert s.query(Digest).one().message_ref == f"C0ML:{posted[0][0]}"


def test_offline_delivery_keeps_individual_alerts(db, tmp_path):
    """The outbox folder (`flywheel demo`, `flywheel check` without a token) has no sender to gather
    a storm: each alert is its own message there."""
    keys = register_fleet(db, tmp_path, 6)
    outbox = FolderOutbox(tmp_path / "outbox")
    notifier = make_notifier(Settings(), db, delivery=outbox, charts_dir=tmp_path / "charts")
    cycle(db, notifier, keys, 4)
    assert sorted(m.model_key for m in outbox.messages()) == sorted(keys)


def test_simultaneous_open_thread_clicks_queue_one_reply(rig):
    """Each click is its own unit of work; on PostgreSQL they really overlap."""
    db, fake, notifier, sender, clock, folder = rig
    keys = register_fleet(db, folder, 6)
    cycle(db, notifier, keys, 4)
    clock.advance(seconds=61)
    (made,) = sender.gather(clock())
    with db.session() as s:
        alert_id = s.query(Digest).one().alert_ids[2]
    start, answers = threading.Barrier(4), []

    def click():
        start.wait()
        answers.append(notifier.open_in_digest(alert_id, now=clock()))

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert sorted(a.queued_now for a in answers) == [False, False, False, True]
    assert len({a.refs for a in answers}) == 1
    with db.session() as s:
        (reply,) = s.query(OutboxMessage).filter_by(kind="reply").all()
        assert reply.parent_id == int(s.get(Digest, made).message_ref.split(":")[1])
        assert reply.payload == s.query(OutboxMessage).filter_by(alert_id=alert_id, kind="post").one().payload
