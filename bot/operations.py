"""What people can do from Slack, whichever surface they use (command, button, modal).

Each operation authorizes, changes the registry in one unit of work, audits, and returns a short
sentence for the person who asked. Refusals raise typed domain errors and are audited too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.blocks.common import mention
from bot.config import Settings
from jobs.backends import DeployRequest, TrainingRequest, call_deploy_webhook, dispatch
from jobs.monitor import load_spec
from jobs.retrain import compare_with_production, evaluation_window, retrain, retrain_trigger, training_window
from jobs.sources import SourceError
from store import audit, governance, monitoring, registry, work
from store import home as home_store
from store import status as status_store
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, Forbidden, InvalidTransition, NotFound
from store.models import Alert, AlertState, Decision, ModelVersion, Person, Role, VersionStatus, WorkState
from store.spec import ModelSpec, parse_duration
from store.status import ModelStatus

log = logging.getLogger(__name__)

SNOOZE_LIMIT = timedelta(days=30)

# Writes what shows a change (a clicked message's edit) in the change's own unit of work, given the note.
WrittenWith = Callable[[Session, str], None]
ACTOR_TTL_SECONDS = 30.0  # a role change in a spec reaches Slack within this
AUTOMATIC = "flywheel"  # who asks when Flywheel retrains on its own
STATUS_CACHE_SIZE = 1000


@dataclass
class Actor:
    """The Slack user behind a request, resolved once by middleware."""

    slack_id: str
    person: Person | None

    @property
    def name(self) -> str:
        return self.person.name if self.person else self.slack_id

    def has(self, role: Role) -> bool:
        return self.person is not None and self.person.has_role(role)

    def require(self, role: Role, doing: str) -> None:
        if self.person is None:
            raise Forbidden(f"You're not set up in Flywheel yet, so you can't {doing}. Ask an admin to add you "
                            "to a project spec's people.")
        if not self.has(role):
            raise Forbidden(f"You can't {doing}: that needs the {role.value.replace('_', ' ')} role, and you have "
                            f"{', '.join(r.replace('_', ' ') for r in self.person.roles) or 'none'}.")


@dataclass
class Runner:
    """Runs slow work off the request thread; the worker process takes this over for real deployments."""

    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="work"))
    pending: list[Future] = field(default_factory=list)

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        self.pending.append(self.pool.submit(fn, *args))

    def join(self, timeout: float = 120) -> None:
        for future in list(self.pending):
            future.result(timeout=timeout)
        self.pending.clear()


@dataclass(frozen=True)
class Job:
    """A claimed work item, as plain data for the step that runs it."""

    id: int
    kind: str
    model_key: str
    payload: dict
    result: dict
    requested_by: str


@dataclass(frozen=True)
class _CachedStatus:
    stamp: tuple[int, int]  # status_store.freshness when it was read
    status: ModelStatus
    commits: int  # the database's own commit count when last confirmed
    checked: float  # monotonic seconds when last confirmed


@contextmanager
def refusals_audited(db: Database, actor: str, action: str, subject: str) -> Iterator[None]:
    """Refused attempts are audited in their own unit of work: the failed one rolls back."""
    try:
        yield
    except FlywheelError as exc:
        with db.session() as s:
            audit.record(session=s, actor=actor, action=f"{action}.refused", subject=subject,
                         details={"reason": str(exc)})
        raise


@dataclass(frozen=True)
class Deploy:
    """What a deploy request did: moved production now (registry backend), asked the deploy webhook to
    (the worker moves it when the team's system answers), or found a deploy already under way."""

    LIVE, ASKED, ALREADY_ASKED = "live", "asked", "already_asked"

    note: str
    outcome: str


@dataclass
class Operations:
    settings: Settings
    db: Database
    notifier: object  # bot.alerts.Notifier, kept loose so tests can build operations without Slack
    # In-process runner for slow work (tests, `flywheel run --inline`); None: the worker process runs it.
    runner: Runner | None = None
    followups: Runner = field(default_factory=lambda: Runner(ThreadPoolExecutor(2, thread_name_prefix="slack")))
    clock: Callable[[], datetime] = utcnow
    _actors: dict[str, tuple[float, Actor]] = field(default_factory=dict)
    status_recheck_seconds: float = 1.0  # how soon a change made by another process (the worker) shows
    _statuses: dict[str, _CachedStatus] = field(default_factory=dict)
    _rechecking: set[str] = field(default_factory=set)  # models whose cached status one thread is rechecking
    _rechecking_lock: threading.Lock = field(default_factory=threading.Lock)
    commands_audit: audit.AuditQueue | None = None

    def __post_init__(self) -> None:
        if self.commands_audit is None:
            self.commands_audit = audit.AuditQueue(self.db)

    def later(self, fn: Callable[..., object], *args: object) -> None:
        """Slack follow-ups (message updates, thread replies) run after the ack, off the request thread."""
        self.followups.submit(self._logged, fn, *args)

    @staticmethod
    def _logged(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # the person already has their answer; the operator needs the failure
            log.exception("Slack follow-up %s failed", getattr(fn, "__name__", fn))
            raise

    def join(self) -> None:
        """Wait for background work and its follow-ups (tests, clean shutdown)."""
        if self.runner is not None:
            self.runner.join()
        self.db.drain_submitted()  # queued clicks committed; the follow-ups they asked for are queued
        self.followups.join()
        self.commands_audit.drain()

    # -- reading ---------------------------------------------------------------------------

    def record_command(self, actor: Actor, command: str, text: str) -> None:
        """Every command is audited with who typed it, whatever it then does or refuses. Batched: under a
        burst a commit per command would cost more than answering it."""
        self.commands_audit.put(actor=actor.slack_id, action="command", subject=f"slack:{command}",
                                details={"text": text[:500]}, at=self.clock())

    def status(self, model_key: str) -> ModelStatus:
        """A model's status, reused while nothing it shows has changed (people ask in bursts during an
        incident, and the answer must fit in Slack's ack). A change made by this process is seen at once;
        one made by the worker within `status_recheck_seconds`."""
        now, commits = time.monotonic(), self.db.status_commits
        cached = self._statuses.get(model_key)
        if cached is not None and cached.commits == commits:
            if now - cached.checked < self.status_recheck_seconds:
                return cached.status
            # Due for its periodic recheck: one request rechecks while the others answer from the cache
            # meanwhile, rather than a burst of identical queries the moment the second is up.
            with self._rechecking_lock:
                if model_key in self._rechecking:
                    return cached.status
                self._rechecking.add(model_key)
            try:
                return self._read_status(model_key, cached, commits, now)
            finally:
                with self._rechecking_lock:
                    self._rechecking.discard(model_key)
        return self._read_status(model_key, cached, commits, now)

    def _read_status(self, model_key: str, cached: _CachedStatus | None, commits: int, now: float) -> ModelStatus:
        with self.db.read() as s:
            stamp = status_store.freshness(session=s, model_key=model_key)
            if cached is None or cached.stamp != stamp:
                cached = _CachedStatus(stamp, status_store.model_status(session=s, key=model_key), commits, now)
        if len(self._statuses) >= STATUS_CACHE_SIZE:
            self._statuses.clear()
        self._statuses[model_key] = replace(cached, commits=commits, checked=now)
        return cached.status

    def seen_home(self, slack_id: str) -> None:
        with self.db.session() as s:
            home_store.record_viewer(session=s, slack_id=slack_id, now=self.clock())

    def home_viewers(self) -> list[str]:
        with self.db.read() as s:
            return home_store.recent_viewers(session=s, now=self.clock())

    def owner_of(self, model_key: str) -> str:
        with self.db.session() as s:
            return registry.get_model(session=s, key=model_key).owner

    def actor(self, slack_id: str) -> Actor:
        """Who is asking, resolved once per request; cached briefly so acks need no database read."""
        now = time.monotonic()
        cached = self._actors.get(slack_id)
        if cached is not None and now - cached[0] < ACTOR_TTL_SECONDS:
            return cached[1]
        with self.db.read() as s:
            person = registry.get_person(session=s, slack_id=slack_id)
            if person is not None:
                s.expunge(person)
        actor = Actor(slack_id, person)
        self._actors[slack_id] = (now, actor)
        return actor

    # -- alerts ----------------------------------------------------------------------------

    def _alert(self, s, alert_id: int) -> Alert:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise NotFound(f"Alert {alert_id} no longer exists.")
        return alert

    # Alert clicks are the most frequent writes and come in bursts (a channel acknowledging a storm). Each
    # is checked at once, then queued as a short unit of work for the next group commit (Database.submit);
    # the future gives the note once it is committed, or the refusal. They start no work, so the click
    # handler acks Slack without waiting for the commit; commands wait for it.

    def _queued(self, work: Callable[[Session], str], *, actor: Actor, action: str, subject: str) -> Future[str]:
        def audit_refusal(done: Future[str]) -> None:
            if isinstance(refusal := done.exception(), FlywheelError):  # audited like every refusal
                self.commands_audit.put(actor=actor.slack_id, action=f"{action}.refused", subject=subject,
                                        details={"reason": str(refusal)}, at=self.clock())
        future = self.db.submit(work, changes_status=False)  # an alert clicked stays open: statuses stand
        future.add_done_callback(audit_refusal)
        return future

    def acknowledge(self, actor: Actor, alert_id: int, *, also: WrittenWith | None = None) -> Future[str]:
        """`also(session, note)` writes what shows the change (the clicked message's edit, through the
        outbox) in the same unit of work, so both commit or neither does."""
        now = self.clock()
        note = f"Acknowledged by {mention(actor.slack_id)} at {now:%H:%M} UTC"

        def work(s: Session) -> str:
            model_key = monitoring.acknowledge(session=s, alert_id=alert_id, now=now)
            # An acknowledged or snoozed alert is still open: the status, which counts open alerts, stays.
            audit.record(session=s, actor=actor.slack_id, action="alert.acknowledged",
                         subject=f"model:{model_key}", details={"alert": alert_id}, at=now, changes_status=False)
            if also is not None:
                also(s, note)
            return note

        with refusals_audited(self.db, actor.slack_id, "alert.acknowledge", f"alert:{alert_id}"):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't acknowledge alerts.")
        return self._queued(work, actor=actor, action="alert.acknowledge", subject=f"alert:{alert_id}")

    def snooze(self, actor: Actor, *, alert_id: int | None = None, model_key: str | None = None,
               duration: str, also: WrittenWith | None = None) -> Future[str]:
        subject = f"alert:{alert_id}" if alert_id else f"model:{model_key}"
        with refusals_audited(self.db, actor.slack_id, "alert.snooze", subject):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't snooze alerts.")
            try:
                length = parse_duration(duration)
            except ValueError:
                raise InvalidTransition(f"'{duration}' is not a duration; try 1h, 4h, 24h or 7d.") from None
            if length > SNOOZE_LIMIT:
                raise InvalidTransition("Snooze for 30 days at most; acknowledge the alert to stop reminders "
                                        "instead.")
        now = self.clock()
        until = now + length
        note = f"Snoozed by {mention(actor.slack_id)} until {until:%a %H:%M} UTC"

        def work(s: Session) -> str:
            if alert_id is not None:
                alerts = [self._alert(s, alert_id)]
            else:
                model = registry.get_model(session=s, key=model_key)
                alerts = monitoring.live_alerts(session=s, model=model)
                if not alerts:
                    raise InvalidTransition(f"{model.key} has no open alerts to snooze.")
            for alert in alerts:
                alert.state, alert.snoozed_until, alert.updated_at = AlertState.snoozed, until, now
            audit.record(session=s, actor=actor.slack_id, action="alert.snoozed", subject=subject,
                         details={"until": until.isoformat(), "alerts": [a.id for a in alerts]}, at=now,
                         changes_status=False)
            if also is not None:
                also(s, note)
            return note

        return self._queued(work, actor=actor, action="alert.snooze", subject=subject)

    def feedback(self, actor: Actor, alert_id: int, *, noise: bool) -> Future[str]:
        now = self.clock()
        note = ("Marked as noise. Thanks: `flywheel report noise` shows which thresholds alert too often."
                if noise else "Marked as useful. Thanks.")

        def work(s: Session) -> str:
            monitoring.record_feedback(session=s, alert_id=alert_id, person=actor.slack_id, noise=noise, now=now)
            return note

        with refusals_audited(self.db, actor.slack_id, "alert.feedback", f"alert:{alert_id}"):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so your feedback can't be counted.")
        return self._queued(work, actor=actor, action="alert.feedback", subject=f"alert:{alert_id}")

    # -- retrain ---------------------------------------------------------------------------

    def _stale_after(self) -> timedelta:
        return timedelta(hours=self.settings.training_timeout_hours)

    def request_retrain(self, actor: Actor, model_key: str, *, reason: str = "", alert_id: int | None = None,
                        response_url: str | None = None) -> str:
        """Record the retrain before the ack; a double click or retry finds the same request."""
        with refusals_audited(self.db, actor.slack_id, "retrain", f"model:{model_key}"), self.db.session() as s:
            actor.require(Role.ml_engineer, f"retrain {model_key}")
            model = registry.get_model(session=s, key=model_key)
            item, created = work.request(session=s, model=model, kind="retrain", requested_by=actor.slack_id,
                                         payload={"reason": reason, "alert": alert_id,
                                                  "response_url": response_url}, now=self.clock(),
                                         stale_after=self._stale_after())
            item_id, requested_by = item.id, item.requested_by
        if not created:
            return f"{model_key} is already retraining (requested by {mention(requested_by)})."
        if self.runner is not None:
            self.runner.submit(self.run_work, item_id)
        return f"Retraining {model_key}{f' ({reason})' if reason else ''}. I'll post here when v-next is ready."

    def auto_retrain(self, model_key: str, reason: str, *, alert_id: int | None = None) -> int | None:
        """A check breached on a model whose spec says `retrain.auto`: queue a retrain as Flywheel, at most
        once per the spec's cooldown. Returns the new work item's id, or None when nothing was queued."""
        now = self.clock()
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            spec = load_spec(model).retrain
            if spec is None or not spec.auto:
                return None
            item, created = work.request_at_most_every(
                session=s, model=model, kind="retrain", requested_by=AUTOMATIC, every=spec.cooldown, now=now,
                payload={"reason": reason, "alert": alert_id, "response_url": None}, stale_after=self._stale_after())
            item_id = item.id if item is not None and created else None
        if item_id is not None and self.runner is not None:
            self.runner.submit(self.run_work, item_id)
        return item_id

    def request_evaluation(self, actor: Actor, model_key: str, number: int, *,
                           response_url: str | None = None) -> str:
        """Compare a candidate with production again: after a comparison failed (no labelled rows yet, a
        source down) or to see it on the latest window. Candidates only: a version in review keeps the
        comparison its signers were shown."""
        with refusals_audited(self.db, actor.slack_id, "evaluate", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            actor.require(Role.ml_engineer, f"compare {model_key} v{number} with production")
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            if version.status != VersionStatus.candidate:
                raise InvalidTransition(f"{model_key} v{number} is {version.status.value.replace('_', ' ')}, so its "
                                        "comparison stays as it was; only candidates are compared again.")
            item, queued = work.request_evaluation(
                session=s, model=model, requested_by=actor.slack_id, now=self.clock(),
                entry={"number": number, "alert": None, "response_url": response_url})
            item_id = item.id
        if not queued:
            return f"{model_key} v{number} is already waiting to be compared with production."
        if self.runner is not None:
            self.runner.submit(self.run_work, item_id)
        return (f"Comparing {model_key} v{number} with production on the latest labelled window. "
                "The comparison goes to the ML engineers' channel.")

    def run_work(self, item_id: int) -> None:
        """Execute one queued work item, exactly once: whoever claims it first runs it. Never raises: a
        failure is recorded on the item and told to whoever asked."""
        with self.db.session() as s:
            item = work.claim(session=s, item_id=item_id, now=self.clock())
            if item is None:
                return
            job = Job(item.id, item.kind, item.model.key, dict(item.payload), dict(item.result), item.requested_by)
        steps = {"retrain": self._retrain, "evaluate": self._evaluate, "deploy": self._deploy_now,
                 "rollback": self._rollback_now}
        try:
            if job.kind not in steps:
                raise InvalidTransition(f"unknown kind of work {job.kind!r}")
            steps[job.kind](job)
        except FlywheelError as exc:
            self._work_failed(job, str(exc))
        except Exception as exc:  # keep the traceback for the operator; tell the asker what happened
            log.exception("%s of %s failed", job.kind, job.model_key)
            self._work_failed(job, f"{exc.__class__.__name__}: {exc}")

    def _spec(self, model_key: str) -> ModelSpec:
        with self.db.read() as s:
            return load_spec(registry.get_model(session=s, key=model_key))

    def _retrain(self, job: Job) -> None:
        spec = self._spec(job.model_key)
        if spec.retrain is not None and spec.retrain.backend != "python":
            self._dispatch(job, spec)
            return
        now = self.clock()
        _, as_of = training_window(spec, now)
        trigger = retrain_trigger(job.payload.get("reason") or "", job.requested_by)
        # A worker killed after registering the version resumes from there, not with a second version.
        number = self._registered_by(job.model_key, job.id)
        if number is None:
            number = retrain(db=self.db, model_key=job.model_key, requested_by=job.requested_by, trigger=trigger,
                             as_of=as_of, artifacts_dir=self.settings.artifacts, now=now, work_item=job.id).number
        try:
            compare_with_production(db=self.db, model_key=job.model_key, number=number, window_start=as_of,
                                    window_end=now, now=now)
        except Exception as exc:  # the version is trained and kept: only its comparison is to be run again
            with self.db.session() as s:
                work.finish(session=s, item_id=job.id, result={"version": number, "compared": False},
                            now=self.clock())
            self._comparison_failed(job.model_key, number, exc, f"Retrained {job.model_key} v{number}, but "
                                    "comparing it with production failed", alert_id=job.payload.get("alert"),
                                    response_url=job.payload.get("response_url"))
            return
        self.notifier.candidate_ready(job.model_key, number, alert_id=job.payload.get("alert"))
        with self.db.session() as s:
            work.finish(session=s, item_id=job.id, result={"version": number}, now=self.clock())

    def _dispatch(self, job: Job, spec: ModelSpec) -> None:
        """Start the run on the team's trainer; the item waits, dispatched, until it calls back."""
        start, end = training_window(spec, self.clock())
        with self.db.read() as s:
            number = max((v.number for v in registry.get_model(session=s, key=job.model_key).versions), default=0) + 1
        request = TrainingRequest(job.model_key, number, job.id, start, end,
                                  retrain_trigger(job.payload.get("reason") or "", job.requested_by),
                                  job.requested_by, self.settings.callback_url)
        sent = dispatch(spec.retrain, request, self.settings)
        with self.db.session() as s:
            waiting = work.mark_dispatched(
                session=s, item_id=job.id, now=self.clock(),
                result={"backend": sent.backend, "reference": sent.reference, "expected_version": number,
                        "train_start": start.isoformat(), "train_end": end.isoformat()})
        if waiting:  # not when the trainer answered faster than this
            self.notifier.tell_asker(f"Training {job.model_key} v{number} on {sent.description}; it reports back "
                                     "when the run is done.", alert_id=job.payload.get("alert"),
                                     response_url=job.payload.get("response_url"))

    def _evaluate(self, job: Job) -> None:
        """Compare each new version with production and tell the ML engineer; versions that joined the
        item while it ran get another turn."""
        spec = self._spec(job.model_key)
        done, failed = list(job.result.get("evaluated", [])), list(job.result.get("failed", []))
        for entry in job.payload.get("versions", []):
            number = entry["number"]
            if number in done or number in failed:
                continue
            try:
                self._compare_and_announce(job.model_key, spec, entry)
                done.append(number)
            except Exception as exc:
                failed.append(number)
                self._comparison_failed(job.model_key, number, exc,
                                        f"Comparing {job.model_key} v{number} with production failed",
                                        alert_id=entry.get("alert"), response_url=entry.get("response_url"))
            with self.db.session() as s:
                work.record_progress(session=s, item_id=job.id, result={"evaluated": done, "failed": failed})
        with self.db.session() as s:
            item = work.lock(session=s, item_id=job.id)
            progress = {"evaluated": done, "failed": failed}
            if any(v["number"] not in done + failed for v in item.payload.get("versions", [])):
                work.requeue(session=s, item_id=job.id, payload=dict(item.payload), result=progress)
            elif failed:
                work.fail(session=s, item_id=job.id, now=self.clock(),
                          error=f"could not compare {', '.join(f'v{n}' for n in failed)} with production")
            else:
                work.finish(session=s, item_id=job.id, result=progress, now=self.clock())

    def _comparison_failed(self, model_key: str, number: int, exc: Exception, what: str, *,
                           alert_id: int | None, response_url: str | None) -> None:
        """Tell the ML engineer why, and how to run the comparison again once the cause is fixed."""
        if isinstance(exc, (FlywheelError, SourceError)):  # says what is wrong in words; no traceback needed
            problem = str(exc)
        else:
            log.exception("comparing %s v%s with production failed", model_key, number)
            problem = f"{exc.__class__.__name__}: {exc}"
        self.notifier.work_failed(model_key, f"{what}: {problem.rstrip('.')}. Try again with `/flywheel evaluate "
                                  f"{model_key} v{number}`.", alert_id=alert_id, response_url=response_url)

    def _compare_and_announce(self, model_key: str, spec: ModelSpec, entry: dict) -> None:
        number = entry["number"]
        with self.db.read() as s:
            train_end = registry.get_version(session=s, model_key=model_key, number=number).train_end
        now = self.clock()
        start, end = evaluation_window(spec, now, train_end)
        compare_with_production(db=self.db, model_key=model_key, number=number, window_start=start, window_end=end,
                                now=now)
        self.notifier.candidate_ready(model_key, number, alert_id=entry.get("alert"))

    def _registered_by(self, model_key: str, item_id: int) -> int | None:
        with self.db.session() as s:
            return next((v.number for v in registry.get_model(session=s, key=model_key).versions
                         if v.parameters.get("work_item") == item_id), None)

    def expire_overdue_work(self) -> int:
        """Tell the askers of retrains whose trainer never called back; the worker runs this every minute."""
        with self.db.session() as s:
            overdue = [(Job(i.id, i.kind, i.model.key, dict(i.payload), dict(i.result), i.requested_by), i.error)
                       for i in work.expire_overdue(session=s, stale_after=self._stale_after(), now=self.clock())]
        for job, error in overdue:
            self.notifier.work_failed(job.model_key, _failure_text(job, error),
                                      alert_id=job.payload.get("alert"), response_url=job.payload.get("response_url"))
        return len(overdue)

    def _work_failed(self, job: Job, error: str) -> None:
        with self.db.session() as s:
            item = work.lock(session=s, item_id=job.id)
            if item.state != WorkState.running:  # done, or waiting for its trainer: only a follow-up failed
                log.error("%s work %d on %s is %s, but a later step failed: %s", job.kind, job.id, job.model_key,
                          item.state.value, error)
                return
            work.fail(session=s, item_id=job.id, error=error, now=self.clock())
        self.notifier.work_failed(job.model_key, _failure_text(job, error), alert_id=job.payload.get("alert"),
                                  response_url=job.payload.get("response_url"))

    # -- governance ------------------------------------------------------------------------

    def _version(self, s, model_key: str, number: int) -> ModelVersion:
        return registry.get_version(session=s, model_key=model_key, number=number)

    def submit(self, actor: Actor, model_key: str, number: int) -> str:
        with refusals_audited(self.db, actor.slack_id, "version.submit", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            actor.require(Role.ml_engineer, f"submit {model_key} v{number} for sign-off")
            version = self._version(s, model_key, number)
            governance.submit_for_review(session=s, version=version, by=actor.slack_id, now=self.clock())
            waiting = governance.waiting_steps(session=s, version=version)
        self.notifier.signoff_requested(model_key, number)
        steps = ", ".join(p.describe() for p in waiting) or "nothing: it is approved"
        return f"{model_key} v{number} submitted for sign-off by {mention(actor.slack_id)}. Waiting for: {steps}."

    def sign(self, actor: Actor, model_key: str, number: int, decision: Decision, reason: str = "") -> tuple[str, bool]:
        """Record a decision; returns the sentence to show and whether the version's review is over."""
        with refusals_audited(self.db, actor.slack_id, f"signoff.{decision.value}", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            if actor.person is None:
                raise Forbidden(f"You're not set up in Flywheel yet, so you can't sign off {model_key} v{number}.")
            version = self._version(s, model_key, number)
            person = s.merge(actor.person)
            record = governance.sign_off(session=s, version=version, person=person, decision=decision,
                                         reason=reason, now=self.clock())
            status, step = version.status, record.step.name
        verb = "Approved" if decision == Decision.approve else "Rejected"
        said = f': "{reason.strip()}"' if reason.strip() else ""
        self.later(self.notifier.refresh_home)  # after the ack: it writes a refresh per Home viewer
        note = f"{verb} by {mention(actor.slack_id)} ({step}) at {self.clock():%H:%M} UTC{said}"
        self.later(self._after_sign_off, model_key, number, note, status == VersionStatus.approved)
        return note, status != VersionStatus.in_review

    def _after_sign_off(self, model_key: str, number: int, note: str, approved: bool) -> None:
        # One follow-up, in this order: the alert's thread reads the sign-off before "can be deployed".
        self.notifier.signed(model_key, number, note)
        if approved:
            self.notifier.approved(model_key, number)

    def deploy(self, actor: Actor, model_key: str, number: int, *, response_url: str | None = None) -> Deploy:
        """Governance is checked before the ack. The `registry` backend moves production now; the `webhook`
        backend records a deploy for the worker, which calls the team's system and then moves it."""
        subject = f"model:{model_key}/v{number}"
        queued = None
        try:
            with refusals_audited(self.db, actor.slack_id, "deploy", subject), self.db.session() as s:
                actor.require(Role.ml_engineer, f"deploy {model_key}")
                version = self._version(s, model_key, number)
                previous = registry.production_version(session=s, model=version.model)
                previous_label = previous.label if previous else None
                if load_spec(version.model).deploy.backend == "registry":
                    governance.deploy(session=s, version=version, by=actor.slack_id, now=self.clock())
                else:
                    governance.ensure_deployable(session=s, version=version)
                    item, created = work.request(session=s, model=version.model, kind="deploy",
                                                 requested_by=actor.slack_id, now=self.clock(),
                                                 payload={"version": number, "response_url": response_url})
                    queued = (item.id, created, item.payload.get("version"), item.requested_by)
        except governance.GovernanceBlocked as blocked:
            with self.db.session() as s:
                version = self._version(s, model_key, number)
                governance.note_deploy_request(session=s, version=version, by=actor.slack_id,
                                               reason=str(blocked), now=self.clock())
            asked = self.notifier.ask_approvers(model_key, number, blocked.waiting)
            raise governance.GovernanceBlocked(f"{blocked}{f' {asked} been asked.' if asked else ''}",
                                               blocked.waiting) from None
        if queued is not None:
            item_id, created, live_number, asked_by = queued
            if not created:
                return Deploy(f"A deploy of {model_key} v{live_number} is already under way "
                              f"(asked by {mention(asked_by)}).", Deploy.ALREADY_ASKED)
            if self.runner is not None:
                self.runner.submit(self.run_work, item_id)
            return Deploy(f"Deploying {model_key} v{number} through its deploy webhook. IT operations will be told "
                          f"when it is live; until then production stays {previous_label or 'empty'}.", Deploy.ASKED)
        self.notifier.deployed(model_key, number, previous=previous_label)
        return Deploy(f"{model_key} v{number} is live. Previous production version: {previous_label or 'none'}.",
                      Deploy.LIVE)

    def rollback(self, actor: Actor, model_key: str, *, response_url: str | None = None) -> str:
        queued = None
        with refusals_audited(self.db, actor.slack_id, "rollback", f"model:{model_key}"), self.db.session() as s:
            if not (actor.has(Role.it_ops) or actor.has(Role.ml_engineer)):
                actor.require(Role.it_ops, f"roll back {model_key}")
            model = registry.get_model(session=s, key=model_key)
            current = registry.production_version(session=s, model=model)
            if current is None:
                raise InvalidTransition(f"{model_key} has nothing in production to roll back.")
            if load_spec(model).deploy.backend == "registry":
                restored = governance.rollback(session=s, model_version=current, by=actor.slack_id, now=self.clock())
                labels = (current.label, restored.label, restored.number)
            else:
                target = governance.rollback_target(session=s, model_version=current)
                item, created = work.request(session=s, model=model, kind="rollback", requested_by=actor.slack_id,
                                             now=self.clock(), payload={"from": current.number, "to": target.number,
                                                                        "response_url": response_url})
                queued = (item.id, created, item.requested_by, current.label, target.label)
        if queued is not None:
            item_id, created, asked_by, from_label, to_label = queued
            if not created:
                return f"A rollback of {model_key} is already under way (asked by {mention(asked_by)})."
            if self.runner is not None:
                self.runner.submit(self.run_work, item_id)
            return (f"Rolling back {model_key} to {to_label} through its deploy webhook. IT operations will be told "
                    f"when {to_label} is live again; {from_label} serves until then.")
        self.notifier.rolled_back(model_key, labels[2], from_label=labels[0], by=actor.slack_id)
        return f"Rolled back by {mention(actor.slack_id)} at {self.clock():%H:%M} UTC: {model_key} " \
               f"{labels[1]} is live again, {labels[0]} stopped."

    def _deploy_now(self, job: Job) -> None:
        """A recorded deploy: the team's system first; production moves only when it said yes."""
        number = job.payload["version"]
        with self.db.read() as s:
            version = self._version(s, job.model_key, number)
            governance.ensure_deployable(session=s, version=version)
            previous = registry.production_version(session=s, model=version.model)
            previous_label = previous.label if previous else None
            backend, artifact_uri = load_spec(version.model).deploy, version.artifact_uri
        if backend.backend == "webhook":
            call_deploy_webhook(backend.url, DeployRequest("deploy", job.model_key, number, artifact_uri,
                                                           previous_label, job.requested_by, job.id), self.settings)
        with self.db.session() as s:
            governance.deploy(session=s, version=self._version(s, job.model_key, number), by=job.requested_by,
                              now=self.clock())
            work.finish(session=s, item_id=job.id, result={"version": number, "previous": previous_label},
                        now=self.clock())
        self.notifier.deployed(job.model_key, number, previous=previous_label)

    def _rollback_now(self, job: Job) -> None:
        """A recorded rollback: the team's system first; production moves back only when it said yes."""
        with self.db.read() as s:
            model = registry.get_model(session=s, key=job.model_key)
            current = registry.production_version(session=s, model=model)
            if current is None or current.number != job.payload["from"]:
                now_live = current.label if current else "nothing"
                raise InvalidTransition(f"production changed since the rollback was asked: {now_live} is live now.")
            target = governance.rollback_target(session=s, model_version=current)
            backend = load_spec(model).deploy
            request = DeployRequest("rollback", job.model_key, target.number, target.artifact_uri, current.label,
                                    job.requested_by, job.id)
        if backend.backend == "webhook":
            call_deploy_webhook(backend.url, request, self.settings)
        with self.db.session() as s:
            model = registry.get_model(session=s, key=job.model_key)
            current = registry.production_version(session=s, model=model)
            restored = governance.rollback(session=s, model_version=current, by=job.requested_by, now=self.clock())
            from_label, number = current.label, restored.number
            work.finish(session=s, item_id=job.id, result={"version": number, "from": from_label}, now=self.clock())
        self.notifier.rolled_back(job.model_key, number, from_label=from_label, by=job.requested_by)


def _failure_text(job: Job, error: str) -> str:
    """What the asker reads when work failed."""
    if job.kind == "retrain":
        return f"Retraining {job.model_key} failed: {error}"
    if job.kind == "deploy":
        return (f"{mention(job.requested_by)}: deploying {job.model_key} v{job.payload.get('version')} failed, so "
                f"production is unchanged. {error}")
    if job.kind == "rollback":
        return (f"{mention(job.requested_by)}: rolling back {job.model_key} to v{job.payload.get('to')} failed, so "
                f"production is unchanged. {error}")
    return f"{job.kind.capitalize()} of {job.model_key} failed: {error}"
