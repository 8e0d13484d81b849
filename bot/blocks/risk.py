"""The risk manager's sign-off request: is this safe to approve, and is it mine to approve?"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.common import (
    Message,
    button,
    chart_blocks,
    confirm,
    context,
    escape_mrkdwn,
    link_button,
    md,
    mention,
    span,
)
from bot.blocks.ml_engineer import comparison_fields, comparison_sentence
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import RETRAIN_ASKED, CandidateIncident, SignOffRequest, StepStatus

APPROVE = "Approve"
REJECT = "Reject"
MODEL_CARD = "Model card"


def step_line(step: StepStatus) -> str:
    name = escape_mrkdwn(step.name.capitalize())
    if step.done:
        return f"{name}: done by {', '.join(mention(p) for p in step.approvers)}"
    return f"{name}: {len(step.approvers)} of {step.quorum}"


def _why(candidate: CandidateIncident) -> str:
    if candidate.trigger == RETRAIN_ASKED:
        return f"{RETRAIN_ASKED} by {mention(candidate.requested_by)}"
    return escape_mrkdwn(candidate.trigger)


def signoff_request(request: SignOffRequest) -> Message:
    candidate = request.candidate
    model = candidate.model
    headline = f"Sign-off requested: {model.key} {model.version}"
    waiting = request.waiting
    blueprint = " · ".join(step_line(s) for s in sorted(request.steps, key=lambda s: s.done))
    fields = [
        md(f"*Project*\n{escape_mrkdwn(model.project_name)}"),
        md(f"*Business initiative*\n{escape_mrkdwn(request.initiative or 'not stated')}"),
        md(f"*Risk tier*\n{request.risk_tier.capitalize()}"),
        md(f"*Blueprint*\n{blueprint}"),
        md(f"*Requested by*\n{mention(request.submitted_by)}"),
        md(f"*Training window*\n{span(candidate.train_start, candidate.train_end)}"),
    ]
    champion = candidate.champion_version or "production"
    window = f"({span(candidate.window_start, candidate.window_end)}, {candidate.labelled_rows:,} rows)"
    if candidate.champion_version is None:
        evidence = (f"No version in production yet: {model.version} was judged against the spec's performance alert "
                    f"lines on the latest labelled window {window}. Why: {_why(candidate)}.")
    else:
        evidence = f"{model.version} against {champion} on the same labelled window {window}. Why: {_why(candidate)}."
    ctx = ActionContext(model=model.key, version=model.version_number)
    due = waiting[0] if waiting else None
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(fields=fields),
        SectionBlock(text=md(evidence)),
        SectionBlock(fields=comparison_fields(candidate, champion)),
        *chart_blocks(candidate.charts),
        context(f"due now: {escape_mrkdwn(due.name)}" if due else "every step is signed",
                f"owner {mention(model.owner)}"),
        ActionsBlock(block_id=BlockId.signoff_actions, elements=[
            button(APPROVE, ActionId.approve, ctx, style="primary", confirm=confirm(
                f"Approve {model.version}?",
                f"You are signing *{escape_mrkdwn(due.name) if due else 'the review'}* for "
                f"{model.key} {model.version}. "
                "This is recorded in the audit log.", APPROVE)),
            button(REJECT, ActionId.reject, ctx, style="danger"),
            link_button(MODEL_CARD, request.model_card_url, ActionId.model_card),
        ]),
    ]
    text = (f"{headline}. {comparison_sentence(candidate)}. Waiting for: "
            f"{', '.join(step_line(s) for s in waiting) or 'nothing'}.")
    return Message(kind="signoff_request", persona="risk_manager", model_key=model.key, text=text,
                   blocks=tuple(blocks), charts=candidate.charts)
