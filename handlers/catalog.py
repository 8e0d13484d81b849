"""`/catalog QUERY` (and `/flywheel catalog QUERY`), and the buttons on its answer.

The search answers within the ack. "More results" and "Previous results" replace the ephemeral answer
in place through its response URL; "Share in channel" posts one result for everyone there.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack

from bot.blocks import catalog as blocks
from bot.blocks.replies import Reply
from bot.ids import ActionId, CatalogContext
from bot.services.common import Actor
from bot.services.operations import Operations
from handlers.errors import new_reference, unexpected_text
from handlers.routing import ActionRouter
from store.errors import FlywheelError


def answer(ops: Operations, actor: Actor, text: str) -> Reply:
    if not text.strip():
        return blocks.help_reply()
    found = ops.catalog.search(actor, text)
    return blocks.results_reply(found, public_url=ops.settings.public_url)


def _clicked(ops: Operations, ack: Ack, body: dict, respond, build: Callable[[CatalogContext], dict]) -> None:
    """Ack, build the answer from the button's context, and send it after the ack."""
    ack()
    try:
        payload = build(CatalogContext.decode(body["actions"][0]["value"]))
    except FlywheelError as exc:
        payload = {"text": str(exc), "response_type": "ephemeral", "replace_original": False}
    except Exception as exc:  # noqa: BLE001 - answered with a reference, logged with the traceback
        payload = {"text": unexpected_text(new_reference(exc)), "response_type": "ephemeral",
                   "replace_original": False}
    ops.later(lambda: respond(**payload))


def register(router: ActionRouter, ops: Operations) -> None:
    @router.on(ActionId.catalog_more, ActionId.catalog_previous)
    def page(ack: Ack, body: dict, respond, context: dict, **_) -> None:
        actor: Actor = context["actor"]

        def build(ctx: CatalogContext) -> dict:
            found = ops.catalog.search(actor, ctx.query or "", offset=ctx.offset)
            return {**blocks.results_reply(found, public_url=ops.settings.public_url).kwargs(),
                    "replace_original": True}

        _clicked(ops, ack, body, respond, build)

    @router.on(ActionId.catalog_share)
    def share(ack: Ack, body: dict, respond, context: dict, **_) -> None:
        actor: Actor = context["actor"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")

        def build(ctx: CatalogContext) -> dict:
            asset = ops.catalog.share(actor, ctx.asset or "", channel=channel)
            reply = blocks.shared_reply(asset, by=actor.slack_id, public_url=ops.settings.public_url)
            # in_channel through the response URL: everyone sees it, whether or not the bot is a member.
            return {**reply.kwargs(), "response_type": "in_channel", "replace_original": False}

        _clicked(ops, ack, body, respond, build)
