"""The business stakeholder's KPI alert: are we losing money?"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.common import (
    Message,
    button,
    chart_blocks,
    context,
    day,
    escape_mrkdwn,
    feedback_buttons,
    link_button,
    md,
    mention,
    when,
)
from bot.blocks.importance import inputs_changed
from bot.blocks.wording import kpi_headline, kpi_sentence, period
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import KpiIncident, by_importance

VIEW_DETAILS = "View details"
ASK_ML_TEAM = "Ask the ML team"


def kpi_alert(incident: KpiIncident, *, baseline_windows: int) -> Message:
    length = incident.window_end - incident.window_start
    breached = incident.breached or incident.kpis
    lead = breached[0]
    headline = kpi_headline(lead, length)
    model = incident.model
    # Breaching KPIs first, then the rest, so the money figure is always there to read.
    ordered = list(incident.breached) + [k for k in incident.kpis if not k.breached]
    body = "\n".join(kpi_sentence(k, length, baseline_windows) for k in ordered)
    if changed := inputs_changed(by_importance(incident.drifted), period(length)[1]):
        body += "\n" + changed
    labels = f"labels complete to {day(incident.labels_complete_to)}" if incident.labels_complete_to else ""
    ctx = ActionContext(model=model.key, version=model.version_number, alert=model.alert_id)
    blocks = [
        HeaderBlock(text=f"{headline} · {model.project_name}"[:150]),
        SectionBlock(text=md(body)),
        *chart_blocks(incident.charts),
        context(f"{model.key} {model.version}", f"owner {mention(model.owner)}",
                f"checked {when(incident.checked_at)}", labels),
        ActionsBlock(block_id=BlockId.kpi_actions, elements=[
            link_button(VIEW_DETAILS, incident.details_url, ActionId.view_details),
            button(ASK_ML_TEAM, ActionId.ask_ml_team, ctx),
            *feedback_buttons(ctx),
        ]),
    ]
    text = f"{escape_mrkdwn(headline)} ({escape_mrkdwn(model.project_name)}). " + body.replace("*", "")
    return Message(kind="kpi_alert", persona="business", model_key=model.key, text=text,
                   blocks=tuple(blocks), charts=incident.charts)
