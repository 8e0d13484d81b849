"""App Homes are published again when what they show changes, whichever process made the change: the
app records who opened theirs, and the worker's checks as much as the app's clicks queue a refresh
that the outbox sender renders and publishes."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.app import build_worker
from bot.config import Settings
from jobs.monitor import check_model
from bot.services import home
from store import outbox
from store.models import CheckKind, OutboxMessage, OutboxState
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, NOOR, NOW, RITA, World, register_fraud_model


@pytest.fixture
def fake():
    with FakeSlack() as slack:
        yield slack
        assert slack.invalid == [], "the app sent a payload Slack would refuse"


def _homes(db) -> list[tuple[str, OutboxState]]:
    with db.read() as s:
        return [(r.channel, r.state) for r in s.query(OutboxMessage).filter_by(kind="home").order_by(OutboxMessage.id)]


def test_a_home_opened_in_the_app_is_refreshed_by_the_worker_after_its_checks(db, fraud_data, fake):
    register_fraud_model(db, fraud_data)
    app = World(db, fraud_data, fake, queued=True)
    try:
        app.event({"type": "app_home_opened", "user": ELI, "channel": "D0ML", "tab": "home",
                   "event_ts": f"{time.time():.6f}"})
        app.ops.join()
    finally:
        app.close()
    before = json.dumps(fake.home[ELI])
    assert "drift" not in before.lower()

    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=fraud_data / "artifacts",
                        FLYWHEEL_PUBLIC_URL="https://flywheel.example.com", SLACK_BOT_TOKEN=SecretStr(fake.token),
                        FLYWHEEL_SLACK_API_URL=fake.api_url)
    worker, ops = build_worker(settings, db=db, clock=lambda: NOW)
    ops.notifier.on_checks(check_model(db=db, model_key=MODEL, as_of=NOW, now=NOW, kinds={CheckKind.drift}))
    ops.notifier.on_checks(check_model(db=db, model_key=MODEL, as_of=NOW, now=NOW, kinds={CheckKind.kpi}))
    assert _homes(db) == [(ELI, OutboxState.pending)]  # two changes, one refresh waiting

    publishes = len(fake.calls_to("views.publish"))
    for _ in range(5):
        worker.send_outbox()
    assert _homes(db) == [(ELI, OutboxState.sent)]
    assert len(fake.calls_to("views.publish")) == publishes + 1
    after = json.dumps(fake.home[ELI])
    assert after != before and "drift" in after.lower()


def test_only_people_who_opened_their_home_lately_are_kept_up_to_date(db):
    with db.session() as s:
        home.record_viewer(session=s, slack_id=ELI, now=NOW)
        home.record_viewer(session=s, slack_id=NOOR, now=NOW - timedelta(days=45))
        home.record_viewer(session=s, slack_id=RITA, now=NOW - timedelta(days=50))
        home.record_viewer(session=s, slack_id=RITA, now=NOW - timedelta(days=2))  # opened again since
    with db.session() as s:
        viewers = home.recent_viewers(session=s, now=NOW)
        assert viewers == sorted([ELI, RITA])
        assert outbox.enqueue_home_refresh(session=s, slack_ids=viewers, now=NOW) == 2
        assert outbox.enqueue_home_refresh(session=s, slack_ids=viewers, now=NOW) == 0  # already waiting
    assert _homes(db) == [(ELI, OutboxState.pending), (RITA, OutboxState.pending)]
