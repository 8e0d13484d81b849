"""An alert's life in Slack: announced when new (unless its channel takes the daily digest), edited in place
and followed up in its thread while it repeats, told when it resolves."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.blocks.changes import PER_WINDOW, change
from bot.blocks.common import day, escape_mrkdwn, when
from bot.blocks.wording import period
from bot.notifier.alert_messages import AlertMessages
from bot.notifier.digests import Digests
from bot.notifier.outlet import Outlet
from bot.notifier.threads import AlertThreads
from jobs.monitor import CheckResult, ModelChecks
from jobs.number_format import format_value
from store import digests, monitoring
from store.models import Alert, AlertState, CheckKind, Model
from store.outbox import REF_PREFIX as OUTBOX_PREFIX


class AlertLifecycle:
    def __init__(self, outlet: Outlet, threads: AlertThreads, messages: AlertMessages, digests: Digests) -> None:
        self.outlet, self.threads, self.messages, self.digests = outlet, threads, messages, digests

    def on_checks(self, checked: ModelChecks) -> list[str]:
        """Post new alerts, thread updates of repeated ones, and say when an alert resolves.

        Alerts to a channel subscribed to the daily digest wait for it; an alert a storm digest
        carries gets its news in the digest's thread.
        """
        posted = []
        kpi_result = checked.result(CheckKind.kpi)
        for result in checked.results:
            if result.alert_id is None:
                for alert_id in result.resolved_alerts:
                    self._tell(alert_id, f":white_check_mark: Resolved: {result.kind.value.replace('_', ' ')} "
                                         f"check passed for the window ending {when(checked.window_end)}.")
                continue
            if result.alert_is_new:
                ref = self._announce(checked, result, kpi_result)
            else:
                ref = self._repeat(checked, result, kpi_result)
            if ref:
                posted.append(ref)
        if posted:
            self.outlet.refresh_home()
        return posted

    def _announce(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None) -> str | None:
        """Post an alert's message, unless its channel takes the daily digest instead."""
        with self.outlet.db.read() as s:
            alert = s.get(Alert, result.alert_id)
            if digests.held_for_daily(session=s, alert=alert):
                return None
            channel = alert.channel
        message = self.messages.build(checked, result, kpi_result)
        # The alert id lets the outbox hold the post briefly, so a storm becomes one digest.
        ref = self.outlet.post(replace(message, metadata={**message.metadata, "alert_id": result.alert_id}), channel)
        if ref.startswith(OUTBOX_PREFIX):  # queued: the sender swaps in the real timestamp
            posted_in, ts = channel or "", ref
        else:
            posted_in, _, ts = ref.partition(":")
        with self.outlet.db.session() as s:
            monitoring.mark_posted(session=s, alert=s.get(Alert, result.alert_id), channel=posted_in, message_ts=ts)
        return ref

    def _tell(self, alert_id: int, text: str) -> None:
        if (place := self.threads.place(alert_id)) is None:
            return
        self.threads.reply(place, text)
        if place.digest_id is not None:
            self.digests.refresh_storm(place.digest_id)

    def _repeat(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None) -> str | None:
        """The same incident again: edit its message in place and say what moved, in its thread.

        Snoozed alerts stay silent until their snooze ends; acknowledged ones get no more reminders.
        An alert never posted (its channel took the daily digest, and may have switched back) is
        announced now if its channel takes alerts as they happen.
        """
        as_of = checked.window_end
        with self.outlet.db.session() as s:
            alert = s.get(Alert, result.alert_id)
            model = s.get(Model, alert.model_id)
            earlier = monitoring.check_history(session=s, model=model, kind=result.kind, before=as_of, limit=1)
            previous = dict(earlier[-1].figures) if earlier else {}
            snoozed = alert.state == AlertState.snoozed
            if snoozed and alert.snoozed_until and alert.snoozed_until > as_of:
                return None
            if snoozed:
                alert.state, alert.snoozed_until = AlertState.open, None
            quiet, channel = alert.state == AlertState.acknowledged, alert.channel
        place = self.threads.place(result.alert_id)
        if place is None:
            return self._announce(checked, result, kpi_result)
        message = replace(self.messages.build(checked, result, kpi_result,
                                              charts=self.outlet.delivery.charts_on_update), channel=channel)
        if place.full:
            self.outlet.delivery.update(place.full, message)
        if place.digest_id is not None:
            self.digests.refresh_storm(place.digest_id)
        if not quiet:
            ended = "Snooze ended. " if snoozed else ""
            self.threads.reply(place, ended + follow_up(result.kind, previous, result.outcome.figures, as_of=as_of,
                                                        length=as_of - checked.window_start,
                                                        message=result.outcome.message))
        return None


_VERBS = {CheckKind.drift: "drifting", CheckKind.kpi: "breaching", CheckKind.performance: "below the line",
          CheckKind.data_quality: "failing"}


def follow_up(kind: CheckKind, before: dict, now: dict, *, as_of: datetime, length: timedelta, message: str) -> str:
    """The thread line of a repeated breach: "Still breaching (Nov 9, 2026): Missed fraud up 1.9 points (44.5% ->
    46.4%)", each breaching figure against last run's."""
    what = moved(kind, before, now, length=length) or escape_mrkdwn(message)
    return f"Still {_VERBS[kind]} ({day(as_of)}): {what}"


def _kpi_moved(before: dict, now: dict, length: timedelta) -> str:
    """Each breaching KPI's change since the last run, worded as every KPI change is."""
    old = {k["name"]: k["value"] for k in before.get("kpis", []) if k.get("value") is not None}
    _, unit = period(length)
    return ", ".join(
        f"{escape_mrkdwn(k['label'])} "
        + escape_mrkdwn(change(old[k["name"]], k["value"], k["unit"],
                               period=unit if k.get("aggregate") in PER_WINDOW else None)
                        if k["name"] in old else format_value(k["value"], k["unit"]))
        for k in now.get("kpis", []) if k["breached"] and k["value"] is not None)


def moved(kind: CheckKind, before: dict, now: dict, *, length: timedelta = timedelta(days=7)) -> str:
    """'card_age_days 0.21 -> 0.26': each breaching figure, last run's value then this run's."""
    def pairs(figures: dict, breaching: bool) -> dict[str, tuple[str, float, str | None]]:
        if kind == CheckKind.drift:
            return {f["feature"]: (f["feature"], f["statistic"], None) for f in figures.get("features", [])
                    if f["drifted"] or not breaching}
        if kind == CheckKind.performance:
            names = figures.get("breaches", []) if breaching else figures.get("metrics", {})
            return {m: (m, figures["metrics"][m], None) for m in names}
        return {}

    if kind == CheckKind.kpi:
        return _kpi_moved(before, now, length)
    old, new = pairs(before, breaching=False), pairs(now, breaching=True)
    return ", ".join(
        f"{escape_mrkdwn(label)} {escape_mrkdwn(format_value(old[key][1], unit)) + ' -> ' if key in old else ''}"
        f"{escape_mrkdwn(format_value(value, unit))}" for key, (label, value, unit) in new.items())
