"""Dashboard links pasted in Slack (`link_shared` -> `chat.unfurl`), and the message shortcut "Ask the model's
owner". Both read in one service call and send their answer after the ack."""

from __future__ import annotations

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.blocks import unfurl as blocks
from bot.ids import CallbackId
from bot.services.operations import Operations
from bot.services.unfurls import texts_of


def register(app: App, ops: Operations) -> None:
    @app.event("link_shared")
    def shared(event: dict, client: WebClient) -> None:
        urls = [link.get("url") or "" for link in event.get("links") or []]
        cards = ops.unfurls.cards(event.get("user") or "", urls)
        if not cards:
            return
        # Links typed into the composer come with an unfurl_id and source, posted ones with channel and ts.
        where = ({"unfurl_id": event["unfurl_id"], "source": event["source"]}
                 if event.get("unfurl_id") and event.get("source") == "composer"
                 else {"channel": event["channel"], "ts": event["message_ts"]})
        ops.later(lambda: client.chat_unfurl(**where, unfurls=blocks.unfurls(cards)))

    @app.shortcut(CallbackId.ask_owner)
    def ask_owner(ack: Ack, body: dict, client: WebClient, respond) -> None:
        ack()
        message = body.get("message") or {}
        asker = (body.get("user") or {}).get("id") or ""
        asked = ops.unfurls.owner_to_ask(texts_of(message))
        if asked is None:
            ops.later(lambda: respond(text=blocks.NO_MODEL, response_type="ephemeral", replace_original=False))
            return
        channel = (body.get("channel") or {}).get("id")
        thread_ts = message.get("thread_ts") or message.get("ts") or body.get("message_ts")
        text = blocks.ask_owner_text(model=asked.model, owner=asked.owner, asker=asker)
        delivery = getattr(ops.notifier, "delivery", None)
        if delivery is not None:
            ops.later(lambda: delivery.reply(f"{channel}:{thread_ts}", text))
        else:
            ops.later(lambda: client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text))
