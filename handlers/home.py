"""App Home: published when someone opens it, and again when what it shows changes."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks.home import home_view
from bot.services.operations import Operations


def publish(ops: Operations, client: WebClient, slack_id: str) -> None:
    client.views_publish(user_id=slack_id, view=home_view(ops.people.home(slack_id), public_url=ops.settings.public_url))


def register(app: App, ops: Operations) -> None:
    @app.event("app_home_opened")
    def opened(event: dict, client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            publish(ops, client, event["user"])
            ops.people.seen_home(event["user"])
