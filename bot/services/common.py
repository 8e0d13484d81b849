"""What every service shares: who is asking, how slow work runs, how refusals are audited and worded."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.blocks import governed
from bot.config import Settings
from store import audit, governance
from store.db import Database
from store.errors import FlywheelError
from store.models import Person

ACTOR_TTL_SECONDS = 30.0  # a role change in a spec reaches Slack within this
AUTOMATIC = "flywheel"  # who asks when Flywheel retrains on its own


@dataclass
class Actor:
    """The Slack user behind a request, resolved once by middleware. What they may do is asked of
    store.authority, per project, inside each operation's unit of work.

    `team` is the Slack workspace the request came from (None: the terminal, the API): a project of
    another workspace is, to them, a project that does not exist."""

    slack_id: str
    person: Person | None
    team: str | None = None

    @property
    def name(self) -> str:
        return self.person.name if self.person else self.slack_id


class BackgroundFailures(ExceptionGroup):
    """Every piece of background work that failed since the last join, not just the first."""


@dataclass
class Runner:
    """Runs slow work off the request thread; the worker process takes this over for real deployments.

    Only unfinished work is kept; a failure is kept (the latest MAX_FAILURES) until `join` reports it.
    """

    MAX_FAILURES = 100

    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="work"))
    _pending: set[Future] = field(default_factory=set)
    _failures: deque[BaseException] = field(default_factory=lambda: deque(maxlen=Runner.MAX_FAILURES))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pending(self) -> int:
        """How many submitted pieces of work have not finished."""
        with self._lock:
            return len(self._pending)

    def submit(self, fn: Callable[..., object], *args: object) -> Future:
        # In the submitter's context: the request id and Slack ids bound for its logs (bot/logs.py) carry over.
        future = self.pool.submit(contextvars.copy_context().run, fn, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future) -> None:
        failure = None if future.cancelled() else future.exception()
        with self._lock:
            self._pending.discard(future)
            if failure is not None:
                self._failures.append(failure)

    def join(self, timeout: float = 120) -> None:
        """Wait for all submitted work, including work submitted meanwhile; raise every failure at once."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                waiting = list(self._pending)
            if not waiting:
                break
            done, not_done = wait(waiting, timeout=max(0.0, deadline - time.monotonic()))
            if not_done and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(not_done)} background task(s) still running after {timeout:.0f} s")
        with self._lock:
            failures, self._failures = list(self._failures), deque(maxlen=self.MAX_FAILURES)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise BackgroundFailures(f"{len(failures)} background tasks failed", failures)


@contextmanager
def refusals_audited(db: Database, actor: str, action: str, subject: str) -> Iterator[None]:
    """Refused attempts are audited in their own unit of work: the failed one rolls back."""
    try:
        yield
    except FlywheelError as exc:
        with db.session() as s:
            audit.record(session=s, actor=actor, action=f"{action}.refused", subject=subject,
                         details={"reason": str(exc)})
        raise


@contextmanager
def stale_refusals_worded(doing: str) -> Iterator[None]:
    """A click refused as stale or already done is told what changed, with who and when as mentions."""
    try:
        yield
    except governance.Settled as exc:
        raise governance.Settled(governed.refusal(doing, exc), exc.change, already=exc.already) from None


class Context(Protocol):
    """What services share, built once by the composition root (bot/services/operations.py `Operations`)."""

    settings: Settings
    db: Database
    notifier: Any
    runner: Runner | None
    work: Any  # jobs.work_runner.WorkRunner
    clock: Callable[[], datetime]
    commands_audit: Any
    retraining: Any  # bot.services.retraining.Retraining, for checks that retrain on their own
    mlflow: Any  # bot.services.mlflow_sync.MlflowSync, for releases that move MLflow's alias

    def later(self, fn: Callable[..., object], *args: object) -> None: ...


class Service:
    """A group of use cases sharing the application's database, settings, notifier and runners."""

    def __init__(self, ops: Context) -> None:
        self.ops = ops

    db = property(lambda self: self.ops.db)
    settings = property(lambda self: self.ops.settings)
    notifier = property(lambda self: self.ops.notifier)
    runner = property(lambda self: self.ops.runner)
    work = property(lambda self: self.ops.work)
    clock = property(lambda self: self.ops.clock)
    later = property(lambda self: self.ops.later)
    commands_audit = property(lambda self: self.ops.commands_audit)
