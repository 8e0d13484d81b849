"""What the terminal's governed commands share: the person they act as (`--as`), the operations they go
through (the ones Slack's buttons call), version numbers as people type them, and service sentences
(Slack mrkdwn with mentions) turned into plain text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from bot.blocks.dates import without_tokens
from bot.cli.common import Failure, load_settings, open_database
from store.errors import FlywheelError

AS_HELP = ("Who is acting: a Slack id (U0ML0001) or the name a project spec gives them. Default: the "
           "FLYWHEEL_AS environment variable. Their roles on the model's project decide, as in Slack.")
WORK_SECONDS = 3 * 3600  # how long the terminal waits for work it runs itself (a retrain)
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def as_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as", "who", envvar="FLYWHEEL_AS", required=True, metavar="PERSON", help=AS_HELP)(command)


def version_number(text: str) -> int:
    """`2` or `v2` (any case); anything else is refused."""
    digits = text.strip().lower().removeprefix("v")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        raise Failure(f"{text!r} is not a version: use its number, e.g. 2 or v2")
    return int(digits)


@contextmanager
def operations(*, inline: bool = True) -> Iterator[Any]:
    """The operations Slack uses, on FLYWHEEL_DATABASE_URL, telling people through Slack (with a bot token)
    or the outbox folder. `inline`: queued work (a retrain, a comparison) runs here; otherwise the worker
    runs it. Follow-ups and audit events are written before the command exits, refused or not. A domain
    refusal becomes a one-line failure."""
    from bot.app import make_notifier, make_operations

    settings = load_settings()
    db = open_database(settings)
    try:
        ops = make_operations(settings, db, make_notifier(settings, db), inline_work=inline)
    except FlywheelError as exc:
        db.dispose()
        raise Failure(str(exc)) from None
    try:
        try:
            yield ops
        finally:
            if ops.runner is not None:
                ops.runner.join(timeout=WORK_SECONDS)
            ops.join()
    except FlywheelError as exc:
        raise Failure(plain(str(exc), ops)) from None
    finally:
        db.dispose()


def plain(text: str, ops: Any | None) -> str:
    """A service's sentence for a terminal: mentions become names, mrkdwn escapes their characters."""
    def name(match: re.Match) -> str:
        return ops.people.actor(match.group(1)).name if ops is not None else match.group(1)

    text = without_tokens(_MENTION.sub(name, text))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
