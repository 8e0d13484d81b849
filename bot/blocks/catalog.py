"""Catalog answers: the results of `/catalog QUERY`, one result shared in a channel, and the help.

The first line names the best match and who owns it: the person to reach out to before building
the same thing again.
"""

from __future__ import annotations

import re
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, SectionBlock

from bot.blocks.common import (
    context,
    day,
    escape_mrkdwn,
    link,
    link_button,
    md,
    mention,
)
from bot.blocks.replies import Reply
from bot.ids import ActionId, BlockId, CatalogContext
from store.catalog import PAGE, Asset, SearchResult, Suggestion
from store.models import AssetKind

_PICKED = re.compile(r"<@[UW][A-Z0-9]+\|([^<>|]+)>")  # a person picked from Slack's autocomplete
MAX_DESCRIPTION = 280
MAX_TITLE = 150

VIEW_DETAILS = "View details"
MORE = "More results"
PREVIOUS = "Previous results"
SHARE = "Share in channel"
PARTIAL = "No asset holds every word you typed; these hold some of them."
NOTHING = "Nothing in the catalog matches {query}."
WITHOUT_FILTERS = "Your words alone find assets: the filters rule them out. Try `/catalog {words}`."
NO_SUGGESTION = ("Try fewer or other words, or a filter: `kind:model`, `tag:nlp`, `owner:@name`, "
                 "`project:KEY`, `status:production`.")
NO_MORE = "That was the last of the results for {query}."
HELP = ("*Find models, datasets, notebooks, repositories, dashboards and plugins, and who owns them.*\n"
        "`/catalog customer reviews nlp` searches titles, descriptions, tags, owners and projects "
        "(\"reviews\" finds \"review\").\n"
        "Narrow it down with filters: `kind:model` (project, model, version, dataset, notebook, repository, "
        "dashboard, plugin) · `tag:nlp` · `owner:@name` or a mention · `project:card-fraud` · "
        "`status:production`.\n"
        "Add what the registry doesn't know in a project spec's `catalog:` section or with "
        "`flywheel catalog add`.")


_escape = escape_mrkdwn


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _quoted(query: str) -> str:
    # The search as typed, never a mention or a link: a person picked from the autocomplete reads "@name".
    return "“" + _escape(_PICKED.sub(r"@\1", _clip(query, 200))) + "”"


def _changed(moment: datetime) -> str:
    return f"changed {day(moment)}"


def page_url(asset: Asset, public_url: str) -> str | None:
    """The asset's page in Flywheel, for what the registry holds."""
    base = public_url.rstrip("/")
    if asset.kind == AssetKind.project and asset.project_key:
        return f"{base}/projects/{asset.project_key}"
    if asset.kind == AssetKind.model_version and asset.model_key and asset.version_number is not None:
        return f"{base}/models/{asset.model_key}/versions/{asset.version_number}/card"
    if asset.model_key:
        return f"{base}/models/{asset.model_key}"
    return None


def title_link(asset: Asset) -> str:
    """The title, linked to the asset's first link when it has one (a repository, a notebook...)."""
    title = _escape(_clip(asset.title, MAX_TITLE))
    return f"*{link(asset.links[0], _clip(asset.title, MAX_TITLE))}*" if asset.links else f"*{title}*"


def facts(asset: Asset, *, owner: bool = True) -> str:
    """kind · project · owner · status · tags · last change, on one line."""
    tags = " ".join(f"`{_escape(t)}`" for t in asset.tags[:8])
    return " · ".join(p for p in (
        asset.kind_label, _escape(asset.project_name or asset.project_key or ""),
        f"owner {mention(asset.owner)}" if owner else "", _escape(asset.status_text), tags,
        _changed(asset.changed_at)) if p)


def _result(asset: Asset, position: int, public_url: str, *, shareable: bool) -> list[Block]:
    text = title_link(asset)
    if asset.description:
        text += "\n" + _escape(_clip(asset.description, MAX_DESCRIPTION))
    buttons = []
    if (url := page_url(asset, public_url)) is not None:
        # The dashboard's own button: a click is answered with a link for the person who clicked.
        buttons.append(link_button(VIEW_DETAILS, url, ActionId.view_details))
    if shareable:
        buttons.append(ButtonElement(text=SHARE, action_id=ActionId.catalog_share,
                                     value=CatalogContext(asset=asset.key).encode()))
    actions = [ActionsBlock(block_id=f"{BlockId.catalog_result}:{position}", elements=buttons)] if buttons else []
    return [SectionBlock(text=md(text)), context(facts(asset)), *actions]


def _opening(result: SearchResult) -> str:
    top, query = result.assets[0], _quoted(result.query.text)
    if result.offset:
        last = result.offset + len(result.assets)
        return f"Results {result.offset + 1}-{last} for {query}."
    owner = f"owned by {mention(top.owner)}"
    return f"Best match for {query}: *{_escape(_clip(top.title, MAX_TITLE))}*, {_article(top.kind_label)} {owner}."


def _article(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _pages(result: SearchResult) -> list[Block]:
    buttons = []
    if result.offset:
        buttons.append(ButtonElement(text=PREVIOUS, action_id=ActionId.catalog_previous, value=CatalogContext(
            query=result.query.text, offset=max(0, result.offset - PAGE)).encode()))
    if result.has_more:
        buttons.append(ButtonElement(text=MORE, action_id=ActionId.catalog_more, value=CatalogContext(
            query=result.query.text, offset=result.offset + len(result.assets)).encode()))
    return [ActionsBlock(block_id=BlockId.catalog_pages, elements=buttons)] if buttons else []


def results_reply(result: SearchResult, *, public_url: str) -> Reply:
    if result.empty:
        return nothing_reply(result)
    opening = _opening(result)
    blocks: list[Block] = [SectionBlock(text=md(opening))]
    if result.partial:
        blocks.append(context(PARTIAL))
    for position, asset in enumerate(result.assets, start=result.offset + 1):
        blocks += _result(asset, position, public_url, shareable=True)
    blocks += _pages(result)
    plain = opening.replace("*", "")
    return Reply(plain, tuple(blocks))


def _suggestion(s: Suggestion) -> str:
    return f"`tag:{_escape(s.text)}`" if s.kind == "tag" else f"*{_escape(_clip(s.text, MAX_TITLE))}*"


def nothing_reply(result: SearchResult) -> Reply:
    query = _quoted(result.query.text)
    if result.offset:
        return Reply(NO_MORE.format(query=query))
    lines = [NOTHING.format(query=query)]
    if result.unfiltered_matches:
        lines.append(WITHOUT_FILTERS.format(words=_escape(result.query.without_filters())))
    if result.suggestions:
        lines.append("Closest known: " + ", ".join(_suggestion(s) for s in result.suggestions) + ".")
    elif not result.unfiltered_matches:
        lines.append(NO_SUGGESTION)
    text = "\n".join(lines)
    return Reply(text.replace("*", "").replace("`", ""), (SectionBlock(text=md(text)),))


def shared_reply(asset: Asset, *, by: str, public_url: str) -> Reply:
    """One result posted for everyone in the channel, without buttons."""
    blocks = _result(asset, 1, public_url, shareable=False)
    blocks.append(context(f"Shared by {mention(by)} from a /catalog search"))
    text = _escape(f"{asset.title}: {_article(asset.kind_label)} owned by {asset.owner_name or asset.owner}")
    return Reply(text, tuple(blocks))


def help_reply() -> Reply:
    return Reply(HELP.replace("*", "").replace("`", ""), (SectionBlock(text=md(HELP)),))
