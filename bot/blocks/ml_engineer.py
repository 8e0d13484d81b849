"""The ML engineer's messages: what changed, and what to do about it."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    HeaderBlock,
    Option,
    SectionBlock,
    StaticSelectElement,
)

from bot.blocks.common import (
    Message,
    button,
    chart_blocks,
    confirm,
    context,
    escape_mrkdwn,
    feedback_buttons,
    link_button,
    md,
    mention,
    span,
    when,
)
from bot.blocks.importance import reliance_line, standing
from bot.charts import format_value, metric_name
from bot.ids import SNOOZE_CHOICES, ActionContext, ActionId, BlockId
from jobs.checks import metric_value
from jobs.incidents import (
    CandidateIncident,
    DataQualityIncident,
    DriftIncident,
    MetricComparison,
    ModelRef,
    PerformanceIncident,
    by_importance,
)
from jobs.tasks import ThresholdVerdict, lower_is_better

RETRAIN = "Retrain"
ACKNOWLEDGE = "Acknowledge"
SNOOZE = "Snooze"
VIEW_DETAILS = "View details"
SUBMIT = "Submit for sign-off"
COMPARE_AGAIN = "Compare again"
DEPLOY = "Deploy"
MAX_FIELDS = 10  # Slack's limit per section
NO_PRODUCTION = "no version in production yet"
LOWER_BETTER = "lower is better"
NO_LINE = "no alert line in the spec"  # a metric the performance section draws no line for


def _figure(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.2g}"


def _value(value: float) -> str:
    """A metric's value: 0.61 for a share, 12,300 for an error in the label's unit."""
    return metric_value(value) if abs(value) >= 100 else _figure(value)


def alert_actions(model: ModelRef, details_url: str) -> ActionsBlock:
    ctx = ActionContext(model=model.key, version=model.version_number, alert=model.alert_id)
    # No Retrain button without a retrain backend in the model's spec: a click could only be refused.
    retrain = [button(RETRAIN, ActionId.retrain, ctx, style="primary")] if model.retrainable else []
    return ActionsBlock(block_id=BlockId.alert_actions, elements=[
        *retrain,
        button(ACKNOWLEDGE, ActionId.acknowledge, ctx),
        StaticSelectElement(
            placeholder=SNOOZE, action_id=ActionId.snooze,
            options=[Option(text=label, value=ctx.model_copy(update={"choice": key}).encode())
                     for key, label in SNOOZE_CHOICES.items()]),
        link_button(VIEW_DETAILS, details_url, ActionId.view_details),
        *feedback_buttons(ctx),
    ])


def drift_alert(incident: DriftIncident) -> Message:
    model = incident.model
    drifted, total = by_importance(incident.drifted), len(incident.features)
    headline = f"Input drift on {model.key} {model.version} · {len(drifted)} of {total} features"
    fields = [md(f"*{escape_mrkdwn(f.feature)}*\n{f.described}" + (f"\nIt is {said}." if (said := standing(f)) else ""))
              for f in drifted[:MAX_FIELDS]]
    stable = [escape_mrkdwn(f.feature) for f in incident.features if not f.drifted]
    rest = f"The other {len(stable)} features are stable: {', '.join(stable)}." if stable else ""
    if len(drifted) > MAX_FIELDS:
        rest = f"{len(drifted) - MAX_FIELDS} more drifted features in the details. " + rest
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(fields=fields),
    ]
    if rest:
        blocks.append(SectionBlock(text=md(rest)))
    if incident.related:
        blocks.append(SectionBlock(text=md(f":chart_with_upwards_trend: {escape_mrkdwn(incident.related)}")))
    blocks += [
        *chart_blocks(incident.charts),
        context(f"{span(incident.window_start, incident.window_end)}: {incident.current_rows:,} rows against "
                f"{incident.reference_rows:,} reference rows", f"owner {mention(model.owner)}",
                f"checked {when(incident.checked_at)}"),
        alert_actions(model, incident.details_url),
    ]
    summary = "; ".join(f"{escape_mrkdwn(f.feature)} {f.described.replace(chr(10), ', ')}"
                        + (f", {said}" if (said := standing(f)) else "") for f in drifted)
    return Message(kind="drift_alert", persona="ml_engineer", model_key=model.key,
                   text=f"{headline}: {summary}.", blocks=tuple(blocks), charts=incident.charts)


def _named(metric: str) -> str:
    return f"*{metric_name(metric)}*" + (f" ({LOWER_BETTER})" if lower_is_better(metric) else "")


def _verdict(line: ThresholdVerdict | None) -> str:
    if line is None:
        return NO_LINE
    rule = f"above {format_value(line.above, None)}" if line.above is not None else \
        f"below {format_value(line.below, None)}"
    return f"alert {rule} · {'*breached*' if line.breached else 'clear'}"


def comparison_fields(incident: CandidateIncident, champion: str) -> list:
    if incident.champion_version is None:  # nothing in production: the spec's alert lines are the yardstick
        lines = {t.metric: t for t in incident.thresholds}
        return [md(f"{_named(m.metric)}\n{format_value(m.challenger, None)} · {_verdict(lines.get(m.metric))}")
                for m in incident.metrics[:MAX_FIELDS]]
    return [md(f"{_named(m.metric)}\n{format_value(m.challenger, None)} vs {format_value(m.champion, None)}"
               f" for {champion} ({'+' if m.delta >= 0 else ''}{metric_value(m.delta)})")
            for m in incident.metrics[:MAX_FIELDS]]


def comparison_sentence(incident: CandidateIncident) -> str:
    champion = incident.champion_version or "production"
    lead = next((m for m in incident.metrics if m.metric == "recall"), incident.metrics[0] if incident.metrics else None)
    if lead is None:
        return f"{incident.model.version} has no metrics on the latest labelled window yet."
    if incident.champion_version is None:
        return f"{NO_PRODUCTION}; {_judged(incident, lead)}"
    return (f"{metric_name(lead.metric).lower()} {format_value(lead.challenger, None)} vs "
            f"{format_value(lead.champion, None)} for {champion}")


def _judged(incident: CandidateIncident, lead: MetricComparison) -> str:
    """The candidate against the spec's performance alert lines, led by one metric."""
    named = f"{metric_name(lead.metric)} {format_value(lead.challenger, None)}"
    if not incident.thresholds:
        return f"{named}, and the spec draws no performance alert line to judge it by"
    breached = [t for t in incident.thresholds if t.breached]
    if breached:
        return f"{named}, breaching the alert line of {', '.join(metric_name(t.metric) for t in breached)}"
    count = len(incident.thresholds)
    lines = "its alert line" if count == 1 else "both alert lines" if count == 2 else f"all {count} alert lines"
    return f"{named}, clear of {lines}"


def candidate_ready(incident: CandidateIncident) -> Message:
    model = incident.model
    champion = incident.champion_version or "production"
    headline = f"{model.key} {model.version} is ready for review"
    window = f"({span(incident.window_start, incident.window_end)}, {incident.labelled_rows:,} labelled rows)"
    if incident.champion_version is None and incident.metrics:
        lead = next((m for m in incident.metrics if m.metric == "recall"), incident.metrics[0])
        sentence = (f"*{model.version} ready:* {NO_PRODUCTION}, so it was judged against the spec's performance "
                    f"alert lines on the latest labelled window {window}: {_judged(incident, lead)}.")
    else:
        sentence = f"*{model.version} ready:* {comparison_sentence(incident)} on the latest labelled window {window}."
    ctx = ActionContext(model=model.key, version=model.version_number)
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(sentence)),
        SectionBlock(fields=comparison_fields(incident, champion)),
        *([SectionBlock(text=md(relies + "."))] if (relies := reliance_line(
            model.version, incident.champion_version, incident.challenger_importances,
            incident.champion_importances)) else []),
        *chart_blocks(incident.charts),
        context(f"trained on {span(incident.train_start, incident.train_end)}",
                f"requested by {mention(incident.requested_by)}", escape_mrkdwn(incident.trigger)),
        ActionsBlock(block_id=BlockId.candidate_actions, elements=[
            button(SUBMIT, ActionId.submit_for_signoff, ctx, style="primary"),
            link_button(VIEW_DETAILS, incident.details_url, ActionId.view_details),
        ]),
    ]
    return Message(kind="candidate", persona="ml_engineer", model_key=model.key,
                   text=f"{headline}: {comparison_sentence(incident)}.", blocks=tuple(blocks),
                   charts=incident.charts)


def work_failed(model_key: str, text: str, *, offer: ActionsBlock | None = None) -> Message:
    """Work that failed, in its own words (mrkdwn, user text in it escaped); `offer` is what can be done about it."""
    return Message(kind="work_failed", persona="ml_engineer", model_key=model_key, text=text,
                   blocks=(SectionBlock(text=md(text)), *((offer,) if offer else ())))


def compare_again(model_key: str, number: int, *, alert_id: int | None) -> ActionsBlock:
    """For a comparison with production that failed: run it again once the cause is fixed. The alert the
    version answers travels with it, so the next result goes to the same thread."""
    ctx = ActionContext(model=model_key, version=number, alert=alert_id)
    return ActionsBlock(block_id=BlockId.comparison_failed_actions,
                        elements=[button(COMPARE_AGAIN, ActionId.compare_again, ctx, style="primary")])


def performance_alert(incident: PerformanceIncident) -> Message:
    model = incident.model
    breached = [m for m in incident.metrics if m.breached]
    sides = {m.metric: "above" if lower_is_better(m.metric) else "below" for m in breached}
    if len(set(sides.values())) <= 1:  # an error rises over its line, a score falls under it
        names = f"{' and '.join(metric_name(m) for m in sides)} {next(iter(sides.values()), 'below')} the line"
    else:
        names = " and ".join(f"{metric_name(m)} {side}" for m, side in sides.items()) + " the line"
    headline = f"{names} on {model.key} {model.version}"

    def line(m) -> str:
        notes = ([f"alert {m.rule}"] if m.rule else []) + \
            ([f"{_value(m.at_training)} at training"] if m.at_training is not None else [])
        return f"{_named(m.metric)}\n{_value(m.value)}" + (f" ({'; '.join(notes)})" if notes else "")

    ordered = breached + [m for m in incident.metrics if not m.breached]
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(fields=[md(line(m)) for m in ordered[:MAX_FIELDS]]),
        context(f"{span(incident.window_start, incident.window_end)}: {incident.labelled_rows:,} of "
                f"{incident.rows:,} rows labelled so far", f"owner {mention(model.owner)}",
                f"checked {when(incident.checked_at)}"),
        alert_actions(model, incident.details_url),
    ]
    summary = ", ".join(f"{metric_name(m.metric)} {_value(m.value)} (alert {m.rule})" for m in breached)
    return Message(kind="performance_alert", persona="ml_engineer", model_key=model.key,
                   text=f"{headline}: {summary}.", blocks=tuple(blocks))


def data_quality_alert(incident: DataQualityIncident) -> Message:
    model = incident.model
    headline = f"Data quality problem on {model.key} {model.version}"
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md("\n".join(f"• {escape_mrkdwn(p[0].upper() + p[1:])}" for p in incident.problems))),
        context(f"{span(incident.window_start, incident.window_end)}: {incident.rows:,} rows",
                f"owner {mention(model.owner)}", f"checked {when(incident.checked_at)}"),
        alert_actions(model, incident.details_url),
    ]
    return Message(kind="data_quality_alert", persona="ml_engineer", model_key=model.key,
                   text=f"{headline}: {escape_mrkdwn('; '.join(incident.problems))}.", blocks=tuple(blocks))


def ready_to_deploy(model: ModelRef, signers: tuple[tuple[str, str], ...]) -> Message:
    headline = f"{model.key} {model.version} is approved"
    signed = ", ".join(f"{mention(person)} ({escape_mrkdwn(step)})" for person, step in signers) or "no steps required"
    body = f"Every sign-off is in: {signed}. It can go to production now."
    ctx = ActionContext(model=model.key, version=model.version_number)
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(body)),
        ActionsBlock(block_id=BlockId.candidate_actions, elements=[
            button(DEPLOY, ActionId.deploy, ctx, style="primary", confirm=confirm(
                f"Deploy {model.version}?", f"{model.key} {model.version} replaces the production version.", DEPLOY)),
        ]),
    ]
    return Message(kind="approved", persona="ml_engineer", model_key=model.key, text=f"{headline}. {body}",
                   blocks=tuple(blocks))
