"""`flywheel doctor`: the settings this install sees (secrets masked) and the checks `/readyz` runs, one line
each with its fix, for a person at a terminal. Exit code 1 when not ready."""

from __future__ import annotations

import re

import click
from pydantic import SecretStr

from bot.cli.common import _print_traceback, load_settings
from bot.config import Settings
from bot.readiness import Check, Findings, Readiness

# Slack's tokens say what they are in their first letters; any other secret shows only that it is set.
_TOKEN_KIND = re.compile(r"(xox[a-z]|xapp)-")


def masked(value: SecretStr) -> str:
    secret = value.get_secret_value()
    if not secret:
        return "set but empty"
    kind = _TOKEN_KIND.match(secret)
    return f"set ({kind.group(0)}…)" if kind else "set"


def settings_shown(settings: Settings) -> list[tuple[str, str]]:
    """(environment variable, what is shown) for every setting, in the order bot/config.py declares them."""
    from sqlalchemy.engine import make_url

    from store.db import normalise_url

    shown = []
    for name, spec in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = masked(value)
        elif value is None:
            text = "not set"
        elif name == "database_url":
            try:
                text = make_url(normalise_url(value)).render_as_string(hide_password=True)
            except Exception:  # noqa: BLE001 - make_url's message can echo the password
                text = "not a database URL"
        else:
            text = str(value)
        shown.append((spec.alias or name.upper(), text))
    return shown


def findings_for(settings: Settings) -> Findings:
    """The readiness checks against FLYWHEEL_DATABASE_URL. Nothing is created: a SQLite file that is not
    there is reported, not made."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from store.db import Database, normalise_url, reason

    fix = "set FLYWHEEL_DATABASE_URL to sqlite:///FILE or postgresql+psycopg://USER@HOST/DATABASE"
    try:
        url = make_url(normalise_url(settings.database_url))
    except Exception:  # noqa: BLE001 - make_url's message can echo the password
        return _without_database("FLYWHEEL_DATABASE_URL is not a database URL", fix)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:") or (not path.startswith("file:") and not Path(path).is_file()):
            return _without_database(f"no Flywheel registry at {url.render_as_string(hide_password=True)}",
                                     "run `flywheel db upgrade` to create one, or fix FLYWHEEL_DATABASE_URL")
    try:
        db = Database(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - a driver missing or an option it refuses: reported as the database's
        return _without_database(f"can't open the database ({reason(exc)})", fix, exc)
    try:
        return Readiness(db).findings()
    finally:
        db.dispose()


def _without_database(detail: str, fix: str, error: BaseException | None = None) -> Findings:
    return Findings([Check("database", False, detail, fix)]
                    + [Check(name, False, "not checked") for name in ("migrations", "worker", "outbox")], error=error)


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Is this install ready? The settings it sees (secrets masked) and the checks /readyz runs."""
    settings = load_settings()
    click.echo("Settings")
    rows = settings_shown(settings)
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        click.echo(f"  {name.ljust(width)}  {text}")
    findings = findings_for(settings)
    click.echo("Checks")
    for check in findings.checks:
        state = "ok" if check.ok else "skipped" if check.detail.startswith("not checked") else "problem"
        line = f"  {state:<7}  {check.name:<10}  {check.detail}"
        click.echo(f"{line}; fix: {check.fix}" if check.fix else line)
    if findings.error is not None and ctx.find_root().params.get("verbose"):
        _print_traceback(findings.error)
    click.echo("Ready." if findings.ready else "Not ready.")
    ctx.exit(0 if findings.ready else 1)
