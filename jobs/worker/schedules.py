"""What the worker schedules: one job per model and check kind its spec asks for, on the spec's cron, and
the firing a (possibly late) run belongs to. Jobs live in APScheduler's SQLAlchemy job store in the
registry database, so schedules survive restarts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from jobs.monitor import enabled_kinds, load_spec
from jobs.schedule import cron_trigger
from store import registry
from store.db import Database
from store.models import CheckKind

JOB_TABLE = "apscheduler_jobs"
MISFIRE_GRACE_SECONDS = 15 * 60

DAILY_DIGEST_JOB = "digest:daily"
SYNC_JOB_PREFIX = "mlflow:"


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


@dataclass(frozen=True)
class PlannedSync:
    id: str
    model_key: str
    cron: str


def plan_syncs(db: Database) -> list[PlannedSync]:
    """One job per model whose spec names an outside registry (MLflow), on that registry's schedule."""
    jobs = []
    with db.read() as s:
        for model in registry.list_models(session=s):
            spec = load_spec(model) if model.spec else None
            if spec is not None and spec.registry is not None:
                jobs.append(PlannedSync(f"{SYNC_JOB_PREFIX}{model.key}", model.key, spec.registry.schedule))
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
