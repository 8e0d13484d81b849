"""What every `flywheel` subcommand shares: its failure (a one-line reason and exit code 2), the group that
turns the failures a person can act on into that line, the settings, the database (refused when it is not
a migrated Flywheel registry), times given on the command line, and tables."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from bot.config import Settings

EXPECTED_EXIT = 2  # the command could not do its work; 1 is kept for "it ran and found errors" (check)
_SLACK_AUTH_ERRORS = ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive")


class Failure(click.ClickException):
    exit_code = EXPECTED_EXIT

    def format_message(self) -> str:
        return self.message


class FlywheelGroup(click.Group):
    """The `flywheel` group: a failure a person can act on (the database or Slack away or refusing, a setting
    missing, a port taken) ends the command with one line naming it and its fix, and exit code 2. With
    `--verbose` the traceback is printed first."""

    def invoke(self, ctx: click.Context):
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except Failure as exc:
            if verbose and exc.__context__ is not None:
                _print_traceback(exc.__context__)
            raise
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            message = explain(exc)
            if message is None:
                raise
            if verbose:
                _print_traceback(exc)
            raise Failure(message) from None


def _print_traceback(exc: BaseException) -> None:
    traceback.print_exception(exc, file=sys.stderr)


def explain(exc: BaseException) -> str | None:
    """One line for a failure a person can act on, or None for a bug (which keeps its traceback)."""
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError, SlackClientError
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import reason, unreachable
    from store.errors import FlywheelError

    for cause in _chain(exc):
        if isinstance(cause, SlackApiError):
            return slack_refusal(str(cause.response.get("error")))
    for cause in _chain(exc):
        if isinstance(cause, OSError) and _is_url_error(cause):
            return (f"can't reach Slack at {_slack_api_url()}: {_os_reason(cause)}; check the network (a proxy?) "
                    "or FLYWHEEL_SLACK_API_URL")
    if isinstance(exc, FlywheelError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError) and unreachable(exc):
        return (f"can't reach the database at {_database_url()}: {reason(exc)}; check FLYWHEEL_DATABASE_URL and "
                "that the database server is running")
    if isinstance(exc, (BoltError, SlackClientError)):
        return f"Slack: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if isinstance(exc, OSError) and exc.filename:
        return f"can't use {exc.filename}: {exc.strerror or exc}"
    return None


def slack_refusal(error: str) -> str:
    if error in _SLACK_AUTH_ERRORS:
        return (f"Slack refused SLACK_BOT_TOKEN ({error}): set it to the app's Bot User OAuth Token (xoxb-...) "
                "from OAuth & Permissions, reinstalling the app to the workspace if it was revoked")
    if error == "missing_scope":
        return ("SLACK_BOT_TOKEN lacks a scope Flywheel needs (missing_scope): add the scopes listed in the app "
                "manifest (manifest.yml) under OAuth & Permissions and reinstall the app")
    return f"Slack refused the call ({error}): check SLACK_BOT_TOKEN and the app's settings"


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _is_url_error(exc: OSError) -> bool:
    from urllib.error import URLError

    return isinstance(exc, URLError) and not hasattr(exc, "code")  # an HTTPError is an answer, not an outage


def _os_reason(exc: OSError) -> str:
    inner = getattr(exc, "reason", None)
    if isinstance(inner, OSError):
        return inner.strerror or str(inner)
    return str(inner or exc.strerror or exc)


def _slack_api_url() -> str:
    try:
        return Settings().slack_api_url
    except ValidationError:
        return "FLYWHEEL_SLACK_API_URL"


def _database_url() -> str:
    from sqlalchemy.engine import make_url

    from store.db import normalise_url

    try:
        return make_url(normalise_url(Settings().database_url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only naming it; the URL's own problem is reported elsewhere
        return "FLYWHEEL_DATABASE_URL"


@contextmanager
def quiet_slack_sdk() -> Iterator[None]:
    """While the app is built: its check of the token (auth.test) fails as one line from the CLI, not also as
    slack_sdk's log of every retry and Bolt's warning about a token it was never given. `--verbose` keeps them."""
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("verbose"):
        yield
        return
    logging.disable(logging.ERROR)  # Bolt's loggers set their own levels: only this silences them all
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise Failure(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None


def open_database(settings: Settings):
    """The registry at FLYWHEEL_DATABASE_URL, migrated. Refused (never created) when nothing is there: a typo in
    the URL must not leave an empty registry behind. An older Flywheel SQLite file is brought to head."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import Database, DatabaseError, normalise_url, reason

    try:
        url = make_url(normalise_url(settings.database_url))
    except Exception:  # noqa: BLE001 - make_url's message can echo the password
        raise Failure("FLYWHEEL_DATABASE_URL is not a database URL (expected sqlite:///FILE or "
                      "postgresql+psycopg://USER@HOST/DATABASE)") from None
    shown = url.render_as_string(hide_password=True)
    missing = f"no Flywheel registry at {shown}; run `flywheel db upgrade` to create one"
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or (not database.startswith("file:") and not Path(database).is_file()):
            raise Failure(missing)
    try:
        db = Database(settings.database_url)
    except DatabaseError as exc:
        raise Failure(str(exc)) from None
    try:
        revision = db.current_revision()
    except SQLAlchemyError as exc:
        db.dispose()
        raise Failure(f"can't reach the database at {shown}: {reason(exc)}; check FLYWHEEL_DATABASE_URL and that "
                      "the database server is running") from exc
    if revision is None:
        db.dispose()
        raise Failure(missing)
    if revision != db.head_revision():
        if db.engine.dialect.name != "sqlite":
            raise Failure(f"the database at {db.describe()} is not migrated: run `flywheel db upgrade`")
        db.upgrade()  # an embedded file follows the version of Flywheel that opens it
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
