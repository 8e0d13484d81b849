"""What people can do, whichever surface they use (a Slack command, button or modal, the terminal, the
API, the dashboard): every use case, grouped by responsibility, built once by the composition root.

Each use case authorizes (store.authority, on the project that owns the model), changes the registry in
one unit of work, audits, and returns a short sentence for the person who asked. Refusals raise typed
domain errors and are audited too. Slow work (retrain, evaluate, deploy through a webhook, rollback) is
recorded here and run by jobs/work_runner.py, in the worker or in `runner`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Settings
from bot.services.alerts import AlertActions
from bot.services.catalog import Catalog
from bot.services.checks import Checks
from bot.services.common import Runner
from bot.services.evidence import Evidence
from bot.services.mlflow_sync import MlflowSync
from bot.services.people import People
from bot.services.portfolio import Portfolios
from bot.services.releases import Releases
from bot.services.requests import SlackRequests
from bot.services.retraining import Retraining
from bot.services.statuses import Statuses
from bot.services.tuning import Tuning
from bot.services.unfurls import Unfurls
from jobs.work_runner import WorkRunner
from store import audit
from store.clock import utcnow
from store.db import Database

log = logging.getLogger(__name__)


@dataclass
class Operations:
    settings: Settings
    db: Database
    notifier: object  # bot.notifier.Notifier, kept loose so tests can build operations without Slack
    # In-process runner for slow work (tests, `flywheel run --inline`); None: the worker process runs it.
    runner: Runner | None = None
    followups: Runner = field(default_factory=lambda: Runner(ThreadPoolExecutor(2, thread_name_prefix="slack")))
    clock: Callable[[], datetime] = utcnow
    commands_audit: audit.AuditQueue | None = None
    work: WorkRunner = field(init=False)  # runs recorded work (below)

    def __post_init__(self) -> None:
        if self.commands_audit is None:
            self.commands_audit = audit.AuditQueue(self.db)
        # Runs recorded work: in the worker process, or in `runner` here (tests, `flywheel run --inline`).
        self.work = WorkRunner(self.settings, self.db, self.notifier, self.clock)
        self.alerts = AlertActions(self)
        self.retraining = Retraining(self)
        self.releases = Releases(self)
        self.people = People(self)
        self.statuses = Statuses(self)
        self.requests = SlackRequests(self)
        self.catalog = Catalog(self)
        self.checks = Checks(self)
        self.evidence = Evidence(self)
        self.tuning = Tuning(self)
        self.portfolios = Portfolios(self)
        self.unfurls = Unfurls(self)
        self.mlflow = MlflowSync(self)
        self.work.after_release = self.mlflow.after_release  # a webhook deploy moves MLflow's alias too

    def later(self, fn: Callable[..., object], *args: object) -> None:
        """Slack follow-ups (message updates, thread replies) run after the ack, off the request thread."""
        self.followups.submit(self._logged, fn, *args)

    @staticmethod
    def _logged(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # the person already has their answer; the operator needs the failure
            log.exception("Slack follow-up %s failed", getattr(fn, "__name__", fn))
            raise

    def join(self) -> None:
        """Wait for background work and its follow-ups (tests, clean shutdown)."""
        if self.runner is not None:
            self.runner.join()
        self.db.drain_submitted()  # queued clicks committed; the follow-ups they asked for are queued
        self.followups.join()
        self.commands_audit.drain()
