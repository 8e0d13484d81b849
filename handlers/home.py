"""App Home: published when someone opens it, and again when what it shows changes."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks.home import home_view
from bot.services.operations import Operations


def publish(ops: Operations, client: WebClient, slack_id: str, team: str | None = None) -> None:
    """`team`: the workspace the viewer opened it in. A refresh after a change elsewhere has none, and
    shows what the viewer's own grants reach, not what the request that changed something could see."""
    with ops.people.acting_in(team):
        home = ops.people.home(slack_id)
    client.views_publish(user_id=slack_id, view=home_view(home, public_url=ops.settings.public_url))


def register(app: App, ops: Operations) -> None:
    @app.event("app_home_opened")
    def opened(event: dict, body: dict, client: WebClient) -> None:
        if event.get("tab", "home") == "home":
            publish(ops, client, event["user"], body.get("team_id") or (event.get("view") or {}).get("team_id"))
            ops.people.seen_home(event["user"])
