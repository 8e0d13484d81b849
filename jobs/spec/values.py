"""The spec's value types: durations, cron schedules, slugs, names, Slack ids, expressions and artifact roots,
each with the validator that names what was expected."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
)

from jobs.expressions import parse
from jobs.schedule import cron_trigger

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_SLACK_TEAM = re.compile(r"T[A-Z0-9]{2,}")
ENTRYPOINT = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
GITHUB_REPO = re.compile(r"[\w.-]+/[\w.-]+")


# ---------------------------------------------------------------- value types


def parse_duration(text: str) -> timedelta:
    """'30m', '1h', '24h', '7d', '2w' (or combined, '1h30m') -> timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"expected a duration like 30m, 1h, 7d or 2w, got {text!r}")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([wdhms])", compact))
    if seconds == 0:
        raise ValueError(f"a duration must be longer than zero, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, in the largest whole unit among d, h, m, s."""
    seconds = int(value.total_seconds())
    unit = next(u for u in "dhms" if seconds % _UNITS[u] == 0)
    return f"{seconds // _UNITS[unit]}{unit}"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        if value <= timedelta(0) or value % timedelta(seconds=1):
            raise ValueError(f"a duration must be a positive whole number of seconds, got {value}")
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected a duration like 30m, 1h, 7d or 2w, got {value!r}")


def _cron(value: str) -> str:
    text = " ".join(value.split())
    try:
        cron_trigger(text, timezone=UTC)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid cron schedule {value!r}: {exc}") from None
    return text


def matching(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


def valid_expression(value: str) -> str:
    parse(value)
    return value


def _artifact_root(value: str) -> str:
    if "://" in value or value.startswith("file:"):
        raise ValueError(f"an artifact root is a folder path, not a URL: got {value!r}")
    if "\x00" in value:
        raise ValueError("an artifact root cannot contain a NUL character")
    path = Path(value)
    if path.is_absolute() and path == Path(path.anchor):
        raise ValueError(f"artifact root {value!r} is the whole file system; name the folder models are written to")
    return value


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str, when_used="json")
]
Text = Annotated[str, StringConstraints(min_length=1)]
Column = Annotated[str, StringConstraints(min_length=1)]
Slug = Annotated[str, matching(_SLUG, "a slug of lowercase letters, digits and '-' (like card-fraud)")]
Name = Annotated[str, matching(_NAME, "a name of lowercase letters, digits and '_' (like missed_fraud_rate)")]
SlackUserId = Annotated[str, matching(_SLACK_USER, "a Slack user id (like U0123ABCD)")]
SlackTeamId = Annotated[str, matching(_SLACK_TEAM, "a Slack workspace id (like T0123ABCD)")]
Cron = Annotated[str, AfterValidator(_cron)]
ExpressionText = Annotated[str, AfterValidator(valid_expression)]
# A folder whose files may be loaded as this model's artifacts; relative to the spec's folder.
ArtifactRoot = Annotated[str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_artifact_root)]
Share = Annotated[float, Field(ge=0, le=1)]
