"""`flywheel report`, `db`, `audit` and `artifacts`: tuning reports, the schema, the audit log's chain and
artifact digests."""

from __future__ import annotations

import click

from bot.cli.common import Failure, load_settings, open_database, print_table
from store.errors import FlywheelError


@click.group()
def report() -> None:
    """Reports for tuning Flywheel."""


@report.command("noise")
def report_noise() -> None:
    """How often each model's alerts, per feature or KPI, were marked noise in Slack."""
    from store import monitoring

    database = open_database(load_settings())
    with database.session() as s:
        rows = monitoring.noise_report(session=s)
    if not rows:
        click.echo("No alerts yet.")
        return
    print_table(["model", "check", "feature / KPI", "alerts", "noise", "useful", "noise share"],
           [(r.model, r.kind, r.subject, r.alerts, r.noise, r.useful,
             f"{r.noise_share:.0%}" if r.noise + r.useful else "-") for r in rows])


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to FLYWHEEL_DATABASE_URL."""
    from store.db import Database

    database = Database(load_settings().database_url)
    try:
        database.upgrade()
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"{database.describe()} is at revision {database.current_revision()}")


@click.group()
def audit() -> None:
    """Audit log commands."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain and report the first broken link."""
    from store import audit as audit_log

    database = open_database(load_settings())
    with database.session() as s:
        report = audit_log.verify(session=s)
    if not report.whole:
        raise Failure(f"audit chain broken: {report.problem}")
    click.echo(report.problem)


@click.group()
def artifacts() -> None:
    """Model artifacts: Flywheel loads only files under the artifact roots with their recorded SHA-256."""


@artifacts.command("pin")
@click.argument("model")
@click.argument("version")
@click.option("--actor", required=True, help="Who vouches for the file, for the audit log.")
def artifacts_pin(model: str, version: str, actor: str) -> None:
    """Record the SHA-256 of a version registered before Flywheel checked artifacts (never replaces one).

    Check the file is the model you trained first: from here on the worker loads exactly these bytes."""
    from jobs.retrain import pin_artifact

    number = version.lower().removeprefix("v")
    if not number.isdigit():
        raise Failure(f"version {version!r} is not a version number; use v1 or 1")
    settings = load_settings()
    try:
        digest = pin_artifact(db=open_database(settings), model_key=model, number=int(number),
                              artifacts_dir=settings.artifacts, actor=actor)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"Recorded SHA-256 {digest} for {model} v{int(number)}")
