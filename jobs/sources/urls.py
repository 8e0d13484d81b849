"""Database URLs of source specs: parsed without echoing a password, `${ENV_VAR}` placeholders expanded when
the source is opened, relative SQLite files resolved against the spec's folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from jobs.sources.base import SourceError

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_url(text: str) -> URL:
    try:
        return make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        # the message of make_url can echo the URL, password included
        raise ValueError(
            "not a valid database URL (expected dialect://user:password@host/database)") from None


def expand_env(text: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SourceError(f"environment variable {name} is not set (used in a database URL)")
        return os.environ[name]

    return ENV_VAR.sub(value, text)


def resolve_sqlite(url: URL, base_dir: Path) -> URL:
    database = url.database
    if (url.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:") or Path(database).is_absolute()):
        return url
    return url.set(database=str((Path(base_dir) / database).resolve()))
