"""The Prometheus metrics the jobs layer counts: checks, the data they read, alerts, work outcomes and the
worker's leadership. bot/metrics.py adds Slack's and the web's, and exposes them all.

Labels are bounded sets only: check kinds, verdicts, personas, work kinds and states. No model key (a
registry can hold thousands), no user id, no free text. Under `flywheel serve --processes N` the
values live in files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), chosen when
prometheus_client is first imported."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKS = Counter("flywheel_checks", "Checks run, by kind and verdict.", ["kind", "verdict"])
# A check of 200,000 rows takes a second or two on the 2-core VM; a slow source can take minutes.
CHECK_SECONDS = Histogram("flywheel_check_duration_seconds",
                          "Time to read and judge one check, by kind (a shared read is split between the kinds).",
                          ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
WINDOWS_READ = Counter("flywheel_check_windows_read", "Windows of production data read by checks.")
ROWS_SCANNED = Counter("flywheel_check_rows_scanned", "Rows of production data read by checks.")
ALERTS = Counter("flywheel_alerts", "Alerts opened, updated (breached again) and resolved, by persona.",
                 ["persona", "event"])
RETRAINS = Counter("flywheel_retrain_outcomes", "Retrains finished: done, dispatched (to an external trainer) "
                   "or failed.", ["outcome"])
DEPLOYS = Counter("flywheel_deploy_outcomes", "Deploys and rollbacks finished, by outcome (done or failed).",
                  ["action", "outcome"])
LEADER = Gauge("flywheel_worker_leader", "1 while this worker leads (fires schedules, runs work), else 0.",
               multiprocess_mode="livemax")
HEARTBEAT = Gauge("flywheel_worker_last_heartbeat_timestamp_seconds",
                  "When this worker last wrote its heartbeat (Unix time).", multiprocess_mode="livemax")


def alerts_superseded(personas) -> None:
    """Count the alerts a new production version resolved (what they were about no longer serves)."""
    for persona in personas:
        ALERTS.labels(persona=persona, event="resolved").inc()


def work_finished(kind: str, state: str) -> None:
    """Count a retrain, deploy or rollback by the state its work item ended in."""
    if kind == "retrain":
        RETRAINS.labels(outcome=state).inc()
    elif kind in ("deploy", "rollback"):
        DEPLOYS.labels(action=kind, outcome=state).inc()
