"""Real `flywheel worker` processes killed with SIGKILL in the middle of a retrain.

On SQLite the killed worker is restarted; on PostgreSQL a second worker is already standing by and
takes over. Either way the retrain finishes once: one new version, one "ready for review" message.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import build_worker
from bot.config import Settings
from bot.services.common import Actor
from jobs import synthetic
from store import registry
from store.models import OutboxMessage, WorkItem, WorkState
from tests.support.backend_world import set_spec
from tests.support.slack_fake import FakeSlack
from tests.support.slack_world import ELI, MODEL, register_fraud_model, write_fraud_data
from tests.support.waiting import wait_until
from tests.support.workers import start_worker, stop, worker_output


@pytest.fixture(scope="module")
def live_data(tmp_path_factory):
    """The fraud story's weeks ending today: a worker process runs on the real clock."""
    today = datetime.utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    scenario = synthetic.Scenario(start=today - timedelta(weeks=7), weeks=6, rows_per_week=20_000,
                                  drift_from_week=5)
    folder = tmp_path_factory.mktemp("live-fraud")
    write_fraud_data(folder, scenario)
    return folder, scenario


def _niceness_of_threads(pid: int) -> list[int]:
    """Each thread's niceness, field 19 of /proc/PID/task/TID/stat (after the parenthesised name)."""
    return [int(stat.read_text().rpartition(")")[2].split()[16]) for stat in Path(f"/proc/{pid}/task").glob("*/stat")]


def _item(db) -> tuple[WorkState, str]:
    with db.read() as s:
        return s.execute(select(WorkItem.state, WorkItem.error)).one()


def test_a_retrain_killed_half_way_finishes_once(db, live_data, tmp_path):
    folder, scenario = live_data
    register_fraud_model(db, folder, scenario)
    set_spec(db, artifact_roots=[str(folder / "artifacts")])  # v1 was trained there; v2 goes to FLYWHEEL_ARTIFACTS
    postgres = db.engine.dialect.name == "postgresql"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with FakeSlack() as fake:
        env = {**os.environ, "FLYWHEEL_DATABASE_URL": db.url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
               "SLACK_BOT_TOKEN": fake.token, "FLYWHEEL_SLACK_API_URL": fake.api_url,
               "FLYWHEEL_OUTBOX": str(tmp_path / "outbox")}
        settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_ARTIFACTS=tmp_path / "artifacts",
                            SLACK_BOT_TOKEN=fake.token, FLYWHEEL_SLACK_API_URL=fake.api_url)
        _, web = build_worker(settings, db=db)  # the web side's operations: records the request only
        with db.read() as s:
            eli = registry.get_person(session=s, slack_id=ELI)
            s.expunge(eli)
        assert web.retraining.request_retrain(Actor(ELI, eli), MODEL, reason="drift").startswith("Retraining")

        first = start_worker(env, logs[0])
        standby = None
        try:
            wait_until(lambda: _item(db)[0] == WorkState.running, 120, "the worker to start the retrain",
                       detail=worker_output(logs))
            # The standby starts once the first worker holds the retrain: started together, either could lead.
            standby = start_worker(env, logs[1]) if postgres else None
            # Batch work yields the CPU to `flywheel serve`: every thread of the worker, training's too.
            assert set(_niceness_of_threads(first.pid)) == {max(10, os.nice(0))}
            time.sleep(0.5)  # well inside training, which takes seconds
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            assert _item(db)[0] == WorkState.running, "the retrain finished before the kill: nothing tested"
            second = standby or start_worker(env, logs[1])
            state, error = wait_until(lambda: (i := _item(db))[0] in (WorkState.done, WorkState.failed) and i, 300,
                                      "the retrain to finish after the kill", detail=worker_output(logs))
            assert state == WorkState.done, error
            wait_until(lambda: any(m.get("text", "").startswith(f"{MODEL} v2 is ready for review")
                                   for m in fake.messages.values()), 60, "the candidate message",
                       detail=worker_output(logs))
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
        finally:
            stop(first, standby)
        # No worker runs any more: what was to be posted twice is in the outbox, sent or not.
        with db.read() as s:
            model = registry.get_model(session=s, key=MODEL)
            assert [v.number for v in model.versions] == [1, 2]
            queued = [r.payload.get("text", "") for r in s.execute(select(OutboxMessage)).scalars()]
        assert len([t for t in queued if t.startswith(f"{MODEL} v2 is ready for review")]) == 1, queued
        ready = [m for m in fake.messages.values() if m.get("text", "").startswith(f"{MODEL} v2 is ready")]
        assert len(ready) == 1
        assert fake.invalid == []


SLOW_PRODUCTION = (
    'production: {url: "sqlite:///data/transactions.db", query: "WITH RECURSIVE spin(x) AS (SELECT 1 UNION ALL '
    'SELECT x + 1 FROM spin WHERE x < 3000000) SELECT t.* FROM scored_transactions t '
    'WHERE (SELECT max(x) FROM spin) > 0"}')


def _ticks(db) -> list[tuple[str, str, str, str]]:
    from store.models import CheckTick

    with db.read() as s:
        return [tuple(row) for row in s.execute(select(CheckTick.kind, CheckTick.tick, CheckTick.state,
                                                       CheckTick.worker).order_by(CheckTick.id))]


def test_a_check_cycle_killed_half_way_is_finished_once_by_the_next_worker(db, live_data, tmp_path):
    """Every minute's checks, reading a production source that takes a second or two; the worker is
    killed while a check runs. The next worker (restarted, or the PostgreSQL standby) runs that firing,
    and every firing is checked exactly once."""
    from bot.services.specs import apply_spec
    from store.models import CheckRun
    from jobs.spec import load_spec

    folder, scenario = live_data
    register_fraud_model(db, folder, scenario)
    spec = folder / "card-fraud-every-minute.yml"
    text = (folder / "card-fraud.yml").read_text()
    text = text.replace('production: {url: "sqlite:///data/transactions.db", table: scored_transactions}',
                        SLOW_PRODUCTION)
    text = text.replace('schedule: "0 * * * *"', 'schedule: "* * * * *"')
    assert SLOW_PRODUCTION in text and '"* * * * *"' in text
    spec.write_text(text)
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(spec))
    postgres = db.engine.dialect.name == "postgresql"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    env = {**os.environ, "FLYWHEEL_DATABASE_URL": db.url, "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts"),
           "FLYWHEEL_OUTBOX": str(tmp_path / "outbox")}
    env.pop("SLACK_BOT_TOKEN", None)
    first = start_worker(env, logs[0])
    standby = second = None
    try:
        running = wait_until(lambda: [t for t in _ticks(db) if t[2] == "running"], 150,
                             "a scheduled check to start", detail=worker_output(logs))
        # The standby starts once the first worker leads: started together, either could lead.
        standby = start_worker(env, logs[1]) if postgres else None
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed = {(kind, tick) for kind, tick, state, _ in _ticks(db) if state == "running"}
        assert killed, f"every check finished before the kill: nothing tested ({running})"
        assert all(worker.endswith(f":{first.pid}") for *_, worker in running)
        second = standby or start_worker(env, logs[1])
        wait_until(lambda: all(state != "running" for kind, tick, state, _ in _ticks(db) if (kind, tick) in killed),
                   180, "the next worker to finish the interrupted checks", detail=worker_output(logs))
        finished = {(kind, tick): (state, worker) for kind, tick, state, worker in _ticks(db)}
        for key in killed:
            assert finished[key][0] == "done" and not finished[key][1].endswith(f":{first.pid}"), finished[key]
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=120) == 0
    finally:
        stop(first, standby, second)
    with db.read() as s:
        runs = {}
        for kind, in s.execute(select(CheckRun.kind)):
            runs[kind.value] = runs.get(kind.value, 0) + 1
    done = {}
    for kind, _, state, _ in _ticks(db):
        if state == "done":
            done[kind] = done.get(kind, 0) + 1
    assert runs == done  # one check run per finished firing: none lost, none doubled
