"""What people can do from Slack, whichever surface they use (command, button, modal).

Each operation authorizes, changes the registry in one unit of work, audits, and returns a short
sentence for the person who asked. Refusals raise typed domain errors and are audited too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.blocks.common import mention
from bot.config import Settings
from jobs.retrain import compare_with_production, retrain
from store import audit, governance, monitoring, registry, work
from store import status as status_store
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, Forbidden, InvalidTransition, NotFound
from store.models import Alert, AlertState, Decision, Model, ModelVersion, Person, Role, VersionStatus
from store.spec import parse_duration
from store.status import ModelStatus

log = logging.getLogger(__name__)

SNOOZE_LIMIT = timedelta(days=30)
ACTOR_TTL_SECONDS = 30.0  # a role change in a spec reaches Slack within this
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


@dataclass
class Operations:
    settings: Settings
    db: Database
    notifier: object  # bot.alerts.Notifier, kept loose so tests can build operations without Slack
    # In-process runner for slow work (tests, `flywheel run --inline`); None: the worker process runs it.
    runner: Runner | None = None
    followups: Runner = field(default_factory=lambda: Runner(ThreadPoolExecutor(2, thread_name_prefix="slack")))
    clock: Callable[[], datetime] = utcnow
    _home_viewers: set[str] = field(default_factory=set)
    _actors: dict[str, tuple[float, Actor]] = field(default_factory=dict)
    status_recheck_seconds: float = 1.0  # how soon a change made by another process (the worker) shows
    _statuses: dict[str, _CachedStatus] = field(default_factory=dict)
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
        now, commits = time.monotonic(), self.db.commits
        cached = self._statuses.get(model_key)
        if cached is not None and cached.commits == commits and now - cached.checked < self.status_recheck_seconds:
            return cached.status
        with self.db.read() as s:
            stamp = status_store.freshness(session=s)
            if cached is None or cached.stamp != stamp:
                cached = _CachedStatus(stamp, status_store.model_status(session=s, key=model_key), commits, now)
        if len(self._statuses) >= STATUS_CACHE_SIZE:
            self._statuses.clear()
        self._statuses[model_key] = replace(cached, commits=commits, checked=now)
        return cached.status

    def seen_home(self, slack_id: str) -> None:
        self._home_viewers.add(slack_id)

    def home_viewers(self) -> list[str]:
        return sorted(self._home_viewers)

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

    def acknowledge(self, actor: Actor, alert_id: int) -> str:
        with refusals_audited(self.db, actor.slack_id, "alert.acknowledge", f"alert:{alert_id}"), \
                self.db.session() as s:
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't acknowledge alerts.")
            # Two narrow statements, not ORM objects: this runs inside Slack's ack for every click.
            found = s.execute(select(Alert.state, Model.key).join(Model, Model.id == Alert.model_id)
                              .where(Alert.id == alert_id)).one_or_none()
            if found is None:
                raise NotFound(f"Alert {alert_id} no longer exists.")
            if found.state == AlertState.resolved:
                raise InvalidTransition("This alert is already resolved.")
            s.execute(update(Alert).where(Alert.id == alert_id)
                      .values(state=AlertState.acknowledged, updated_at=self.clock()))
            audit.record(session=s, actor=actor.slack_id, action="alert.acknowledged",
                         subject=f"model:{found.key}", details={"alert": alert_id}, at=self.clock())
        return f"Acknowledged by {mention(actor.slack_id)} at {self.clock():%H:%M} UTC"

    def snooze(self, actor: Actor, *, alert_id: int | None = None, model_key: str | None = None,
               duration: str) -> str:
        try:
            length = parse_duration(duration)
        except ValueError:
            raise InvalidTransition(f"'{duration}' is not a duration; try 1h, 4h, 24h or 7d.") from None
        if length > SNOOZE_LIMIT:
            raise InvalidTransition("Snooze for 30 days at most; acknowledge the alert to stop reminders instead.")
        until = self.clock() + length
        subject = f"alert:{alert_id}" if alert_id else f"model:{model_key}"
        with refusals_audited(self.db, actor.slack_id, "alert.snooze", subject), self.db.session() as s:
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't snooze alerts.")
            if alert_id is not None:
                alerts = [self._alert(s, alert_id)]
            else:
                model = registry.get_model(session=s, key=model_key)
                alerts = monitoring.live_alerts(session=s, model=model)
                if not alerts:
                    raise InvalidTransition(f"{model.key} has no open alerts to snooze.")
            for alert in alerts:
                alert.state, alert.snoozed_until, alert.updated_at = AlertState.snoozed, until, self.clock()
            audit.record(session=s, actor=actor.slack_id, action="alert.snoozed", subject=subject,
                         details={"until": until.isoformat(), "alerts": [a.id for a in alerts]}, at=self.clock())
        return f"Snoozed by {mention(actor.slack_id)} until {until:%a %H:%M} UTC"

    def feedback(self, actor: Actor, alert_id: int, *, noise: bool) -> str:
        with refusals_audited(self.db, actor.slack_id, "alert.feedback", f"alert:{alert_id}"), \
                self.db.session() as s:
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so your feedback can't be counted.")
            monitoring.record_feedback(session=s, alert_id=alert_id, person=actor.slack_id, noise=noise,
                                       now=self.clock())
        return ("Marked as noise. Thanks: `flywheel report noise` shows which thresholds alert too often."
                if noise else "Marked as useful. Thanks.")

    # -- retrain ---------------------------------------------------------------------------

    def request_retrain(self, actor: Actor, model_key: str, *, reason: str = "", alert_id: int | None = None,
                        response_url: str | None = None) -> str:
        """Record the retrain before the ack; a double click or retry finds the same request."""
        with refusals_audited(self.db, actor.slack_id, "retrain", f"model:{model_key}"), self.db.session() as s:
            actor.require(Role.ml_engineer, f"retrain {model_key}")
            model = registry.get_model(session=s, key=model_key)
            item, created = work.request(session=s, model=model, kind="retrain", requested_by=actor.slack_id,
                                         payload={"reason": reason, "alert": alert_id,
                                                  "response_url": response_url}, now=self.clock())
            item_id, requested_by = item.id, item.requested_by
        if not created:
            return f"{model_key} is already retraining (requested by {mention(requested_by)})."
        if self.runner is not None:
            self.runner.submit(self.run_work, item_id)
        return f"Retraining {model_key}{f' ({reason})' if reason else ''}. I'll post here when v-next is ready."

    def run_work(self, item_id: int) -> None:
        """Execute one queued work item, exactly once: whoever claims it first runs it."""
        with self.db.session() as s:
            item = work.claim(session=s, item_id=item_id, now=self.clock())
            if item is None:
                return
            model_key, payload, requested_by = item.model.key, dict(item.payload), item.requested_by
            window = item.model.spec.get("drift", {}).get("window", "7d")
            kind = item.kind
        if kind != "retrain":
            self._work_failed(item_id, model_key, f"unknown kind of work {kind!r}", payload)
            return
        try:
            now = self.clock()
            holdout = parse_duration(window)
            # The latest window is held out: the candidate is compared with production on data it never saw.
            trigger = payload.get("reason") or f"retrain requested by {mention(requested_by)}"
            # A worker killed after registering the version resumes from there, not with a second version.
            number = self._registered_by(model_key, item_id)
            if number is None:
                number = retrain(db=self.db, model_key=model_key, requested_by=requested_by, trigger=trigger,
                                 as_of=now - holdout, artifacts_dir=self.settings.artifacts, now=now,
                                 work_item=item_id).number
            compare_with_production(db=self.db, model_key=model_key, number=number,
                                    window_start=now - holdout, window_end=now, now=now)
            self.notifier.candidate_ready(model_key, number, alert_id=payload.get("alert"))
            with self.db.session() as s:
                work.finish(session=s, item_id=item_id, result={"version": number}, now=self.clock())
        except FlywheelError as exc:
            self._work_failed(item_id, model_key, str(exc), payload)
        except Exception as exc:  # keep the traceback for the operator; tell the asker what happened
            log.exception("retrain of %s failed", model_key)
            self._work_failed(item_id, model_key, f"{exc.__class__.__name__}: {exc}", payload)

    def _registered_by(self, model_key: str, item_id: int) -> int | None:
        with self.db.session() as s:
            return next((v.number for v in registry.get_model(session=s, key=model_key).versions
                         if v.parameters.get("work_item") == item_id), None)

    def _work_failed(self, item_id: int, model_key: str, error: str, payload: dict) -> None:
        with self.db.session() as s:
            work.fail(session=s, item_id=item_id, error=error, now=self.clock())
        self.notifier.work_failed(model_key, f"Retraining {model_key} failed: {error}", alert_id=payload.get("alert"),
                                  response_url=payload.get("response_url"))

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
        self.notifier.refresh_home()
        if status == VersionStatus.approved:
            self.later(self.notifier.approved, model_key, number)
        note = f"{verb} by {mention(actor.slack_id)} ({step}) at {self.clock():%H:%M} UTC{said}"
        return note, status != VersionStatus.in_review

    def deploy(self, actor: Actor, model_key: str, number: int) -> str:
        subject = f"model:{model_key}/v{number}"
        try:
            with refusals_audited(self.db, actor.slack_id, "deploy", subject), self.db.session() as s:
                actor.require(Role.ml_engineer, f"deploy {model_key}")
                version = self._version(s, model_key, number)
                previous = registry.production_version(session=s, model=version.model)
                previous_label = previous.label if previous else None
                governance.deploy(session=s, version=version, by=actor.slack_id, now=self.clock())
        except governance.GovernanceBlocked as blocked:
            with self.db.session() as s:
                version = self._version(s, model_key, number)
                governance.note_deploy_request(session=s, version=version, by=actor.slack_id,
                                               reason=str(blocked), now=self.clock())
            asked = self.notifier.ask_approvers(model_key, number, blocked.waiting)
            raise governance.GovernanceBlocked(f"{blocked}{f' {asked} been asked.' if asked else ''}",
                                               blocked.waiting) from None
        self.notifier.deployed(model_key, number, previous=previous_label)
        return f"{model_key} v{number} is live. Previous production version: {previous_label or 'none'}."

    def rollback(self, actor: Actor, model_key: str) -> str:
        with refusals_audited(self.db, actor.slack_id, "rollback", f"model:{model_key}"), self.db.session() as s:
            if not (actor.has(Role.it_ops) or actor.has(Role.ml_engineer)):
                actor.require(Role.it_ops, f"roll back {model_key}")
            model = registry.get_model(session=s, key=model_key)
            current = registry.production_version(session=s, model=model)
            if current is None:
                raise InvalidTransition(f"{model_key} has nothing in production to roll back.")
            restored = governance.rollback(session=s, model_version=current, by=actor.slack_id, now=self.clock())
            labels = (current.label, restored.label, restored.number)
        self.notifier.rolled_back(model_key, labels[2], from_label=labels[0], by=actor.slack_id)
        return f"Rolled back by {mention(actor.slack_id)} at {self.clock():%H:%M} UTC: {model_key} " \
               f"{labels[1]} is live again, {labels[0]} stopped."
