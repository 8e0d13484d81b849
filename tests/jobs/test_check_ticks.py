"""Each scheduled firing of a check runs once: across workers, across a crash, across a restart."""

import threading
import time
from datetime import timedelta, timezone

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import select, update

from jobs.worker import JOB_TABLE, Worker, latest_tick
from store import ticks
from bot.services.specs import apply_spec
from store.clock import utcnow
from store.db import Database, unreachable
from store.models import CheckKind, CheckTick
from jobs.spec import load_spec
from tests.support.projects import write_project
from tests.support.waiting import wait_until


@pytest.fixture
def registered(db, tmp_path):
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(write_project(tmp_path)))
    return db


def _worker(db, calls, name, delay=0.0):
    def check(model_key, kind):
        calls.append((name, model_key, kind))
        time.sleep(delay)

    return Worker(db=db, check=check, run_work=lambda _: None, name=name)


def _ticks(db):
    with db.read() as s:
        return [(t.model_key, t.kind, t.state, t.worker) for t in s.execute(select(CheckTick).order_by(CheckTick.id))
                .scalars()]


def test_two_workers_firing_the_same_tick_run_the_check_once(registered):
    calls = []
    other = Database(registered.url)  # the second worker's own engine, as in another process
    try:
        first, second = _worker(registered, calls, "host-a:1", delay=0.3), _worker(other, calls, "host-b:2")
        results = []
        threads = [threading.Thread(target=lambda w=w: results.append(w.fire("default-risk", CheckKind.drift,
                                                                              "0 * * * *")))
                   for w in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.dispose()
    assert sorted(results) == [False, True]
    assert len(calls) == 1
    assert [(m, k, s) for m, k, s, _ in _ticks(registered)] == [("default-risk", "drift", "done")]


def test_the_next_firing_runs_again_and_other_kinds_are_separate(registered):
    calls = []
    worker = _worker(registered, calls, "host-a:1")
    assert worker.fire("default-risk", CheckKind.drift, "0 * * * *")
    assert not worker.fire("default-risk", CheckKind.drift, "0 * * * *")  # same hour: already ran
    assert worker.fire("default-risk", CheckKind.kpi, "0 * * * *")
    assert [k for _, _, k in calls] == [CheckKind.drift, CheckKind.kpi]
    with registered.session() as s:  # an hour later the drift check's next firing is its own
        s.execute(update(CheckTick).values(tick=CheckTick.tick - timedelta(hours=1)))
    assert worker.fire("default-risk", CheckKind.drift, "0 * * * *")
    assert [k for _, _, k in calls] == [CheckKind.drift, CheckKind.kpi, CheckKind.drift]


def test_a_check_a_dead_worker_left_running_is_run_again_once_by_the_next_leader(registered):
    tick = latest_tick("0 * * * *", utcnow())
    with registered.session() as s:
        ticks.claim(session=s, model_key="default-risk", kind="drift", tick=tick, worker="host-dead:99")
    calls = []
    successor = _worker(registered, calls, "host-a:1")
    assert successor.resume_interrupted_checks() == 1
    assert calls == [("host-a:1", "default-risk", CheckKind.drift)]
    assert _ticks(registered) == [("default-risk", "drift", "done", "host-a:1")]
    assert successor.resume_interrupted_checks() == 0  # nothing left: it is not run a third time
    assert not successor.fire("default-risk", CheckKind.drift, "0 * * * *")  # and the firing is not repeated
    assert len(calls) == 1


def test_a_failing_check_is_recorded_as_failed_and_not_retried_as_interrupted(registered):
    def check(model_key, kind):
        raise RuntimeError("source unreachable")

    worker = Worker(db=registered, check=check, run_work=lambda _: None, name="host-a:1")
    with pytest.raises(RuntimeError):
        worker.fire("default-risk", CheckKind.drift, "0 * * * *")
    with registered.read() as s:
        row = s.execute(select(CheckTick)).scalar_one()
        assert (row.state, row.error) == ("failed", "RuntimeError: source unreachable")
    assert Worker(db=registered, check=check, run_work=lambda _: None, name="host-b:2") \
        .resume_interrupted_checks() == 0


def test_old_finished_ticks_are_pruned_but_running_ones_kept(registered):
    long_ago = utcnow() - timedelta(days=30)
    with registered.session() as s:
        done = ticks.claim(session=s, model_key="default-risk", kind="drift", tick=long_ago, worker="w:1")
        ticks.finish(session=s, tick_id=done.id)
        ticks.claim(session=s, model_key="default-risk", kind="data_quality", tick=long_ago, worker="w:1")
        assert ticks.prune(session=s, older_than=timedelta(days=7)) == 1
    assert [(k, s) for _, k, s, _ in _ticks(registered)] == [("data_quality", "running")]


def test_a_firing_missed_while_no_worker_ran_is_caught_up_after_a_restart(registered):
    calls = []
    first = _worker(registered, calls, "host-a:1")
    first.start_scheduler()
    job_id = "check:default-risk:drift"
    first.scheduler.shutdown()
    # While no worker ran, a firing came and went (five minutes ago, within the misfire grace).
    store = SQLAlchemyJobStore(engine=registered.engine, tablename=JOB_TABLE)
    store.start(None, "default")
    job = store.lookup_job(job_id)
    job.next_run_time = (utcnow() - timedelta(minutes=5)).replace(tzinfo=timezone.utc)
    store.update_job(job)

    second = _worker(registered, calls, "host-b:2")
    Worker._current = second
    second.start_scheduler()  # re-syncing the unchanged schedule must keep the missed firing
    try:
        wait_until(lambda: calls, 30, "the missed firing to run")
    finally:
        second.scheduler.shutdown()
        Worker._current = None
    assert ("host-b:2", "default-risk", CheckKind.drift) in calls


def _one_pass(worker, raised):
    try:
        worker.retry_interrupted()
    except Exception as exc:  # noqa: BLE001 - handed to the test
        raised.append(exc)


def test_a_firing_the_database_missed_waits_for_the_next_pass_instead_of_retrying_at_once():
    """A firing that could not claim its tick is retried on the worker's next pass, once a pass: a retry that
    finds the database still away stays queued, rather than queueing itself again and spinning."""
    away = Database("postgresql+psycopg://postgres@127.0.0.1:1/flywheel?connect_timeout=2")  # nothing listens
    attempts = []
    worker = Worker(db=away, check=lambda *_: attempts.append("check"), run_work=lambda _: None, name="alone")
    try:
        assert not worker.fire("default-risk", CheckKind.drift, "0 * * * *")
        assert worker.outage.down
        for _ in range(3):
            raised = []
            thread = threading.Thread(target=_one_pass, args=(worker, raised))
            thread.start()
            thread.join(timeout=20)
            spinning = thread.is_alive()
            worker.stop_event.set() if spinning else None
            thread.join()
            assert not spinning, "the retry queued itself again and the pass never ended"
            assert len(raised) == 1 and unreachable(raised[0]), raised
            assert len(worker._after_outage) == 1  # the same retry, kept for the next pass
        assert attempts == []
    finally:
        away.dispose()
