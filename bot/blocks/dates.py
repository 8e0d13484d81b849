"""The one place a time or a day is said to a person: Slack, terminal or web page.

In mrkdwn a moment is Slack's date token, so each reader sees it in their own time zone; its fallback (what
notifications and clients without the token show) is the full date with year, time and "UTC". Plain-text
fields (headers, buttons, modal titles) and the notification `text` cannot hold a token: they get the
fallback itself. `{date_short_pretty}` can read "today" or "yesterday", so a token stands alone in its
sentence ("Acknowledged by @x · <token>"), never after "at" or "on".
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

# Slack's "Formatting text for app surfaces": <!date^{unix}^{format}|{fallback}>.
MOMENT_FORMAT = "{date_short_pretty} at {time}"
DAY_FORMAT = "{date_short}"
TOKEN = re.compile(r"<!date\^(\d+)\^[^|>]*\|([^>]*)>")


def _utc(moment: datetime) -> datetime:
    """Flywheel stores naive UTC; an aware moment is brought to UTC and made naive the same way."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _unix(moment: datetime) -> int:
    return int(_utc(moment).replace(tzinfo=UTC).timestamp())


def day_text(moment: datetime) -> str:
    """"Dec 5, 2026"."""
    moment = _utc(moment)
    return f"{moment:%b} {moment.day}, {moment.year}"


def when_text(moment: datetime) -> str:
    """"Dec 5, 2026 14:10 UTC": for plain text, terminals and the fallback of the token."""
    return f"{day_text(moment)} {_utc(moment):%H:%M} UTC"


def when(moment: datetime) -> str:
    """A moment in mrkdwn: Slack's date token in the reader's time zone, with a full fallback."""
    return f"<!date^{_unix(moment)}^{MOMENT_FORMAT}|{when_text(moment)}>"


def when_html(moment: datetime) -> str:
    """A moment on an HTML page: a <time> element with the full text (escaped, ready to insert)."""
    iso = _utc(moment).replace(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f'<time datetime="{iso}">{html.escape(when_text(moment))}</time>'


def day(moment: datetime) -> str:
    """A day with its year, "Dec 5, 2026". Plain text, so it reads the same in a header, a button, a
    terminal or a page; days here are UTC days of data windows, which a reader's time zone must not shift."""
    return day_text(moment)


def span(start: datetime | None, end: datetime | None) -> str:
    """A half-open window [start, end) as days: "Nov 2 - Nov 30, 2026", or "Dec 28, 2026 - Jan 3, 2027"."""
    if start is None or end is None:
        return "unknown"
    start, last = _utc(start), _utc(end) - timedelta(microseconds=1)
    if start.year == last.year:
        return f"{start:%b} {start.day} - {day_text(last)}"
    return f"{day_text(start)} - {day_text(last)}"


def without_tokens(text: str) -> str:
    """Text with each date token swapped for its fallback: for a notification's `text`, or any surface
    where tokens do not render."""
    return TOKEN.sub(lambda m: m[2], text)


def tokens_to_html(text: str) -> str:
    """For a preview of already-HTML-escaped mrkdwn: each (escaped) token becomes a <time> element."""
    escaped = re.compile(r"&lt;!date\^(\d+)\^[^|]*?\|(.*?)&gt;")

    def to_time(m: re.Match[str]) -> str:
        iso = datetime.fromtimestamp(int(m[1]), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f'<time datetime="{iso}">{m[2]}</time>'
    return escaped.sub(to_time, text)
