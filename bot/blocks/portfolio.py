"""`/flywheel portfolio`: one line per governed project, overdue sign-offs first, and a link to the page."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, ContextBlock, SectionBlock

from bot.blocks.common import escape_mrkdwn, link_button, md
from bot.blocks.policy import policy_phrase
from bot.blocks.replies import Reply
from bot.ids import ActionId
from bot.services.pages import Portfolio

MAX_LINES = 20


def portfolio_reply(portfolio: Portfolio, page_url: str, overdue_days: int) -> Reply:
    if not portfolio.lines:
        return Reply("No project's blueprint has a step for your roles yet.")
    overdue = sum(len(line.overdue) for line in portfolio.lines)
    waiting = sum(len(line.waiting) for line in portfolio.lines)
    head = (f"You govern {len(portfolio.lines)} project{'s' if len(portfolio.lines) != 1 else ''}: "
            f"{waiting} version{'s' if waiting != 1 else ''} waiting for sign-off"
            + (f", *{overdue} overdue* (due for more than {overdue_days} days)" if overdue else "") + ".")
    sections = []
    for line in portfolio.lines[:MAX_LINES]:
        icon = ":red_circle:" if line.overdue else ":hourglass:" if line.waiting else \
            ":large_orange_circle:" if line.open_alerts else ":white_check_mark:"
        parts = [f"{icon} *{escape_mrkdwn(line.name)}* ({line.risk_tier} risk): {line.status}"]
        parts += [f"overdue: {escape_mrkdwn(o)}" for o in line.overdue]
        parts += [escape_mrkdwn(w) for w in line.waiting if not any(w.startswith(o.split(':')[0] + ":")
                                                                     for o in line.overdue)]
        if line.open_alerts:
            parts.append(f"{line.open_alerts} open alert{'s' if line.open_alerts != 1 else ''}")
        parts.append(policy_phrase(line.policy).capitalize())
        sections.append(SectionBlock(text=md("\n".join(parts)[:3000])))
    more = len(portfolio.lines) - MAX_LINES
    blocks = [SectionBlock(text=md(head)), *sections]
    if more > 0:
        blocks.append(ContextBlock(elements=[md(f"{more} more on the portfolio page.")]))
    blocks.append(ActionsBlock(elements=[link_button("Open the portfolio", page_url, ActionId.view_details)]))
    return Reply(head.replace("*", ""), tuple(blocks))
