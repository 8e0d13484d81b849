"""Database.submit: short units of work from many threads, committed together (group commit)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from store import audit
from store.errors import InvalidTransition
from store.models import AuditEvent, AuditHead


def _event(s, n: int) -> int:
    audit.record(session=s, actor=f"U{n}", action="test.event", subject=f"thing:{n}")
    return n


def _actors(db) -> set[str]:
    with db.read() as s:
        return set(s.execute(select(AuditEvent.actor)).scalars())


def _held_open(db):
    """A first unit that keeps the shared writer busy until released, so the next ones queue up."""
    started, release = threading.Event(), threading.Event()

    def slow(s):
        started.set()
        release.wait(10)
        return _event(s, 0)
    return slow, started, release


def test_units_queued_meanwhile_commit_together_and_each_caller_gets_its_own_result(db):
    slow, started, release = _held_open(db)
    first = db.submit(slow)
    assert started.wait(10)
    commits = db.commits
    with ThreadPoolExecutor(20) as pool:  # twenty threads queue a unit each behind the slow one
        rest = list(pool.map(lambda n: db.submit(lambda s: _event(s, n)), range(1, 21)))
    release.set()
    assert first.result(10) == 0
    assert [f.result(10) for f in rest] == list(range(1, 21))
    assert db.commits - commits <= 2  # the slow unit's commit, then one for the twenty queued behind it
    assert _actors(db) == {f"U{n}" for n in range(21)}
    with db.read() as s:
        assert audit.verify(session=s).whole


def test_a_unit_that_raises_is_taken_out_and_the_others_still_commit(db):
    slow, started, release = _held_open(db)

    def refused(s):
        _event(s, 99)  # written, then refused: must not survive
        raise InvalidTransition("This alert is already resolved.")

    first = db.submit(slow)
    assert started.wait(10)
    before = db.submit(lambda s: _event(s, 1))
    bad = db.submit(refused)
    after = db.submit(lambda s: _event(s, 2))
    release.set()
    assert (first.result(10), before.result(10), after.result(10)) == (0, 1, 2)
    with pytest.raises(InvalidTransition, match="already resolved"):
        bad.result(10)
    assert _actors(db) == {"U0", "U1", "U2"}


def test_when_the_shared_commit_fails_every_caller_hears_it_and_nothing_is_written(db):
    slow, started, release = _held_open(db)

    def breaks_the_commit(s):
        s.add(AuditHead(id=2, seq=0, changed_seq=0, last_hash=None))  # NOT NULL: refused when flushed
        return "fine until the commit"

    first = db.submit(slow)
    assert started.wait(10)
    good = db.submit(lambda s: _event(s, 1))
    bad = db.submit(breaks_the_commit)
    release.set()
    assert first.result(10) == 0
    for future in (good, bad):
        with pytest.raises(Exception, match="(?i)not[ -]null"):
            future.result(10)
    assert _actors(db) == {"U0"}
    with db.read() as s:
        assert audit.verify(session=s).whole


def test_drain_returns_once_every_unit_is_settled_refused_ones_included(db):
    def refused(s):
        raise InvalidTransition("no")

    futures = [db.submit(refused), db.submit(lambda s: _event(s, 1)), db.submit(refused)]
    assert db.drain_submitted(timeout=10)
    assert all(f.done() for f in futures)
    assert futures[1].result() == 1 and _actors(db) == {"U1"}
