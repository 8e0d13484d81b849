import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from store import audit
from store.models import AuditEvent, AuditHead


def _write(db, n):
    with db.session() as s:
        for i in range(n):
            audit.record(session=s, actor="U0ML0001", action="test.event", subject=f"thing:{i}",
                         details={"i": i, "note": "ünïcode"})


def test_an_untouched_chain_is_whole(db):
    _write(db, 5)
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.whole and report.events == 5
    assert report.problem == "the audit chain is whole: 5 events"


def test_an_empty_chain_is_whole(db):
    with db.session() as s:
        assert audit.verify(session=s).whole


def test_tampering_with_a_row_is_named(db):
    _write(db, 5)
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(details={"i": 99}))
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.broken_at == 3
    assert "audit event #3" in report.problem and "contents were changed" in report.problem


def test_rewriting_a_row_and_its_hash_breaks_the_next_link(db):
    _write(db, 4)
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(hash="f" * 64))
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.broken_at == 2  # its own hash no longer matches


def test_deleting_a_middle_row_is_named(db):
    _write(db, 5)
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.broken_at == 3 and "expected event #2" in report.problem


def test_deleting_the_latest_rows_is_named(db):
    _write(db, 5)
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq >= 4))
    with db.session() as s:
        report = audit.verify(session=s)
    assert not report.whole and "latest events were removed" in report.problem


def test_a_rolled_back_unit_leaves_no_event_and_no_gap(db):
    _write(db, 2)
    try:
        with db.session() as s:
            audit.record(session=s, actor="x", action="a", subject="s")
            raise RuntimeError
    except RuntimeError:
        pass
    _write(db, 1)
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.whole and report.events == 3


def test_events_of_one_unit_are_appended_in_order_and_linked(db):
    with db.session() as s:
        for action in ("first", "second", "third"):
            audit.record(session=s, actor="U0ML0001", action=action, subject="thing:1")
    with db.session() as s:
        events = s.query(AuditEvent).order_by(AuditEvent.seq).all()
        assert [(e.seq, e.action) for e in events] == [(1, "first"), (2, "second"), (3, "third")]
        assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
        assert audit.verify(session=s).whole


def test_the_head_remembers_the_latest_event_that_changed_something(db):
    """What `/flywheel status`'s cache checks: a command merely typed must not look like a change."""
    with db.session() as s:
        audit.record(session=s, actor="U1", action="alert.acknowledged", subject="model:m")
        audit.record(session=s, actor="U1", action="command", subject="slack:/flywheel", changes_status=False)
    with db.session() as s:
        head = s.get(AuditHead, 1)
        assert (head.seq, head.changed_seq) == (2, 1)
    with db.session() as s:
        audit.record(session=s, actor="U1", action="command", subject="slack:/flywheel", changes_status=False)
    with db.session() as s:
        head = s.get(AuditHead, 1)
        assert (head.seq, head.changed_seq) == (3, 1)


def test_concurrent_units_of_work_keep_one_unbroken_chain(db):
    def writer(n: int) -> None:
        for i in range(15):
            with db.session() as s:
                for j in range(1 + i % 3):
                    audit.record(session=s, actor=f"U{n}", action="test.event", subject=f"thing:{n}/{i}/{j}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.whole, report.problem
    assert report.events == 6 * sum(1 + i % 3 for i in range(15))


def test_a_long_unit_of_work_does_not_hold_up_other_writers(db):
    """The head is locked only while a unit commits: a unit that audits early and works on (a check
    cycle) lets a click's unit append and commit meanwhile. SQLite has one writer at a time anyway."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has a single writer: units of work queue whatever the audit log does")
    committed = threading.Event()

    def click() -> None:
        with db.session() as s:
            audit.record(session=s, actor="U2", action="alert.acknowledged", subject="alert:1")
        committed.set()

    with db.session() as s:
        audit.record(session=s, actor="flywheel", action="check.ran", subject="model:m")
        s.flush()
        t = threading.Thread(target=click)
        t.start()
        assert committed.wait(10), "the click's unit of work waited for the long one"
    t.join()
    with db.session() as s:
        events = s.query(AuditEvent).order_by(AuditEvent.seq).all()
        assert [e.action for e in events] == ["alert.acknowledged", "check.ran"]
        assert audit.verify(session=s).whole


WRITER = """
import sys
from store import audit
from store.db import Database
db = Database(sys.argv[1])
for i in range(int(sys.argv[3])):
    with db.session() as s:
        audit.record(session=s, actor=sys.argv[2], action="test.event", subject=f"thing:{i}")
db.dispose()
"""


def test_writers_in_several_processes_share_one_chain(db, tmp_path):
    """Web processes and the worker write the same registry; on SQLite they take turns on a file lock
    instead of failing with "database is locked" or sleeping in SQLite's busy handler."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = Path(__file__).resolve().parents[2]
    writers = [subprocess.Popen([sys.executable, str(script), db.url, f"U{n}", "60"], cwd=root,
                                env={**os.environ, "PYTHONPATH": str(root)}, stderr=subprocess.PIPE)
               for n in range(3)]
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    with db.session() as s:
        report = audit.verify(session=s)
    assert report.whole and report.events == 180, report.problem


def test_the_audit_hook_runs_on_flywheels_sessions_and_on_no_other_sqlalchemy_session(db, tmp_path):
    """Another library's (or a script's) sessions, on an engine of their own or on Flywheel's, commit
    without Flywheel's audit hook; Flywheel's own units of work still append and chain their events."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select
    from sqlalchemy.orm import Session, sessionmaker

    other = create_engine(f"sqlite:///{tmp_path / 'someone-else.db'}")  # no audit tables at all
    notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", String))
    notes.metadata.create_all(other)
    try:
        for session_factory in (lambda: Session(other), sessionmaker(other)):
            with session_factory() as s:
                s.execute(notes.insert().values(text="hello"))
                s.info["flywheel.audit"] = ["not Flywheel's"]  # what the hook would pick up, were it global
                s.commit()  # the hook would bump an audit head this database does not have
        with Session(other) as s:
            assert s.execute(select(func.count()).select_from(notes)).scalar() == 2
    finally:
        other.dispose()

    with Session(db.engine) as plain:  # a plain session on Flywheel's own engine: no hook, and no recording
        with pytest.raises(TypeError, match="unit of work of store.db.Database"):
            audit.record(session=plain, actor="U0ML0001", action="test.event", subject="thing:0")
        plain.info["flywheel.audit"] = [audit.Pending("U0", "test.event", "thing:0", {}, audit.utcnow())]
        plain.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=AuditHead.last_hash))
        plain.commit()
    with db.read() as s:
        assert s.get(AuditHead, 1).seq == 0  # nothing appended by the plain session's commit

    _write(db, 2)
    _write(db, 1)
    with db.read() as s:
        report = audit.verify(session=s)
        assert report.whole and report.events == 3
        events = s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == audit.GENESIS
        assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
