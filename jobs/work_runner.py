"""Running the work people asked for (retrain, evaluate, deploy, rollback), once each, in the worker.

bot/services records a request before Slack gets its answer; the worker claims each queued item
and runs it here. A failure is recorded on the item and told to whoever asked; a worker killed mid-way
resumes the item from what it recorded.

The runner tells people what happened as facts (WorkNews below); bot/notifier words them and finds whom to
tell. It reads its settings through RunnerSettings and hands the same object to the trainer and deploy
backends, which read their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from jobs import metrics_registry as metrics
from jobs.backends import DeployRequest, TrainingRequest, call_deploy_webhook, dispatch
from jobs.monitor import load_spec
from jobs.retrain import compare_with_production, evaluation_window, retrain, retrain_trigger, training_window
from jobs.sources import SourceError
from store import governance, monitoring, registry, work
from store.clock import utcnow
from store.db import Database, unreachable
from store.errors import FlywheelError, InvalidTransition
from store.models import WorkItem, WorkState
from jobs.spec import ModelSpec

log = logging.getLogger(__name__)


class RunnerSettings(Protocol):
    """The settings the runner reads (bot/config.py's Settings has them)."""

    artifacts: Path
    training_timeout_hours: float

    @property
    def callback_url(self) -> str: ...


@dataclass(frozen=True)
class WorkFailure:
    """A work item failed: what it was, who asked, and the error (plain text, as recorded on the item)."""

    kind: str  # retrain | evaluate | deploy | rollback
    model_key: str
    requested_by: str
    version: int | None  # the version a deploy asked for
    to: int | None  # the version a rollback asked for
    error: str


@dataclass(frozen=True)
class ComparisonFailure:
    """A version could not be compared with production; it can be compared again once `problem` is fixed."""

    model_key: str
    number: int
    problem: str  # plain text
    retrained: bool  # the runner has just trained it (and keeps it); False for a version sent to be evaluated


class WorkNews(Protocol):
    """What the runner tells people, as facts. `alert_id` is the alert the work answers (its thread), and
    `response_url` reaches whoever typed the command, for a while."""

    def candidate_ready(self, model_key: str, number: int, *, alert_id: int | None) -> object: ...

    def training_dispatched(self, model_key: str, number: int, trainer: str, *, alert_id: int | None,
                            response_url: str | None) -> object: ...

    def could_not_compare(self, failure: ComparisonFailure, *, alert_id: int | None,
                          response_url: str | None) -> None: ...

    def work_item_failed(self, failure: WorkFailure, *, alert_id: int | None, response_url: str | None) -> None: ...

    def deployed(self, model_key: str, number: int, *, previous: str | None,
                 superseded: tuple[int, ...] = ()) -> object: ...

    def deployed_unsigned(self, model_key: str, number: int, *, by: str, missing: list[str]) -> object: ...

    def rolled_back(self, model_key: str, number: int, *, from_label: str, by: str,
                    superseded: tuple[int, ...] = ()) -> object: ...


def training_timeout(settings: RunnerSettings) -> timedelta:
    """How long a dispatched retrain may wait for its trainer's callback before it is failed."""
    return timedelta(hours=settings.training_timeout_hours)


@dataclass(frozen=True)
class Job:
    """A claimed work item, as plain data for the step that runs it."""

    id: int
    kind: str
    model_key: str
    payload: dict
    result: dict
    requested_by: str

    @classmethod
    def of(cls, item: WorkItem) -> Job:
        return cls(item.id, item.kind, item.model.key, dict(item.payload), dict(item.result), item.requested_by)


@dataclass
class WorkRunner:
    """What the worker runs for each queued work item, and its sweep of retrains never called back."""

    settings: RunnerSettings
    db: Database
    notifier: WorkNews
    clock: Callable[[], datetime] = utcnow
    # After a deploy or rollback moved production: (model, version, by, "deploy" | "rollback"). The composition
    # root sets it to move MLflow's alias (bot.services.mlflow_sync), which audits and tells its own failures.
    after_release: Callable[[str, int, str, str], object] | None = None

    def run(self, item_id: int) -> None:
        """Execute one queued work item, exactly once: whoever claims it first runs it. Never raises: a
        failure is recorded on the item and told to whoever asked."""
        with self.db.session() as s:
            item = work.claim(session=s, item_id=item_id, now=self.clock())
            if item is None:
                return
            job = Job.of(item)
        steps = {"retrain": self._retrain, "evaluate": self._evaluate, "deploy": self._deploy_now,
                 "rollback": self._rollback_now}
        try:
            if job.kind not in steps:
                raise InvalidTransition(f"unknown kind of work {job.kind!r}")
            steps[job.kind](job)
        except FlywheelError as exc:
            self._work_failed(job, str(exc))
        except Exception as exc:  # keep the traceback for the operator; tell the asker what happened
            if unreachable(exc):  # not the work's failure: the worker queues it again once the database is back
                raise
            log.exception("%s of %s failed", job.kind, job.model_key)
            self._work_failed(job, f"{exc.__class__.__name__}: {exc}")
        with self.db.read() as s:  # counted by the state the item ended in, once it is recorded
            metrics.work_finished(job.kind, s.get(WorkItem, job.id).state.value)

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
                                    window_end=now, artifacts_dir=self.settings.artifacts, now=now)
        except Exception as exc:  # the version is trained and kept: only its comparison is to be run again
            with self.db.session() as s:
                work.finish(session=s, item_id=job.id, result={"version": number, "compared": False},
                            now=self.clock())
            self._comparison_failed(job.model_key, number, exc, retrained=True, alert_id=job.payload.get("alert"),
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
            self.notifier.training_dispatched(job.model_key, number, sent.description,
                                              alert_id=job.payload.get("alert"),
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
                self._comparison_failed(job.model_key, number, exc, retrained=False,
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

    def _comparison_failed(self, model_key: str, number: int, exc: Exception, *, retrained: bool,
                           alert_id: int | None, response_url: str | None) -> None:
        """Tell the ML engineer why, and how to run the comparison again once the cause is fixed."""
        if isinstance(exc, (FlywheelError, SourceError)):  # says what is wrong in words; no traceback needed
            problem = str(exc)
        else:
            log.exception("comparing %s v%s with production failed", model_key, number)
            problem = f"{exc.__class__.__name__}: {exc}"
        self.notifier.could_not_compare(ComparisonFailure(model_key, number, problem, retrained),
                                        alert_id=alert_id, response_url=response_url)

    def _compare_and_announce(self, model_key: str, spec: ModelSpec, entry: dict) -> None:
        number = entry["number"]
        with self.db.read() as s:
            train_end = registry.get_version(session=s, model_key=model_key, number=number).train_end
        now = self.clock()
        start, end = evaluation_window(spec, now, train_end)
        compare_with_production(db=self.db, model_key=model_key, number=number, window_start=start, window_end=end,
                                artifacts_dir=self.settings.artifacts, now=now)
        self.notifier.candidate_ready(model_key, number, alert_id=entry.get("alert"))

    def _registered_by(self, model_key: str, item_id: int) -> int | None:
        with self.db.session() as s:
            return next((v.number for v in registry.get_model(session=s, key=model_key).versions
                         if v.parameters.get("work_item") == item_id), None)

    def expire_overdue(self) -> int:
        """Tell the askers of retrains whose trainer never called back; the worker runs this every minute."""
        with self.db.session() as s:
            expired = work.expire_overdue(session=s, stale_after=training_timeout(self.settings), now=self.clock())
            overdue = [(Job.of(item), item.error) for item in expired]
        for job, error in overdue:
            self.notifier.work_item_failed(_failure(job, error), alert_id=job.payload.get("alert"),
                                           response_url=job.payload.get("response_url"))
        return len(overdue)

    def _work_failed(self, job: Job, error: str) -> None:
        with self.db.session() as s:
            item = work.lock(session=s, item_id=job.id)
            if item.state != WorkState.running:  # done, or waiting for its trainer: only a follow-up failed
                log.error("%s work %d on %s is %s, but a later step failed: %s", job.kind, job.id, job.model_key,
                          item.state.value, error)
                return
            work.fail(session=s, item_id=job.id, error=error, now=self.clock())
        self.notifier.work_item_failed(_failure(job, error), alert_id=job.payload.get("alert"),
                                       response_url=job.payload.get("response_url"))

    def _deploy_now(self, job: Job) -> None:
        """A recorded deploy: the team's system first; production moves only when it said yes."""
        number = job.payload["version"]
        with self.db.read() as s:
            version = registry.get_version(session=s, model_key=job.model_key, number=number)
            missing = governance.ensure_deployable(session=s, version=version)
            policy = governance.policy_of(version.model.project)
            previous = registry.production_version(session=s, model=version.model)
            previous_label = previous.label if previous else None
            backend, artifact_uri = load_spec(version.model).deploy, version.artifact_uri
        if backend.backend == "webhook":
            call_deploy_webhook(backend.url, DeployRequest("deploy", job.model_key, number, artifact_uri,
                                                           previous_label, job.requested_by, job.id), self.settings)
        with self.db.session() as s:
            version = registry.get_version(session=s, model_key=job.model_key, number=number)
            governance.deploy(session=s, version=version, by=job.requested_by, now=self.clock())
            superseded = monitoring.resolve_superseded(session=s, live=version, now=self.clock())
            work.finish(session=s, item_id=job.id, result={"version": number, "previous": previous_label},
                        now=self.clock())
        metrics.alerts_superseded(superseded.personas)
        self.notifier.deployed(job.model_key, number, previous=previous_label, superseded=superseded.ids)
        if policy == governance.POLICY_WARN and missing:  # went ahead with sign-offs missing: the risk channel hears
            self.notifier.deployed_unsigned(job.model_key, number, by=job.requested_by, missing=missing)
        self._released(job.model_key, number, job.requested_by, "deploy")

    def _released(self, model_key: str, number: int, by: str, kind: str) -> None:
        if self.after_release is None:
            return
        try:
            self.after_release(model_key, number, by, kind)
        except FlywheelError:  # audited and told by after_release; the release itself is done
            log.warning("after the %s of %s v%s, MLflow's alias was not moved", kind, model_key, number)

    def _rollback_now(self, job: Job) -> None:
        """A recorded rollback: the team's system first; production moves back only when it said yes."""
        to, seen_live = job.payload.get("to"), job.payload["from"]
        with self.db.session() as s:  # a writing unit: the plan locks the model to compare
            model = registry.get_model(session=s, key=job.model_key)
            planned = governance.plan_rollback(session=s, model=model, to=to, seen_live=seen_live)
            backend = load_spec(model).deploy
            request = DeployRequest("rollback", job.model_key, planned.restored.number, planned.restored.artifact_uri,
                                    planned.stopped.label, job.requested_by, job.id)
        if backend.backend == "webhook":
            call_deploy_webhook(backend.url, request, self.settings)
        with self.db.session() as s:
            model = registry.get_model(session=s, key=job.model_key)
            done = governance.rollback(session=s, model=model, by=job.requested_by, to=request.number,
                                       seen_live=seen_live, now=self.clock())
            superseded = monitoring.resolve_superseded(session=s, live=done.restored, now=self.clock())
            from_label, number = done.stopped.label, done.restored.number
            work.finish(session=s, item_id=job.id, result={"version": number, "from": from_label}, now=self.clock())
        metrics.alerts_superseded(superseded.personas)
        self.notifier.rolled_back(job.model_key, number, from_label=from_label, by=job.requested_by,
                                  superseded=superseded.ids)
        self._released(job.model_key, number, job.requested_by, "rollback")


def _failure(job: Job, error: str) -> WorkFailure:
    return WorkFailure(job.kind, job.model_key, job.requested_by, job.payload.get("version"), job.payload.get("to"),
                       error)
