"""What people can do from Slack, whichever surface they use (command, button, modal).

Each operation authorizes, changes the registry in one unit of work, audits, and returns a short
sentence for the person who asked. Refusals raise typed domain errors and are audited too. Slow work
(retrain, evaluate, deploy through a webhook, rollback) is recorded here and run by jobs/work_runner.py.
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

from bot.blocks import governed
from bot.blocks.common import escape_mrkdwn, mention
from bot.config import Settings
from jobs.monitor import load_spec
from jobs.work_runner import WorkRunner, training_timeout
from store import audit, authority, governance, monitoring, registry, slack_requests, work
from store import home as home_store
from store import status as status_store
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, Forbidden, InvalidTransition, NotFound
from store.models import PERSONAS, Alert, AlertState, Decision, Model, ModelVersion, Person, Role, VersionStatus
from store.spec import parse_duration
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
    """The Slack user behind a request, resolved once by middleware. What they may do is asked of
    store.authority, per project, inside each operation's unit of work."""

    slack_id: str
    person: Person | None

    @property
    def name(self) -> str:
        return self.person.name if self.person else self.slack_id


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


@contextmanager
def stale_refusals_worded(doing: str) -> Iterator[None]:
    """A click refused as stale or already done is told what changed, with who and when as mentions."""
    try:
        yield
    except governance.Settled as exc:
        raise governance.Settled(governed.refusal(doing, exc), exc.change, already=exc.already) from None


@dataclass(frozen=True)
class Deploy:
    """What a deploy request did: moved production now (registry backend), asked the deploy webhook to
    (the worker moves it when the team's system answers), or found a deploy already under way."""

    LIVE, ASKED, ALREADY_ASKED = "live", "asked", "already_asked"

    note: str
    outcome: str


@dataclass(frozen=True)
class EvaluationAsked:
    """What asking for a comparison with production did: queued it, or found it already waiting."""

    note: str
    queued: bool


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
    work: WorkRunner = field(init=False)  # runs recorded work (below)

    def __post_init__(self) -> None:
        if self.commands_audit is None:
            self.commands_audit = audit.AuditQueue(self.db)
        # Runs recorded work: in the worker process, or in `runner` here (tests, `flywheel run --inline`).
        self.work = WorkRunner(self.settings, self.db, self.notifier, self.clock)

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

    # Kept (bench_ack --with-cycle, 50 concurrent `/flywheel status`, 2026-12-05): SQLite p99 109-169 ms, 0.6 ms CPU
    # with the cache; 299-374 ms, 2.4-2.9 ms without;
    # PostgreSQL 100-158 ms, 0.6-0.7 ms with; 338-560 ms, 3.3 ms without.
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

    def subscribe(self, actor: Actor, *, persona: str, channel: str, project_key: str | None,
                  mode: str | None) -> tuple[str, str]:
        """Point a persona's alerts of one project at a channel: the project's owner or admins only.
        Without a project key, the one project the person is in (or the only project there is)."""
        with refusals_audited(self.db, actor.slack_id, "subscribe", f"project:{project_key or '?'}"), \
                self.db.session() as s:
            projects = [project_key] if project_key else status_store.projects_of(session=s, slack_id=actor.slack_id)
            if not projects:
                projects = [p.key for p in registry.list_projects(session=s)]
            if len(projects) != 1:
                raise InvalidTransition(
                    f"Which project? Add its key: `/flywheel subscribe {persona} <#{channel}> PROJECT"
                    f"{' ' + mode if mode else ''}` (one of {', '.join(projects) or 'no projects yet'}).")
            project = registry.get_project(session=s, key=projects[0])
            if actor.slack_id != project.owner:
                authority.require(session=s, slack_id=actor.slack_id, project=project, roles=Role.admin,
                                  doing=f"Choosing where {project.key}'s alerts go (its owner "
                                        f"{mention(project.owner)} can)")
            delivery = status_store.set_channel(session=s, project_key=project.key, persona=persona,
                                                channel=channel, actor=actor.slack_id, delivery=mode)
            return project.key, delivery

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

    @staticmethod
    def _may_act_on(s: Session, actor: Actor, model: Model, doing: str) -> None:
        """Alert clicks (acknowledge, snooze, rate) take any role on the project that owns the model."""
        authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=PERSONAS, doing=doing)

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
            self._may_act_on(s, actor, self._alert(s, alert_id).model, "Acknowledging this alert")
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
                raise InvalidTransition(f"'{escape_mrkdwn(duration)}' is not a duration; try 1h, 4h, 24h or 7d.") \
                    from None
            if length > SNOOZE_LIMIT:
                raise InvalidTransition("Snooze for 30 days at most; acknowledge the alert to stop reminders "
                                        "instead.")
        now = self.clock()
        until = now + length
        note = f"Snoozed by {mention(actor.slack_id)} until {until:%a %H:%M} UTC"

        def work(s: Session) -> str:
            if alert_id is not None:
                alerts = [self._alert(s, alert_id)]
                self._may_act_on(s, actor, alerts[0].model, "Snoozing this alert")
            else:
                model = registry.get_model(session=s, key=model_key)
                self._may_act_on(s, actor, model, f"Snoozing the alerts of {model.key}")
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
            self._may_act_on(s, actor, self._alert(s, alert_id).model, "Rating this alert")
            monitoring.record_feedback(session=s, alert_id=alert_id, person=actor.slack_id, noise=noise, now=now)
            return note

        with refusals_audited(self.db, actor.slack_id, "alert.feedback", f"alert:{alert_id}"):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so your feedback can't be counted.")
        return self._queued(work, actor=actor, action="alert.feedback", subject=f"alert:{alert_id}")

    # -- retrain ---------------------------------------------------------------------------

    def request_retrain(self, actor: Actor, model_key: str, *, reason: str = "", alert_id: int | None = None,
                        response_url: str | None = None) -> str:
        """Record the retrain before the ack; a double click or retry finds the same request."""
        with refusals_audited(self.db, actor.slack_id, "retrain", f"model:{model_key}"), self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=Role.ml_engineer,
                              doing=f"Retraining {model_key}")
            item, created = work.request(session=s, model=model, kind="retrain", requested_by=actor.slack_id,
                                         payload={"reason": reason, "alert": alert_id,
                                                  "response_url": response_url}, now=self.clock(),
                                         stale_after=training_timeout(self.settings))
            item_id, requested_by = item.id, item.requested_by
        if not created:
            return f"{model_key} is already retraining (requested by {mention(requested_by)})."
        if self.runner is not None:
            self.runner.submit(self.work.run, item_id)
        said = f" ({escape_mrkdwn(reason)})" if reason else ""
        return f"Retraining {model_key}{said}. I'll post here when v-next is ready."

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
                payload={"reason": reason, "alert": alert_id, "response_url": None},
                stale_after=training_timeout(self.settings))
            item_id = item.id if item is not None and created else None
        if item_id is not None and self.runner is not None:
            self.runner.submit(self.work.run, item_id)
        return item_id

    def request_evaluation(self, actor: Actor, model_key: str, number: int, *, alert_id: int | None = None,
                           response_url: str | None = None) -> EvaluationAsked:
        """Compare a candidate with production again: after a comparison failed (no labelled rows yet, a
        source down) or to see it on the latest window. Candidates only: a version in review keeps the
        comparison its signers were shown. With `alert_id`, news of it goes to that alert's thread too."""
        with refusals_audited(self.db, actor.slack_id, "evaluate", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=Role.ml_engineer,
                              doing=f"Comparing {model_key} v{number} with production")
            version = registry.get_version(session=s, model_key=model_key, number=number)
            if version.status != VersionStatus.candidate:
                raise InvalidTransition(f"{model_key} v{number} is {version.status.value.replace('_', ' ')}, so its "
                                        "comparison stays as it was; only candidates are compared again.")
            item, queued = work.request_evaluation(
                session=s, model=model, requested_by=actor.slack_id, now=self.clock(),
                entry={"number": number, "alert": alert_id, "response_url": response_url})
            item_id, tried = item.id, number in item.result.get("evaluated", []) + item.result.get("failed", [])
        if not queued and tried:  # its turn in the live item is over; that item still compares another version
            return EvaluationAsked(f"Another version of {model_key} is being compared with production right now. "
                                   f"Ask for v{number} again when that comparison is posted.", queued=False)
        if not queued:
            return EvaluationAsked(f"{model_key} v{number} is already waiting to be compared with production.",
                                   queued=False)
        if self.runner is not None:
            self.runner.submit(self.work.run, item_id)
        return EvaluationAsked(f"Comparing {model_key} v{number} with production on the latest labelled window. "
                               "The comparison goes to the ML engineers' channel.", queued=True)

    # -- governance ------------------------------------------------------------------------

    def _version(self, s, model_key: str, number: int) -> ModelVersion:
        return registry.get_version(session=s, model_key=model_key, number=number)

    def submit(self, actor: Actor, model_key: str, number: int) -> str:
        with refusals_audited(self.db, actor.slack_id, "version.submit", f"model:{model_key}/v{number}"), \
                self.db.session() as s:
            version = self._version(s, model_key, number)
            authority.require(session=s, slack_id=actor.slack_id, project=version.model.project,
                              roles=Role.ml_engineer, doing=f"Submitting {model_key} v{number} for sign-off")
            governance.submit_for_review(session=s, version=version, by=actor.slack_id, now=self.clock())
            waiting = governance.waiting_steps(session=s, version=version)
        self.notifier.signoff_requested(model_key, number)
        steps = escape_mrkdwn(", ".join(p.describe() for p in waiting)) or "nothing: it is approved"
        return f"{model_key} v{number} submitted for sign-off by {mention(actor.slack_id)}. Waiting for: {steps}."

    def sign(self, actor: Actor, model_key: str, number: int, decision: Decision, reason: str = "") -> tuple[str, bool]:
        """Record a decision; returns the sentence to show and whether the version's review is over."""
        with refusals_audited(self.db, actor.slack_id, f"signoff.{decision.value}", f"model:{model_key}/v{number}"), \
                stale_refusals_worded("sign"), self.db.session() as s:
            if actor.person is None:
                raise Forbidden(f"You're not set up in Flywheel yet, so you can't sign off {model_key} v{number}.")
            version = self._version(s, model_key, number)
            person = registry.require_person(session=s, slack_id=actor.slack_id)
            record = governance.sign_off(session=s, version=version, person=person, decision=decision,
                                         reason=reason, now=self.clock())
            status, step = version.status, record.step.name
        verb = "Approved" if decision == Decision.approve else "Rejected"
        said = f': "{escape_mrkdwn(reason.strip())}"' if reason.strip() else ""
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
            with refusals_audited(self.db, actor.slack_id, "deploy", subject), stale_refusals_worded("deploy"), \
                    self.db.session() as s:
                version = self._version(s, model_key, number)
                authority.require(session=s, slack_id=actor.slack_id, project=version.model.project,
                                  roles=Role.ml_engineer, doing=f"Deploying {model_key}")
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
                self.runner.submit(self.work.run, item_id)
            return Deploy(f"Deploying {model_key} v{number} through its deploy webhook. IT operations will be told "
                          f"when it is live; until then production stays {previous_label or 'empty'}.", Deploy.ASKED)
        self.notifier.deployed(model_key, number, previous=previous_label)
        return Deploy(f"{model_key} v{number} is live. Previous production version: {previous_label or 'none'}.",
                      Deploy.LIVE)

    def rollback(self, actor: Actor, model_key: str, *, to: int | None = None, seen_live: int | None = None,
                 response_url: str | None = None) -> str:
        """Return production to version `to` (default: the one before the current one). `seen_live`: the
        version the asker saw live (a Roll back button's); refused with what changed if production moved."""
        queued = None
        with refusals_audited(self.db, actor.slack_id, "rollback", f"model:{model_key}"), \
                stale_refusals_worded("rollback"), self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            authority.require(session=s, slack_id=actor.slack_id, project=model.project,
                              roles=(Role.it_ops, Role.ml_engineer), doing=f"Rolling back {model_key}")
            if load_spec(model).deploy.backend == "registry":
                done = governance.rollback(session=s, model=model, by=actor.slack_id, to=to, seen_live=seen_live,
                                           now=self.clock())
                labels = (done.stopped.label, done.restored.label, done.restored.number)
            else:
                planned = governance.plan_rollback(session=s, model=model, to=to, seen_live=seen_live)
                current, target = planned.stopped, planned.restored
                item, created = work.request(session=s, model=model, kind="rollback", requested_by=actor.slack_id,
                                             now=self.clock(), payload={"from": current.number, "to": target.number,
                                                                        "response_url": response_url})
                queued = (item.id, created, item.requested_by, current.label, target.label)
        if queued is not None:
            item_id, created, asked_by, from_label, to_label = queued
            if not created:
                return f"A rollback of {model_key} is already under way (asked by {mention(asked_by)})."
            if self.runner is not None:
                self.runner.submit(self.work.run, item_id)
            return (f"Rolling back {model_key} to {to_label} through its deploy webhook. IT operations will be told "
                    f"when {to_label} is live again; {from_label} serves until then.")
        self.notifier.rolled_back(model_key, labels[2], from_label=labels[0], by=actor.slack_id)
        return f"Rolled back by {mention(actor.slack_id)} at {self.clock():%H:%M} UTC: {model_key} " \
               f"{labels[1]} is live again, {labels[0]} stopped."

    def first_request(self, key: str) -> bool:
        """Claim a Slack request's identity before it acts: False when a retry or a repeat of the same
        payload already claimed it (in any process), so it must do nothing and answer nothing."""
        with self.db.session(changes_status=False) as s:
            return slack_requests.claim(session=s, key=key, now=self.clock())
