from sqlalchemy import delete, update

from store import audit
from store.models import AuditEvent


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
