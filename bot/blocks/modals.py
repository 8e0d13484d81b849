"""Modals: the reject form, whose reason is required."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.blocks.common import escape_mrkdwn, md
from bot.ids import ActionContext, BlockId, CallbackId

REASON_ACTION = "reason"
REASON_REQUIRED = "A rejection needs a reason: say what would have to change for you to approve."


def reject_modal(ctx: ActionContext, *, channel: str | None = None, message_ts: str | None = None) -> View:
    metadata = json.dumps({"ctx": ctx.encode(), "channel": channel, "ts": message_ts})
    return View(
        type="modal", callback_id=CallbackId.reject_modal, private_metadata=metadata,
        title="Reject a version", submit="Reject", close="Cancel",
        blocks=[
            SectionBlock(text=md(f"You are rejecting *{escape_mrkdwn(ctx.model)} v{ctx.version}*. The reason goes "
                                 "to the audit log and to the team in Slack.")),
            InputBlock(block_id=BlockId.reject_reason, label="Why?",
                       element=PlainTextInputElement(action_id=REASON_ACTION, multiline=True,
                                                     placeholder="e.g. precision on small merchants dropped too far")),
        ])


def read_reject(view: dict) -> tuple[ActionContext, str | None, str | None, str]:
    metadata = json.loads(view.get("private_metadata") or "{}")
    reason = view["state"]["values"][BlockId.reject_reason][REASON_ACTION].get("value") or ""
    return ActionContext.decode(metadata["ctx"]), metadata.get("channel"), metadata.get("ts"), reason
