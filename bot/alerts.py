"""Turns what jobs found into persona messages: builds the incident, renders its charts, hands the
message to delivery and remembers where it went. Jobs never talk to Slack; this is the notifier."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from bot import charts
from bot.blocks import business, it_ops, ml_engineer, risk
from bot.blocks import digest as digest_blocks
from bot.blocks.common import Message, escape_mrkdwn, md, mention, settled, span
from slack_sdk.models.blocks import ActionsBlock, Block, SectionBlock

from bot.config import Settings
from bot.delivery import Delivery
from jobs.incidents import (
    CandidateIncident,
    ChartRef,
    Deployment,
    DriftIncident,
    FeatureFigure,
    DataQualityIncident,
    KpiFigure,
    KpiIncident,
    MetricComparison,
    MetricFigure,
    PerformanceIncident,
    ModelRef,
    SignOffRequest,
    StepStatus,
)
from jobs.checks import metric_rule
from jobs.monitor import CheckResult, ModelChecks, load_spec
from jobs.retrain import stored_comparison
from store import digests, governance, monitoring, registry
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, InvalidTransition
from store.outbox import REF_PREFIX as OUTBOX_PREFIX
from store.outbox import ref_of as outbox_ref
from store.models import Alert, AlertState, CheckKind, Decision, Digest, Model, ModelVersion, Person, WorkItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Place:
    """Where an alert's news goes: its own message, or the storm digest that carries it."""

    thread: str  # replies go here: the alert's message, or the digest's
    full: str | None  # the alert's full message to edit: its own, the copy in the digest's thread, or the
    # digested post a click will send
    digest_id: int | None
    model_key: str


@dataclass
class Notifier:
    db: Database
    settings: Settings
    delivery: Delivery
    charts_dir: Path

    on_change: Callable[[], None] | None = None  # refreshes App Homes when what they show changed
    respond: Callable[[str, str, Sequence[Block]], None] | None = None  # answers through a Slack response URL

    # -- helpers -----------------------------------------------------------------------------

    def _chart(self, chart: charts.Chart) -> ChartRef:
        return ChartRef(path=str(chart.path), title=chart.title, alt_text=chart.alt_text)

    def _model_ref(self, model: Model, version: ModelVersion | None, alert_id: int | None = None) -> ModelRef:
        return ModelRef(key=model.key, version=version.label if version else "(no production version)",
                        project_key=model.project.key, project_name=model.project.name, owner=model.owner,
                        alert_id=alert_id, version_number=version.number if version else None)

    def _post(self, message: Message, channel: str | None) -> str:
        return self.delivery.post(replace(message, channel=channel))

    def thread_of(self, alert_id: int | None) -> str | None:
        """Where news of an alert goes, as CHANNEL:TS (or an outbox ref until sent), read from the
        registry: the alert's message, or the storm digest that carries it."""
        place = self._place(alert_id)
        return place.thread if place else None

    def _place(self, alert_id: int | None) -> _Place | None:
        if alert_id is None:
            return None
        with self.db.read() as s:
            alert = s.get(Alert, alert_id)
            if alert is None:
                return None
            if alert.digest is not None:
                if not alert.digest.message_ref:
                    return None
                full = alert.digest_thread_ref
                if full is None and (row := digests.full_message_row(session=s, alert_id=alert.id)) is not None:
                    full = outbox_ref(row.id)
                return _Place(alert.digest.message_ref, full, alert.digest_id, alert.model.key)
            if not alert.message_ts:
                return None
            ref = alert.message_ts if alert.message_ts.startswith(OUTBOX_PREFIX) else \
                f"{alert.channel}:{alert.message_ts}"
            return _Place(ref, ref, None, alert.model.key)

    def refresh_home(self) -> None:
        """What App Homes show changed. Through the outbox (the app and the worker alike) everyone who
        opened theirs lately gets it published again by the sender; otherwise the app's own callback."""
        refresh = getattr(self.delivery, "refresh_homes", None)
        if refresh is not None:
            refresh()
        elif self.on_change is not None:
            self.on_change()

    # -- checks ------------------------------------------------------------------------------

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
                                         f"check passed for the window ending {checked.window_end:%b %d %H:%M} UTC.")
                continue
            if result.alert_is_new:
                ref = self._announce(checked, result, kpi_result)
            else:
                ref = self._repeat(checked, result, kpi_result)
            if ref:
                posted.append(ref)
        if posted:
            self.refresh_home()
        return posted

    def _announce(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None) -> str | None:
        """Post an alert's message, unless its channel takes the daily digest instead."""
        with self.db.read() as s:
            alert = s.get(Alert, result.alert_id)
            if digests.held_for_daily(session=s, alert=alert):
                return None
            channel = alert.channel
        message = self._alert_message(checked, result, kpi_result)
        # The alert id lets the outbox hold the post briefly, so a storm becomes one digest.
        ref = self._post(replace(message, metadata={**message.metadata, "alert_id": result.alert_id}), channel)
        if ref.startswith(OUTBOX_PREFIX):  # queued: the sender swaps in the real timestamp
            posted_in, ts = channel or "", ref
        else:
            posted_in, _, ts = ref.partition(":")
        with self.db.session() as s:
            monitoring.mark_posted(session=s, alert=s.get(Alert, result.alert_id), channel=posted_in, message_ts=ts)
        return ref

    def _reply(self, place: _Place, text: str) -> None:
        # Many models share a digest's thread: say which one the news is about.
        self.delivery.reply(place.thread, f"*{place.model_key}* · {text}" if place.digest_id else text)

    def _tell(self, alert_id: int, text: str) -> None:
        if (place := self._place(alert_id)) is None:
            return
        self._reply(place, text)
        if place.digest_id is not None:
            self._refresh_digest(place.digest_id)

    def _repeat(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None) -> str | None:
        """The same incident again: edit its message in place and say what moved, in its thread.

        Snoozed alerts stay silent until their snooze ends; acknowledged ones get no more reminders.
        An alert never posted (its channel took the daily digest, and may have switched back) is
        announced now if its channel takes alerts as they happen.
        """
        as_of = checked.window_end
        with self.db.session() as s:
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
        place = self._place(result.alert_id)
        if place is None:
            return self._announce(checked, result, kpi_result)
        message = replace(self._alert_message(checked, result, kpi_result,
                                              charts=self.delivery.charts_on_update), channel=channel)
        if place.full:
            self.delivery.update(place.full, message)
        if place.digest_id is not None:
            self._refresh_digest(place.digest_id)
        if not quiet:
            ended = "Snooze ended. " if snoozed else ""
            what = moved(result.kind, previous, result.outcome.figures) or escape_mrkdwn(result.outcome.message)
            self._reply(place, f"{ended}Still {_VERBS[result.kind]} ({as_of:%b %d}): {what}")
        return None

    # -- digests -----------------------------------------------------------------------------

    def _refresh_digest(self, digest_id: int) -> None:
        """A storm digest's lines show its alerts as they are now (figures, acknowledged, resolved)."""
        with self.db.read() as s:
            digest = s.get(Digest, digest_id)
            lines = digests.storm_lines(session=s, digest=digest)
            ref, channel, made = digest.message_ref, digest.channel, digest.created_at
        if ref:
            self.delivery.update(ref, replace(digest_blocks.storm_digest(lines, gathered_at=made), channel=channel))

    def open_in_digest(self, alert_id: int, *, now: datetime) -> digests.Opened:
        """A storm digest's "Open thread": the model's full alerts go into the digest's thread, once."""
        with self.db.session() as s:
            return digests.open_thread(session=s, alert_id=alert_id, now=now)

    def daily_digest(self, now: datetime) -> list[str]:
        """Each business channel subscribed with `digest` gets the last day's KPI alerts in one message
        at the digest hour. A channel with nothing to report gets nothing; a period is sent once."""
        until = now.replace(hour=self.settings.digest_hour, minute=0, second=0, microsecond=0)
        if until > now:
            until -= timedelta(days=1)
        since = until - timedelta(days=1)
        with self.db.read() as s:
            report = digests.daily_report(session=s, since=since, until=until)
        posted = []
        for channel in report:
            message = digest_blocks.daily_digest(channel, since=since, until=until, details_url=self.settings.link)
            if message is None:
                continue
            ref = self._post(message, channel.channel)
            with self.db.session() as s:
                digests.record_daily(session=s, channel=channel.channel, persona=channel.persona, since=since,
                                     until=until, message_ref=ref, alert_ids=[a.alert_id for a in channel.alerts],
                                     now=now)
            posted.append(ref)
        return posted

    def _alert_message(self, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None,
                       *, charts: bool = True) -> Message:
        """The alert's message; without `charts`, none are rendered (an edit whose delivery won't show them)."""
        with self.db.session() as s:
            model = registry.get_model(session=s, key=checked.model_key)
            version = registry.production_version(session=s, model=model)
            ref = self._model_ref(model, version, result.alert_id)
            run = monitoring.check_history(session=s, model=model, kind=result.kind, limit=1)[-1]
            performance = load_spec(model).performance
            alerts = performance.alert if performance else {}
        folder = self.charts_dir / f"alert-{result.alert_id}" if self.settings.charts else None
        details = self.settings.link(f"alerts/{result.alert_id}")
        figures = result.outcome.figures
        if result.kind == CheckKind.kpi:
            return self._kpi(ref, checked, figures, folder if charts else None, details, run.created_at)
        if result.kind == CheckKind.drift:
            return self._drift(ref, checked, result, kpi_result, folder if charts else None, details,
                               run.created_at)
        if result.kind == CheckKind.performance:
            return ml_engineer.performance_alert(PerformanceIncident(
                model=ref, window_start=checked.window_start, window_end=checked.window_end, checked_at=run.created_at,
                metrics=tuple(MetricFigure(m, v, figures["training_metrics"].get(m), metric_rule(alerts.get(m)),
                                           m in figures["breaches"]) for m, v in figures["metrics"].items()),
                labelled_rows=figures["labelled_rows"], rows=figures["rows"], details_url=details))
        return ml_engineer.data_quality_alert(DataQualityIncident(
            model=ref, window_start=checked.window_start, window_end=checked.window_end, checked_at=run.created_at,
            problems=tuple(figures["problems"]), rows=figures["rows"], details_url=details))

    def _kpi(self, ref: ModelRef, checked: ModelChecks, figures: dict, folder: Path | None, details: str,
             checked_at: datetime) -> Message:
        kpis = tuple(KpiFigure(
            name=k["name"], label=k["label"], unit=k["unit"], value=k["value"], baseline=k["baseline"],
            threshold=k["threshold"], breached=k["breached"], rule=k["rule"],
            points=tuple((datetime.fromisoformat(t), v) for t, v in k["history"])) for k in figures["kpis"]
            if k["value"] is not None)
        # The chart shows money when there is a money KPI: that is what this reader weighs.
        shown = next((k for k in kpis if (k.unit or "").lower() in ("usd", "$")), None) or \
            next((k for k in kpis if k.breached), kpis[0])
        breaches = [i for i, (_, v) in enumerate(shown.points)
                    if shown.threshold is not None and v > shown.threshold]
        if shown.breached and len(shown.points) - 1 not in breaches:
            breaches.append(len(shown.points) - 1)
        rendered = () if folder is None else (charts.kpi_trend(
            label=shown.label, unit=shown.unit, points=list(shown.points), threshold=shown.threshold,
            breach_indices=breaches, out=folder / f"kpi-{shown.name}.png"),)
        incident = KpiIncident(model=ref, window_start=checked.window_start, window_end=checked.window_end,
                               checked_at=checked_at, kpis=kpis,
                               labels_complete_to=_parse(figures.get("labels_complete_to")),
                               details_url=details, charts=tuple(self._chart(c) for c in rendered))
        baseline_n = next((k["baseline_windows"] for k in figures["kpis"]), 4)
        return business.kpi_alert(incident, baseline_windows=baseline_n)

    def _drift(self, ref: ModelRef, checked: ModelChecks, result: CheckResult, kpi_result: CheckResult | None,
               folder: Path | None, details: str, checked_at: datetime) -> Message:
        figures = result.outcome.figures
        features = tuple(FeatureFigure(f["feature"], f["method_label"], f["statistic"], f["threshold"],
                                       f["p_value"], f["drifted"]) for f in figures["features"])
        rendered = []
        top = next(iter(result.outcome.evidence.items()), None)
        if folder is not None and top is not None:
            name, (reference, current) = top
            stat = next(f for f in features if f.feature == name)
            kind = next(f["kind"] for f in figures["features"] if f["feature"] == name)
            rendered.append(charts.distribution(
                feature=name, kind=kind, reference=reference, current=current, out=folder / f"dist-{name}.png",
                statistic_text=f"{stat.method_label} {stat.statistic:.2f} (alert {stat.threshold:.2f})"))
        if folder is not None:
            rendered.append(charts.drift_bars(
                model=ref.key, features=[(f.feature, f.statistic, f.threshold, f.drifted) for f in features],
                method_label=" / ".join(dict.fromkeys(f.method_label for f in features)), out=folder / "drift.png"))
        related = None
        if kpi_result is not None and kpi_result.alert_id is not None:
            lead = next(k for k in kpi_result.outcome.figures["kpis"] if k["breached"])
            figure = KpiFigure(lead["name"], lead["label"], lead["unit"], lead["value"], lead["baseline"],
                               lead["threshold"], True, lead["rule"])
            change = figure.change_pct
            related = (f"{figure.label} is up {change:.0f}% over the same window" if change and change > 0 else
                       f"{figure.label} is {charts.format_value(figure.value, figure.unit)} over the same window")
        incident = DriftIncident(model=ref, window_start=checked.window_start, window_end=checked.window_end,
                                 checked_at=checked_at, features=features,
                                 current_rows=figures["current_rows"], reference_rows=figures["reference_rows"],
                                 details_url=details, related=related,
                                 charts=tuple(self._chart(c) for c in rendered))
        return ml_engineer.drift_alert(incident)

    # -- retrain, review, deploy ---------------------------------------------------------------

    def _candidate(self, model_key: str, number: int) -> CandidateIncident:
        comparison = stored_comparison(db=self.db, model_key=model_key, number=number)
        if comparison is None:
            raise InvalidTransition(f"{model_key} v{number} has not been evaluated against production yet.")
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            ref = self._model_ref(model, version)
            requested_by, trigger = version.created_by, str(version.parameters.get("trigger", ""))
            train_start, train_end = version.train_start, version.train_end
        metrics = tuple(MetricComparison(m, comparison.champion_metrics.get(m, float("nan")),
                                         comparison.challenger_metrics[m])
                        for m in comparison.challenger_metrics)
        chart = charts.champion_vs_challenger(
            champion_label=f"{comparison.champion} (production)", challenger_label=f"{comparison.challenger} (candidate)",
            champion=comparison.champion_metrics, challenger=comparison.challenger_metrics,
            out=self.charts_dir / f"{model_key}-v{number}" / "comparison.png",
            window_text=f"{span(comparison.window_start, comparison.window_end)}, "
                        f"{comparison.labelled_rows:,} labelled rows")
        return CandidateIncident(
            model=ref, champion_version=comparison.champion, window_start=comparison.window_start,
            window_end=comparison.window_end, labelled_rows=comparison.labelled_rows, metrics=metrics,
            requested_by=requested_by, trigger=trigger, train_start=train_start, train_end=train_end,
            details_url=self.settings.link(f"models/{model_key}/versions/{number}"), charts=(self._chart(chart),))

    def _channel(self, model_key: str, persona: str) -> str | None:
        with self.db.session() as s:
            return registry.get_model(session=s, key=model_key).project.channel_for(persona)

    def say_in_thread(self, alert_id: int | None, text: str) -> bool:
        if (place := self._place(alert_id)) is None:
            return False
        self._reply(place, text)
        return True

    def origin_alert(self, model_key: str, number: int) -> int | None:
        """The alert a version was trained to answer (through the retrain request that made it), so its
        sign-offs and deployment are told in that alert's thread."""
        with self.db.read() as s:
            version = registry.get_version(session=s, model_key=model_key, number=number)
            if (alert_id := version.parameters.get("alert")) is not None:
                return int(alert_id)
            item_id = version.parameters.get("work_item")
            item = s.get(WorkItem, item_id) if item_id is not None else None
            alert_id = (item.payload or {}).get("alert") if item is not None else None
            return int(alert_id) if alert_id is not None else None

    def signed(self, model_key: str, number: int, note: str) -> bool:
        """A sign-off given or refused, in the thread of the alert the version answers."""
        return self.say_in_thread(self.origin_alert(model_key, number), f"Sign-off on {model_key} v{number}: {note}")

    def candidate_ready(self, model_key: str, number: int, *, alert_id: int | None) -> str:
        message = ml_engineer.candidate_ready(self._candidate(model_key, number))
        self.say_in_thread(alert_id, message.text)
        ref = self._post(message, self._channel(model_key, "ml_engineer"))
        self.refresh_home()
        return ref

    def signoff_requested(self, model_key: str, number: int) -> str:
        message, channel = self._signoff_message(model_key, number)
        ref = self._post(message, channel)
        self.refresh_home()
        return ref

    def settle_signoff(self, ref: str, model_key: str, number: int, note: str) -> None:
        """Edit a sign-off request in place after a decision: current progress, no buttons, who decided."""
        message, _ = self._signoff_message(model_key, number)
        blocks = tuple(settled([b.to_dict() for b in message.blocks], note))
        self.delivery.update(ref, replace(message, blocks=blocks))

    def _signoff_message(self, model_key: str, number: int) -> tuple[Message, str | None]:
        candidate = self._candidate(model_key, number)
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            steps = tuple(StepStatus(p.step.name, p.step.role, p.step.quorum, tuple(a.person for a in p.approvals))
                          for p in governance.progress(session=s, version=version))
            request = SignOffRequest(candidate=candidate, initiative=model.project.initiative,
                                     risk_tier=model.project.risk_tier.value, steps=steps,
                                     submitted_by=version.submitted_by or version.created_by,
                                     model_card_url=self.settings.link(f"models/{model_key}/versions/{number}/card"))
            channel = model.project.channel_for("risk_manager")
        return risk.signoff_request(request), channel

    def ask_approvers(self, model_key: str, number: int, waiting: list) -> str:
        """Send the sign-off request again, naming who can give the missing sign-offs."""
        if not waiting:
            return ""
        roles = {w.role for w in waiting}
        with self.db.session() as s:
            version = registry.get_version(session=s, model_key=model_key, number=number)
            barred = {version.created_by, version.submitted_by, version.deploy_requested_by}
            project_id = version.model.project_id
            people = [p.slack_id for p in s.query(Person).order_by(Person.name)
                      if any(p.holds(r, project_id) for r in roles) and p.slack_id not in barred]
        if not people:
            return ""
        ref = self.signoff_requested(model_key, number)
        self.delivery.reply(ref, f"{' '.join(mention(p) for p in people)}: a deploy of {model_key} v{number} "
                                 "is waiting for your sign-off.")
        return f"{', '.join(mention(p) for p in people)} {'has' if len(people) == 1 else 'have'}"

    def approved(self, model_key: str, number: int) -> str:
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            signers = tuple((a.person, a.step.name) for a in version.sign_offs if a.decision == Decision.approve)
            ref = self._model_ref(model, version)
            channel = model.project.channel_for("ml_engineer")
        ref = self._post(ml_engineer.ready_to_deploy(ref, signers), channel)
        self.say_in_thread(self.origin_alert(model_key, number),
                           f"{model_key} v{number} has every sign-off its blueprint asks for and can be deployed.")
        self.refresh_home()
        return ref

    def rolled_back(self, model_key: str, number: int, *, from_label: str, by: str) -> str:
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            ref, channel = self._model_ref(model, version), model.project.channel_for("it_ops")
        ref = self._post(it_ops.rollback_notice(ref, stopped=from_label, by=by, at=version.deployed_at or utcnow(),
                                                details_url=self.settings.link(f"models/{model_key}")), channel)
        stopped = int(from_label.lstrip("v")) if from_label.lstrip("v").isdigit() else None
        if stopped is not None:
            self.say_in_thread(self.origin_alert(model_key, stopped),
                               f"{model_key} {from_label} was rolled back by {mention(by)}: v{number} is live again.")
        self.refresh_home()
        return ref

    def job_failed(self, model_key: str, text: str) -> None:
        message = Message(kind="job_failed", persona="ml_engineer", model_key=model_key, text=text,
                          blocks=(SectionBlock(text=md(f":x: {text}")),))
        self._post(message, self._channel(model_key, "ml_engineer"))

    def tell_asker(self, text: str, *, alert_id: int | None, response_url: str | None,
                   message: Message | None = None) -> bool:
        """In the thread of the alert the work answers, else privately to whoever typed the command; as
        `message` (blocks, buttons) when given. False when neither reached them: a response URL lasts
        30 minutes, and work can take longer."""
        if (place := self._place(alert_id)) is not None:
            if message is not None:
                self.delivery.reply_message(place.thread, message)
            else:
                self._reply(place, text)
            return True
        if response_url and self.respond is not None:
            try:
                self.respond(response_url, text, message.blocks if message else ())
                return True
            except FlywheelError as exc:
                log.warning("could not answer through the response URL (%s)", exc)
        return False

    def comparison_failed(self, model_key: str, number: int, text: str, *, alert_id: int | None,
                          response_url: str | None) -> None:
        """A version's comparison with production failed: why, and a Compare again button for when the
        cause is fixed."""
        self.work_failed(model_key, text, alert_id=alert_id, response_url=response_url,
                         offer=ml_engineer.compare_again(model_key, number, alert_id=alert_id))

    def work_failed(self, model_key: str, text: str, *, alert_id: int | None, response_url: str | None,
                    offer: ActionsBlock | None = None) -> None:
        """Told to whoever asked, else to the ML engineers' channel; `offer` is a button row for what to do."""
        message = ml_engineer.work_failed(model_key, text, offer=offer)
        if self.tell_asker(text, alert_id=alert_id, response_url=response_url, message=message if offer else None):
            return
        self._post(message, self._channel(model_key, "ml_engineer"))

    def deployed(self, model_key: str, number: int, *, previous: str | None) -> str:
        with self.db.session() as s:
            model = registry.get_model(session=s, key=model_key)
            version = registry.get_version(session=s, model_key=model_key, number=number)
            approvals = tuple((a.person, a.step.name) for a in version.sign_offs if a.decision == Decision.approve)
            deployment = Deployment(model=self._model_ref(model, version), deployed_by=version.deployed_by or "",
                                    deployed_at=version.deployed_at or utcnow(), sign_offs=approvals,
                                    previous_version=previous,
                                    details_url=self.settings.link(f"models/{model_key}"))
            channel = model.project.channel_for("it_ops")
        ref = self._post(it_ops.deployment_notice(deployment), channel)
        self.say_in_thread(self.origin_alert(model_key, number),
                           f"{model_key} v{number} is live, deployed by {mention(deployment.deployed_by)} at "
                           f"{deployment.deployed_at:%H:%M} UTC" + (f"; {previous} stopped." if previous else "."))
        self.refresh_home()
        return ref


_VERBS = {CheckKind.drift: "drifting", CheckKind.kpi: "breaching", CheckKind.performance: "below the line",
          CheckKind.data_quality: "failing"}


def moved(kind: CheckKind, before: dict, now: dict) -> str:
    """'card_age_days 0.21 -> 0.26': each breaching figure, last run's value then this run's."""
    def pairs(figures: dict, breaching: bool) -> dict[str, tuple[str, float, str | None]]:
        if kind == CheckKind.drift:
            return {f["feature"]: (f["feature"], f["statistic"], None) for f in figures.get("features", [])
                    if f["drifted"] or not breaching}
        if kind == CheckKind.kpi:
            return {k["name"]: (k["label"], k["value"], k["unit"]) for k in figures.get("kpis", [])
                    if (k["breached"] or not breaching) and k["value"] is not None}
        if kind == CheckKind.performance:
            names = figures.get("breaches", []) if breaching else figures.get("metrics", {})
            return {m: (m, figures["metrics"][m], None) for m in names}
        return {}

    old, new = pairs(before, breaching=False), pairs(now, breaching=True)
    return ", ".join(
        f"{escape_mrkdwn(label)} {escape_mrkdwn(charts.format_value(old[key][1], unit)) + ' -> ' if key in old else ''}"
        f"{escape_mrkdwn(charts.format_value(value, unit))}" for key, (label, value, unit) in new.items())


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
