"""Slack listeners. `register(app, ops)` wires middleware, commands, actions, views, App Home
and the error handler onto the Bolt app that bot/app.py builds."""

from __future__ import annotations

from contextvars import ContextVar

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.blocks.modals import reject_modal
from bot.ids import ActionContext
from bot.services.operations import Operations
from handlers import actions, catalog, commands, errors, home, links, once, views
from handlers.routing import ActionRouter

# The request's own client: on an install in several workspaces (OAuth) only it has the workspace's token.
_client: ContextVar[WebClient | None] = ContextVar("flywheel_request_client", default=None)


def _user_id(body: dict) -> str | None:
    return body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user")


def register(app: App, ops: Operations) -> None:
    once.register(app, ops)  # first: a repeated request stops here, before anything else runs

    @app.middleware
    def request_context(body: dict, context: BoltContext, next) -> None:  # noqa: A002 - Bolt's name
        """Resolve the Slack user to a person and roles once per request."""
        _client.set(context.client)
        user_id = _user_id(body)
        if user_id:
            context["actor"] = ops.people.actor(user_id)
        next()

    def open_reject(trigger_id: str, model_key: str, number: int) -> None:
        (_client.get() or app.client).views_open(trigger_id=trigger_id, view=reject_modal(ActionContext(model=model_key,
                                                                                    version=number)))

    commands.register(app, ops, open_reject)
    router = ActionRouter(app, later=ops.later)
    actions.register(router, ops)
    catalog.register(router, ops)
    views.register(app, ops)
    home.register(app, ops)
    links.register(app, ops)
    errors.register(app)

    def refresh_homes() -> None:
        for slack_id in ops.people.home_viewers():
            ops.later(home.publish, ops, app.client, slack_id)

    ops.notifier.on_change = refresh_homes

