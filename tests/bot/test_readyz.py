"""`/healthz` says the process is alive; `/readyz` says whether it can work: the database answers, its schema is
at the migrations' head, the leading worker's heartbeat is fresh and the Slack outbox is not stuck. Asked over
HTTP, as a load balancer asks."""

from __future__ import annotations

import time
import warnings
from datetime import timedelta

import pytest
from slack_bolt import App
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.readiness import Readiness
from bot.web import build_web
from jobs.worker import Worker
from store import heartbeat, outbox
from store.clock import utcnow
from store.db import Database
from store.models import OutboxMessage
from tests.support.tcp_proxy import TcpProxy

with warnings.catch_warnings():  # starlette nags about its httpx dependency; not ours to fix
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _web(db: Database) -> TestClient:
    bolt = App(signing_secret="test-signing-secret", token="xoxb-test", token_verification_enabled=False)
    return TestClient(build_web(bolt, readiness=Readiness(db)))


def _worker(db: Database) -> Worker:
    return Worker(db=db, check=lambda *_: None, run_work=lambda _: None)


def test_ready_with_a_fresh_heartbeat_and_not_before_any(db):
    web = _web(db)
    assert web.get("/healthz").json() == {"status": "ok"}
    answer = web.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["reason"] == "no worker has reported a heartbeat yet: start `flywheel worker`"
    assert _verdicts(answer) == {"database": True, "migrations": True, "worker": False, "outbox": True}
    _worker(db).beat(started_at=utcnow())
    answer = web.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ready" and answer.json()["worker_heartbeat_age_seconds"] < 5
    assert "reason" not in answer.json()
    assert _verdicts(answer) == {"database": True, "migrations": True, "worker": True, "outbox": True}


def _verdicts(answer) -> dict[str, bool]:
    return {check["name"]: check["ok"] for check in answer.json()["checks"]}


def test_a_schema_behind_the_migrations_is_not_ready(db):
    web = _web(db)
    _worker(db).beat(started_at=utcnow())
    head = db.head_revision()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0019'"))
    answer = web.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["reason"] == f"the database is at 0019, the code's head is {head}: run `flywheel db upgrade`"
    assert _verdicts(answer)["migrations"] is False
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert web.get("/readyz").status_code == 200


def test_a_slack_message_waiting_more_than_ten_minutes_is_not_ready(db):
    web = _web(db)
    _worker(db).beat(started_at=utcnow())
    with db.session() as s:
        row = outbox.enqueue(session=s, kind="post", channel="C0ML", payload={"text": "x"},
                             now=utcnow() - timedelta(minutes=9, seconds=50))
    answer = web.get("/readyz")
    assert answer.status_code == 200 and 590 <= answer.json()["outbox_oldest_pending_age_seconds"] < 600
    with db.session() as s:  # the same message, twenty seconds older: past the ten minutes
        s.get(OutboxMessage, row).created_at = utcnow() - timedelta(minutes=10, seconds=10)
    answer = web.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["reason"].startswith("the oldest of 1 Slack messages waiting has waited 610 s (more than "
                                              "600 s): the worker sends them")
    with db.session() as s:
        outbox.mark_sent(session=s, row_id=row, sent_ref="C0ML:1.0", now=utcnow())
    assert web.get("/readyz").status_code == 200


def test_a_heartbeat_older_than_two_minutes_is_not_ready(db):
    web = _web(db)
    with db.session() as s:
        heartbeat.beat(session=s, worker="host:1", started_at=utcnow() - timedelta(hours=1),
                       now=utcnow() - timedelta(minutes=2, seconds=5))
    answer = web.get("/readyz")
    assert answer.status_code == 503
    assert "heartbeat is 125 s old" in answer.json()["reason"] and "flywheel worker" in answer.json()["reason"]
    with db.session() as s:  # the worker comes back
        heartbeat.beat(session=s, worker="host:1", started_at=utcnow(), now=utcnow())
    assert web.get("/readyz").status_code == 200


def test_an_unreachable_database_is_not_ready_within_a_few_seconds(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a network cut between the app and its database: PostgreSQL (FLYWHEEL_TEST_DATABASE_URL)")
    _worker(db).beat(started_at=utcnow())
    upstream = make_url(db.url)
    with TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        proxied = Database(upstream.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        try:
            web = _web(proxied)
            assert web.get("/readyz").status_code == 200
            proxy.cut()
            started = time.monotonic()
            answer = web.get("/readyz")
            assert time.monotonic() - started < 4
            assert answer.status_code == 503
            assert answer.json()["reason"].startswith("the database is unreachable (OperationalError")
            assert web.get("/healthz").json() == {"status": "ok"}  # alive all the same: a restart would not help
            proxy.restore()
            assert web.get("/readyz").status_code == 200
        finally:
            proxied.dispose()
