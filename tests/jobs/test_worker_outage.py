"""A 30-second PostgreSQL outage under a running `flywheel worker` process.

The worker reaches PostgreSQL through a TCP proxy that the test cuts (every connection closed, new ones
closed on arrival) across a minute boundary, then restores; the shared PostgreSQL server never stops.
The worker stays up, logs the outage in a line or two instead of a traceback per job, takes its leader
lock again, and afterwards runs what came due meanwhile: the check firing of that minute, a retrain
requested and a Slack message queued during the outage."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.app import build_worker
from bot.blocks.common import Message
from bot.config import Settings
from bot.services.common import Actor
from bot.outbox import OutboxDelivery
from bot.readiness import Readiness
from jobs import synthetic
from store import heartbeat, registry
from bot.services.specs import apply_spec
from store.db import Database
from store.models import CheckTick, WorkItem, WorkState
from jobs.spec import load_spec
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, register_fraud_model, write_fraud_data
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from tests.support.workers import start_worker, stop, worker_output

OUTAGE_SECONDS = 30


@pytest.fixture
def pg_db(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a network outage of the database server: PostgreSQL (FLYWHEEL_TEST_DATABASE_URL)")
    return db


def _every_minute(db, tmp_path) -> None:
    today = datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = synthetic.Scenario(start=today - timedelta(weeks=7), weeks=6, rows_per_week=3000, drift_from_week=5)
    write_fraud_data(tmp_path, scenario)
    register_fraud_model(db, tmp_path, scenario)
    spec = tmp_path / "card-fraud.yml"
    text = spec.read_text()
    assert 'schedule: "0 * * * *"' in text
    spec.write_text(text.replace('schedule: "0 * * * *"', 'schedule: "* * * * *"'))
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(spec))


def _ticks_of(db, tick: datetime) -> list[tuple[str, str]]:
    with db.read() as s:
        return list(s.execute(select(CheckTick.kind, CheckTick.state).where(CheckTick.tick == tick)).all())


def _items(db) -> list[tuple[str, WorkState, str]]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(select(WorkItem.requested_by, WorkItem.state, WorkItem.error)
                                            .order_by(WorkItem.id))]


def _beat(db) -> datetime | None:
    with db.read() as s:
        return heartbeat.latest(session=s)


def test_the_worker_rides_out_a_30_second_database_outage(pg_db, tmp_path):
    db = pg_db
    _every_minute(db, tmp_path)
    logs = [tmp_path / "worker.log"]
    upstream = make_url(db.url)
    with FakeSlack() as fake, TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        proxied_url = upstream.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = {**os.environ, "FLYWHEEL_DATABASE_URL": proxied_url, "SLACK_BOT_TOKEN": fake.token,
               "FLYWHEEL_SLACK_API_URL": fake.api_url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
               "FLYWHEEL_OUTBOX": str(tmp_path / "outbox")}
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=tmp_path / "artifacts",
                            SLACK_BOT_TOKEN=fake.token, FLYWHEEL_SLACK_API_URL=fake.api_url)
        _, web = build_worker(settings, db=db)  # a web process's operations, on the database directly
        with db.read() as s:
            eli = registry.get_person(session=s, slack_id=ELI)
            s.expunge(eli)
        probe_db = Database(proxied_url)  # what `/readyz` of a web process behind the same proxy sees
        worker = start_worker(env, logs[0])
        try:
            tail = worker_output(logs)
            wait_until(lambda: _beat(db), 120, "the worker's first heartbeat", detail=tail, poll=0.2)
            assert Readiness(probe_db).check()[0]
            # Cut at second 40-45 of a minute, so the next minute's firing falls inside the outage.
            wait_until(lambda: 40 <= datetime.utcnow().second < 45, 70, "second 40 of a minute", detail=tail,
                       poll=0.2)
            cut_at = datetime.utcnow()
            firing = (cut_at + timedelta(minutes=1)).replace(second=0, microsecond=0)
            proxy.cut()
            started = time.monotonic()
            ready, body = Readiness(probe_db).check()
            assert not ready and "unreachable" in body["reason"], body
            assert time.monotonic() - started < 5
            # Meanwhile people keep asking: a retrain and a message are queued through the web side.
            assert web.retraining.request_retrain(Actor(ELI, eli), MODEL, reason="outage drill").startswith("Retraining")
            OutboxDelivery(db).post(Message(kind="deployment", persona="ops", model_key=MODEL, blocks=(),
                                            text="queued during the outage", channel="C0OUTAGE"))
            while time.monotonic() - started < OUTAGE_SECONDS:
                assert worker.poll() is None, "the worker died during the outage\n" + tail()
                time.sleep(1)
            assert datetime.utcnow() > firing, "the outage did not span the minute's firing: nothing tested"
            assert _ticks_of(db, firing) == [], "the firing ran although the database was away"
            proxy.restore()
            restored = time.monotonic()

            wait_until(lambda: any(m.get("text") == "queued during the outage" for m in fake.messages.values()),
                       60, "the message queued during the outage", detail=tail, poll=0.2)
            ticks = wait_until(lambda: (t := _ticks_of(db, firing)) and all(state != "running" for _, state in t) and t,
                               120, f"the check firing of {firing:%H:%M}", detail=tail, poll=0.2)
            assert {state for _, state in ticks} == {"done"}, ticks
            asked = wait_until(lambda: (i := [x for x in _items(db) if x[0] == ELI]) and
                               all(state in (WorkState.done, WorkState.failed) for _, state, _ in i) and i, 180,
                               "the retrain requested during the outage", detail=tail, poll=0.5)
            assert [state for _, state, _ in asked] == [WorkState.done], (asked, _items(db))
            wait_until(lambda: any(m.get("text", "").startswith(f"{MODEL} v2 is ready for review")
                                   for m in fake.messages.values()), 60, "the retrain's news", detail=tail,
                       poll=0.2)
            wait_until(lambda: (beat := _beat(db)) and beat > cut_at + timedelta(seconds=OUTAGE_SECONDS), 30,
                       "a heartbeat after the outage", detail=tail, poll=0.2)
            assert Readiness(probe_db).check()[0]
            assert worker.poll() is None
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
        finally:
            stop(worker)
            probe_db.dispose()
        output = logs[0].read_text()
        assert "Traceback" not in output, output[-4000:]
        about_outage = [line for line in output.splitlines() if "database is" in line]
        # One line when it went, at most one more per minute, one when it came back.
        assert 2 <= len(about_outage) <= 3, about_outage
        assert "database is back" in about_outage[-1]
        assert "took the leader lock again" in output  # its connection, and the lock with it, was lost
        assert time.monotonic() - restored < 300
        assert fake.invalid == []
