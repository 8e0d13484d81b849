"""How much history and how many rows a page shows."""

from __future__ import annotations

from store.models import Role, VersionStatus

RANGES = (7, 30, 90, 365)  # days of history a model page can show
DEFAULT_DAYS = 90
CHART_POINTS = 120  # points per line at most
MAX_MARKS = 400  # non-ok runs marked on the check timeline
MAX_RUNS = 20  # latest runs listed
MAX_ALERTS = 20
MAX_AUDIT = 50
MAX_EVENTS = 200
TREND_RUNS = 26  # runs on an alert's trend chart
MONITORING = (Role.ml_engineer, Role.risk_manager, Role.it_ops)
UNRELEASED = (VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved)
VERDICT_ORDER = ("error", "breach", "warn", "ok")
