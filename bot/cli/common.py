"""What every `flywheel` subcommand shares: its failure (a non-zero exit and a one-line reason), the
settings, the database (refused when not migrated), times given on the command line, and tables."""

from __future__ import annotations

from datetime import datetime

import click
from pydantic import ValidationError

from bot.config import Settings


class Failure(click.ClickException):
    def format_message(self) -> str:
        return self.message


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise Failure(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None


def open_database(settings: Settings):
    from store.db import Database

    db = Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()  # an embedded file gets its schema on first use
    elif db.current_revision() != db.head_revision():
        raise Failure(f"the database at {db.describe()} is not migrated: run `flywheel db upgrade`")
    return db


def parse_as_of(text: str | None) -> datetime:
    from store.clock import to_utc_naive, utcnow

    if not text:
        return utcnow()
    try:
        return to_utc_naive(datetime.fromisoformat(text))
    except ValueError:
        raise Failure(f"--as-of {text!r} is not a time; use ISO 8601, e.g. 2026-11-23 or 2026-11-23T06:00") from None


def print_table(headers: list[str], rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    widths[-1] = min(widths[-1], 100)
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(x)[:w].ljust(w) for x, w in zip(row, widths, strict=True)))
