"""IT operations' deployment and rollback notices: what changed in production, and can I undo it?"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, HeaderBlock, SectionBlock

from bot.blocks.common import (
    Message,
    button,
    confirm,
    escape_mrkdwn,
    link_button,
    md,
    mention,
    when,
)
from bot.ids import ActionContext, ActionId, BlockId
from jobs.incidents import Deployment

VIEW_DETAILS = "View details"
NO_DIGEST = "not recorded (registered before Flywheel checked artifacts)"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _code(text: str) -> str:
    # Inside a code span Slack shows text as typed; a backtick would end it early.
    return f"`{escape_mrkdwn(text).replace('`', chr(39))}`"


def _facts(deployment: Deployment) -> SectionBlock:
    """What IT operations checks against their own systems: the bytes now serving and what they replaced."""
    at = deployment.deployed_at
    sha = _code(deployment.artifact_sha256) if deployment.artifact_sha256 else NO_DIGEST
    return SectionBlock(fields=[
        md(f"*Artifact*\n{_code(deployment.artifact_uri or 'unknown')}"),
        md(f"*SHA-256*\n{sha}"),
        md(f"*When*\n{when(at)}"),
        md(f"*Replaced*\n{deployment.previous_version or 'nothing (first production version)'}"),
    ])


def _undo(deployment: Deployment, label: str, text: str) -> list:
    """A button that returns production to the replaced version; it carries the version live when it was
    drawn (`version`) and the one it returns to (`to`), so a click after production moved is refused."""
    if not deployment.previous_version:
        return []
    model = deployment.model
    ctx = ActionContext(model=model.key, version=model.version_number, to=deployment.previous_number)
    return [button(label, ActionId.rollback, ctx, style="danger",
                   confirm=confirm(f"Roll back {model.key}?", text, "Roll back", danger=True))]


def deployment_notice(deployment: Deployment) -> Message:
    model = deployment.model
    headline = f"{model.key} {model.version} is live"
    signers = [f"{mention(person)} ({escape_mrkdwn(step)})" for person, step in deployment.sign_offs]
    body = f"Deployed by {mention(deployment.deployed_by)}, {when(deployment.deployed_at)}"
    body += f", after sign-offs by {_and(signers)}." if signers else "."
    body += f" Previous production version: {deployment.previous_version}." if deployment.previous_version \
        else " This is the model's first production version."
    body += "".join(f" {escape_mrkdwn(note)}" for note in deployment.notes)
    elements = _undo(deployment, f"Roll back to {deployment.previous_version}",
                     f"Production goes back to {deployment.previous_version}; {model.version} stops serving.")
    elements.append(link_button(VIEW_DETAILS, deployment.details_url, ActionId.view_details))
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(body)),
        _facts(deployment),
        ActionsBlock(block_id=BlockId.deployment_actions, elements=elements),
    ]
    return Message(kind="deployment", persona="it_ops", model_key=model.key,
                   text=f"{headline}. {body}", blocks=tuple(blocks))


def rollback_notice(deployment: Deployment) -> Message:
    """`deployment`: the version restored, by whom and when; `previous_version` is the one rolled back."""
    model, stopped = deployment.model, deployment.previous_version
    headline = f"{model.key} rolled back to {model.version}"
    body = (f"Rolled back by {mention(deployment.deployed_by)}, {when(deployment.deployed_at)}. "
            f"{stopped} stopped serving; {model.version} is live again.")
    elements = _undo(deployment, f"Return to {stopped}",
                     f"Production goes back to {stopped}; {model.version} stops serving.")
    elements.append(link_button(VIEW_DETAILS, deployment.details_url, ActionId.view_details))
    blocks = [
        HeaderBlock(text=headline[:150]),
        SectionBlock(text=md(body)),
        _facts(deployment),
        ActionsBlock(block_id=BlockId.deployment_actions, elements=elements),
    ]
    return Message(kind="rollback", persona="it_ops", model_key=model.key, text=f"{headline}. {body}",
                   blocks=tuple(blocks))
