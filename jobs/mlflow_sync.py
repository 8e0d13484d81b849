"""MLflow's model registry kept in step with Flywheel's, for models whose spec says `registry: {kind: mlflow}`.

In: each version of the registered model becomes the Flywheel version with the same number, its artifact
`models:/NAME/N`, its metrics the run's, its tags and aliases kept with it; a version already known is never
registered twice. The version holding the spec's alias is adopted as production while Flywheel has none; once
Flywheel governs production, its deploys and rollbacks move the alias (`move_alias`), not the other way round.
Out: a retrain through Flywheel logs its model to MLflow and registers it there first (`push_trained`), so both
registries give the version one number.

Trust: a version's model directory is downloaded to FLYWHEEL_ARTIFACTS/mlflow/NAME/vN and its SHA-256 (over
every file's path and bytes) recorded when it is registered; it is loaded by MLflow's flavour loader only while
the copy there still has that digest (pickle runs code as it loads, as jobs/artifacts.py explains).

`mlflow` is an optional extra (`pip install 'flywheel[mlflow]'`), imported only when a model uses it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from jobs.spec import ModelSpec, RegistrySpec
from store import audit, registry, work
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, InvalidTransition, UntrustedArtifact
from store.models import Model, VersionStatus

SYNC_ACTOR = "mlflow"  # who registered a version Flywheel read from MLflow
REGISTERED_IN_MLFLOW = "registered in MLflow"
TAG_PREFIX = "flywheel."
_CHUNK = 1 << 20


class MlflowError(FlywheelError):
    """MLflow is not installed, cannot be reached, or refused what Flywheel asked."""


def _mlflow():
    try:
        import mlflow
        import mlflow.artifacts  # noqa: F401 - submodules the calls below use
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
    except ImportError:
        raise MlflowError("MLflow support is not installed: pip install 'flywheel[mlflow]' "
                          "(or pip install 'mlflow>=2.10').") from None
    return mlflow


def _client(spec: RegistrySpec):
    from_mlflow = _mlflow()
    return from_mlflow.MlflowClient(tracking_uri=spec.tracking_uri, registry_uri=spec.tracking_uri)


def _refused(spec: RegistrySpec, doing: str, exc: Exception) -> MlflowError:
    said = getattr(exc, "message", None) or str(exc)
    return MlflowError(f"MLflow at {spec.tracking_uri} failed while {doing}: {said.splitlines()[0] if said else exc}")


def registry_of(spec: ModelSpec, model_key: str) -> RegistrySpec:
    if spec.registry is None:
        raise InvalidTransition(f"{model_key} has no MLflow registry in its spec: add `registry: {{kind: mlflow, "
                                "tracking_uri: ..., name: ...}` to the model and apply the spec again.")
    return spec.registry


def model_uri(spec: RegistrySpec, number: int) -> str:
    return f"models:/{spec.name}/{number}"


def is_mlflow_uri(uri: str) -> bool:
    return uri.startswith("models:/")


# ---------------------------------------------------------------- local copies and their digests


def local_copy(spec: RegistrySpec, number: int, artifacts_dir: Path) -> Path:
    """Where version `number` is downloaded to: a folder of FLYWHEEL_ARTIFACTS named after the model."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name).strip(".") or "model"
    return Path(os.path.realpath(artifacts_dir)) / "mlflow" / safe / f"v{number}"


def tree_sha256(folder: Path) -> str:
    """SHA-256 over a model folder: every regular file's relative path and bytes, in path order. A link or
    anything but files and folders is refused: it could point outside the folder hashed."""
    digest = hashlib.sha256()
    files = []
    for root, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            path = Path(root) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise UntrustedArtifact(f"Refused {folder}: {path} is a link or not a regular file.")
        files.extend(Path(root) / name for name in names)
    for path in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
        file_digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(f"{path.relative_to(folder).as_posix()}\0{file_digest.hexdigest()}\n".encode())
    return digest.hexdigest()


def _staging(artifacts_dir: Path) -> Path:
    staging = Path(os.path.realpath(artifacts_dir)) / "mlflow" / ".staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    return staging


def _settle(staging: Path, dest: Path) -> None:
    """Move a finished download or save into place (a copy left there before is replaced)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staging, dest)


def download(spec: RegistrySpec, number: int, artifacts_dir: Path) -> tuple[Path, str]:
    """Version `number`'s model folder, downloaded afresh into FLYWHEEL_ARTIFACTS, and its SHA-256."""
    mlflow = _mlflow()
    staging = _staging(artifacts_dir)
    try:
        source = _client(spec).get_model_version_download_uri(spec.name, str(number))
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(staging / "download"),
                                                       tracking_uri=spec.tracking_uri))
    except mlflow.exceptions.MlflowException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _refused(spec, f"downloading {model_uri(spec, number)}", exc) from None
    if not got.is_dir() or not got.resolve().is_relative_to(staging.resolve()):
        shutil.rmtree(staging, ignore_errors=True)
        raise MlflowError(f"MLflow at {spec.tracking_uri} gave no model folder for {model_uri(spec, number)} "
                          f"(its source is {source}).")
    dest = local_copy(spec, number, artifacts_dir)
    _settle(got, dest)
    shutil.rmtree(staging, ignore_errors=True)
    return dest, tree_sha256(dest)


def load_version(spec: RegistrySpec, number: int, *, sha256: str | None, artifacts_dir: Path) -> Any:
    """The model of version `number` through MLflow's flavour loader (scikit-learn's when it has one, else
    pyfunc), only when its copy under FLYWHEEL_ARTIFACTS has the SHA-256 recorded at registration; a missing
    copy is downloaded again first, and must have it too."""
    uri = model_uri(spec, number)
    if not sha256:
        raise UntrustedArtifact(f"Refused to load {uri}: no SHA-256 was recorded when it was registered; "
                                "sync it again with `flywheel mlflow sync`.")
    mlflow = _mlflow()
    dest = local_copy(spec, number, artifacts_dir)
    found = tree_sha256(dest) if dest.is_dir() else download(spec, number, artifacts_dir)[1]
    if found != sha256:
        raise UntrustedArtifact(f"Refused to load {uri}: its files' SHA-256 is now {found[:16]}..., not "
                                f"{sha256[:16]}... as recorded at registration, so they changed since.")
    flavours = (yaml.safe_load((dest / "MLmodel").read_text()) or {}).get("flavors", {})
    loader = mlflow.sklearn if "sklearn" in flavours else mlflow.pyfunc
    return loader.load_model(str(dest))


# ---------------------------------------------------------------- reading MLflow


@dataclass(frozen=True)
class RemoteVersion:
    """One version of the registered model as MLflow holds it."""

    number: int
    run_id: str | None
    source: str
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: tuple[str, ...]
    user: str | None

    def record(self, spec: RegistrySpec) -> dict[str, Any]:
        """What Flywheel keeps of it, in the version's parameters."""
        return {"name": spec.name, "version": self.number, "run_id": self.run_id, "source": self.source,
                "tags": dict(sorted(self.tags.items())), "aliases": sorted(self.aliases), "user": self.user}


def read_versions(spec: RegistrySpec, *, known: set[int] = frozenset()) -> list[RemoteVersion]:
    """Every version of the registered model, oldest first, with its tags and aliases, and its run's metrics
    (not read again for the versions Flywheel already has, `known`: a tick asks for what is new)."""
    mlflow = _mlflow()
    client = _client(spec)
    try:
        aliases: dict[int, list[str]] = {}
        for alias, number in client.get_registered_model(spec.name).aliases.items():
            aliases.setdefault(int(number), []).append(alias)
        found = client.search_model_versions(f"name = '{spec.name}'")
        runs = {v.run_id: client.get_run(v.run_id).data.metrics for v in found
                if v.run_id and int(v.version) not in known}
    except mlflow.exceptions.MlflowException as exc:
        raise _refused(spec, f"reading the registered model {spec.name}", exc) from None
    return sorted((RemoteVersion(int(v.version), v.run_id or None, v.source or "",
                                 {k: float(x) for k, x in runs.get(v.run_id, {}).items()}, dict(v.tags or {}),
                                 tuple(sorted(aliases.get(int(v.version), []))), v.user_id or None)
                   for v in found), key=lambda v: v.number)


@dataclass(frozen=True)
class Synced:
    """What one sync did: versions added, the alias holder adopted as production, and what disagrees."""

    model_key: str
    name: str
    alias: str
    added: tuple[int, ...]
    updated: tuple[int, ...]  # known versions whose MLflow tags or aliases changed
    adopted: int | None  # the alias holder made production (Flywheel had none)
    alias_holder: int | None
    production: int | None  # Flywheel's production version after the sync
    clashes: tuple[int, ...] = field(default=())  # numbers Flywheel already uses for another artifact
    evaluation: int | None = None  # the work item comparing the new candidates with production


def sync_model(*, db: Database, model_key: str, artifacts_dir: Path, now: datetime | None = None) -> Synced:
    """Read the model's registered versions from MLflow and register the ones Flywheel lacks, once each."""
    now = now or utcnow()
    with db.read() as s:
        model = registry.get_model(session=s, key=model_key)
        spec = registry_of(ModelSpec.model_validate(model.spec), model_key)
        known = {v.number for v in model.versions}
    remote = read_versions(spec, known=known)
    copies = {v.number: download(spec, v.number, artifacts_dir) for v in remote if v.number not in known}
    added, updated, clashes = [], [], []
    with db.session() as s:
        model = registry.lock_model(session=s, model=registry.get_model(session=s, key=model_key))
        mine = {v.number: v for v in model.versions}
        for version in remote:
            record, existing = version.record(spec), mine.get(version.number)
            if existing is not None:
                if existing.artifact_uri != model_uri(spec, version.number):
                    clashes.append(version.number)
                elif existing.parameters.get("mlflow") != record:
                    existing.parameters = {**existing.parameters, "mlflow": record}
                    updated.append(version.number)
                continue
            path, sha256 = copies.get(version.number) or download(spec, version.number, artifacts_dir)
            registry.register_version(
                session=s, model_key=model_key, number=version.number, created_by=SYNC_ACTOR,
                artifact_uri=model_uri(spec, version.number), artifact_sha256=sha256, metrics=version.metrics,
                parameters={"trigger": REGISTERED_IN_MLFLOW, "mlflow": record}, now=now)
            added.append(version.number)
        adopted, holder = _adopt_alias_holder(s, model, spec, remote, now)
        production = registry.production_version(session=s, model=model)
        evaluation = None
        for number in added:  # new candidates are compared with production, as a retrain's are
            if number != adopted and (production is None or number > production.number):
                evaluation, _ = work.request_evaluation(session=s, model=model, requested_by=SYNC_ACTOR, now=now,
                                                        entry={"number": number, "alert": None, "response_url": None})
        if added or updated or adopted:
            audit.record(session=s, actor=SYNC_ACTOR, action="mlflow.synced", subject=f"model:{model_key}",
                         details={"name": spec.name, "tracking_uri": spec.tracking_uri, "added": added,
                                  "updated": updated, "adopted": adopted, "clashes": clashes}, at=now)
        return Synced(model_key, spec.name, spec.alias, tuple(added), tuple(updated), adopted, holder,
                      production.number if production else None, tuple(clashes),
                      evaluation.id if evaluation is not None else None)


def _adopt_alias_holder(s, model: Model, spec: RegistrySpec, remote: list[RemoteVersion],
                        now: datetime) -> tuple[int | None, int | None]:
    """Production follows MLflow's alias until Flywheel governs it: while Flywheel has no production version, or
    only one the alias made so (adopted by SYNC_ACTOR). Once a Flywheel deploy or rollback set production, its
    releases move the alias instead."""
    holder = next((v.number for v in remote if spec.alias in v.aliases), None)
    current = registry.production_version(session=s, model=model)
    if holder is None or (current is not None and (current.deployed_by != SYNC_ACTOR or current.number == holder)):
        return None, holder
    version = next((v for v in model.versions if v.number == holder), None)
    if version is None or version.artifact_uri != model_uri(spec, holder):
        return None, holder
    if current is not None:  # the alias moved in MLflow, and Flywheel never governed this model's production
        current.status = VersionStatus.archived
        s.flush()  # the one-production index must see the old row leave first
    registry.adopt_as_production(session=s, version=version, actor=SYNC_ACTOR, now=now)
    return holder, holder


# ---------------------------------------------------------------- writing to MLflow


def move_alias(spec: RegistrySpec, number: int, tags: dict[str, str]) -> None:
    """Point the spec's alias at version `number` and tag that version (who, when, which audit event)."""
    mlflow = _mlflow()
    client = _client(spec)
    try:
        client.set_registered_model_alias(spec.name, spec.alias, str(number))
        for key, value in tags.items():
            client.set_model_version_tag(spec.name, str(number), f"{TAG_PREFIX}{key}", str(value))
    except mlflow.exceptions.MlflowException as exc:
        raise _refused(spec, f"moving the alias {spec.alias} to version {number}", exc) from None


def alias_holder(spec: RegistrySpec) -> int | None:
    mlflow = _mlflow()
    try:
        number = _client(spec).get_registered_model(spec.name).aliases.get(spec.alias)
    except mlflow.exceptions.MlflowException as exc:
        raise _refused(spec, f"reading the alias {spec.alias}", exc) from None
    return int(number) if number is not None else None


@dataclass(frozen=True)
class Pushed:
    number: int
    uri: str
    sha256: str
    run_id: str


def push_trained(spec: RegistrySpec, *, fitted: Any, model_key: str, metrics: dict[str, Any],
                 parameters: dict[str, Any], requested_by: str, artifacts_dir: Path) -> Pushed:
    """Log a model Flywheel trained to a new MLflow run (scikit-learn flavour, with its metrics and parameters)
    and register it as the next version of the registered model; its folder, as uploaded, is kept under
    FLYWHEEL_ARTIFACTS with its SHA-256, so the Flywheel version of the same number loads those bytes."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param
    import sklearn

    client = _client(spec)
    staging = _staging(artifacts_dir)
    try:
        # cloudpickle: loads any pipeline Flywheel trains; the digest recorded below is what makes loading it safe
        mlflow.sklearn.save_model(fitted, str(staging / "model"), serialization_format="cloudpickle",
                                  pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        experiment = client.get_experiment_by_name(f"flywheel-{model_key}")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(f"flywheel-{model_key}")
        run = client.create_run(experiment_id, tags={f"{TAG_PREFIX}model": model_key,
                                                     f"{TAG_PREFIX}requested_by": requested_by})
        stamp = int(utcnow().timestamp() * 1000)
        client.log_batch(run.info.run_id,
                         metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)],
                         params=[Param(k, str(v)[:500]) for k, v in parameters.items()])
        client.log_artifacts(run.info.run_id, str(staging / "model"), artifact_path="model")
        client.set_terminated(run.info.run_id)
        try:
            client.get_registered_model(spec.name)
        except mlflow.exceptions.MlflowException:
            client.create_registered_model(spec.name)
        created = client.create_model_version(spec.name, source=f"{run.info.artifact_uri}/model",
                                              run_id=run.info.run_id,
                                              tags={f"{TAG_PREFIX}registered_by": requested_by})
    except mlflow.exceptions.MlflowException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _refused(spec, f"registering a version of {spec.name}", exc) from None
    number = int(created.version)
    dest = local_copy(spec, number, artifacts_dir)
    _settle(staging / "model", dest)
    shutil.rmtree(staging, ignore_errors=True)
    return Pushed(number, model_uri(spec, number), tree_sha256(dest), run.info.run_id)
