"""Pieces every persona's message shares, and the checks every payload must pass."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    ImageBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

# day and span are re-exported for their callers; the date words live in bot/blocks/dates.py
from bot.blocks.dates import day, span, when, when_text, without_tokens  # noqa: F401
from bot.ids import ActionContext, ActionId
from jobs.incidents import ChartRef

MAX_BLOCKS = 50  # Slack's limit for a message


@dataclass(frozen=True)
class Message:
    """One Slack message for one persona: fallback text, blocks and the charts that go with it."""

    kind: str  # kpi_alert, drift_alert, candidate, signoff_request, deployment
    persona: str
    model_key: str
    text: str
    blocks: tuple[Block, ...]
    charts: tuple[ChartRef, ...] = ()
    channel: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        # The notification text cannot render date tokens: it says each one's fallback.
        return {"text": without_tokens(self.text), "blocks": [b.to_dict() for b in self.blocks]}


class InvalidMessage(ValueError):
    pass


def validate_payload(payload: dict[str, Any]) -> list[Block]:
    """Parse a chat payload back with slack_sdk and run its validations; raise on anything off."""
    text = payload.get("text") or ""
    if not text.strip():
        raise InvalidMessage("a message needs a plain-text fallback")
    raw = payload.get("blocks") or []
    if len(raw) > MAX_BLOCKS:
        raise InvalidMessage(f"{len(raw)} blocks, Slack allows {MAX_BLOCKS}")
    blocks = Block.parse_all(raw)
    if any(b is None for b in blocks) or len(blocks) != len(raw):
        raise InvalidMessage("a block has an unknown type")
    for block in blocks:
        block.validate_json()
    if [b.to_dict() for b in blocks] != raw:
        raise InvalidMessage("blocks do not round-trip through slack_sdk's models")
    return blocks


_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def escape_mrkdwn(text: object) -> str:
    """Text anyone but Flywheel wrote (a reason, a name, a spec's labels, a search), made safe for a mrkdwn
    field or a message's top-level `text`: Slack reads &, < and > as control characters (`<!channel>`,
    `<@U123>`, `<https://x|y>`), and only those three, so only they become entities ("Formatting text for
    app surfaces"). Apply it once, where the text meets the mrkdwn around it, never to a whole sentence
    that holds a mention or link Flywheel built."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_slack(text: str) -> str:
    """The text a person typed, from Slack's encoding of it in a slash command (`&amp;`, `&lt;`, `&gt;`):
    the inverse of escape_mrkdwn, so what is stored is what was typed and is escaped once when shown."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mention(slack_id: str | None) -> str:
    """A user mention, only for what is shaped like a Slack user id; anything else is shown as written."""
    if not slack_id:
        return "nobody"
    if slack_id == "flywheel":
        return "Flywheel (automatically)"
    if not _SLACK_USER.fullmatch(slack_id):
        return escape_mrkdwn(slack_id)
    return f"<@{slack_id}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link with a label to show as written. The URL is Flywheel's own or one a spec gave (checked to
    be http(s) there); escaping keeps a `>` or `|` in it from ending the link early."""
    return f"<{escape_mrkdwn(url).replace('|', '%7C')}|{escape_mrkdwn(label).replace('|', '¦')}>"


def md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def context(*parts: str) -> ContextBlock:
    return ContextBlock(elements=[md(" · ".join(p for p in parts if p))])


def chart_blocks(charts: tuple[ChartRef, ...]) -> list[Block]:
    """Image blocks for charts served at a URL; unserved charts travel as uploads instead."""
    return [ImageBlock(image_url=c.url, alt_text=c.alt_text[:2000], title=PlainTextObject(text=c.title[:2000]))
            for c in charts if c.url]


def link_button(label: str, url: str, action: ActionId) -> ButtonElement:
    """A button that opens a dashboard page. A message in a channel has many readers and one URL would
    open for all of them, so the page's address rides in the value and the click is answered, to the
    person who clicked alone, with a link signed for them (page_link below; bot/dashboard/access.py)."""
    return ButtonElement(text=label, value=url, action_id=action)


OPEN_PAGE = "Open"


def page_link(url: str, page: str, expires: datetime, action: ActionId) -> tuple[str, list[Block]]:
    """The answer to a link_button click: text and blocks carrying the link signed for the clicker."""
    text = f"Your link to {page}. It opens for you only, until {when_text(expires)}."
    return text, [SectionBlock(text=md(f"Your link to {page}. It opens for you only, until {when(expires)}."), accessory=ButtonElement(text=OPEN_PAGE, url=url, action_id=action,
                                                                      style="primary"))]


def notice_modal(blocks: list[Block] | str) -> View:
    """A small modal for an answer where there is no message to reply under (App Home)."""
    blocks = [SectionBlock(text=md(blocks))] if isinstance(blocks, str) else blocks
    return View(type="modal", title="Flywheel", close="Close", blocks=blocks)


def button(label: str, action: ActionId, ctx: ActionContext, *, style: str | None = None,
           confirm: ConfirmObject | None = None) -> ButtonElement:
    return ButtonElement(text=label, action_id=action, value=ctx.encode(), style=style, confirm=confirm)


def confirm(title: str, text: str, yes: str, *, danger: bool = False) -> ConfirmObject:
    return ConfirmObject(title=title, text=md(text), confirm=yes, deny="Cancel",
                         style="danger" if danger else "primary")


# Buttons that open evidence (a page, the model card) rather than act: a settled decision still shows them.
EVIDENCE_ACTIONS = frozenset({ActionId.model_card, ActionId.view_details})


def settled(blocks: list[dict[str, Any]], note: str, *, keep_evidence: bool = False) -> list[Block]:
    """A posted message after someone acted on it: its buttons give way to who did what and when.
    `keep_evidence`: the buttons that open evidence stay, under the note (a settled sign-off request keeps
    its model card and comparison for whoever reads the decision later)."""
    parsed = Block.parse_all(blocks)
    kept = [b for b in parsed if b.type != "actions"] + [context(note)]
    if keep_evidence:
        for b in parsed:
            links = [e for e in getattr(b, "elements", None) or [] if b.type == "actions"
                     and getattr(e, "action_id", None) in EVIDENCE_ACTIONS]
            if links:
                kept.append(ActionsBlock(block_id=b.block_id, elements=links))
    return kept


def settled_json(blocks: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """`settled` for a clicked message's blocks as Slack sends them back with the click. They are the
    blocks Flywheel posted (checked then), so they are kept as they are; only the note is new, and checked."""
    note_block = context(note)
    note_block.validate_json()
    return [b for b in blocks if b.get("type") != "actions"] + [note_block.to_dict()]


USEFUL, NOISE = "Useful", "Noise"


def feedback_buttons(ctx: ActionContext) -> list[ButtonElement]:
    """Was this alert worth it? The votes tune thresholds (`flywheel report noise`)."""
    if ctx.alert is None:
        return []
    return [button(USEFUL, ActionId.useful, ctx), button(NOISE, ActionId.noise, ctx)]
