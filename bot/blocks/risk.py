"""The risk manager's sign-off request: is this safe to approve, and is it mine to approve?"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.changes import change, per_period
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
    when,
)
from bot.blocks.ml_engineer import comparison_fields, comparison_sentence
from bot.blocks.wording import period
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import RETRAIN_ASKED, CandidateIncident, SignOffRequest, StepStatus
from jobs.number_format import format_value
from store import authority

APPROVE = "Approve"
REJECT = "Reject"
MODEL_CARD = "Model card"
COMPARISON = "Comparison"


POLICY_SAID = {"block": "block: no deploy until every step is signed",
               "warn": "warn: a deploy goes ahead, the missing sign-offs are posted here",
               "allow": "allow: deploys need no sign-off"}
DEPLOYED_UNSIGNED = "Deployed with sign-offs missing"


def deploy_warning(*, model_key: str, label: str, deployed_by: str, missing: list[str], at, details_url: str
                   ) -> Message:
    """The risk channel told that a warn-policy deploy went ahead without every sign-off."""
    headline = f"{DEPLOYED_UNSIGNED}: {model_key} {label}"
    body = (f"{mention(deployed_by)} deployed {escape_mrkdwn(model_key)} {label} ({when(at)}) under the project's "
            f"*warn* deploy policy. Missing: {escape_mrkdwn(', '.join(missing))}. The audit log records it.")
    blocks = [HeaderBlock(text=headline[:150]), SectionBlock(text=md(body)),
              ActionsBlock(elements=[link_button(COMPARISON, details_url, ActionId.view_details)])]
    return Message(kind="deploy_warning", persona="risk_manager", model_key=model_key, text=f"{headline}. {body}",
                   blocks=tuple(blocks))


def _who(request: SignOffRequest, slack_id: str | None) -> str:
    """A person by name: only those who may sign now are mentioned (pinged); an unknown id stays a mention."""
    if slack_id in request.names and not any(slack_id in s.eligible for s in request.steps):
        return escape_mrkdwn(request.names[slack_id])
    return mention(slack_id)


def step_line(step: StepStatus, request: SignOffRequest | None = None) -> str:
    name = escape_mrkdwn(step.name.capitalize())
    if step.done:
        who = (lambda p: _who(request, p)) if request is not None else mention
        return f"{name}: done by {', '.join(who(p) for p in step.approvers)}"
    return f"{name}: {len(step.approvers)} of {step.quorum}"


def _why(request: SignOffRequest) -> str:
    candidate = request.candidate
    if candidate.trigger == RETRAIN_ASKED:
        return f"{RETRAIN_ASKED} by {_who(request, candidate.requested_by)}"
    return escape_mrkdwn(candidate.trigger)


def _signed(request: SignOffRequest, approval) -> str:
    said = f': "{escape_mrkdwn(approval.reason)}"' if approval.reason else ""
    return f"approved by {_who(request, approval.person)}, {when(approval.at)}{said}"


def step_blocks(request: SignOffRequest) -> list:
    """Every step in the blueprint's order: who signed it, when and why; the one due now and who may sign it
    (with its buttons); the ones after it waiting for it."""
    blocks, open_before = [], None
    for step in sorted(request.steps, key=lambda s: s.position):
        name, role = escape_mrkdwn(step.name.capitalize()), authority.role_name(step.role)
        signed = "; ".join(_signed(request, a) for a in step.approvals)
        if step.done:
            line = f":white_check_mark: *{name}* ({role}): {signed}"
        elif step.due:
            who = ", ".join(mention(p) for p in step.eligible) or f"nobody holding the {role} role can sign it"
            line = (f":hourglass_flowing_sand: *{name}* ({role}): {len(step.approvers)} of {step.quorum}, due now. "
                    f"{'Can sign: ' if step.eligible else ''}{who}" + (f". So far {signed}" if signed else ""))
        else:
            waits = f"waits for {escape_mrkdwn(open_before.name)}" if open_before else "not due"
            line = f":double_vertical_bar: *{name}* ({role}): {waits}"
        if not step.done and open_before is None:
            open_before = step
        blocks.append(SectionBlock(text=md(line)))
    return blocks


def _per(start, end) -> str | None:
    """The window's period ("week", "day", "3-day window") that a sum or count adds up over."""
    return period(end - start)[1] if start and end and end > start else None


def _moved(before: float | None, after: float, unit: str | None, per: str | None) -> str:
    """"down 38% ($20.1k -> $12.4k a week)": the candidate against production, as every other change is said."""
    if before is None:
        return f"{format_value(after, unit)}{per_period(per)}"
    return str(change(before, after, unit, period=per))


def stakes_text(candidate: CandidateIncident) -> str | None:
    """Money at stake both ways, production then candidate on the same labelled rows: what the spec's KPIs
    that read the prediction would have been, and for a binary classifier the missed positives and false
    alarms. None when the comparison predates these figures."""
    mine, theirs = candidate.challenger_outcomes, candidate.champion_outcomes
    if not mine:
        return None
    per = _per(candidate.window_start, candidate.window_end)
    before = {k["name"]: k["value"] for k in (theirs or {}).get("kpis", [])}
    totals = [k for k in mine.get("kpis", []) if k["aggregate"] in ("sum", "count")]  # money first
    shares = [k for k in mine.get("kpis", []) if k not in totals]
    parts = [f"{escape_mrkdwn(k['label'])}: {_moved(before.get(k['name']), k['value'], k['unit'], per)}"
             for k in totals]
    if "false_alarms" in mine:
        parts.append(f"false alarms: {_moved((theirs or {}).get('false_alarms'), mine['false_alarms'], None, per)}")
        parts.append(f"missed positives: {_moved((theirs or {}).get('missed'), mine['missed'], None, per)}")
    else:
        parts.append("no positive class for this task, so no missed positives or false alarms: the metrics above "
                     "compare the versions' errors instead")
    parts += [f"{escape_mrkdwn(k['label'])}: {_moved(before.get(k['name']), k['value'], k['unit'] or 'rate', None)}"
              for k in shares if k["aggregate"] == "rate"]
    versions = (f"{candidate.champion_version} (production) -> {candidate.model.version}" if theirs
                else f"{candidate.model.version} alone (nothing in production to set beside it)")
    window = f"{span(candidate.window_start, candidate.window_end)}, {candidate.labelled_rows:,} labelled rows"
    return f"*At stake*, {versions} on the same window ({window}):\n" + "; ".join(parts)


def signoff_request(request: SignOffRequest) -> Message:
    candidate = request.candidate
    model = candidate.model
    headline = f"Sign-off requested: {model.key} {model.version}"
    waiting = request.waiting
    blueprint = " · ".join(step_line(s, request) for s in sorted(request.steps, key=lambda s: s.done))
    fields = [
        md(f"*Project*\n{escape_mrkdwn(model.project_name)}"),
        md(f"*Business initiative*\n{escape_mrkdwn(request.initiative or 'not stated')}"),
        md(f"*Risk tier*\n{request.risk_tier.capitalize()}"),
        md(f"*Blueprint*\n{blueprint}"),
        md(f"*Requested by*\n{_who(request, request.submitted_by)}"),
        md(f"*Training window*\n{span(candidate.train_start, candidate.train_end)}"),
        md(f"*Deploy policy*\n{POLICY_SAID.get(request.policy, request.policy)}"),
    ]
    champion = candidate.champion_version or "production"
    window = f"({span(candidate.window_start, candidate.window_end)}, {candidate.labelled_rows:,} rows)"
    if candidate.champion_version is None:
        evidence = (f"No version in production yet: {model.version} was judged against the spec's performance alert "
                    f"lines on the latest labelled window {window}. Why: {_why(request)}.")
    else:
        evidence = f"{model.version} against {champion} on the same labelled window {window}. Why: {_why(request)}."
    ctx = ActionContext(model=model.key, version=model.version_number)
    due = next((s for s in request.steps if s.due), None)
    attest = (f"Signing *{escape_mrkdwn(due.name)}*, you attest that {model.key} {model.version} passed it, on the "
              "evidence above and in the model card." if due else "Every step is signed.")
    elements = [
        button(APPROVE, ActionId.approve, ctx, style="primary", confirm=confirm(
            f"Approve {model.version}?",
            f"You are signing *{escape_mrkdwn(due.name) if due else 'the review'}* for "
            f"{model.key} {model.version}. "
            "This is recorded in the audit log.", APPROVE)),
        button(REJECT, ActionId.reject, ctx, style="danger"),
    ] if due else []
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(fields=fields),
        SectionBlock(text=md(evidence)),
        SectionBlock(fields=comparison_fields(candidate, champion)),
        *([SectionBlock(text=md(stakes))] if (stakes := stakes_text(candidate)) else []),
        *chart_blocks(candidate.charts),
        *step_blocks(request),
        context(attest, f"owner {_who(request, model.owner)}"),
        ActionsBlock(block_id=BlockId.signoff_actions, elements=[
            *elements, link_button(MODEL_CARD, request.model_card_url, ActionId.model_card),
            link_button(COMPARISON, candidate.details_url, ActionId.view_details)]),
    ]
    pinged = " ".join(mention(p) for s in request.steps for p in s.eligible)
    text = (f"{headline}. {comparison_sentence(candidate)}. Waiting for: "
            f"{', '.join(step_line(s, request) for s in waiting) or 'nothing'}." + (f" {pinged}" if pinged else ""))
    return Message(kind="signoff_request", persona="risk_manager", model_key=model.key, text=text,
                   blocks=tuple(blocks), charts=candidate.charts)
