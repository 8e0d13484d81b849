"""Slack's retries and repeated payloads act once.

Slack sends a request again when it did not see our answer in time (`X-Slack-Retry-Num` on events), and a
network hiccup can deliver the same click twice. A governed request (a click or command that signs,
deploys or rolls back) claims its identity in the database before it acts, so whichever process receives
the repeat finds the claim and answers with an empty acknowledgement: one effect, one reply, no second
refusal. Everything else is read-only or already idempotent and runs as usual.
"""

from __future__ import annotations

from slack_bolt import App, BoltRequest, BoltResponse

from bot.ids import ActionId
from bot.services.operations import Operations

GOVERNED_ACTIONS = frozenset({ActionId.submit_for_signoff, ActionId.approve, ActionId.deploy, ActionId.rollback})
GOVERNED_COMMANDS = frozenset({"approve", "reject", "deploy", "rollback"})


def identity(body: dict) -> str | None:
    """The request's identity when it is governed: a click's team, user, action and action_ts (a new click
    has a new action_ts; the same payload again has the same), or a command's trigger_id."""
    team = (body.get("team") or {}).get("id") or body.get("team_id") or ""
    if body.get("type") == "block_actions":
        action = (body.get("actions") or [{}])[0]
        if action.get("action_id") not in GOVERNED_ACTIONS or not action.get("action_ts"):
            return None
        user = (body.get("user") or {}).get("id", "")
        return f"action:{team}:{user}:{action['action_id']}:{action['action_ts']}"
    if body.get("command") and body.get("trigger_id"):
        words = (body.get("text") or "").split()
        if not words or words[0].lower() not in GOVERNED_COMMANDS:
            return None
        return f"command:{team}:{body.get('user_id', '')}:{body['trigger_id']}"
    return None


def register(app: App, ops: Operations) -> None:
    @app.middleware
    def once(request: BoltRequest, body: dict, next) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        if body.get("type") == "event_callback" and request.headers.get("x-slack-retry-num") and \
                request.headers.get("x-slack-retry-reason", ["http_timeout"])[0] == "http_timeout":
            # The first delivery runs its listener before answering (process_before_response): a retry for a
            # timeout means only that Slack gave up waiting, and running it again would do the work twice.
            # A retry after an error of ours runs, since the first delivery did not finish.
            return BoltResponse(status=200, body="")
        key = identity(body)
        if key is not None and not ops.requests.first_request(key):
            return BoltResponse(status=200, body="")
        next()
        return None
