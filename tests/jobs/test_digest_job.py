"""The daily digest is a persistent job of the worker, at FLYWHEEL_DIGEST_HOUR UTC."""

from datetime import timedelta

from bot.app import build_worker
from bot.config import Settings
from jobs.monitor import check_model
from jobs.worker import DAILY_DIGEST_JOB, Worker, run_daily_digest
from store import status
from bot.services.specs import apply_spec
from store.models import ChannelDelivery, CheckKind
from jobs.spec import load_spec
from tests.support.projects import append_weeks, week, week_end, write_project


def test_the_daily_digest_job_fires_at_the_digest_hour_and_survives_resyncs(db, tmp_path):
    ran: list[int] = []
    worker = Worker(db=db, check=lambda *_: None, run_work=lambda _: None, daily_digest=lambda: ran.append(1),
                    digest_hour=7)
    worker.start_scheduler()
    try:
        job = worker.scheduler.get_job(DAILY_DIGEST_JOB)
        assert job.func is run_daily_digest
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 15 * 60)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("7", "0")
        first = job.next_run_time
        worker.sync_jobs()  # every minute: the job is kept, not rescheduled from now
        assert worker.scheduler.get_job(DAILY_DIGEST_JOB).next_run_time == first
        worker.digest_hour = 8
        worker.sync_jobs()
        assert str(worker.scheduler.get_job(DAILY_DIGEST_JOB).trigger.fields[5]) == "8"
        Worker._current = worker
        run_daily_digest()
        assert ran == [1]
    finally:
        Worker._current = None
        worker.scheduler.shutdown()


def test_the_worker_posts_each_digest_channels_daily_digest(db, tmp_path):
    with db.session() as s:
        apply_spec(session=s, loaded=load_spec(write_project(tmp_path)))
        status.set_channel(session=s, project_key="loans", persona="business", channel="C0BIZ", actor="U0ML0001",
                           delivery=ChannelDelivery.digest)
    settings = Settings(FLYWHEEL_DATABASE_URL=db.url, FLYWHEEL_DIGEST_HOUR=7, FLYWHEEL_OUTBOX=tmp_path / "outbox")
    worker, _ = build_worker(settings, db=db, clock=lambda: week_end(5) + timedelta(hours=7))
    assert worker.digest_hour == 7
    assert worker.daily_digest() == []  # a quiet day sends nothing
    # Week 5 misses most defaults: the missed-defaults KPI breaches, an alert for the business channel.
    append_weeks(tmp_path, [week(w) for w in range(5)] + [week(5, miss=0.8)])
    checked = check_model(db=db, model_key="default-risk", as_of=week_end(5), kinds={CheckKind.kpi},
                          now=week_end(5) + timedelta(hours=1))
    assert checked.results[0].alert_is_new
    (ref,) = worker.daily_digest()
    (folder,) = (tmp_path / "outbox" / "messages").iterdir()
    assert folder.name.endswith("business-daily_digest") and ref == "C0BIZ:001"
    assert worker.daily_digest() == []  # once per period
