"""Unfurl cards for dashboard links pasted in Slack, and the replies of "Ask the model's owner"."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

from bot.blocks.changes import compact
from bot.blocks.common import context, escape_mrkdwn, link, md, mention
from bot.ids import BlockId
from bot.services.unfurls import Card, ModelCard, OpenAlert, ProjectCard, Withheld

NO_ALERTS = ":white_check_mark: No open alerts"
NO_PRODUCTION = "no version in production"
NO_KPI = "No KPI checked yet"
WITHHELD = ("Flywheel shows this page's details only to people with a role on its project; "
            "open the link to ask for access.")
KIND_WORDS = {"drift": "input drift", "kpi": "KPI", "performance": "performance", "data_quality": "data quality"}
ASK_OWNER = "{owner}, {asker} is asking about *{model}* here: could you take a look?"
NO_MODEL = ("I couldn't find a Flywheel model named in that message. Find the model and its owner with "
            "`/catalog WORDS` (or `/flywheel catalog WORDS`), then ask them in the thread.")
MODELS_SHOWN = 8


def unfurls(cards: dict[str, Card]) -> dict[str, dict]:
    """chat.unfurl's `unfurls` argument: each link's blocks."""
    return {url: {"blocks": [b.to_dict() for b in card_blocks(card)]} for url, card in cards.items()}


def card_blocks(card: Card) -> list[Block]:
    if isinstance(card, ModelCard):
        return _model(card)
    if isinstance(card, ProjectCard):
        return _project(card)
    return _withheld(card)


def _model(card: ModelCard) -> list[Block]:
    production = f"v{card.production} in production" if card.production else NO_PRODUCTION
    title = f"*{link(card.url, card.key)}* · {production}"
    if card.version is not None:
        number, status = card.version
        title += f" · this page: v{number} ({escape_mrkdwn(status.replace('_', ' '))})"
    lines = [title, _alerts_line(card.alerts, card.open_alerts), _trend_line(card)]
    return [SectionBlock(block_id=f"{BlockId.unfurl_model}:{card.key}", text=md("\n".join(lines))),
            context(escape_mrkdwn(card.project), f"owner {mention(card.owner)}")]


def _alerts_line(alerts: tuple[OpenAlert, ...], total: int) -> str:
    if not total:
        return NO_ALERTS
    shown = ", ".join(KIND_WORDS.get(a.kind, a.kind) + (f" ({escape_mrkdwn(', '.join(a.subjects[:3]))})"
                                                        if a.subjects else "") for a in alerts)
    more = f" and {total - len(alerts)} more" if total > len(alerts) else ""
    return f":red_circle: {total} open alert{'s' if total != 1 else ''}: {shown}{more}"


def _trend_line(card: ModelCard) -> str:
    if card.kpi is None:
        return NO_KPI
    kpi = card.kpi
    values = " → ".join(compact(v, kpi.unit) for v in kpi.values)
    mark = " :warning:" if kpi.breached else ""
    windows = f"last {len(kpi.values)} windows" if len(kpi.values) > 1 else "latest window"
    return f"{escape_mrkdwn(kpi.label)}, {windows}: {values}{mark}"


def _project(card: ProjectCard) -> list[Block]:
    lines = [f"*{link(card.url, card.name)}* · {len(card.models)} model{'s' if len(card.models) != 1 else ''}"]
    for key, production, live in card.models[:MODELS_SHOWN]:
        state = f"v{production}" if production else NO_PRODUCTION
        alerts = f", {live} open alert{'s' if live != 1 else ''}" if live else ""
        lines.append(f"• {escape_mrkdwn(key)}: {state}{alerts}")
    if len(card.models) > MODELS_SHOWN:
        lines.append(f"• and {len(card.models) - MODELS_SHOWN} more")
    return [SectionBlock(block_id=f"{BlockId.unfurl_project}:{card.key}", text=md("\n".join(lines)))]


def _withheld(card: Withheld) -> list[Block]:
    return [SectionBlock(text=md(f"*Flywheel {escape_mrkdwn(card.page)}*")), ContextBlock(elements=[md(WITHHELD)])]


def ask_owner_text(*, model: str, owner: str, asker: str) -> str:
    return ASK_OWNER.format(owner=mention(owner), asker=mention(asker), model=escape_mrkdwn(model))
