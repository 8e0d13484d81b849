"""Slash commands: `/flywheel SUBCOMMAND ...`, `/retrain MODEL [reason]` and `/catalog QUERY`.

Each listener parses, calls one operation, and acknowledges with an ephemeral answer within Slack's
3 seconds; slow work is recorded and runs after the ack.
"""

from __future__ import annotations

import difflib
import functools
import re

from slack_bolt import Ack, App

from bot.blocks import replies
from bot.blocks.common import unescape_slack
from bot.blocks.portfolio import portfolio_reply
from bot.blocks.replies import Reply
from bot.services.common import Actor
from bot.services.operations import Operations
from bot.services.pages import OVERDUE
from bot.services.statuses import ModelStatus
from handlers import catalog
from handlers.errors import answering
from store.errors import InvalidTransition
from store.models import ChannelDelivery, Decision

SUBCOMMANDS = ("help", "status", "models", "retrain", "evaluate", "approve", "reject", "deploy", "rollback",
               "subscribe", "snooze", "whoami", "catalog", "portfolio")
USAGE = {
    "status": "/flywheel status MODEL", "retrain": "/flywheel retrain MODEL [reason]",
    "evaluate": "/flywheel evaluate MODEL VERSION",
    "approve": "/flywheel approve MODEL VERSION", "reject": "/flywheel reject MODEL VERSION [reason]",
    "deploy": "/flywheel deploy MODEL VERSION", "rollback": "/flywheel rollback MODEL [--to VERSION]",
    "subscribe": "/flywheel subscribe PERSONA [#channel] [PROJECT] [immediate|digest]",
    "snooze": "/flywheel snooze MODEL DURATION",
    "catalog": "/flywheel catalog QUERY",
}
_CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|[^>]*)?>")


class Usage(InvalidTransition):
    """A command typed the wrong way; the message carries the usage line."""


def _need(args: list[str], count: int, sub: str) -> None:
    if len(args) < count:
        raise Usage(f"`{sub}` needs more. Usage: `{USAGE[sub]}`")


def _version(text: str, sub: str) -> int:
    digits = text.lower().removeprefix("v")
    if not digits.isdigit():
        raise Usage(f"'{text}' is not a version number like 2 or v2. Usage: `{USAGE[sub]}`")
    return int(digits)


def _rollback_to(words: list[str]) -> int | None:
    """`[--to] VERSION` after the model: the version to return to, or None for the one before production."""
    if words and words[0].lower() in ("--to", "to"):
        if len(words) == 1:
            raise Usage(f"`--to` needs a version, like `--to v1`. Usage: `{USAGE['rollback']}`")
        words = words[1:]
    if len(words) > 1:
        raise Usage(f"'{words[1]}' is one word too many. Usage: `{USAGE['rollback']}`")
    return _version(words[0], "rollback") if words else None


def _typed(words: list[str]) -> str:
    """A reason as the person typed it: Slack sends &, < and > typed in a command as entities; kept as plain
    text, it is escaped once wherever it is shown (and reads right in the audit log and the dashboard)."""
    return unescape_slack(" ".join(words))


def dispatch(ops: Operations, actor: Actor, text: str, *, channel_id: str, response_url: str | None,
             trigger_id: str | None = None, open_reject=None) -> Reply:
    words = text.split()
    if not words:
        return replies.help_reply(actor.person.roles if actor.person else [])
    sub, args = words[0].lower(), words[1:]
    if sub not in SUBCOMMANDS:
        close = difflib.get_close_matches(sub, SUBCOMMANDS, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else " Try `/flywheel help`."
        return replies.plain(f"`{sub}` isn't a Flywheel command.{hint}")
    roles = actor.person.roles if actor.person else []
    if sub == "help":
        return replies.help_reply(roles)
    if sub == "whoami":
        grants, projects = ops.people.whoami(actor)
        return replies.whoami_reply(actor.slack_id, actor.person.name if actor.person else None, grants, projects)
    if sub == "models":
        return replies.models_reply(ops.statuses.every_model())
    if sub == "portfolio":
        return portfolio_reply(ops.portfolios.of(actor), ops.settings.link("projects"), OVERDUE.days)
    if sub == "status":
        _need(args, 1, sub)
        found = ops.statuses.of(args[0])
        return _status_reply(found, ops.settings.link(f"models/{found.key}"))
    if sub == "retrain":
        _need(args, 1, sub)
        return replies.plain(ops.retraining.request_retrain(actor, args[0], reason=_typed(args[1:]),
                                                 response_url=response_url))
    if sub == "evaluate":
        _need(args, 2, sub)
        return replies.plain(ops.retraining.request_evaluation(actor, args[0], _version(args[1], sub),
                                                    response_url=response_url).note)
    if sub == "approve":
        _need(args, 2, sub)
        return replies.plain(ops.releases.sign(actor, args[0], _version(args[1], sub), Decision.approve,
                                      _typed(args[2:]))[0])
    if sub == "reject":
        _need(args, 2, sub)
        number = _version(args[1], sub)
        if len(args) > 2:
            return replies.plain(ops.releases.sign(actor, args[0], number, Decision.reject, _typed(args[2:]))[0])
        if open_reject is None or trigger_id is None:
            raise Usage(f"A rejection needs a reason. Usage: `{USAGE['reject']}`")
        open_reject(trigger_id, args[0], number)
        return replies.plain(f"Say why you reject {args[0]} v{number} in the form that opened.")
    if sub == "deploy":
        _need(args, 2, sub)
        return replies.plain(ops.releases.deploy(actor, args[0], _version(args[1], sub), response_url=response_url).note)
    if sub == "rollback":
        _need(args, 1, sub)
        return replies.plain(ops.releases.rollback(actor, args[0], to=_rollback_to(args[1:]), response_url=response_url))
    if sub == "snooze":
        _need(args, 2, sub)
        return replies.plain(ops.alerts.snooze(actor, model_key=args[0], duration=args[1]).result())
    if sub == "subscribe":
        _need(args, 1, sub)
        return replies.plain(subscribe(ops, actor, args, channel_id))
    return catalog.answer(ops, actor, " ".join(args))  # sub == "catalog"


_MODES = tuple(d.value for d in ChannelDelivery)
# Words people reach for when they mean a mode; said back to them with the two that work.
_MODE_LIKE = _MODES + ("daily", "instant", "immediately", "now", "live", "realtime", "summary", "weekly")
_NOT_A_MODE = "not a way to deliver alerts: use `digest` (one message a day) or `immediate` (as they happen)."


def _delivery(named: list[str]) -> str | None:
    """Take the delivery mode off the end of the words after the channel; refuse a word that is one
    badly spelt, or a word too many."""
    mode = named.pop().lower() if named and named[-1].lower() in _MODES else None
    if len(named) == 2 and mode is None:
        raise Usage(f"'{named[1]}' is {_NOT_A_MODE} Usage: `{USAGE['subscribe']}`")
    if len(named) > 1:
        raise Usage(f"'{named[1]}' is one word too many. Usage: `{USAGE['subscribe']}`")
    return mode


def _mode_word(ops: Operations, word: str) -> bool:
    """A lone word that is no project but reads like a mode ('daily', 'digets')."""
    if not difflib.get_close_matches(word.lower(), _MODE_LIKE, n=1, cutoff=0.75):
        return False
    return not ops.statuses.is_project(word)


def subscribe(ops: Operations, actor: Actor, args: list[str], channel_id: str) -> str:
    persona, rest = args[0], args[1:]
    channel = next((m[1] for a in rest if (m := _CHANNEL.fullmatch(a))), None) or channel_id
    named = [a for a in rest if not _CHANNEL.fullmatch(a)]
    mode = _delivery(named)
    if named and _mode_word(ops, named[0]):
        raise Usage(f"'{named[0]}' is {_NOT_A_MODE} Usage: `{USAGE['subscribe']}`")
    project, delivery = ops.people.subscribe(actor, persona=persona, channel=channel, project_key=named[0] if named else None,
                                      mode=mode)
    return replies.subscribed(persona, project, channel, delivery, ops.settings.digest_hour)


@functools.lru_cache(maxsize=256)
def _status_reply(status: ModelStatus, details_url: str) -> Reply:
    # A status is an immutable value: the same one always reads the same, so it is built once.
    return replies.status_reply(status, details_url)


def register(app: App, ops: Operations, open_reject) -> None:
    def _run(ack: Ack, command: dict, context: dict, text: str) -> None:
        actor: Actor = context["actor"]
        ops.requests.record_command(actor, command.get("command", "/flywheel"), text)
        with answering(ack) as answer:
            answer(dispatch(ops, actor, text, channel_id=command.get("channel_id", ""),
                            response_url=command.get("response_url"), trigger_id=command.get("trigger_id"),
                            open_reject=open_reject))

    @app.command("/flywheel")
    def flywheel(ack: Ack, command: dict, context: dict) -> None:
        _run(ack, command, context, command.get("text", ""))

    @app.command("/retrain")
    def retrain(ack: Ack, command: dict, context: dict) -> None:
        _run(ack, command, context, f"retrain {command.get('text', '')}")

    @app.command("/catalog")
    def catalog(ack: Ack, command: dict, context: dict) -> None:
        _run(ack, command, context, f"catalog {command.get('text', '')}")
