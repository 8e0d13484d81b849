"""Retraining a model through the backend its spec names, and evaluating the result against production.

The `python` backend calls `package.module:function(data=..., numeric=..., categorical=..., label=...,
window_start=..., window_end=..., artifacts_dir=..., name=...)`, plus `task=` (the spec's task type) when it
has a `task` parameter, and gets an object with `artifact_uri`, `metrics` and `parameters`
(jobs.training.TrainResult). The built-in `jobs.training:retrain` trains every task type. The other
backends start a run on the team's own systems (jobs/backends); the trainer registers what it produced
through the callback API, `register_trained_version`, which queues the comparison with production for the
worker.

Every artifact is registered with the SHA-256 of its bytes and only from the artifact roots, and loaded
only when it still has them (jobs.artifacts).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from jobs import explain, mlflow_sync, stakes
from jobs.artifacts import Artifact, artifact_roots, check_for_registration
from jobs.incidents import RETRAIN_ASKED, Comparison
from jobs.monitor import load_spec
from jobs.sources import open_source
from jobs.spec import ModelSpec
from jobs.task_training import predict
from jobs.tasks import BINARY, ThresholdVerdict, compared_metrics, judge, task_metrics
from jobs.training import load_model, score
from store import audit, registry, work
from store.clock import to_utc_naive, utcnow
from store.db import Database
from store.errors import Conflict, FlywheelError, InvalidTransition, NotFound
from store.models import Model, ModelVersion, WorkState

DEFAULT_TRAINING_WINDOW = timedelta(days=28)


class RetrainError(FlywheelError):
    pass


@dataclass(frozen=True)
class Retrained:
    model_key: str
    number: int
    train_start: datetime
    train_end: datetime
    metrics: dict[str, Any]
    requested_by: str
    trigger: str


def retrain_trigger(reason: str, requested_by: str) -> str:
    """Why a version was trained: the reason as the person gave it, plain text (the messages escape it and
    say who asked), or RETRAIN_ASKED when they gave none."""
    return reason or RETRAIN_ASKED


def training_window(spec: ModelSpec, now: datetime,
                    length: timedelta = DEFAULT_TRAINING_WINDOW) -> tuple[datetime, datetime]:
    """The labelled window to train on. The latest drift window is held out: the candidate is compared
    with production on data it never saw."""
    end = to_utc_naive(now) - spec.drift.window
    return end - length, end


def evaluation_window(spec: ModelSpec, now: datetime, train_end: datetime | None) -> tuple[datetime, datetime]:
    """The latest labelled window that the version was not trained on."""
    end = to_utc_naive(now)
    start = end - spec.drift.window
    if train_end is not None and train_end > start:
        start = train_end
    if start >= end:
        raise RetrainError(f"{spec.key} was trained on data up to {train_end:%Y-%m-%d %H:%M} UTC, so there is no "
                           "later labelled window to compare it with production on yet.")
    return start, end


def _entrypoint(text: str):
    module_name, _, attribute = text.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RetrainError(f"retrain entrypoint {text}: cannot import {module_name} ({exc})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise RetrainError(f"retrain entrypoint {text}: {module_name} has no function {attribute}")
    return function


def _takes_task(function) -> bool:
    """Whether a trainer takes the model's task type (`task=`); trainers written before it don't."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "task" and p.kind != inspect.Parameter.VAR_KEYWORD for p in parameters)


def retrain(*, db: Database, model_key: str, requested_by: str, trigger: str, as_of: datetime,
            artifacts_dir: Path, training_window: timedelta = DEFAULT_TRAINING_WINDOW,
            now: datetime | None = None, work_item: int | None = None) -> Retrained:
    """Train a new candidate on the labelled rows of the window ending at as_of and register it."""
    as_of, now = to_utc_naive(as_of), now or utcnow()
    with db.session() as s:
        model = registry.get_model(session=s, key=model_key)
        spec, base_dir = load_spec(model), model.spec_dir
        number = max((v.number for v in model.versions), default=0) + 1
    if spec.retrain is None:
        raise RetrainError(f"{model_key} has no retrain section in its spec, so Flywheel can't retrain it.")
    if spec.retrain.backend != "python":
        raise RetrainError(f"{model_key} retrains through the {spec.retrain.backend} backend, which runs in "
                           "the worker (`flywheel worker`), not here.")
    if not spec.data.label:
        raise RetrainError(f"{model_key} has no label column in its spec, so there is nothing to learn from.")
    start = as_of - training_window
    columns = [spec.data.timestamp, *spec.features.numeric, *spec.features.categorical, spec.data.label]
    columns += sorted({k.column for k in spec.kpis if k.column} - set(columns) - {spec.data.prediction})
    data = open_source(spec.data.production, base_dir).read(columns, time_column=spec.data.timestamp,
                                                            start=start, end=as_of)
    data = data[data[spec.data.label].notna()]
    trainer = _entrypoint(spec.retrain.entrypoint)
    result = trainer(
        data=data, numeric=list(spec.features.numeric), categorical=list(spec.features.categorical),
        label=spec.data.label, window_start=start, window_end=as_of, artifacts_dir=Path(artifacts_dir),
        name=f"{model_key}-v{number}", **({"task": spec.task} if _takes_task(trainer) else {}))
    roots = artifact_roots(artifacts_dir, spec.artifact_roots, base_dir)
    artifact = check_for_registration(result.artifact_uri, roots=roots,
                                      claimed_sha256=getattr(result, "artifact_sha256", None))
    parameters = {**dict(result.parameters), "trigger": trigger,
                  **({"work_item": work_item} if work_item is not None else {})}
    uri, sha256, number = artifact.uri, artifact.sha256, None
    if spec.registry is not None:  # registered in MLflow first: both registries give it MLflow's number
        pushed = mlflow_sync.push_trained(
            spec.registry, fitted=load_model(artifact.uri, sha256=artifact.sha256, roots=roots), model_key=model_key,
            metrics=dict(result.metrics), parameters=parameters, requested_by=requested_by,
            artifacts_dir=Path(artifacts_dir))
        uri, sha256, number = pushed.uri, pushed.sha256, pushed.number
        parameters["mlflow"] = {"name": spec.registry.name, "version": pushed.number, "run_id": pushed.run_id}
    with db.session() as s:
        model = registry.get_model(session=s, key=model_key)
        parent = registry.production_version(session=s, model=model)
        version = registry.register_version(
            session=s, model_key=model_key, created_by=requested_by, artifact_uri=uri, artifact_sha256=sha256,
            train_start=start, train_end=as_of, metrics=dict(result.metrics), parameters=parameters,
            parent=parent, now=now, number=number)
    return Retrained(model_key, version.number, start, as_of, dict(result.metrics), requested_by, trigger)


@dataclass(frozen=True)
class Judged:
    """One version on the labelled rows: its metrics, what its decisions would have cost (jobs.stakes),
    and which features it relies on (jobs.explain)."""
    metrics: dict[str, float]
    outcomes: dict[str, Any]
    importances: dict[str, Any] | None


def _loaded(version: ModelVersion, spec: ModelSpec, roots: tuple[Path, ...], artifacts_dir: Path) -> Any:
    """A version's model: an MLflow-backed one through MLflow's flavour loader, any other from its file; either
    only with the SHA-256 recorded at registration."""
    if spec.registry is not None and mlflow_sync.is_mlflow_uri(version.artifact_uri):
        return mlflow_sync.load_version(spec.registry, version.number, sha256=version.artifact_sha256,
                                        artifacts_dir=Path(artifacts_dir))
    return load_model(version.artifact_uri, sha256=version.artifact_sha256, roots=roots)


def _judged(version: ModelVersion, frame: pd.DataFrame, spec: ModelSpec, roots: tuple[Path, ...],
            artifacts_dir: Path) -> Judged:
    model = _loaded(version, spec, roots, artifacts_dir)
    predictions = score(model, frame)["predicted_fraud"] if spec.task == BINARY else \
        predict(spec.task, model, frame).prediction
    return Judged(metrics_on(model, frame, spec), stakes.outcomes(spec, frame, predictions),
                  explain.permutation_importances(spec, model, frame))


def metrics_on(model: Any, frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """A loaded model's metrics on labelled rows (features and spec.data.label), as the spec's task defines
    them: what a comparison reports (jobs.tasks.compared_metrics)."""
    listed = spec.performance.metrics if spec.performance else ()
    metrics = compared_metrics(spec.task, listed)
    if spec.task == BINARY:
        scored = score(model, frame)
        return task_metrics(spec.task, frame[spec.data.label], scored["predicted_fraud"], scored["fraud_score"],
                            metrics=metrics)
    predicted = predict(spec.task, model, frame)
    return task_metrics(spec.task, frame[spec.data.label].reset_index(drop=True), predicted.prediction,
                        metrics=metrics, probabilities=predicted.probabilities)


def _thresholds(spec: ModelSpec, metrics: dict[str, float]) -> tuple[ThresholdVerdict, ...]:
    return judge(metrics, spec.performance.alert) if spec.performance else ()


def compare_with_production(*, db: Database, model_key: str, number: int, window_start: datetime,
                            window_end: datetime, artifacts_dir: Path, now: datetime | None = None) -> Comparison:
    """Score one labelled window with the challenger and the production version; store both evaluations.

    Each model is loaded only from the artifact roots with the digest recorded at registration."""
    with db.session() as s:
        model = registry.get_model(session=s, key=model_key)
        spec, base_dir = load_spec(model), model.spec_dir
        challenger = registry.get_version(session=s, model_key=model_key, number=number)
        champion = registry.production_version(session=s, model=model)
    if challenger.train_end and challenger.train_end > window_start:
        raise InvalidTransition(f"{model_key} {challenger.label} was trained on data up to "
                                f"{challenger.train_end:%Y-%m-%d}; evaluate it on a later window.")
    columns = [spec.data.timestamp, *spec.features.numeric, *spec.features.categorical, spec.data.label]
    columns += sorted({k.column for k in spec.kpis if k.column} - set(columns) - {spec.data.prediction})
    frame = open_source(spec.data.production, base_dir).read(columns, time_column=spec.data.timestamp,
                                                             start=window_start, end=window_end)
    frame = frame[frame[spec.data.label].notna()]
    if frame.empty:
        raise RetrainError(f"no labelled rows for {model_key} between {window_start:%Y-%m-%d} and "
                           f"{window_end:%Y-%m-%d}, so the versions can't be compared yet.")
    roots = artifact_roots(artifacts_dir, spec.artifact_roots, base_dir)
    mine = _judged(challenger, frame, spec, roots, artifacts_dir)
    theirs = _judged(champion, frame, spec, roots, artifacts_dir) if champion else Judged({}, None, None)
    challenger_metrics, champion_metrics = mine.metrics, theirs.metrics
    thresholds = _thresholds(spec, challenger_metrics)
    with db.session() as s:
        for version, judged in ((challenger, mine), (champion, theirs)):
            if version is not None:
                registry.record_evaluation(session=s, version=s.merge(version), window_start=window_start,
                                           window_end=window_end, metrics=judged.metrics, rows=len(frame),
                                           now=now, outcomes=judged.outcomes, importances=judged.importances)
        audit.record(session=s, actor="flywheel", action="version.compared",
                     subject=f"model:{model_key}/{challenger.label}", at=now,
                     details={"champion": champion.label if champion else None, "rows": len(frame),
                              "challenger_metrics": challenger_metrics, "champion_metrics": champion_metrics,
                              "breached": [t.metric for t in thresholds if t.breached]})
    return Comparison(model_key, champion.label if champion else None, challenger.label, window_start,
                      window_end, len(frame), champion_metrics, challenger_metrics, thresholds,
                      theirs.outcomes, mine.outcomes, theirs.importances, mine.importances)


def stored_comparison(*, db: Database, model_key: str, number: int) -> Comparison | None:
    """The challenger's latest evaluation and production's on the same window, from the evaluation store."""
    with db.session() as s:
        return comparison_of(session=s, model_key=model_key, number=number)


def comparison_of(*, session, model_key: str, number: int) -> Comparison | None:
    """stored_comparison in the caller's unit of work."""
    s = session
    model = registry.get_model(session=s, key=model_key)
    spec = load_spec(model) if model.spec else None
    challenger = registry.get_version(session=s, model_key=model_key, number=number)
    mine = registry.latest_evaluation(session=s, version=challenger)
    if mine is None:
        return None
    champion = registry.production_version(session=s, model=model)
    if champion is None or champion.id == challenger.id:
        champion = challenger.parent
    theirs = registry.latest_evaluation(session=s, version=champion, window_end=mine.window_end) \
        if champion else None
    return Comparison(model_key, champion.label if champion else None, challenger.label, mine.window_start,
                      mine.window_end, mine.rows, dict(theirs.metrics) if theirs else {}, dict(mine.metrics),
                      _thresholds(spec, dict(mine.metrics)) if spec else (),
                      theirs.outcomes if theirs else None, mine.outcomes,
                      theirs.importances if theirs else None, mine.importances)


def _roots_of(model: Model, artifacts_dir: Path) -> tuple[Path, ...]:
    # A model registered without a spec (never applied) has only FLYWHEEL_ARTIFACTS.
    spec_roots = load_spec(model).artifact_roots if model.spec else []
    return artifact_roots(artifacts_dir, spec_roots, model.spec_dir)


def pin_artifact(*, db: Database, model_key: str, number: int, artifacts_dir: Path, actor: str,
                 now: datetime | None = None) -> str:
    """Record the SHA-256 of a version registered before Flywheel checked artifacts, as an operator vouches
    for the file there now (audited). The file must be under the roots; it is hashed, never unpickled."""
    with db.read() as s:
        version = registry.get_version(session=s, model_key=model_key, number=number)
        uri, recorded, roots = version.artifact_uri, version.artifact_sha256, _roots_of(version.model, artifacts_dir)
    if recorded:
        raise Conflict(f"{model_key} v{number} already has its artifact's SHA-256 recorded ({recorded}); it is never "
                       "replaced: register the model again for other bytes.")
    artifact = check_for_registration(uri, roots=roots)
    with db.session() as s:
        registry.record_artifact_digest(session=s, version=registry.get_version(session=s, model_key=model_key,
                                                                                number=number),
                                        sha256=artifact.sha256, actor=actor, now=now or utcnow())
    return artifact.sha256


@dataclass(frozen=True)
class Registered:
    model_key: str
    number: int
    created: bool  # False: a repeated callback, answered with the version the first one registered
    work_item: int | None
    evaluation: int | None  # the evaluate work item queued for the worker


def _same_callback(model: Model, work_item: int | None, artifact: Artifact) -> ModelVersion | None:
    for version in model.versions:
        if work_item is not None and version.parameters.get("work_item") == work_item:
            return version
        sent = version.parameters.get("trained_artifact") or {}  # what was sent, for a version pushed to MLflow
        if work_item is None and ((version.artifact_uri, version.artifact_sha256) == (artifact.uri, artifact.sha256)
                                  or (sent.get("uri"), sent.get("sha256")) == (artifact.uri, artifact.sha256)):
            return version
    return None


def _pushed_to_mlflow(db: Database, model_key: str, spec: ModelSpec | None, artifact: Artifact, roots, *,
                      metrics: dict[str, Any], parameters: dict[str, Any], requested_by: str, work_item: int | None,
                      artifacts_dir: Path) -> mlflow_sync.Pushed | None:
    """An external trainer's model for an MLflow-backed model: registered in MLflow first (unless this callback
    was answered before), so the Flywheel version takes MLflow's number."""
    if spec is None or spec.registry is None:
        return None
    with db.read() as s:
        if _same_callback(registry.get_model(session=s, key=model_key), work_item, artifact) is not None:
            return None
    return mlflow_sync.push_trained(spec.registry, fitted=load_model(artifact.uri, sha256=artifact.sha256, roots=roots),
                                    model_key=model_key, metrics=dict(metrics), parameters=dict(parameters),
                                    requested_by=requested_by, artifacts_dir=Path(artifacts_dir))


def register_trained_version(*, db: Database, model_key: str, artifact_uri: str, metrics: dict[str, Any],
                             parameters: dict[str, Any], train_start: datetime | None, train_end: datetime | None,
                             artifacts_dir: Path, artifact_sha256: str | None = None, work_item: int | None = None,
                             registered_by: str = "api", now: datetime | None = None) -> Registered:
    """Register what an external trainer produced, finish its retrain and queue the comparison, once.

    The artifact must be a file under the artifact roots (FLYWHEEL_ARTIFACTS and the spec's), with the
    artifact_sha256 the trainer sent if it sent one: it is hashed, never unpickled, and its digest recorded.
    A repeated callback (same work item, or without one the same file and bytes) returns the first version.
    The model's row is locked for the unit of work, so two callbacks at once register one version.
    """
    now = now or utcnow()
    with db.read() as s:
        model = registry.get_model(session=s, key=model_key)  # NotFound names the model
        roots, spec = _roots_of(model, artifacts_dir), load_spec(model) if model.spec else None
    artifact = check_for_registration(artifact_uri, roots=roots, claimed_sha256=artifact_sha256)
    pushed = _pushed_to_mlflow(db, model_key, spec, artifact, roots, metrics=metrics, parameters=parameters,
                               requested_by=registered_by, work_item=work_item, artifacts_dir=artifacts_dir)
    with db.session() as s:
        s.execute(select(Model.id).where(Model.key == model_key).with_for_update())
        model = registry.get_model(session=s, key=model_key)  # NotFound names the closest model
        item = None
        if work_item is not None:
            item = work.lock(session=s, item_id=work_item)
            if item is None or item.model_id != model.id or item.kind != "retrain":
                raise NotFound(f"Work item {work_item} is not a retrain of {model_key}.")
        existing = _same_callback(model, work_item, artifact)
        if existing is not None:
            return Registered(model_key, existing.number, False, work_item, None)
        if item is not None and item.state == WorkState.done:
            raise Conflict(f"Work item {work_item} of {model_key} already finished with "
                           f"v{item.result.get('version', '?')}.")
        requested_by = item.requested_by if item is not None else registered_by
        payload = dict(item.payload) if item is not None else {}
        trigger = retrain_trigger(payload.get("reason") or "", requested_by) if item is not None \
            else "registered by a trainer through the Flywheel API"
        mirrored = {} if pushed is None else {
            "trained_artifact": {"uri": artifact.uri, "sha256": artifact.sha256},
            "mlflow": {"name": spec.registry.name, "version": pushed.number, "run_id": pushed.run_id}}
        version = registry.register_version(
            session=s, model_key=model_key, created_by=requested_by,
            artifact_uri=pushed.uri if pushed else artifact_uri,
            artifact_sha256=pushed.sha256 if pushed else artifact.sha256, train_start=train_start,
            train_end=train_end, metrics=dict(metrics),
            parameters={**parameters, "trigger": trigger, **mirrored,
                        **({"work_item": work_item} if work_item is not None else {})},
            parent=registry.production_version(session=s, model=model), now=now,
            number=pushed.number if pushed else None)
        if item is not None:
            work.finish(session=s, item_id=item.id, result={**item.result, "version": version.number}, now=now)
        evaluation, _ = work.request_evaluation(
            session=s, model=model, requested_by=requested_by, now=now,
            entry={"number": version.number, "alert": payload.get("alert"),
                   "response_url": payload.get("response_url")})
        audit.record(session=s, actor=registered_by, action="version.called_back",
                     subject=f"model:{model_key}/{version.label}", at=now,
                     details={"work": work_item, "evaluation": evaluation.id, "artifact_uri": artifact_uri})
        return Registered(model_key, version.number, True, work_item, evaluation.id)
