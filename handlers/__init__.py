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


def _team_id(body: dict) -> str | None:
    """The workspace a request comes from: `team_id` of a command or an event, `team.id` of a click or a
    view submission (`user.team_id` when a click carries no team)."""
    return (body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
            or None)


def register(app: App, ops: Operations) -> None:
    once.register(app, ops)  # first: a repeated request stops here, before anything else runs

    @app.middleware
    def request_context(body: dict, context: BoltContext, next) -> None:  # noqa: A002 - Bolt's name
        """Resolve the Slack user to a person and roles once per request; serve it as its workspace's."""
        _client.set(context.client)
        user_id, team = _user_id(body), _team_id(body)
        if team is None and ops.settings.oauth:  # installed in several workspaces: never serve all of them
            team = ops.people.NO_WORKSPACE
        if user_id:
            context["actor"] = ops.people.actor(user_id, team)
        # This workspace's projects only, in the listener and in the work it starts. Bolt runs the listener
        # after the middleware returned, in this context: set for every request, none inherits another's.
        ops.people.serve_as(team)
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

