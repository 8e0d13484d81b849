"""The worker's loops: lead, fire each scheduled check once per firing, drain queued work, beat a heartbeat
and send the Slack outbox, each riding out a database outage."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update
from structlog.contextvars import bound_contextvars

from jobs import metrics_registry as metrics
from jobs.schedule import cron_trigger
from jobs.worker.leadership import Leadership, WorkerRefused
from jobs.worker.outage import OUTAGE_RETRY_SECONDS, Outage, OutageTolerantJobStore
from jobs.worker.schedules import (
    DAILY_DIGEST_JOB,
    JOB_TABLE,
    MISFIRE_GRACE_SECONDS,
    SYNC_JOB_PREFIX,
    latest_tick,
    plan,
    plan_syncs,
)
from store import heartbeat, ticks, work
from store.clock import utcnow
from store.db import Database, unreachable
from store.models import CheckKind, Model, WorkItem, WorkState

log = logging.getLogger("flywheel.worker")

TICKS_KEPT = timedelta(days=7)
OUTBOX_POLL_SECONDS = 0.5  # how soon a queued message (a click's update, an alert) leaves for Slack
HEARTBEAT_SECONDS = 10.0  # the leader's heartbeat (read by /readyz) and its check that it still leads
# APScheduler's job store names each job's function by its import path. These are the paths schedules were
# stored under before the worker became a package; jobs/worker/__init__.py keeps them importable.
SCHEDULED_CHECK = "jobs.worker:run_scheduled_check"
DAILY_DIGEST = "jobs.worker:run_daily_digest"
REGISTRY_SYNC = "jobs.worker:run_registry_sync"


def run_scheduled_check(model_key: str, kind: str, cron: str = "0 * * * *") -> None:
    """The job APScheduler calls; module level so the persistent job store can name it."""
    Worker.current().fire(model_key, CheckKind(kind), cron)


def run_daily_digest() -> None:
    """The daily digest of business channels subscribed with `digest` (bot/notifier digests)."""
    worker = Worker.current()
    if worker.daily_digest is not None:
        worker.daily_digest()


def _log_context(item_id: int, kind: str, request_id: str | None, model_key: str, payload: dict) -> dict:
    """What a work item's log lines carry: the item, its model and version (a deploy's, a rollback's target),
    and the request that asked for it."""
    version = payload.get("version", payload.get("to")) if isinstance(payload, dict) else None
    return {"work_item": item_id, "work": kind, "model": model_key,
            **({"version": version} if isinstance(version, int) else {}),
            **({"request_id": request_id} if request_id else {})}


def run_registry_sync(model_key: str) -> None:
    """Read the new versions of a model kept in MLflow too (bot.services.mlflow_sync)."""
    worker = Worker.current()
    if worker.sync_registry is not None:
        worker.sync_registry(model_key)


@dataclass
class Worker:
    db: Database
    check: Callable[[str, CheckKind], None]  # runs one check and delivers its alerts
    run_work: Callable[[int], None]  # executes one queued work item
    poll_seconds: float = 2.0
    send_outbox: Callable[[], int] | None = None  # delivers queued Slack messages, when Slack is configured
    sweep: Callable[[], object] | None = None  # once a minute: fails work whose external trainer went quiet
    daily_digest: Callable[[], object] | None = None  # posts the business channels' daily digests
    digest_hour: int = 9  # UTC
    sync_registry: Callable[[str], object] | None = None  # reads a model's new versions from MLflow
    stop_event: threading.Event = field(default_factory=threading.Event)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    scheduler: BackgroundScheduler | None = None
    outage: Outage = field(default_factory=Outage)
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    lost_lead: bool = False  # another worker took the lead while this one had lost the database
    _after_outage: list[Callable[[], object]] = field(default_factory=list)  # what an outage interrupted
    _after_outage_lock: threading.Lock = field(default_factory=threading.Lock)

    _current = None

    @classmethod
    def current(cls) -> Worker:
        if cls._current is None:
            raise RuntimeError("no worker is running in this process")
        return cls._current

    def sync_jobs(self) -> list[str]:
        planned = {job.id: job for job in plan(self.db)}
        for job in planned.values():
            trigger = cron_trigger(job.cron)
            args = [job.model_key, job.kind.value, job.cron]
            existing = self.scheduler.get_job(job.id)
            # Only new or changed schedules are (re)added: adding reschedules from now, which would drop
            # the firing a worker that was down has yet to catch up on (misfire grace).
            if existing is not None and str(existing.trigger) == str(trigger) and list(existing.args) == args:
                continue
            self.scheduler.add_job(SCHEDULED_CHECK, trigger, id=job.id, name=job.id, args=args,
                                   replace_existing=True, coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_GRACE_SECONDS)
        for existing in self.scheduler.get_jobs():
            if existing.id.startswith("check:") and existing.id not in planned:
                existing.remove()
        self._sync_registry_jobs()
        if self.daily_digest is not None:
            trigger = CronTrigger(hour=self.digest_hour, minute=0, timezone="UTC")
            existing = self.scheduler.get_job(DAILY_DIGEST_JOB)
            # Replaced only when the hour changed: replacing reschedules from now, and a worker back
            # up at 09:05 must still send the 09:00 digest it missed (misfire grace).
            if existing is None or str(existing.trigger) != str(trigger):
                self.scheduler.add_job(DAILY_DIGEST, trigger, id=DAILY_DIGEST_JOB, name=DAILY_DIGEST_JOB,
                                       replace_existing=True, coalesce=True, max_instances=1,
                                       misfire_grace_time=MISFIRE_GRACE_SECONDS)
        elif self.scheduler.get_job(DAILY_DIGEST_JOB) is not None:
            self.scheduler.remove_job(DAILY_DIGEST_JOB)
        return sorted(planned)

    def _sync_registry_jobs(self) -> None:
        planned = {job.id: job for job in plan_syncs(self.db)} if self.sync_registry is not None else {}
        for job in planned.values():
            trigger, existing = cron_trigger(job.cron), self.scheduler.get_job(job.id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            self.scheduler.add_job(REGISTRY_SYNC, trigger, id=job.id, name=job.id, args=[job.model_key],
                                   replace_existing=True, coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_GRACE_SECONDS)
        for existing in self.scheduler.get_jobs():
            if existing.id.startswith(SYNC_JOB_PREFIX) and existing.id not in planned:
                existing.remove()

    def fire(self, model_key: str, kind: CheckKind, cron: str, tick: datetime | None = None, *,
             retry_later: bool = True) -> bool:
        """Run one scheduled check once per firing; False when this firing already ran or is running, or
        the database is away (the firing then runs once it is back; `retry_later=False`, as the retry
        itself, raises instead, so the retry is kept for the next pass rather than queued again at once)."""
        tick = tick or latest_tick(cron, utcnow())
        try:
            with self.db.session() as s:
                claimed = ticks.claim(session=s, model_key=model_key, kind=kind.value, tick=tick, worker=self.name)
        except Exception as exc:
            if not unreachable(exc) or not retry_later:
                raise
            self.outage.failed(f"the {kind.value} check of {model_key}", exc)
            self.after_outage(lambda: self.fire(model_key, kind, cron, tick, retry_later=False))
            return False
        if claimed is None:
            log.info("check %s:%s of %s already ran", model_key, kind.value, tick)
            return False
        try:
            self._run_tick(claimed)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed(f"the {kind.value} check of {model_key}", exc)
            self.after_outage(lambda: self._run_tick(claimed))  # claimed by this worker: run it again, once
            return False
        return True

    def after_outage(self, retry: Callable[[], object]) -> None:
        """Run `retry` on the main loop once the database answers again."""
        with self._after_outage_lock:
            self._after_outage.append(retry)

    def retry_interrupted(self) -> int:
        """Run what an outage interrupted; stops (keeping the rest) at the first that finds it still away."""
        done = 0
        while not self.stop_event.is_set():
            with self._after_outage_lock:
                if not self._after_outage:
                    return done
                retry = self._after_outage.pop(0)
            try:
                retry()
            except Exception as exc:
                if unreachable(exc):
                    with self._after_outage_lock:
                        self._after_outage.insert(0, retry)
                raise
            done += 1
        return done

    def _run_tick(self, tick: ticks.Tick) -> None:
        error = ""
        with bound_contextvars(model=tick.model_key, check=tick.kind, check_tick=tick.id):
            log.info("running the %s check of %s", tick.kind, tick.model_key)
            try:
                self.check(tick.model_key, CheckKind(tick.kind))
            except Exception as exc:  # reported by `check` to the model's channel; recorded here for the record
                error = f"{exc.__class__.__name__}: {exc}"
                raise
            finally:
                with self.db.session() as s:
                    ticks.finish(session=s, tick_id=tick.id, error=error)

    def resume_interrupted_checks(self) -> int:
        """Checks a dead worker left half-done run again, once, before new firings."""
        with self.db.session() as s:
            left = ticks.left_running(session=s, worker=self.name)
            ticks.prune(session=s, older_than=TICKS_KEPT)
        for tick in left:
            if self.stop_event.is_set():
                break
            log.warning("re-running the %s check of %s (firing %s) a previous worker left unfinished",
                        tick.kind, tick.model_key, tick.tick)
            try:
                self._run_tick(tick)
            except Exception:
                log.exception("re-running the %s check of %s failed", tick.kind, tick.model_key)
        return len(left)

    def resume_interrupted_work(self) -> int:
        """Work a dead worker left running goes back to the queue; it runs again, once."""
        with self.db.session() as s:
            return s.execute(update(WorkItem).where(WorkItem.state == WorkState.running)
                             .values(state=WorkState.queued, started_at=None)).rowcount

    def queued_work(self) -> list[tuple[int, dict[str, object]]]:
        """Queued items in order, each with the log context it runs in: the request that asked for it too."""
        with self.db.session() as s:
            rows = s.execute(select(WorkItem.id, WorkItem.kind, WorkItem.request_id, Model.key, WorkItem.payload)
                             .join(Model, Model.id == WorkItem.model_id)
                             .where(WorkItem.state == WorkState.queued).order_by(WorkItem.id)).all()
        return [(item_id, _log_context(item_id, kind, request_id, model_key, payload))
                for item_id, kind, request_id, model_key, payload in rows]

    def drain_work(self) -> int:
        done = 0
        for item_id, context in self.queued_work():
            if self.stop_event.is_set():
                break
            with bound_contextvars(**context):
                log.info("running %s work item %s", context["work"], item_id)
                try:
                    self.run_work(item_id)
                except Exception as exc:
                    if unreachable(exc):  # left running: back to the queue once the database is back
                        self.after_outage(lambda item_id=item_id: self._requeue(item_id))
                    raise
                log.info("%s work item %s is done", context["work"], item_id)
            done += 1
        return done

    def _requeue(self, item_id: int) -> None:
        with self.db.session() as s:
            if work.interrupted(session=s, item_id=item_id):
                log.warning("work item %s, interrupted by the database outage, is queued again", item_id)

    def beat(self, started_at: datetime) -> None:
        with self.db.session(changes_status=False) as s:
            heartbeat.beat(session=s, worker=self.name, started_at=started_at, now=utcnow())
        metrics.HEARTBEAT.set_to_current_time()

    def start_scheduler(self) -> None:
        store = OutageTolerantJobStore(self.outage, engine=self.db.engine, tablename=JOB_TABLE)
        self.scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
        self.scheduler.start(paused=True)
        self.sync_jobs()
        self.scheduler.resume()

    def run(self, leadership: Leadership, *, block: bool = True) -> None:
        """Lead (or stand by until leading), then schedule checks and drain work until stopped. A database
        outage is waited out; losing the lead to another worker meanwhile stops this one (WorkerRefused)."""
        log.info("waiting to lead" if block else "trying to lead")
        if not leadership.acquire(block):
            raise WorkerRefused("another worker leads this database")
        Worker._current = self
        metrics.LEADER.set(1)
        threads = [threading.Thread(target=self._beat_until_stopped, args=(leadership,), name="heartbeat",
                                    daemon=True)]
        if self.send_outbox is not None:
            # Its own thread: a retrain or a long check cycle must not hold up alerts and click updates.
            threads.append(threading.Thread(target=self._send_outbox_until_stopped, name="outbox", daemon=True))
        try:
            for thread in threads:
                thread.start()
            resumed = self.resume_interrupted_work()
            if resumed:
                log.warning("resuming %d piece(s) of work a previous worker left unfinished", resumed)
            self.start_scheduler()
            self.resume_interrupted_checks()
            passes = 0
            while not self.stop_event.is_set():
                try:
                    self.retry_interrupted()
                    self.drain_work()
                    passes += 1
                    if passes % max(1, int(60 / self.poll_seconds)) == 0:
                        self.sync_jobs()  # specs applied since start get their schedules
                        if self.sweep is not None:
                            self._sweep()
                    self.outage.recovered()
                except Exception as exc:
                    if not unreachable(exc):
                        raise
                    self.outage.failed("the work loop", exc)
                self.stop_event.wait(OUTAGE_RETRY_SECONDS if self.outage.down else self.poll_seconds)
        finally:
            self.stop_event.set()
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
            for thread in threads:
                if thread.is_alive():
                    thread.join(timeout=60)
            Worker._current = None
            metrics.LEADER.set(0)
            leadership.release()
        if self.lost_lead:
            raise WorkerRefused("another worker took the lead while this one had lost the database")

    def _sweep(self) -> None:
        try:
            self.sweep()
        except Exception as exc:  # the next minute tries again
            if unreachable(exc):
                raise
            log.exception("sweeping overdue work failed")

    def _beat_until_stopped(self, leadership: Leadership) -> None:
        """Every few seconds: make sure this worker still leads, and say so in the database (/readyz)."""
        started_at = utcnow()
        while not self.stop_event.is_set():
            try:
                if not leadership.still_leads():
                    log.error("another worker took the lead while this one had lost the database; stopping")
                    self.lost_lead = True
                    self.stop_event.set()
                    return
                self.beat(started_at)
                self.outage.recovered()
            except Exception as exc:
                if not unreachable(exc):
                    log.exception("the worker's heartbeat failed")
                else:
                    self.outage.failed("the heartbeat", exc)
            self.stop_event.wait(self.heartbeat_seconds)

    def _send_outbox_until_stopped(self) -> None:
        while not self.stop_event.is_set():
            try:
                sent = self.send_outbox()
            except Exception as exc:  # the outbox keeps its rows; the next pass tries again
                if unreachable(exc):
                    self.outage.failed("the Slack outbox", exc)
                    self.stop_event.wait(OUTAGE_RETRY_SECONDS)
                    continue
                log.exception("sending the Slack outbox failed")
                sent = 0
            if not sent:
                self.stop_event.wait(OUTBOX_POLL_SECONDS)

    def stop(self) -> None:
        self.stop_event.set()
