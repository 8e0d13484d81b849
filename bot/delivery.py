"""Where messages go. With no Slack token they go to an outbox folder: per message its Block Kit
JSON and PNG charts, and one index.html showing every message grouped by persona, readable offline."""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from slack_sdk.models.blocks import Block

from bot.blocks.common import Message, validate_payload
from bot.blocks.dates import tokens_to_html
from jobs.incidents import ChartRef

PERSONA_TITLES = {"business": "Business stakeholder", "ml_engineer": "ML engineer",
                  "risk_manager": "Risk manager", "it_ops": "IT operations"}


class Delivery(Protocol):
    # Whether an edited message shows charts drawn again. Slack keeps the charts uploaded into the
    # alert's thread, so a repeated breach need not render them; the folder preview shows new ones.
    charts_on_update: bool

    def post(self, message: Message) -> str: ...
    def reply(self, thread: str, text: str) -> str: ...
    def reply_message(self, thread: str, message: Message) -> str: ...  # blocks (buttons) in a thread
    def update(self, ref: str, message: Message) -> None: ...


@dataclass
class _Posted:
    ref: str
    message: Message
    folder: Path
    replies: list[str | Message] = field(default_factory=list)
    known_as: str | None = None  # a message first posted into another folder: the reference it is known by


class FolderOutbox:
    """Offline delivery: writes what would have been posted, and a browsable preview of it."""

    charts_on_update = True

    def __init__(self, root: Path, *, people: dict[str, str] | None = None, title: str = "Flywheel preview"):
        self.root = Path(root)
        self.people = people or {}
        self.title = title
        self._posted: dict[str, _Posted] = {}
        (self.root / "messages").mkdir(parents=True, exist_ok=True)
        for folder in sorted((self.root / "messages").iterdir()):
            if (folder / "message.json").is_file():
                self._load(folder)

    def _load(self, folder: Path) -> None:
        """Pick up what an earlier run posted, so its alerts can still be threaded and updated."""
        record = json.loads((folder / "message.json").read_text())
        number, persona, kind = folder.name.split("-", 2)
        charts = tuple(ChartRef(path=str(folder / c["file"]), title=c["title"], alt_text=c["alt_text"])
                       for c in record.get("charts", []))
        message = Message(kind=kind, persona=persona, model_key=record.get("model_key", ""), text=record["text"],
                          blocks=tuple(Block.parse_all(record["blocks"])), charts=charts,
                          channel=record.get("channel"))
        ref = record.get("ref") or f"{message.channel or 'outbox'}:{number}"
        self._posted[ref] = _Posted(number, message, folder, [t["text"] for t in record.get("thread", [])],
                                    known_as=record.get("ref"))

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    def post(self, message: Message) -> str:
        """Returns a reference shaped like Slack's, CHANNEL:TS, the number standing for the timestamp."""
        validate_payload(message.payload())
        number = f"{len(self._posted) + 1:03d}"
        folder = self.root / "messages" / f"{number}-{message.persona}-{message.kind}"
        folder.mkdir(parents=True, exist_ok=True)
        ref = f"{message.channel or 'outbox'}:{number}"
        self._posted[ref] = _Posted(number, message, folder)
        self._write(self._posted[ref])
        return ref

    def reply(self, thread: str, text: str) -> str:
        return self._add_reply(thread, text)

    def reply_message(self, thread: str, message: Message) -> str:
        validate_payload(message.payload())
        return self._add_reply(thread, message)

    def _add_reply(self, thread: str, reply: str | Message) -> str:
        posted = self._posted.get(thread) or self._stand_in(thread)
        posted.replies.append(reply)
        self._write(posted)
        return f"{thread}.{len(posted.replies)}"

    def update(self, ref: str, message: Message) -> None:
        validate_payload(message.payload())
        posted = self._posted.get(ref) or self._stand_in(ref, message)
        posted.message = message
        self._write(posted)

    def _stand_in(self, ref: str, message: Message | None = None) -> _Posted:
        """A message this folder never held (posted into another folder, such as the demo's preview): its
        edit, or its thread, is kept here under a folder of its own that records the reference."""
        number = f"{len(self._posted) + 1:03d}"
        message = message or Message(kind="thread", persona="ml_engineer", model_key="", blocks=(),
                                     channel=ref.partition(":")[0] or None,
                                     text=f"(the thread of {ref}, posted before this outbox folder was used)")
        folder = self.root / "messages" / f"{number}-{message.persona}-{message.kind}"
        folder.mkdir(parents=True, exist_ok=True)
        self._posted[ref] = _Posted(number, message, folder, known_as=ref)
        return self._posted[ref]

    def messages(self) -> list[Message]:
        return [p.message for p in self._posted.values()]

    def _write(self, posted: _Posted) -> None:
        message = posted.message
        for chart in [c for m in (message, *posted.replies) if isinstance(m, Message) for c in m.charts]:
            target = posted.folder / Path(chart.path).name
            if Path(chart.path).resolve() != target.resolve():
                shutil.copyfile(chart.path, target)
        record = {"channel": message.channel, "model_key": message.model_key, **({"ref": posted.known_as} if posted.known_as else {}),
                  **message.payload(),
                  "thread": [r.payload() if isinstance(r, Message) else {"text": r} for r in posted.replies],
                  "charts": [{"file": Path(c.path).name, "title": c.title, "alt_text": c.alt_text}
                             for c in message.charts]}
        (posted.folder / "message.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
        self._render_index()

    def _render_index(self) -> None:
        groups = []
        for persona, title in PERSONA_TITLES.items():
            cards = [_card(p, self.root, self.people) for p in self._posted.values() if p.message.persona == persona]
            if cards:
                groups.append({"title": title, "persona": persona, "cards": cards})
        template = _environment().get_template("preview.html")
        self.index.write_text(template.render(title=self.title, groups=groups))


def _environment() -> Environment:
    return Environment(loader=PackageLoader("bot", "templates"), autoescape=select_autoescape(["html"]))


_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]+)&gt;")
_LINK = re.compile(r"&lt;(https?://[^|&]+)\|([^&]+)&gt;")
_ENTITY = re.compile(r"&amp;(amp|lt|gt);")  # Slack's own escapes of &, < and >, shown as the characters
_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<![\w])_([^_\n]+)_(?![\w])")
_EMOJI = {":chart_with_upwards_trend:": "📈", ":warning:": "⚠️", ":white_check_mark:": "✅"}


def mrkdwn_to_html(text: str, people: dict[str, str]) -> Markup:
    """Enough of Slack's mrkdwn for a faithful preview: bold, italic, mentions, links, dates, emoji."""
    out = tokens_to_html(html.escape(text, quote=False))  # a date token reads as its date, in a <time>
    out = _MENTION.sub(lambda m: f'<span class="mention">@{html.escape(people.get(m[1], m[1]))}</span>', out)
    out = _LINK.sub(lambda m: f'<a href="{m[1]}">{m[2]}</a>', out)
    out = _ENTITY.sub(r"&\1;", out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    for code, glyph in _EMOJI.items():
        out = out.replace(code, glyph)
    return Markup(out.replace("\n", "<br>"))


def _text(obj: dict[str, Any] | None, people: dict[str, str]) -> Markup:
    if not obj:
        return Markup("")
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_html(obj["text"], people)
    return Markup(html.escape(obj["text"], quote=False))


def _card(posted: _Posted, root: Path, people: dict[str, str]) -> dict[str, Any]:
    message = posted.message
    # Charts with no URL are uploaded into the thread in Slack; show them under the message.
    uploads = [{"src": str((posted.folder / Path(c.path).name).relative_to(root)), "alt": c.alt_text,
                "title": c.title} for c in message.charts if not c.url]
    replies = [{"blocks": _blocks(r, posted, root, people)} if isinstance(r, Message)
               else {"text": mrkdwn_to_html(r, people)} for r in posted.replies]
    return {"ref": posted.ref, "channel": message.channel or "", "kind": message.kind,
            "blocks": _blocks(message, posted, root, people), "uploads": uploads, "replies": replies,
            "json": str((posted.folder / "message.json").relative_to(root))}


def _blocks(message: Message, posted: _Posted, root: Path, people: dict[str, str]) -> list[dict[str, Any]]:
    charts = {c.url: c for c in message.charts if c.url}
    blocks = []
    for block in message.payload()["blocks"]:
        kind = block["type"]
        item: dict[str, Any] = {"type": kind}
        if kind == "header":
            item["text"] = _text(block["text"], people)
        elif kind == "section":
            item["text"] = _text(block.get("text"), people)
            item["fields"] = [_text(f, people) for f in block.get("fields", [])]
        elif kind == "context":
            item["elements"] = [_text(e, people) for e in block["elements"] if "text" in e]
        elif kind == "image":
            chart = charts.get(block["image_url"])
            src = (posted.folder / Path(chart.path).name).relative_to(root) if chart else block["image_url"]
            item.update(src=str(src), alt=block["alt_text"], title=block.get("title", {}).get("text", ""))
        elif kind == "actions":
            item["buttons"] = [{"label": (e.get("text") or e.get("placeholder") or {}).get("text", ""),
                                "style": e.get("style", ""), "url": e.get("url"),
                                "select": e["type"] == "static_select",
                                "options": [o["text"]["text"] for o in e.get("options", [])]}
                               for e in block["elements"]]
        blocks.append(item)
    return blocks
