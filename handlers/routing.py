"""One Bolt listener for every Flywheel button and menu, routed by action_id.

Bolt tries its listeners in turn and each try builds the listener's arguments, about 40 microseconds
on a 2-core VM: with a listener per action_id, a click on the sixteenth button registered paid for
sixteen tries, more than the click's own work. Here each click pays for one try and a dict lookup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.ids import ActionId

log = logging.getLogger("flywheel.actions")

Listener = Callable[..., None]  # (ack, body, client, respond, context), as Bolt passes them
NAMESPACE = re.compile(r"^flywheel\.")


class ActionRouter:
    def __init__(self, app: App, later: Callable[..., None]):
        self._routes: dict[str, Listener] = {}
        self._later = later  # runs Slack follow-ups after the ack (Operations.later)
        app.action(NAMESPACE)(self._route)

    def on(self, *action_ids: ActionId) -> Callable[[Listener], Listener]:
        def add(listener: Listener) -> Listener:
            for action_id in action_ids:
                if action_id in self._routes:
                    raise ValueError(f"{action_id} already has a listener")
                self._routes[action_id] = listener
            return listener
        return add

    def _route(self, ack: Ack, body: dict, client: WebClient, respond, context: dict) -> None:
        action_id = body["actions"][0]["action_id"]
        listener = self._routes.get(action_id)
        if listener is None:  # a button on a message older than this version of Flywheel
            ack()
            log.warning("no listener for action %s", action_id)
            self._later(lambda: respond(text="This button no longer does anything in this version of Flywheel.",
                                        response_type="ephemeral", replace_original=False))
            return
        listener(ack=ack, body=body, client=client, respond=respond, context=context)
