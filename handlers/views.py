"""Modal submissions: the reject form."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.blocks.modals import REASON_REQUIRED, read_reject
from bot.ids import BlockId, CallbackId
from bot.services.operations import Operations
from store.errors import FlywheelError
from store.models import Decision


def register(app: App, ops: Operations) -> None:
    @app.view(CallbackId.reject_modal)
    def reject(ack: Ack, view: dict, context: dict) -> None:
        ctx, channel, ts, reason = read_reject(view)
        if not reason.strip():
            ack(response_action="errors", errors={BlockId.reject_reason: REASON_REQUIRED})
            return
        try:
            note, _ = ops.releases.sign(context["actor"], ctx.model, ctx.version, Decision.reject, reason,
                                        shown_on=f"{channel}:{ts}" if channel and ts else None)
        except FlywheelError as exc:  # shown inside the modal, where the person still is
            ack(response_action="errors", errors={BlockId.reject_reason: str(exc)[:150]})
            return
        ack()
        if channel and ts:
            ops.later(ops.notifier.settle_signoff, f"{channel}:{ts}", ctx.model, ctx.version, note)
