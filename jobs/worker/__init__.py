"""`flywheel worker`: fires each model's checks on its schedule and runs the work people asked for.

One worker leads at a time (leadership.py): on PostgreSQL the leader holds an advisory lock on its own
connection and a standby takes over when the leader's connection dies; on SQLite a second worker against
the same file is refused. Jobs live in APScheduler's SQLAlchemy job store in the registry database, one
per model and check kind (schedules.py), so schedules survive restarts. The loops are in loop.py, riding
out database outages (outage.py); the worker yields the CPU to `flywheel serve` (priority.py).

The names below are the package's interface. APScheduler stores jobs by the import paths
jobs.worker:run_scheduled_check, jobs.worker:run_daily_digest and jobs.worker:run_registry_sync: they must stay
importable from here.
"""

from jobs.worker.leadership import (
    LEADER_LOCK_KEY,
    Leadership,
    PostgresLeadership,
    SqliteLeadership,
    WorkerRefused,
    leadership_for,
)
from jobs.worker.loop import Worker, run_daily_digest, run_registry_sync, run_scheduled_check
from jobs.worker.outage import Outage, OutageTolerantJobStore
from jobs.worker.priority import AUTOGROUP, lower_priority, session_nice
from jobs.worker.schedules import (
    DAILY_DIGEST_JOB,
    JOB_TABLE,
    PlannedJob,
    PlannedSync,
    latest_tick,
    plan,
    plan_syncs,
)

__all__ = ["AUTOGROUP", "DAILY_DIGEST_JOB", "JOB_TABLE", "LEADER_LOCK_KEY", "Leadership", "Outage",
           "OutageTolerantJobStore", "PlannedJob", "PlannedSync", "PostgresLeadership", "SqliteLeadership", "Worker",
           "WorkerRefused", "latest_tick", "leadership_for", "lower_priority", "plan", "plan_syncs",
           "run_daily_digest", "run_registry_sync", "run_scheduled_check", "session_nice"]
