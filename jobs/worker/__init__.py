"""`flywheel worker`: fires each model's checks on its schedule and runs the work people asked for.

One worker leads at a time. On PostgreSQL the leader holds an advisory lock on its own connection;
a standby polls for it and takes over when the leader's connection dies. On SQLite a second worker
against the same file is refused. Jobs live in APScheduler's SQLAlchemy job store in the registry
database, one per model and check kind, so schedules survive restarts.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Connection, select, text, update
from sqlalchemy.engine import make_url

from jobs.monitor import enabled_kinds, load_spec
from store import heartbeat, registry, ticks, work
from store.clock import utcnow
from jobs.schedule import cron_trigger
from store.db import Database, reason, unreachable
from store.errors import FlywheelError
from store.models import CheckKind, WorkItem, WorkState

log = logging.getLogger("flywheel.worker")

JOB_TABLE = "apscheduler_jobs"
MISFIRE_GRACE_SECONDS = 15 * 60
TICKS_KEPT = timedelta(days=7)
OUTBOX_POLL_SECONDS = 0.5  # how soon a queued message (a click's update, an alert) leaves for Slack
STANDBY_POLL_SECONDS = 10.0  # a standby notices a dead leader within this, well under a minute
LEADER_LOCK_KEY = 0x464C5957  # "FLYW": the advisory lock id every Flywheel worker competes for
HEARTBEAT_SECONDS = 10.0  # the leader's heartbeat (read by /readyz) and its check that it still leads
OUTAGE_LOG_SECONDS = 60.0  # while the database is away, one log line per this
OUTAGE_RETRY_SECONDS = 5.0  # while the database is away, each loop tries again after this


class WorkerRefused(FlywheelError):
    pass


class Outage:
    """Whether the database is away, as every loop of the worker finds it: one log line when it goes,
    one a minute while it stays away (not a traceback per job), one when it is back."""

    def __init__(self, every: float = OUTAGE_LOG_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.every, self.clock = every, clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._logged = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            now = self.clock()
            if self._since is None:
                self._since = self._logged = now
                log.warning("the database is unreachable (%s, in %s); schedules are kept and every loop "
                            "retries every %.0f s", reason(exc), where, OUTAGE_RETRY_SECONDS)
            elif now - self._logged >= self.every:
                self._logged = now
                log.warning("the database is still unreachable after %.0f s (%s)", now - self._since, reason(exc))

    def recovered(self) -> None:
        with self._lock:
            if self._since is not None:
                log.warning("the database is back after %.0f s; resuming", self.clock() - self._since)
                self._since = None


class OutageTolerantJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store through a database outage. APScheduler's loop survives an
    error of `get_due_jobs` only (logging it every 10 s); one of `update_job` or `get_next_run_time`
    ends the scheduler's thread, and every schedule with it, for good."""

    def __init__(self, outage: Outage, **options: object):
        super().__init__(**options)
        self.outage = outage

    def get_due_jobs(self, now):
        try:
            return super().get_due_jobs(now)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed("the scheduler", exc)
            return []

    def get_next_run_time(self):
        try:
            return super().get_next_run_time()
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed("the scheduler", exc)
            return datetime.now(timezone.utc) + timedelta(seconds=OUTAGE_RETRY_SECONDS)

    def update_job(self, job):
        try:
            super().update_job(job)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The stored next run time stays behind: the firing is due again once the database is back
            # (within the misfire grace), and its tick is claimed once however often it is fired.
            self.outage.failed("the scheduler", exc)


def lower_priority(nice: int) -> int:
    """Make every thread of this process at least `nice` nice; return the process's niceness.

    Linux keeps a niceness per thread and a new thread inherits its creator's, so the threads already
    running (numpy's and pyarrow's pools, started on import) are lowered one by one."""
    if not hasattr(os, "setpriority"):  # not a Unix: nothing to lower
        return 0
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: elsewhere the call on 0 covers the whole process
        threads = [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    _lower_own_session(nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


AUTOGROUP = Path("/proc/self/autogroup")  # "/autogroup-85 nice 0"


def session_nice() -> int | None:
    """The niceness of this process's autogroup (its session's CPU share), or None when the session is not
    scheduled as an autogroup: a kernel without autogroups, or a session of init's, which the kernel shows
    as an empty file (a container's processes started outside any login or service often are)."""
    try:
        return int(AUTOGROUP.read_text().rsplit(maxsplit=1)[1])
    except (OSError, ValueError, IndexError):
        return None


def _lower_own_session(nice: int) -> None:
    """Linux's autogroup scheduling first shares the CPU evenly between sessions, and only within one by
    niceness: a worker leading a session of its own (a service, `setsid`) lowers that session too, or a
    `flywheel serve` in another session would still get only an even share. A worker in a session it
    shares (under `flywheel run`, in a terminal) leaves the session alone: its own niceness ranks it there,
    and a shell's session would stay lowered after the worker stops."""
    if os.getsid(0) != os.getpid():
        return
    current = session_nice()
    if current is None or current >= nice:
        return
    try:
        AUTOGROUP.write_text(str(nice))
    except OSError:  # a kernel that refuses: the threads' niceness still holds
        log.warning("could not lower this session's CPU share (%s)", AUTOGROUP)


# --- leadership --------------------------------------------------------------------------------

class Leadership:
    """Who fires schedules. `acquire(block)` returns True once this process leads."""

    def acquire(self, block: bool) -> bool:
        raise NotImplementedError

    def still_leads(self) -> bool:
        """False once another worker leads instead; raises while the database is unreachable."""
        return True

    def release(self) -> None:
        raise NotImplementedError


class PostgresLeadership(Leadership):
    def __init__(self, db: Database):
        self.db = db
        self._connection: Connection | None = None

    def acquire(self, block: bool) -> bool:
        stop = threading.Event()
        while True:
            if self._connection is None:
                self._connection = self.db.engine.connect()
            got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": LEADER_LOCK_KEY}).scalar()
            self._connection.commit()
            if got:
                return True
            if not block:
                return False
            stop.wait(STANDBY_POLL_SECONDS)

    def still_leads(self) -> bool:
        """The lock lives as long as its connection. One lost to an outage took the lock with it: the
        worker connects again and takes the lock again, unless a standby took it meanwhile."""
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._drop()
                raise
        self._connection = self.db.engine.connect()
        got = self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}).scalar()
        self._connection.commit()
        if not got:
            self._drop()
            return False
        log.warning("took the leader lock again after its connection was lost")
        return True

    def release(self) -> None:
        if self._connection is not None:
            # A pooled connection outlives close(): unlock explicitly. A dead process's lock goes with its
            # connection, which is how a standby takes over after a crash.
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY})
                self._connection.commit()
            except Exception as exc:  # a connection the database dropped holds no lock to release
                if not unreachable(exc):
                    raise
            self._drop()

    def _drop(self) -> None:
        try:
            self._connection.invalidate()  # never back into the pool: it is (or may be) dead
            self._connection.close()
        finally:
            self._connection = None


class SqliteLeadership(Leadership):
    """An exclusive lock on a file beside the database: one worker per SQLite file."""

    def __init__(self, database_path: Path):
        self.path = Path(f"{database_path}.worker.lock")
        self._file = None

    def acquire(self, block: bool) -> bool:
        self._file = open(self.path, "a+")  # noqa: SIM115 - held open for the worker's lifetime
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise WorkerRefused(f"another worker ({holder}) is already running against {self.path.with_suffix('')};"
                                " SQLite allows one worker per database file") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def leadership_for(db: Database) -> Leadership:
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        return SqliteLeadership(Path(url.database or "flywheel.db").resolve())
    return PostgresLeadership(db)


# --- schedules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedJob:
    id: str
    model_key: str
    kind: CheckKind
    cron: str


def plan(db: Database) -> list[PlannedJob]:
    """One job per model and check kind its spec asks for, on the cron of the spec."""
    jobs = []
    with db.read() as s:
        for model in registry.list_models(session=s):
            spec = load_spec(model)
            for kind in enabled_kinds(spec):
                jobs.append(PlannedJob(f"check:{model.key}:{kind.value}", model.key, kind, spec.schedule))
    return jobs


def latest_tick(cron: str, now: datetime) -> datetime:
    """The latest time at or before `now` when `cron` fires: the firing a (possibly late) run belongs to."""
    trigger = cron_trigger(cron)
    aware = now.replace(tzinfo=timezone.utc)
    for lookback in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32),
                     timedelta(days=367)):
        fire = trigger.get_next_fire_time(None, aware - lookback)
        if fire is not None and fire <= aware:
            while (following := trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))) is not None \
                    and following <= aware:
                fire = following
            return fire.astimezone(timezone.utc).replace(tzinfo=None)
    raise ValueError(f"cron {cron!r} has not fired in the year before {now:%Y-%m-%d %H:%M}")


def run_scheduled_check(model_key: str, kind: str, cron: str = "0 * * * *") -> None:
    """The job APScheduler calls; module level so the persistent job store can name it."""
    Worker.current().fire(model_key, CheckKind(kind), cron)


DAILY_DIGEST_JOB = "digest:daily"


def run_daily_digest() -> None:
    """The daily digest of business channels subscribed with `digest` (bot/alerts.py daily_digest)."""
    worker = Worker.current()
    if worker.daily_digest is not None:
        worker.daily_digest()


# --- the worker --------------------------------------------------------------------------------

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
            self.scheduler.add_job(run_scheduled_check, trigger, id=job.id, name=job.id, args=args,
                                   replace_existing=True, coalesce=True, max_instances=1,
                                   misfire_grace_time=MISFIRE_GRACE_SECONDS)
        for existing in self.scheduler.get_jobs():
            if existing.id.startswith("check:") and existing.id not in planned:
                existing.remove()
        if self.daily_digest is not None:
            trigger = CronTrigger(hour=self.digest_hour, minute=0, timezone="UTC")
            existing = self.scheduler.get_job(DAILY_DIGEST_JOB)
            # Replaced only when the hour changed: replacing reschedules from now, and a worker back
            # up at 09:05 must still send the 09:00 digest it missed (misfire grace).
            if existing is None or str(existing.trigger) != str(trigger):
                self.scheduler.add_job(run_daily_digest, trigger, id=DAILY_DIGEST_JOB, name=DAILY_DIGEST_JOB,
                                       replace_existing=True, coalesce=True, max_instances=1,
                                       misfire_grace_time=MISFIRE_GRACE_SECONDS)
        elif self.scheduler.get_job(DAILY_DIGEST_JOB) is not None:
            self.scheduler.remove_job(DAILY_DIGEST_JOB)
        return sorted(planned)

    def fire(self, model_key: str, kind: CheckKind, cron: str, tick: datetime | None = None) -> bool:
        """Run one scheduled check once per firing; False when this firing already ran or is running, or
        the database is away (the firing then runs once it is back)."""
        tick = tick or latest_tick(cron, utcnow())
        try:
            with self.db.session() as s:
                claimed = ticks.claim(session=s, model_key=model_key, kind=kind.value, tick=tick, worker=self.name)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.outage.failed(f"the {kind.value} check of {model_key}", exc)
            self.after_outage(lambda: self.fire(model_key, kind, cron, tick))
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

    def queued_work(self) -> list[int]:
        with self.db.session() as s:
            return list(s.execute(select(WorkItem.id).where(WorkItem.state == WorkState.queued)
                                  .order_by(WorkItem.id)).scalars())

    def drain_work(self) -> int:
        done = 0
        for item_id in self.queued_work():
            if self.stop_event.is_set():
                break
            try:
                self.run_work(item_id)
            except Exception as exc:
                if unreachable(exc):  # left running: back to the queue once the database is back
                    self.after_outage(lambda item_id=item_id: self._requeue(item_id))
                raise
            done += 1
        return done

    def _requeue(self, item_id: int) -> None:
        with self.db.session() as s:
            if work.interrupted(session=s, item_id=item_id):
                log.warning("work item %s, interrupted by the database outage, is queued again", item_id)

    def beat(self, started_at: datetime) -> None:
        with self.db.session(changes_status=False) as s:
            heartbeat.beat(session=s, worker=self.name, started_at=started_at, now=utcnow())

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
