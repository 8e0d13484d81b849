"""Alert clicks and commands: acknowledge, snooze, rate as useful or noise."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.blocks.common import escape_mrkdwn, mention, when
from bot.services.common import Actor, Service, refusals_audited
from jobs.spec import parse_duration
from store import audit, authority, monitoring, registry
from store.errors import FlywheelError, Forbidden, InvalidTransition, NotFound
from store.models import PERSONAS, Alert, AlertState, Model

if TYPE_CHECKING:
    pass

SNOOZE_LIMIT = timedelta(days=30)
# Writes what shows a change (a clicked message's edit) in the change's own unit of work, given the note.
WrittenWith = Callable[[Session, str], None]


def already_acknowledged(by: str | None, at: datetime | None) -> str:
    who = f" by {mention(by)}" if by else ""
    return f"This alert is already acknowledged{who}{f' ({when(at)})' if at else ''}. Nothing changed."


class AlertActions(Service):
    @staticmethod
    def _may_act_on(s: Session, actor: Actor, model: Model, doing: str) -> None:
        """Alert clicks (acknowledge, snooze, rate) take any role on the project that owns the model."""
        authority.require(session=s, slack_id=actor.slack_id, project=model.project, roles=PERSONAS, doing=doing,
                          team=actor.team)

    def _alert(self, s, alert_id: int, actor: Actor) -> Alert:
        alert = s.get(Alert, alert_id)
        # An alert of another workspace's model reads as one that is gone (these run on the group-commit
        # thread, outside the request's workspace: the actor's team is asked explicitly).
        if alert is None or not authority.sees(alert.model.project, actor.team):
            raise NotFound(f"Alert {alert_id} no longer exists.")
        return alert

    # Alert clicks are the most frequent writes and come in bursts (a channel acknowledging a storm). Each
    # is checked at once, then queued as a short unit of work for the next group commit (Database.submit);
    # the future gives the note once it is committed, or the refusal. They start no work, so the click
    # handler acks Slack without waiting for the commit; commands wait for it.

    def _queued(self, work: Callable[[Session], str], *, actor: Actor, action: str, subject: str) -> Future[str]:
        def audit_refusal(done: Future[str]) -> None:
            if isinstance(refusal := done.exception(), FlywheelError):  # audited like every refusal
                self.commands_audit.put(actor=actor.slack_id, action=f"{action}.refused", subject=subject,
                                        details={"reason": str(refusal)}, at=self.clock())
        def in_workspace(s: Session) -> str:  # the group-commit thread serves no request: say whose it is
            with authority.acting_in(actor.team):
                return work(s)
        future = self.db.submit(in_workspace, changes_status=False)  # a clicked alert stays open: statuses stand
        future.add_done_callback(audit_refusal)
        return future

    def acknowledge(self, actor: Actor, alert_id: int, *, also: WrittenWith | None = None) -> Future[str]:
        """`also(session, note)` writes what shows the change (the clicked message's edit, through the
        outbox) in the same unit of work, so both commit or neither does."""
        now = self.clock()
        note = f"Acknowledged by {mention(actor.slack_id)} · {when(now)}"

        def work(s: Session) -> str:
            self._may_act_on(s, actor, self._alert(s, alert_id, actor).model, "Acknowledging this alert")
            try:
                model_key = monitoring.acknowledge(session=s, alert_id=alert_id, now=now, by=actor.slack_id)
            except monitoring.AlreadyAcknowledged as already:  # a repeated click: answered, nothing edited
                raise InvalidTransition(already_acknowledged(already.by, already.at)) from None
            # An acknowledged or snoozed alert is still open: the status, which counts open alerts, stays.
            audit.record(session=s, actor=actor.slack_id, action="alert.acknowledged",
                         subject=f"model:{model_key}", details={"alert": alert_id}, at=now, changes_status=False)
            if also is not None:
                also(s, note)
            return note

        with refusals_audited(self.db, actor.slack_id, "alert.acknowledge", f"alert:{alert_id}"):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't acknowledge alerts.")
        return self._queued(work, actor=actor, action="alert.acknowledge", subject=f"alert:{alert_id}")

    def snooze(self, actor: Actor, *, alert_id: int | None = None, model_key: str | None = None,
               duration: str, also: WrittenWith | None = None) -> Future[str]:
        subject = f"alert:{alert_id}" if alert_id else f"model:{model_key}"
        with refusals_audited(self.db, actor.slack_id, "alert.snooze", subject):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so you can't snooze alerts.")
            try:
                length = parse_duration(duration)
            except ValueError:
                raise InvalidTransition(f"'{escape_mrkdwn(duration)}' is not a duration; try 1h, 4h, 24h or 7d.") \
                    from None
            if length > SNOOZE_LIMIT:
                raise InvalidTransition("Snooze for 30 days at most; acknowledge the alert to stop reminders "
                                        "instead.")
        now = self.clock()
        until = now + length
        note = f"Snoozed by {mention(actor.slack_id)} until {when(until)}"

        def work(s: Session) -> str:
            if alert_id is not None:
                alerts = [self._alert(s, alert_id, actor)]
                self._may_act_on(s, actor, alerts[0].model, "Snoozing this alert")
            else:
                model = registry.get_model(session=s, key=model_key)
                self._may_act_on(s, actor, model, f"Snoozing the alerts of {model.key}")
                alerts = monitoring.live_alerts(session=s, model=model)
                if not alerts:
                    raise InvalidTransition(f"{model.key} has no open alerts to snooze.")
            for alert in alerts:
                alert.state, alert.snoozed_until, alert.updated_at = AlertState.snoozed, until, now
            audit.record(session=s, actor=actor.slack_id, action="alert.snoozed", subject=subject,
                         details={"until": until.isoformat(), "alerts": [a.id for a in alerts]}, at=now,
                         changes_status=False)
            if also is not None:
                also(s, note)
            return note

        return self._queued(work, actor=actor, action="alert.snooze", subject=subject)

    def feedback(self, actor: Actor, alert_id: int, *, noise: bool) -> Future[str]:
        now = self.clock()
        note = ("Marked as noise. Thanks: `flywheel report noise` shows which thresholds alert too often."
                if noise else "Marked as useful. Thanks.")

        def work(s: Session) -> str:
            self._may_act_on(s, actor, self._alert(s, alert_id, actor).model, "Rating this alert")
            monitoring.record_feedback(session=s, alert_id=alert_id, person=actor.slack_id, noise=noise, now=now)
            return note

        with refusals_audited(self.db, actor.slack_id, "alert.feedback", f"alert:{alert_id}"):
            if actor.person is None:
                raise Forbidden("You're not set up in Flywheel yet, so your feedback can't be counted.")
        queued = self._queued(work, actor=actor, action="alert.feedback", subject=f"alert:{alert_id}")
        if noise:  # enough noise on a feature proposes a quieter threshold to its ML engineers
            queued.add_done_callback(lambda done: done.exception() is None
                                     and self.later(self.ops.tuning.consider, alert_id))
        return queued
