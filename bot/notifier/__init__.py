"""Turns what jobs found into persona messages: builds the incident, renders its charts, hands the
message to delivery and remembers where it went. Jobs never talk to Slack; this is the notifier.

Notifier is one object for the callers (the composition root hands it to operations and the worker), made
of parts each readable on its own, sharing one Outlet (outlet.py: registry, settings, delivery, charts):

- threads.py      AlertThreads    where news of an alert goes (its message, or the storm digest carrying it)
- alert_messages.py AlertMessages an alert's message for its persona, with its charts
- lifecycle.py    AlertLifecycle  announce, repeat (edit in place, reply what moved), resolve
- digests.py      Digests         storm digests kept current, "Open thread", the daily digest
- governance.py   GovernanceNews  candidate ready, sign-offs, approval, deployment, rollback
- replies.py      AskerReplies    replies about work people asked for; words the work runner's facts
- tuning.py       ThresholdNews   thresholds suggested from noise feedback, settled when decided
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.blocks.common import Message
from bot.config import Settings
from bot.delivery import Delivery
from bot.notifier.alert_messages import AlertMessages
from bot.notifier.digests import Digests
from bot.notifier.governance import GovernanceNews
from bot.notifier.lifecycle import AlertLifecycle
from bot.notifier.outlet import Outlet
from bot.notifier.replies import AskerReplies
from bot.notifier.threads import AlertThreads
from bot.notifier.tuning import ThresholdNews
from jobs.monitor import ModelChecks
from jobs.work_runner import ComparisonFailure, WorkFailure
from store import digests
from store.db import Database


def _shared(name: str) -> property:
    """An attribute of the shared Outlet, read and set through the notifier (handlers set on_change)."""
    return property(lambda self: getattr(self.outlet, name), lambda self, value: setattr(self.outlet, name, value))


class Notifier:
    db = _shared("db")
    settings = _shared("settings")
    delivery = _shared("delivery")
    charts_dir = _shared("charts_dir")
    on_change = _shared("on_change")  # refreshes App Homes when what they show changed
    respond = _shared("respond")  # answers through a Slack response URL

    def __init__(self, db: Database, settings: Settings, delivery: Delivery, charts_dir: Path,
                 on_change: Callable[[], None] | None = None,
                 respond: Callable[[str, str, Sequence[Block]], None] | None = None) -> None:
        self.outlet = Outlet(db, settings, delivery, charts_dir, on_change, respond)
        self.threads = AlertThreads(self.outlet)
        self.digests = Digests(self.outlet)
        self.lifecycle = AlertLifecycle(self.outlet, self.threads, AlertMessages(self.outlet), self.digests)
        self.governance = GovernanceNews(self.outlet, self.threads)
        self.replies = AskerReplies(self.outlet, self.threads)
        self.thresholds = ThresholdNews(self.outlet)

    def refresh_home(self) -> None:
        self.outlet.refresh_home()

    # -- alerts and their threads

    def on_checks(self, checked: ModelChecks) -> list[str]:
        return self.lifecycle.on_checks(checked)

    def thread_of(self, alert_id: int | None) -> str | None:
        return self.threads.thread_of(alert_id)

    def say_in_thread(self, alert_id: int | None, text: str) -> bool:
        return self.threads.say_in_thread(alert_id, text)

    def origin_alert(self, model_key: str, number: int) -> int | None:
        return self.threads.origin_alert(model_key, number)

    # -- digests

    def open_in_digest(self, alert_id: int, *, now: datetime) -> digests.Opened:
        return self.digests.open_in_digest(alert_id, now=now)

    def daily_digest(self, now: datetime) -> list[str]:
        return self.digests.daily_digest(now)

    # -- a version's road to production

    def candidate_ready(self, model_key: str, number: int, *, alert_id: int | None) -> str:
        return self.governance.candidate_ready(model_key, number, alert_id=alert_id)

    def signoff_requested(self, model_key: str, number: int) -> str:
        return self.governance.signoff_requested(model_key, number)

    def settle_signoff(self, ref: str, model_key: str, number: int, note: str) -> None:
        self.governance.settle_signoff(ref, model_key, number, note)

    def refresh_request(self, model_key: str, number: int) -> bool:
        return self.governance.refresh_request(model_key, number)

    def settle_request(self, model_key: str, number: int, note: str) -> bool:
        return self.governance.settle_request(model_key, number, note)

    def signed(self, model_key: str, number: int, note: str) -> bool:
        return self.governance.signed(model_key, number, note)

    def ask_approvers(self, model_key: str, number: int, waiting: list) -> str:
        return self.governance.ask_approvers(model_key, number, waiting)

    def approved(self, model_key: str, number: int) -> str:
        return self.governance.approved(model_key, number)

    def deployed(self, model_key: str, number: int, *, previous: str | None, superseded: tuple[int, ...] = ()) -> str:
        return self.governance.deployed(model_key, number, previous=previous, superseded=superseded)

    def deployed_unsigned(self, model_key: str, number: int, *, by: str, missing: list[str]) -> str:
        return self.governance.deployed_unsigned(model_key, number, by=by, missing=missing)

    def rolled_back(self, model_key: str, number: int, *, from_label: str, by: str,
                    superseded: tuple[int, ...] = ()) -> str:
        return self.governance.rolled_back(model_key, number, from_label=from_label, by=by, superseded=superseded)

    # -- thresholds learnt from feedback

    def threshold_suggested(self, suggestion_id: int) -> str:
        return self.thresholds.suggested(suggestion_id)

    def settle_threshold(self, suggestion_id: int, note: str) -> bool:
        return self.thresholds.settle(suggestion_id, note)

    # -- replies about work people asked for (jobs/work_runner.py's WorkNews among them)

    def tell_asker(self, text: str, *, alert_id: int | None, response_url: str | None,
                   message: Message | None = None) -> bool:
        return self.replies.tell_asker(text, alert_id=alert_id, response_url=response_url, message=message)

    def work_failed(self, model_key: str, text: str, *, alert_id: int | None, response_url: str | None,
                    offer: ActionsBlock | None = None) -> None:
        self.replies.work_failed(model_key, text, alert_id=alert_id, response_url=response_url, offer=offer)

    def comparison_failed(self, model_key: str, number: int, text: str, *, alert_id: int | None,
                          response_url: str | None) -> None:
        self.replies.comparison_failed(model_key, number, text, alert_id=alert_id, response_url=response_url)

    def job_failed(self, model_key: str, text: str) -> None:
        self.replies.job_failed(model_key, text)

    def training_dispatched(self, model_key: str, number: int, trainer: str, *, alert_id: int | None,
                            response_url: str | None) -> bool:
        return self.replies.training_dispatched(model_key, number, trainer, alert_id=alert_id,
                                                response_url=response_url)

    def could_not_compare(self, failure: ComparisonFailure, *, alert_id: int | None,
                          response_url: str | None) -> None:
        self.replies.could_not_compare(failure, alert_id=alert_id, response_url=response_url)

    def work_item_failed(self, failure: WorkFailure, *, alert_id: int | None, response_url: str | None) -> None:
        self.replies.work_item_failed(failure, alert_id=alert_id, response_url=response_url)
