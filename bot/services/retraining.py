"""Retraining a model and comparing a version with production: recorded before the ack, run by jobs/work_runner.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.blocks.common import escape_mrkdwn, mention
from bot.services.common import AUTOMATIC, Actor, Service, refusals_audited
from jobs.artifacts import artifact_roots, check_for_registration
from jobs.monitor import load_spec
from jobs.retrain import Registered, compare_with_production, evaluation_window, register_trained_version
from jobs.sources import SourceError
from jobs.work_runner import training_timeout
from store import authority, registry, work
from store.errors import FlywheelError, InvalidTransition
from store.models import Role, VersionStatus, WorkState

REGISTERED_FROM_TERMINAL = "registered from the terminal (flywheel versions register)"
ADOPTED_FROM_TERMINAL = "adopted as the version serving today (flywheel versions register --production)"

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class EvaluationAsked:
    """What asking for a comparison with production did: queued it, or found it already waiting."""

    note: str
    queued: bool


@dataclass(frozen=True)
class FileRegistered:
    """A model file the team already had, registered: as a candidate (its comparison with production
    queued) or adopted as the version serving today (its metrics computed on the latest labelled window)."""

    model_key: str
    number: int
    sha256: str
    adopted: bool
    metrics: dict[str, float]
    window: tuple[datetime, datetime] | None  # the labelled window the metrics are from
    problem: str = ""  # why the metrics could not be computed ("" when they were, or were not asked for)
    evaluation: int | None = None  # the comparison with production queued for a candidate


@dataclass(frozen=True)
class RetrainOutcome:
    """Where a model's latest retrain stands: done (its version), failed (why), or still live."""

    state: WorkState
    version: int | None
    compared: bool  # False: the version was trained, its comparison with production failed
    error: str
    backend: str | None


class Retraining(Service):
    def request_retrain(self, actor: Actor, model_key: str, *, reason: str = "", alert_id: int | None = None,
                        response_url: str | None = None) -> str:
        """Record the retrain before the ack; a double click or retry finds the same request."""
        with refusals_audited(self.db, actor.slack_id, "retrain", f"model:{model_key}"), self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=Role.ml_engineer,
                              team=actor.team, doing=f"Retraining {model_key}")
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
        return f"Retraining {model_key}{said}. I'll post here when the new version is ready."

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
                              team=actor.team, doing=f"Comparing {model_key} v{number} with production")
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


    def register_trained(self, *, model_key: str, artifact_uri: str, artifact_sha256: str | None,
                         metrics: dict[str, Any], parameters: dict[str, Any], train_start: datetime | None,
                         train_end: datetime | None, work_item: int | None) -> Registered:
        """A version an external trainer produced (the trainers' API): registered once, its retrain finished
        and its comparison with production queued. The caller is the trainer holding the API token."""
        return register_trained_version(db=self.db, model_key=model_key, artifact_uri=artifact_uri,
                                        artifact_sha256=artifact_sha256, artifacts_dir=self.settings.artifacts,
                                        metrics=metrics, parameters=parameters, train_start=train_start,
                                        train_end=train_end, work_item=work_item)

    def register_file(self, actor: Actor, model_key: str, artifact_uri: str, *,
                      production: bool = False) -> FileRegistered:
        """Register a model file the team already has (the terminal's `versions register`), on the artifact
        rules every version follows: under the artifact roots, its SHA-256 recorded, never unpickled here.

        A candidate gets its comparison with production queued, as a trainer's callback does. `production`
        adopts it as the version serving today, allowed only while the model has none (later changes of
        production go through sign-off and deploy): registered, evaluated alone on the latest labelled
        window, then adopted (audited `version.adopted`)."""
        subject = f"model:{model_key}"
        doing = "Adopting the production version of" if production else "Registering a version of"
        with refusals_audited(self.db, actor.slack_id, "version.adopt" if production else "version.register",
                              subject):
            with self.db.session() as s:
                model = registry.lock_model(session=s, model=registry.get_model(session=s, key=model_key))
                authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=Role.ml_engineer,
                                  team=actor.team, doing=f"{doing} {model_key}")
                if model.spec and (mirrored := load_spec(model).registry) is not None:
                    raise InvalidTransition(
                        f"{model_key} keeps its versions in MLflow ({escape_mrkdwn(mirrored.name)}, its spec's "
                        f"registry): register the model there, and `flywheel mlflow sync {model_key}` brings it here.")
                current = registry.production_version(session=s, model=model)
                if production and current is not None:
                    raise InvalidTransition(
                        f"{model_key} already has {current.label} in production, so it can't adopt another: register "
                        f"the file without --production, then submit, sign off and deploy it.")
                roots = artifact_roots(self.settings.artifacts, load_spec(model).artifact_roots if model.spec else [],
                                       model.spec_dir)
                artifact = check_for_registration(artifact_uri, roots=roots)
                version = registry.register_version(
                    session=s, model_key=model_key, created_by=actor.slack_id, artifact_uri=artifact.uri,
                    artifact_sha256=artifact.sha256, parent=current, now=self.clock(),
                    parameters={"trigger": ADOPTED_FROM_TERMINAL if production else REGISTERED_FROM_TERMINAL})
                number, spec = version.number, load_spec(model) if model.spec else None
                evaluation = None
                if not production:
                    item, _ = work.request_evaluation(session=s, model=model, requested_by=actor.slack_id,
                                                      now=self.clock(), entry={"number": number, "alert": None,
                                                                               "response_url": None})
                    evaluation = item.id
            if not production:
                if self.runner is not None:
                    self.runner.submit(self.work.run, evaluation)
                return FileRegistered(model_key, number, artifact.sha256, False, {}, None, evaluation=evaluation)
            metrics, window, problem = self._evaluate_alone(model_key, number, spec)
            with self.db.session() as s:
                registry.lock_model(session=s, model=registry.get_model(session=s, key=model_key))
                registry.adopt_as_production(session=s, version=registry.get_version(
                    session=s, model_key=model_key, number=number), actor=actor.slack_id, now=self.clock())
        return FileRegistered(model_key, number, artifact.sha256, True, metrics, window, problem)

    def _evaluate_alone(self, model_key: str, number: int, spec) -> tuple[dict[str, float], tuple | None, str]:
        """A version's metrics on the latest labelled window, by the comparison retrains use (with no production
        version it scores the one version); what went wrong instead, when the data can't give them."""
        if spec is None:
            return {}, None, f"{model_key} has no spec, so Flywheel doesn't know where its labelled data is"
        now = self.clock()
        try:
            start, end = evaluation_window(spec, now, None)
            compared = compare_with_production(db=self.db, model_key=model_key, number=number, window_start=start,
                                               window_end=end, artifacts_dir=self.settings.artifacts, now=now)
        except (FlywheelError, SourceError, ValueError) as exc:
            return {}, None, str(exc)
        return dict(compared.challenger_metrics), (start, end), ""

    def retrain_outcome(self, model_key: str) -> RetrainOutcome | None:
        """The model's latest retrain: what the terminal reports once it ran (or was handed to a trainer)."""
        with self.db.read() as s:
            item = work.latest(session=s, model=registry.get_model(session=s, key=model_key), kind="retrain")
            if item is None:
                return None
            return RetrainOutcome(item.state, item.result.get("version"), item.result.get("compared", True), item.error,
                                  item.result.get("backend"))
