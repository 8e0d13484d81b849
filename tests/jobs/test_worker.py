import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from jobs.worker import (
    AUTOGROUP,
    JOB_TABLE,
    PostgresLeadership,
    SqliteLeadership,
    Worker,
    WorkerRefused,
    leadership_for,
    plan,
    session_nice,
)
from store import registry, work
from bot.services.specs import apply_spec
from store.db import Database
from store.models import CheckKind, WorkItem, WorkState
from jobs.spec import load_spec
from tests.conftest import PG_URL
from tests.support.projects import write_project
from tests.support.waiting import wait_until


@pytest.fixture
def registered(db, tmp_path):
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(write_project(tmp_path)))
    return db


def test_one_job_per_model_and_check_kind_on_the_spec_schedule(registered):
    jobs = plan(registered)
    assert sorted(j.id for j in jobs) == sorted(f"check:default-risk:{k.value}" for k in CheckKind)
    assert {j.cron for j in jobs} == {"0 * * * *"}


def test_schedules_persist_in_the_registry_database(registered):
    worker = Worker(db=registered, check=lambda *_: None, run_work=lambda _: None)
    worker.start_scheduler()
    try:
        ids = sorted(j.id for j in worker.scheduler.get_jobs())
        assert ids == sorted(f"check:default-risk:{k.value}" for k in CheckKind)
        job = worker.scheduler.get_job("check:default-risk:drift")
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 15 * 60)
        assert worker.sync_jobs() == ids  # re-syncing replaces, never duplicates
        assert len(worker.scheduler.get_jobs()) == len(ids)
    finally:
        worker.scheduler.shutdown()
    assert JOB_TABLE in inspect(registered.engine).get_table_names()


def test_a_schedule_on_a_day_of_month_or_a_weekday_is_stored_and_fires_on_either(db, tmp_path):
    spec = write_project(tmp_path)
    spec.write_text(spec.read_text().replace("    owner: U0ML0001\n", '    owner: U0ML0001\n    schedule: "0 9 1 * mon"\n', 1))
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(spec))
    worker = Worker(db=db, check=lambda *_: None, run_work=lambda _: None)
    worker.start_scheduler()
    try:
        job = worker.scheduler.get_job("check:default-risk:drift")
        after_thursday = datetime(2026, 11, 26, 23, tzinfo=timezone.utc)
        first = job.trigger.get_next_fire_time(None, after_thursday)
        assert first == datetime(2026, 11, 30, 9, tzinfo=timezone.utc)  # a Monday
        assert job.trigger.get_next_fire_time(first, first + timedelta(seconds=1)) == \
            datetime(2026, 12, 1, 9, tzinfo=timezone.utc)  # the 1st, a Tuesday
        assert worker.sync_jobs() and len(worker.scheduler.get_jobs()) == len(CheckKind)
    finally:
        worker.scheduler.shutdown()


def test_work_a_dead_worker_left_running_is_resumed_once(registered):
    with registered.session() as s:
        model = registry.get_model(session=s, key="default-risk")
        item, _ = work.request(session=s, model=model, kind="retrain", requested_by="U0ML0001", payload={})
        work.claim(session=s, item_id=item.id)  # a worker took it, then was killed
    ran: list[int] = []

    def run_work(item_id: int) -> None:
        with registered.session() as s:
            if work.claim(session=s, item_id=item_id) is not None:
                ran.append(item_id)
                work.finish(session=s, item_id=item_id, result={})

    worker = Worker(db=registered, check=lambda *_: None, run_work=run_work, poll_seconds=0.05)
    assert worker.resume_interrupted_work() == 1
    worker.drain_work()
    worker.drain_work()
    assert ran == [item.id]
    with registered.session() as s:
        assert s.get(WorkItem, item.id).state == WorkState.done


def test_two_claims_of_one_item_run_it_once(registered):
    with registered.session() as s:
        model = registry.get_model(session=s, key="default-risk")
        item, _ = work.request(session=s, model=model, kind="retrain", requested_by="U0ML0001", payload={})
    winners = []

    def claim() -> None:
        with registered.session() as s:
            if work.claim(session=s, item_id=item.id) is not None:
                winners.append(threading.get_ident())

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_a_second_worker_on_one_sqlite_file_is_refused(tmp_path):
    first, second = SqliteLeadership(tmp_path / "flywheel.db"), SqliteLeadership(tmp_path / "flywheel.db")
    assert first.acquire(block=False)
    with pytest.raises(WorkerRefused, match="one worker per database file"):
        second.acquire(block=False)
    first.release()
    assert second.acquire(block=False)
    second.release()


def _statements_since(db, since) -> int:
    """Statements other connections to this test's PostgreSQL database finished after `since`."""
    with db.engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'idle' AND query_start > :since"), {"since": since}).scalar()


@pytest.mark.skipif(not PG_URL, reason="needs FLYWHEEL_TEST_DATABASE_URL (PostgreSQL)")
def test_a_standby_takes_over_when_the_leader_dies(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    leader, standby = PostgresLeadership(db), PostgresLeadership(Database(db.url))
    assert isinstance(leadership_for(db), PostgresLeadership)
    assert leader.acquire(block=False)
    assert not standby.acquire(block=False)
    took_over = threading.Event()
    waiting = threading.Thread(target=lambda: standby.acquire(block=True) and took_over.set(), daemon=True)
    with db.engine.connect() as connection:
        started = connection.execute(text("SELECT clock_timestamp()")).scalar()
    waiting.start()
    # Its blocking loop has tried the lock (a statement on another connection since `started`) and polls on.
    wait_until(lambda: _statements_since(db, started), 30, "the standby to try for the lock")
    assert not took_over.is_set()
    leader.release()  # the leader's connection dies
    assert took_over.wait(timeout=30)
    standby.release()


@pytest.mark.skipif(not PG_URL, reason="needs FLYWHEEL_TEST_DATABASE_URL (PostgreSQL)")
def test_a_killed_leader_hands_over_to_the_standby(db):
    import signal
    import subprocess

    if db.engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    script = ("import sys, time; from store.db import Database; from jobs.worker import PostgresLeadership; "
              "assert PostgresLeadership(Database(sys.argv[1])).acquire(block=False); print('leading', flush=True); "
              "time.sleep(600)")
    leader = subprocess.Popen([sys.executable, "-c", script, db.url], stdout=subprocess.PIPE, text=True)
    try:
        assert leader.stdout.readline().strip() == "leading"
        standby = PostgresLeadership(db)
        assert not standby.acquire(block=False)
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        started = time.monotonic()
        assert standby.acquire(block=True)
        assert time.monotonic() - started < 60
        standby.release()
    finally:
        if leader.poll() is None:
            leader.kill()


def test_no_job_for_a_check_the_spec_does_not_ask_for(db, tmp_path):
    """A model without labels or a performance line has no performance check, one without KPIs no KPI
    check: firing them would claim a tick and read the spec to record nothing."""
    spec = load_spec(write_project(tmp_path))
    spec.spec.models[0].kpis = []
    spec.spec.models[0].performance = None
    with db.session() as s:
        apply_spec(session=s, loaded=spec)
    assert sorted(j.kind for j in plan(db)) == sorted([CheckKind.drift, CheckKind.data_quality])


def test_lower_priority_lowers_every_thread_and_never_raises_it_back():
    """In a child process (an unprivileged process cannot take its niceness back, so pytest stays as it is),
    with a thread already running, as numpy's and pyarrow's pools are when the worker starts."""
    import subprocess

    script = ("import os, threading; from jobs.worker import lower_priority as p; done = threading.Event(); "
              "pool = threading.Thread(target=done.wait); pool.start(); "
              "print(p(5), p(3), os.getpriority(os.PRIO_PROCESS, pool.native_id), p(7)); done.set()")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    start = os.nice(0)  # the child starts where pytest is (0 unless run niced)
    assert out.stdout.split() == [str(max(start, n)) for n in (5, 5, 5, 7)]


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="the kernel has no autogroup scheduling")
def test_a_worker_leading_its_own_session_lowers_the_session_and_otherwise_leaves_it():
    """Autogroup shares the CPU evenly between sessions before niceness counts: a worker started as a service
    (its own session) would otherwise take as much as `flywheel serve` in another. pytest's own session may
    be init's, which the kernel does not schedule as an autogroup (CI's is): session_nice() is None there."""
    import subprocess

    script = "from jobs.worker import lower_priority, session_nice; lower_priority(6); print(session_nice())"
    root = Path(__file__).resolve().parents[2]
    own = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root,
                         start_new_session=True)
    shared = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    assert own.stdout.strip() == "6"  # a new session's autogroup starts at 0
    assert shared.stdout.strip() == str(session_nice())  # pytest's own session: untouched


