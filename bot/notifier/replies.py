"""Replies about work people asked for (retrain, evaluate, deploy, rollback): in the thread of the alert the
work answers, else privately to whoever typed the command, else to the ML engineers' channel. The work
runner (jobs/work_runner.py) reports facts; they are worded here."""

from __future__ import annotations

import logging

from slack_sdk.models.blocks import ActionsBlock, SectionBlock

from bot.blocks import ml_engineer
from bot.blocks.common import Message, escape_mrkdwn, md, mention
from bot.notifier.outlet import Outlet
from bot.notifier.threads import AlertThreads
from jobs.work_runner import ComparisonFailure, WorkFailure
from store.errors import FlywheelError

log = logging.getLogger(__name__)


class AskerReplies:
    def __init__(self, outlet: Outlet, threads: AlertThreads) -> None:
        self.outlet, self.threads = outlet, threads

    def tell_asker(self, text: str, *, alert_id: int | None, response_url: str | None,
                   message: Message | None = None) -> bool:
        """In the thread of the alert the work answers, else privately to whoever typed the command; as
        `message` (blocks, buttons) when given. False when neither reached them: a response URL lasts
        30 minutes, and work can take longer."""
        if (place := self.threads.place(alert_id)) is not None:
            if message is not None:
                self.outlet.delivery.reply_message(place.thread, message)
            else:
                self.threads.reply(place, text)
            return True
        if response_url and self.outlet.respond is not None:
            try:
                self.outlet.respond(response_url, text, message.blocks if message else ())
                return True
            except FlywheelError as exc:
                log.warning("could not answer through the response URL (%s)", exc)
        return False

    def work_failed(self, model_key: str, text: str, *, alert_id: int | None, response_url: str | None,
                    offer: ActionsBlock | None = None) -> None:
        """Told to whoever asked, else to the ML engineers' channel; `offer` is a button row for what to do."""
        message = ml_engineer.work_failed(model_key, text, offer=offer)
        if self.tell_asker(text, alert_id=alert_id, response_url=response_url, message=message if offer else None):
            return
        self.outlet.post(message, self.outlet.channel(model_key, "ml_engineer"))

    def comparison_failed(self, model_key: str, number: int, text: str, *, alert_id: int | None,
                          response_url: str | None) -> None:
        """A version's comparison with production failed: why, and a Compare again button for when the
        cause is fixed."""
        self.work_failed(model_key, text, alert_id=alert_id, response_url=response_url,
                         offer=ml_engineer.compare_again(model_key, number, alert_id=alert_id))

    def job_failed(self, model_key: str, text: str) -> None:
        message = Message(kind="job_failed", persona="ml_engineer", model_key=model_key, text=text,
                          blocks=(SectionBlock(text=md(f":x: {text}")),))
        self.outlet.post(message, self.outlet.channel(model_key, "ml_engineer"))

    def training_dispatched(self, model_key: str, number: int, trainer: str, *, alert_id: int | None,
                            response_url: str | None) -> bool:
        return self.tell_asker(f"Training {model_key} v{number} on {trainer}; it reports back when the run is done.",
                               alert_id=alert_id, response_url=response_url)

    def could_not_compare(self, failure: ComparisonFailure, *, alert_id: int | None,
                          response_url: str | None) -> None:
        """Why, and how to run the comparison again once the cause is fixed."""
        model_key, number = failure.model_key, failure.number
        what = (f"Retrained {model_key} v{number}, but comparing it with production failed" if failure.retrained
                else f"Comparing {model_key} v{number} with production failed")
        text = (f"{what}: {escape_mrkdwn(failure.problem.rstrip('.'))}. Once that is fixed, press Compare again or "
                f"type `/flywheel evaluate {model_key} v{number}`.")
        self.comparison_failed(model_key, number, text, alert_id=alert_id, response_url=response_url)

    def work_item_failed(self, failure: WorkFailure, *, alert_id: int | None, response_url: str | None) -> None:
        self.work_failed(failure.model_key, failure_text(failure), alert_id=alert_id, response_url=response_url)


def failure_text(failure: WorkFailure) -> str:
    """What the asker reads when work failed (mrkdwn: the error may quote a spec, a source or a trainer)."""
    error = escape_mrkdwn(failure.error)
    if failure.kind == "retrain":
        return f"Retraining {failure.model_key} failed: {error}"
    if failure.kind == "deploy":
        return (f"{mention(failure.requested_by)}: deploying {failure.model_key} v{failure.version} failed, so "
                f"production is unchanged. {error}")
    if failure.kind == "rollback":
        return (f"{mention(failure.requested_by)}: rolling back {failure.model_key} to v{failure.to} failed, so "
                f"production is unchanged. {error}")
    return f"{failure.kind.capitalize()} of {failure.model_key} failed: {error}"
