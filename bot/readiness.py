"""`/readyz` and `flywheel doctor`: whether this install can do its job now, as a load balancer, an orchestrator
or a person at a terminal asks it.

Ready means four checks pass: the database answers (within a short timeout), its schema is at the
migrations' head, the leading worker's heartbeat is at most two minutes old, and no Slack message has
waited in the outbox more than ten minutes (the longest deliberate waits are five: an alert held for its
storm window, at most five windows of the default minute, and the sender's longest back-off; twice that is
stuck). `/healthz` stays "the process is alive" and touches nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import text

from store import heartbeat, vitals
from store.clock import utcnow
from store.db import Database, reason

STALE_AFTER = timedelta(minutes=2)
OUTBOX_STUCK_AFTER = timedelta(minutes=10)
TIMEOUT_SECONDS = 3.0  # the whole probe, connecting included; web.py gives up on it after this
NOT_CHECKED = "not checked: the database did not answer"


@dataclass(frozen=True)
class Check:
    name: str  # database, migrations, worker, outbox
    ok: bool
    detail: str  # what was found, a sentence fragment
    fix: str = ""  # what to do about it, when not ok

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **({"fix": self.fix} if self.fix else {})}


@dataclass(frozen=True)
class Findings:
    checks: list[Check]
    figures: dict[str, float] = field(default_factory=dict)  # ages in seconds, for the JSON body
    error: BaseException | None = None  # why the database did not answer (doctor --verbose prints it)

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    def body(self) -> dict[str, object]:
        """The JSON body of /readyz: each check, and the first problem as `reason`."""
        problem = next((c for c in self.checks if not c.ok), None)
        body: dict[str, object] = {"status": "ready" if problem is None else "unavailable"}
        if problem is not None:
            body["reason"] = f"{problem.detail}: {problem.fix}" if problem.fix else problem.detail
        return {**body, **self.figures, "checks": [c.as_json() for c in self.checks]}


@dataclass(frozen=True)
class Readiness:
    db: Database
    clock: Callable[[], datetime] = utcnow
    stale_after: timedelta = STALE_AFTER
    outbox_stuck_after: timedelta = OUTBOX_STUCK_AFTER

    @cached_property
    def head(self) -> str | None:
        return self.db.head_revision()  # read from the migration scripts on disk, once

    def check(self) -> tuple[bool, dict[str, object]]:
        """(ready, the JSON body)."""
        findings = self.findings()
        return findings.ready, findings.body()

    def findings(self) -> Findings:
        head = self.head
        try:
            with self.db.read() as s:
                if self.db.engine.dialect.name == "postgresql":
                    s.execute(text(f"SET LOCAL statement_timeout = {int(TIMEOUT_SECONDS * 1000)}"))
                revision = vitals.schema_revision(session=s)
                beat = heartbeat.latest(session=s) if revision is not None else None
                backlog = vitals.outbox_backlog(session=s) if revision is not None else None
        except Exception as exc:  # anything the database answers, or fails to, is "not ready" with its reason
            return Findings([Check("database", False, f"the database is unreachable ({reason(exc)})",
                                   "check FLYWHEEL_DATABASE_URL and that the database server is running")]
                            + [Check(name, False, NOT_CHECKED) for name in ("migrations", "worker", "outbox")],
                            error=exc)
        now, figures = self.clock(), {}
        checks = [Check("database", True, "answers"), self._migrations(revision, head)]
        if revision is None:
            return Findings(checks + [Check(name, False, "not checked: no Flywheel schema")
                                      for name in ("worker", "outbox")])
        if beat is None:
            checks.append(Check("worker", False, "no worker has reported a heartbeat yet", "start `flywheel worker`"))
        else:
            age = (now - beat).total_seconds()
            figures["worker_heartbeat_age_seconds"] = round(age, 1)
            limit = self.stale_after.total_seconds()
            checks.append(Check("worker", True, f"heartbeat {age:.0f} s old") if age <= limit else
                          Check("worker", False, f"the worker's heartbeat is {age:.0f} s old (more than {limit:.0f} s)",
                                "is `flywheel worker` running? Start it, or look at its log"))
        checks.append(self._outbox(backlog, now, figures))
        return Findings(checks, figures)

    def _migrations(self, revision: str | None, head: str | None) -> Check:
        if revision == head:
            return Check("migrations", True, f"at head ({head})")
        found = "has no Flywheel schema" if revision is None else f"is at {revision}, the code's head is {head}"
        return Check("migrations", False, f"the database {found}", "run `flywheel db upgrade`")

    def _outbox(self, backlog: vitals.OutboxBacklog, now: datetime, figures: dict[str, float]) -> Check:
        if backlog.oldest_created_at is None:
            return Check("outbox", True, "no message waiting")
        age = max(0.0, (now - backlog.oldest_created_at).total_seconds())
        figures["outbox_oldest_pending_age_seconds"] = round(age, 1)
        limit = self.outbox_stuck_after.total_seconds()
        if age <= limit:
            return Check("outbox", True, f"{backlog.pending} waiting, the oldest {age:.0f} s")
        return Check("outbox", False, f"the oldest of {backlog.pending} Slack messages waiting has waited {age:.0f} s "
                     f"(more than {limit:.0f} s)", "the worker sends them: check that it runs, its log, and that "
                     "Slack answers (SLACK_BOT_TOKEN, FLYWHEEL_SLACK_API_URL)")
