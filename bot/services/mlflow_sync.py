"""MLflow's registry and Flywheel's, in step: reading new MLflow versions (the worker's tick, `flywheel mlflow
sync`), and moving the spec's alias after a Flywheel deploy or rollback, audited on both sides."""

from __future__ import annotations

from bot.blocks.common import escape_mrkdwn, when
from bot.services.common import Actor, Service, refusals_audited
from jobs import mlflow_sync
from jobs.monitor import load_spec
from store import audit, authority, registry
from store.db import unreachable
from store.models import Role

_RELEASES = {"deploy": ("version.deployed", "Deployed"), "rollback": ("version.rolled_back", "Rolled back to")}


def _versions(numbers: tuple[int, ...]) -> str:
    return ", ".join(f"v{n}" for n in numbers)


def synced_said(synced: mlflow_sync.Synced) -> str:
    """One sync, as the person who asked for it reads it."""
    name = escape_mrkdwn(synced.name)
    parts = [f"{synced.model_key} is in step with MLflow's {name}"]
    if synced.added:
        parts.append(f"added {_versions(synced.added)}")
    if synced.updated:
        parts.append(f"updated tags or aliases of {_versions(synced.updated)}")
    if synced.evaluation is not None:
        parts.append("the new candidates are queued for comparison with production")
    if not synced.added and not synced.updated:
        parts.append("no new versions")
    said = ": " + ", ".join(parts[1:]) + "."
    alias = escape_mrkdwn(synced.alias)
    if synced.adopted is not None:
        said += f" v{synced.adopted} holds the alias {alias}, so it is shown as production."
    elif synced.alias_holder is not None and synced.production not in (None, synced.alias_holder):
        said += (f" MLflow's {alias} is v{synced.alias_holder} but Flywheel governs production (v{synced.production}): "
                 f"deploy v{synced.alias_holder} through Flywheel to move production there.")
    if synced.clashes:
        said += (f" Not synced: {_versions(synced.clashes)}, numbers Flywheel already uses for other artifacts; "
                 "register MLflow's model under a new name to keep both.")
    return parts[0] + said


class MlflowSync(Service):
    def sync(self, actor: Actor, model_key: str) -> str:
        """`flywheel mlflow sync MODEL`: read MLflow's versions now (needs the ML engineer role on the project)."""
        with refusals_audited(self.db, actor.slack_id, "mlflow.sync", f"model:{model_key}"):
            with self.db.read() as s:
                model = registry.get_model(session=s, key=model_key)
                authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=Role.ml_engineer,
                                  team=actor.team, doing=f"Syncing {model_key} with MLflow")
            synced = mlflow_sync.sync_model(db=self.db, model_key=model_key, artifacts_dir=self.settings.artifacts,
                                            now=self.clock())
        if synced.evaluation is not None and self.runner is not None:
            self.runner.submit(self.work.run, synced.evaluation)
        return synced_said(synced)

    def __init__(self, ops) -> None:
        super().__init__(ops)
        self._failing: set[str] = set()  # models whose last tick failed: told once, not every five minutes

    def scheduled(self, model_key: str) -> mlflow_sync.Synced:
        """The worker's tick: a version registered in MLflow since the last one appears in Flywheel. A failure
        is told to the model's ML engineers when it starts, and raised for the worker's log every time."""
        try:
            synced = mlflow_sync.sync_model(db=self.db, model_key=model_key, artifacts_dir=self.settings.artifacts,
                                            now=self.clock())
        except Exception as exc:
            if unreachable(exc):  # the database is away: the next tick tries again
                raise
            if model_key not in self._failing:
                self._failing.add(model_key)
                self.notifier.job_failed(model_key, f"Reading {model_key}'s versions from MLflow failed: "
                                                    f"{escape_mrkdwn(exc)}. Flywheel tries again on every tick.")
            raise
        self._failing.discard(model_key)
        return synced

    def mirrored(self, model_key: str) -> bool:
        with self.db.read() as s:
            model = registry.get_model(session=s, key=model_key)
            return bool(model.spec) and load_spec(model).registry is not None

    def after_release(self, model_key: str, number: int, by: str, kind: str) -> None:
        """After a Flywheel deploy (or rollback) made v`number` production: MLflow's alias moves to it and the
        version is tagged with who, when and the Flywheel audit event; Flywheel's audit log records the move.
        A failure is audited and told to the model's ML engineers: production in Flywheel stands."""
        action, verb = _RELEASES[kind]
        now = self.clock()
        with self.db.read() as s:
            model = registry.get_model(session=s, key=model_key)
            spec = load_spec(model).registry
            subject = f"model:{model_key}" + (f"/v{number}" if kind == "deploy" else "")
            audit_id = next((e.seq for e in audit.events_for(session=s, subject_prefix=subject)
                             if e.action == action and e.subject == subject), None)
        if spec is None:
            return
        tags = {"action": kind, "by": by, "at": now.isoformat(timespec="seconds") + "Z", "audit_id": audit_id}
        details = {"name": spec.name, "alias": spec.alias, "tracking_uri": spec.tracking_uri, "audit_id": audit_id}
        try:
            previous = mlflow_sync.alias_holder(spec)
            mlflow_sync.move_alias(spec, number, tags)
        except mlflow_sync.MlflowError as exc:
            with self.db.session() as s:
                audit.record(session=s, actor=by, action="mlflow.alias_failed", subject=f"model:{model_key}/v{number}",
                             details={**details, "reason": str(exc)}, at=now)
            alias = escape_mrkdwn(spec.alias)
            self.notifier.job_failed(model_key, f"{verb} {model_key} v{number} in Flywheel, {when(now)}, but MLflow's "
                                                f"alias {alias} was not moved: {escape_mrkdwn(exc)}. Point it at "
                                                f"v{number} in MLflow once it answers.")
            raise
        with self.db.session() as s:
            audit.record(session=s, actor=by, action="mlflow.alias_moved", subject=f"model:{model_key}/v{number}",
                         details={**details, "from": previous, "to": number, "release": kind}, at=now)
