"""One place that turns errors into answers: domain errors say what would work; anything else gets a
short reference the user can quote while the traceback goes to the log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_bolt import App

from bot.blocks.replies import Reply
from store.errors import FlywheelError

log = logging.getLogger("flywheel.slack")


def unexpected_text(reference: str) -> str:
    return (f"Something went wrong on Flywheel's side (reference {reference}). Nothing was changed; "
            "try again, and quote the reference to your Flywheel admin if it keeps happening.")


def new_reference(exc: BaseException) -> str:
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error, reference %s", reference, exc_info=exc)
    return reference


@contextmanager
def answering(ack: Callable[..., None]) -> Iterator[Callable[[Reply], None]]:
    """Acknowledge with the listener's answer, or with the error that stopped it; always exactly once."""
    answered = False

    def answer(reply: Reply) -> None:
        nonlocal answered
        answered = True
        ack(**reply.kwargs())

    try:
        yield answer
    except FlywheelError as exc:
        if not answered:
            ack(text=str(exc), response_type="ephemeral")
    except Exception as exc:  # noqa: BLE001 - answered with a reference, logged with the traceback
        if not answered:
            ack(text=unexpected_text(new_reference(exc)), response_type="ephemeral")
    else:
        if not answered:
            ack()


def register(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict, respond) -> None:
        # A listener that raised after its ack: tell the person through the response URL when there is one.
        text = str(error) if isinstance(error, FlywheelError) else unexpected_text(new_reference(error))
        if body.get("response_url"):
            respond(text=text, response_type="ephemeral", replace_original=False)
