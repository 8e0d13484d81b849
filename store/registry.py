"""Projects, people, models, versions and evaluations. Every function takes the caller's session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from store import audit, catalog_writes
from store.clock import utcnow
from store.errors import Conflict, InvalidTransition, NotFound
from store.models import Evaluation, Model, ModelVersion, VersionStatus
from store.projects import (  # noqa: F401 - the registry answers for projects and people too
    did_you_mean,
    get_person,
    get_project,
    list_projects,
    people_by_id,
    people_named,
    require_person,
)


def get_model(*, session: Session, key: str) -> Model:
    model = session.execute(
        select(Model).where(Model.key == key).options(selectinload(Model.versions))
    ).scalar_one_or_none()
    if model is None:
        known = list(session.execute(select(Model.key)).scalars())
        hint = did_you_mean(key, known) or (" No models are registered yet: run `flywheel apply SPEC.yml`."
                                            if not known else "")
        raise NotFound(f"No model called {key}.{hint}")
    return model


def list_models(*, session: Session) -> list[Model]:
    return list(session.execute(
        select(Model).order_by(Model.key).options(selectinload(Model.versions), selectinload(Model.project))
    ).scalars())


def get_version(*, session: Session, model_key: str, number: int) -> ModelVersion:
    model = get_model(session=session, key=model_key)
    version = next((v for v in model.versions if v.number == number), None)
    if version is None:
        known = ", ".join(v.label for v in model.versions) or "none yet"
        raise NotFound(f"{model.key} has no version v{number}. Versions: {known}.")
    return version


def lock_model(*, session: Session, model: Model) -> Model:
    """Hold the model's row until the unit of work ends: deploys, rollbacks and sign-offs of one model
    queue here, in every process, so each compares with the state the previous one left and applies once.

    PostgreSQL: SELECT ... FOR UPDATE on the row. SQLite: a writing unit of work already holds the
    database's write lock from its BEGIN IMMEDIATE (store.db), so the compare and the change that follow
    are one write transaction; a read-only unit (`Database.read`) cannot lock and is refused. Whatever the
    session read before the lock may be stale, so it is read again after it.
    """
    connection = session.connection()
    if connection.get_execution_options().get("flywheel_read", False):
        raise RuntimeError("lock_model needs a writing unit of work (Database.session), not Database.read")
    session.flush()  # nothing pending is lost by the expiry below
    session.execute(select(Model.id).where(Model.id == model.id).with_for_update())
    session.expire_all()
    return model


def production_version(*, session: Session, model: Model) -> ModelVersion | None:
    return session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id,
                                   ModelVersion.status == VersionStatus.production)
    ).scalar_one_or_none()


def register_version(*, session: Session, model_key: str, created_by: str, artifact_uri: str,
                     artifact_sha256: str | None = None,
                     train_start: datetime | None = None, train_end: datetime | None = None,
                     parameters: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                     parent: ModelVersion | None = None, now: datetime | None = None,
                     number: int | None = None) -> ModelVersion:
    """Add the next version of a model as a candidate (or version `number`, when another registry numbers it).

    artifact_sha256 is the digest jobs.artifacts checked on the file; without one the version can be
    listed and governed but its model is never loaded.
    """
    model = get_model(session=session, key=model_key)
    if number is None:
        number = (session.execute(select(func.max(ModelVersion.number))
                                  .where(ModelVersion.model_id == model.id)).scalar() or 0) + 1
    version = ModelVersion(model_id=model.id, number=number, status=VersionStatus.candidate,
                           artifact_uri=artifact_uri, artifact_sha256=artifact_sha256,
                           train_start=train_start, train_end=train_end,
                           parameters=parameters or {}, metrics=metrics or {}, created_by=created_by,
                           created_at=now or utcnow(), parent_id=parent.id if parent else None)
    session.flush()  # pending changes first: the savepoint below must hold only this insert
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{model.key} v{number} was registered by someone else at the same time; "
                       "try again.") from None
    session.expire(model, ["versions"])  # the new version shows in model.versions from here on
    audit.record(session=session, actor=created_by, action="version.registered",
                 subject=f"model:{model.key}/v{number}",
                 details={"artifact_uri": artifact_uri, "artifact_sha256": artifact_sha256, "metrics": metrics or {},
                          "parent": parent.label if parent else None}, at=now)
    catalog_writes.index_version(session=session, version=version)  # catalog: every version is listed
    return version


def record_artifact_digest(*, session: Session, version: ModelVersion, sha256: str, actor: str,
                           now: datetime | None = None) -> None:
    """Record the artifact digest of a version registered without one; a recorded digest is never replaced."""
    recorded = session.execute(
        update(ModelVersion).where(ModelVersion.id == version.id, ModelVersion.artifact_sha256.is_(None))
        .values(artifact_sha256=sha256).execution_options(synchronize_session=False))
    if recorded.rowcount != 1:
        raise Conflict(f"{version.model.key} {version.label} already has its artifact's SHA-256 recorded; it is never "
                       "replaced: register the model again for other bytes.")
    session.expire(version, ["artifact_sha256"])
    audit.record(session=session, actor=actor, action="version.artifact_pinned",
                 subject=f"model:{version.model.key}/{version.label}",
                 details={"artifact_uri": version.artifact_uri, "artifact_sha256": sha256}, at=now)


def adopt_as_production(*, session: Session, version: ModelVersion, actor: str,
                        now: datetime | None = None) -> ModelVersion:
    """Record a model already serving before Flywheel managed it (the first production version).

    Only allowed while the model has no production version: every later change of production goes
    through the blueprint's sign-offs (store.governance).
    """
    model = version.model
    current = production_version(session=session, model=model)
    if current is not None:
        raise InvalidTransition(f"{model.key} already has {current.label} in production; new versions "
                                "reach production through sign-off and deploy.")
    version.status = VersionStatus.production
    version.deployed_at = now or utcnow()
    version.deployed_by = actor
    session.flush()
    audit.record(session=session, actor=actor, action="version.adopted",
                 subject=f"model:{model.key}/{version.label}", at=now)
    return version


def record_evaluation(*, session: Session, version: ModelVersion, window_start: datetime,
                      window_end: datetime, metrics: dict[str, float], rows: int,
                      now: datetime | None = None, outcomes: dict[str, Any] | None = None,
                      importances: dict[str, Any] | None = None) -> Evaluation:
    evaluation = Evaluation(version_id=version.id, window_start=window_start, window_end=window_end,
                            metrics=metrics, rows=rows, created_at=now or utcnow(), outcomes=outcomes,
                            importances=importances)
    session.add(evaluation)
    session.flush()
    return evaluation


def evaluations_for(*, session: Session, version: ModelVersion) -> list[Evaluation]:
    return list(session.execute(
        select(Evaluation).where(Evaluation.version_id == version.id).order_by(Evaluation.window_end)
    ).scalars())


def latest_evaluation(*, session: Session, version: ModelVersion, window_end: datetime | None = None
                      ) -> Evaluation | None:
    query = select(Evaluation).where(Evaluation.version_id == version.id)
    if window_end is not None:
        query = query.where(Evaluation.window_end == window_end)
    return session.execute(query.order_by(Evaluation.window_end.desc(), Evaluation.id.desc()).limit(1)
                           ).scalar_one_or_none()


def measured_importances(*, session: Session, version: ModelVersion) -> dict[str, Any] | None:
    """The importances (jobs.explain's record) of the version's latest evaluation that measured them; None when
    none did: never evaluated, evaluated before importances were kept, or on windows that could not measure them."""
    stored = session.execute(select(Evaluation.importances).where(Evaluation.version_id == version.id)
                             .order_by(Evaluation.window_end.desc(), Evaluation.id.desc())).scalars()
    return next((dict(found) for found in stored if found), None)
