"""Batched audit events (commands typed in Slack) and many writers at once on one database."""

import threading

import pytest

from sqlalchemy import func, select

from store import audit
from store.models import AuditEvent


def _events(db, action):
    with db.read() as s:
        return list(s.execute(select(AuditEvent.actor, AuditEvent.subject).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq)))


def test_queued_events_are_all_written_in_order_and_the_chain_stays_whole(db):
    queue = audit.AuditQueue(db, batch=7)  # small batches: several transactions for one burst
    for i in range(40):
        queue.put(actor="U0ML0001", action="command", subject=f"slack:/flywheel#{i}", details={"text": f"status {i}"})
    assert queue.drain(timeout=30)
    assert [subject for _, subject in _events(db, "command")] == [f"slack:/flywheel#{i}" for i in range(40)]
    with db.read() as s:
        assert audit.verify(session=s).whole


def test_queued_events_from_many_threads_interleave_with_direct_writes_without_forking_the_chain(db):
    queue = audit.AuditQueue(db)

    def typing(who):
        for i in range(25):
            queue.put(actor=who, action="command", subject=f"slack:/flywheel#{i}")

    def clicking(who):
        for i in range(10):
            with db.session() as s:
                audit.record(session=s, actor=who, action="alert.acknowledged", subject=f"alert:{i}")

    threads = [threading.Thread(target=typing, args=(f"U0TYPE0{n}",)) for n in range(4)] + \
              [threading.Thread(target=clicking, args=(f"U0CLIK0{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert queue.drain(timeout=60)
    assert len(_events(db, "command")) == 100 and len(_events(db, "alert.acknowledged")) == 40
    with db.read() as s:
        report = audit.verify(session=s)
        assert report.whole and report.events == 140
        assert s.execute(select(func.count(func.distinct(AuditEvent.seq)))).scalar() == 140


def test_a_batch_the_database_refuses_is_logged_and_the_next_one_still_goes_in(db, caplog):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores an over-long actor; PostgreSQL refuses it, which is the failure wanted here")
    queue = audit.AuditQueue(db)
    queue.put(actor="U" * 5000, action="command", subject="slack:/flywheel")
    assert queue.drain(timeout=30)
    queue.put(actor="U0ML0001", action="command", subject="slack:/flywheel")
    assert queue.drain(timeout=30)
    assert _events(db, "command") == [("U0ML0001", "slack:/flywheel")]
    assert "could not write 1 audit event(s): command by UUU" in caplog.text
    with db.read() as s:
        assert audit.verify(session=s).whole
