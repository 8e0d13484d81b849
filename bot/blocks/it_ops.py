"""IT operations' deployment notice: what changed in production, and can I undo it?"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.common import (
    Message,
    button,
    confirm,
    escape_mrkdwn,
    link_button,
    md,
    mention,
)
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import Deployment, ModelRef

VIEW_DETAILS = "View details"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def deployment_notice(deployment: Deployment) -> Message:
    model = deployment.model
    headline = f"{model.key} {model.version} is live"
    signers = [f"{mention(person)} ({escape_mrkdwn(step)})" for person, step in deployment.sign_offs]
    body = f"Deployed by {mention(deployment.deployed_by)} at {deployment.deployed_at:%H:%M} UTC"
    body += f" after sign-offs by {_and(signers)}." if signers else "."
    body += f" Previous production version: {deployment.previous_version}." if deployment.previous_version \
        else " This is the model's first production version."
    elements = []
    if deployment.previous_version:
        ctx = ActionContext(model=model.key, version=model.version_number, to=deployment.previous_number)
        elements.append(button(f"Roll back to {deployment.previous_version}", ActionId.rollback, ctx,
                               style="danger", confirm=confirm(
                                   f"Roll back {model.key}?",
                                   f"Production goes back to {deployment.previous_version}; "
                                   f"{model.version} stops serving.", "Roll back", danger=True)))
    elements.append(link_button(VIEW_DETAILS, deployment.details_url, ActionId.view_details))
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(body)),
        ActionsBlock(block_id=BlockId.deployment_actions, elements=elements),
    ]
    return Message(kind="deployment", persona="it_ops", model_key=model.key,
                   text=f"{headline}. {body}", blocks=tuple(blocks))


def rollback_notice(model: ModelRef, *, stopped: str, by: str, at: datetime, details_url: str) -> Message:
    headline = f"{model.key} rolled back to {model.version}"
    body = f"Rolled back by {mention(by)} at {at:%H:%M} UTC. {stopped} stopped serving; {model.version} is live again."
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(body)),
        ActionsBlock(block_id=BlockId.deployment_actions,
                     elements=[link_button(VIEW_DETAILS, details_url, ActionId.view_details)]),
    ]
    return Message(kind="rollback", persona="it_ops", model_key=model.key, text=f"{headline}. {body}",
                   blocks=tuple(blocks))
