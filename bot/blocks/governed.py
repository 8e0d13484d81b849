"""What a refused governed click is told: the change that happened since its message was drawn, or who
already did what it asks. Pure functions from the store's facts (store.governance.Change) to sentences."""

from __future__ import annotations

from bot.blocks.common import mention, when
from store.governance import Change, Settled

NOTHING_CHANGED = {"rollback": "Nothing was rolled back.", "deploy": "Nothing was deployed.",
                   "sign": "Your sign-off was not recorded."}


def _text(user_text: str) -> str:
    """User text as typed, never a mention or a link (Slack's mrkdwn escapes)."""
    return user_text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _by_at(change: Change) -> str:
    by = f" by {mention(change.by)}" if change.by else ""
    return f"{by}, {when(change.at)}" if change.at else by


def what_changed(change: Change) -> str:
    """`fraud-detector v2 was rejected by @Noor, <date token> ("reason")`, and the like."""
    name = f"{change.model_key} {change.label}"
    if change.what == "stopped":
        if change.live is None:
            return f"{name} no longer serves, and nothing is in production"
        at = f" ({when(change.at)})" if change.at else ""
        who = f" when {mention(change.by)} put {change.live} in production" if change.by else \
            f": {change.live} is in production"
        return f"{name} stopped serving{who}{at}"
    if change.what in ("deployed", "rolled back"):
        return f"{name} is live ({change.what}{_by_at(change)})"
    said = f' ("{_text(change.reason)}")' if change.reason else ""
    if change.what in ("approved", "rejected"):
        return f"{name} was {change.what}{_by_at(change)}{said}"
    return f"{name} is {change.what.replace('_', ' ')}"


def refusal(doing: str, refused: Settled) -> str:
    """The answer to a click refused as stale or already done; `doing`: rollback, deploy or sign."""
    change = refused.change
    if refused.already and doing == "rollback":
        return f"{change.model_key} is already on {change.label} ({change.what}{_by_at(change)}). Nothing changed."
    if refused.already:
        return f"{change.model_key} {change.label} is already in production ({change.what}{_by_at(change)}). " \
               "Nothing changed."
    if doing == "rollback":
        return f"Production of {change.model_key} changed since this was asked: {what_changed(change)}. " \
               f"{NOTHING_CHANGED[doing]}"
    if doing == "sign":
        return f"{change.model_key} {change.label} is no longer waiting for sign-off: {what_changed(change)}. " \
               f"{NOTHING_CHANGED[doing]}"
    if change.what == "rejected":
        return f"{what_changed(change)}, so it can't be deployed."
    return f"{change.model_key} {change.label} is no longer approved: {what_changed(change)}. " \
           f"{NOTHING_CHANGED[doing]}"
