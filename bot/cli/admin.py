"""`flywheel report`, `db`, `audit` and `artifacts`: tuning reports, the schema, the audit log's chain and
artifact digests."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from bot.cli.acting import as_option, operations
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
@click.option("--file", "exported", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Check an exported file (jsonl or csv) on its own instead of the database.")
def audit_verify(exported: str | None) -> None:
    """Check the audit log's hash chain and report the first broken link."""
    from store import audit as audit_log

    if exported is not None:
        report = _check_file(Path(exported))
    else:
        database = open_database(load_settings())
        with database.session() as s:
            report = audit_log.verify(session=s)
    if not report.whole:
        raise Failure(f"audit chain broken: {report.problem}")
    click.echo(report.problem)


@audit.command("export")
@click.option("--project", default=None, help="Only this project's records (its models, versions, alerts).")
@click.option("--since", default=None, metavar="DATE", help="From this day or time (UTC, ISO 8601), inclusive.")
@click.option("--until", default=None, metavar="DATE", help="Up to this day (inclusive) or time (exclusive), UTC.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write; default: standard output.")
@as_option
def audit_export(project: str | None, since: str | None, until: str | None, fmt: str, out: str | None,
                 who: str) -> None:
    """Write the audit records with their hash chain, verifying the whole chain on the way (exit code 1 and
    the first bad record if it is broken). A project's records need its risk manager; all of them, the admin
    role on every project. The export itself is audited."""
    start, end = _moment("--since", since), _moment("--until", until, end_of_day=True)
    if start and end and start >= end:
        raise Failure(f"--since {since} is not before --until {until}; nothing could be exported.")
    target = Path(out) if out else None
    partial = target.with_name(target.name + ".partial") if target else None
    with operations() as ops:
        actor = ops.people.named(who)
        try:
            if partial is None:
                report = ops.evidence.export_audit(actor, sys.stdout, fmt=fmt, project=project, since=start, until=end)
            else:
                with partial.open("w", encoding="utf-8", newline="") as handle:
                    report = ops.evidence.export_audit(actor, handle, fmt=fmt, project=project, since=start,
                                                       until=end)
                partial.replace(target)
        finally:
            if partial is not None and partial.exists():
                partial.unlink()
    where = f" to {target}" if target else ""
    said = f"Exported {report.exported} of {report.walked} audit records ({report.scope}){where}."
    if not report.chain.whole:
        click.echo(said, err=True)
        click.echo(f"audit chain broken: {report.chain.problem}", err=True)
        raise SystemExit(1)
    click.echo(f"{said} The chain is whole.", err=target is None)


def _moment(option: str, text: str | None, *, end_of_day: bool = False) -> datetime | None:
    from store.clock import to_utc_naive

    if not text:
        return None
    try:
        moment = to_utc_naive(datetime.fromisoformat(text))
    except ValueError:
        raise Failure(f"{option} {text!r} is not a date; use ISO 8601, e.g. 2026-11-23 or 2026-11-23T06:00") from None
    # A day given alone means the whole of that day.
    return moment + timedelta(days=1) if end_of_day and len(text.strip()) == 10 else moment


def _check_file(path: Path):
    import csv
    import json

    from bot.services.evidence import check_exported

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix == ".csv":
                return check_exported(list(csv.DictReader(handle)))
            return check_exported([json.loads(line) for line in handle if line.strip()])
    except KeyError as exc:
        raise Failure(f"{path} is not an audit export (jsonl or csv from `flywheel audit export`): a record has "
                      f"no {exc} field") from None
    except (ValueError, TypeError) as exc:
        raise Failure(f"{path} is not an audit export (jsonl or csv from `flywheel audit export`): {exc}") from None


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
