"""`flywheel demo`, `apply`, `check` and `models`: the registry, its specs and its checks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bot.cli.common import (
    Failure,
    load_settings,
    open_database,
    parse_as_of,
    print_table,
    quiet_slack_sdk,
)
from store.errors import FlywheelError


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("flywheel-demo"),
              show_default=True, help="Folder for the demo's data, registry and preview (replaced).")


@click.option("--rows-per-week", type=click.IntRange(min=5_000), default=100_000, show_default=True,
              help="Synthetic transactions per week.")


def demo(out: Path, rows_per_week: int) -> None:
    """Run the fraud story offline: checks, alerts, retrain, sign-off, deploy; write an HTML preview."""
    from bot.demo import run_demo

    settings = load_settings()
    try:
        report = run_demo(out, rows_per_week=rows_per_week, public_url=settings.public_url)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"\nDone in {report.seconds:.0f} s: {len(report.messages)} messages for four people.")
    click.echo(f"Preview:  {report.preview}")
    click.echo(f"Registry: {report.database_url}")
    click.echo(f"Try:      FLYWHEEL_DATABASE_URL={report.database_url} flywheel models")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--actor", default="flywheel", show_default=True, help="Who is applying, for the audit log.")
def apply(paths: tuple[Path, ...], actor: str) -> None:
    """Validate blueprint libraries and project spec files and write them to the registry (all or nothing)."""
    from bot.services.library import apply_all, stored_library
    from jobs.spec import SpecError, load_documents

    opened = []  # the registry, opened only once needed: spec problems are reported without one

    def registry():
        if not opened:
            opened.append(open_database(load_settings()))
        return opened[0]

    def library():
        with registry().read() as s:
            return stored_library(session=s)

    try:
        loaded = load_documents(list(paths), open_production=True, library=library)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        raise Failure(f"{len(exc.issues)} problem(s) found; nothing was applied") from None
    db = registry()
    try:
        with db.session() as s:
            results = apply_all(session=s, loaded=loaded, actor=actor)
    except FlywheelError as exc:
        raise Failure(f"{exc}; nothing was applied") from None
    for result in results:
        if result.changed:
            click.echo(f"{result.project}: {len(result.changes)} change(s)")
            for line in result.changes:
                click.echo(f"  {line}")
        else:
            click.echo(f"{result.project}: no change")
        for line in result.differences:
            click.echo(f"  differs: {line}")


@click.command()
@click.argument("model", required=False)
@click.option("--as-of", help="End of the window to check (ISO 8601, UTC). Default: now.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["drift", "performance", "kpi", "data_quality"]),
              help="Only these checks (repeatable).")


def check(model: str | None, as_of: str | None, kinds: tuple[str, ...]) -> None:
    """Run the checks now for one model or all, and print their verdicts."""
    from bot.app import make_notifier, make_operations
    from store import outbox
    from store.models import CheckKind, Verdict

    settings = load_settings()
    db = open_database(settings)
    to_slack = settings.slack_bot_token is not None or settings.oauth
    try:
        # To Slack through the outbox, as the worker's checks go: an outage keeps the alerts queued.
        ops = make_operations(settings, db, make_notifier(settings, db, queued=to_slack))
        with db.read() as s:
            before = outbox.last_id(session=s)
        results, posted = ops.checks.run(as_of=parse_as_of(as_of), model_key=model,
                                         kinds={CheckKind(k) for k in kinds} or None)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    rows = [(r.model_key, r.version or "-", res.kind.value, res.outcome.verdict.value, res.outcome.message)
            for r in results for res in r.results]
    print_table(["model", "version", "check", "verdict", "details"], rows)
    refused = False
    if posted and to_slack:
        refused = _deliver(settings, ops, before, len(posted))
    elif posted:
        click.echo(f"{len(posted)} new alert(s) sent to {settings.outbox / 'index.html'}")
    if not rows:
        click.echo("No models registered: run `flywheel apply SPEC.yml` first.")
    if refused or any(res.outcome.verdict == Verdict.error for r in results for res in r.results):
        sys.exit(1)


def _deliver(settings, ops, before: int, alerts: int) -> bool:
    """Send what the check queued, unless a worker is running (it sends them); say where the alerts went.
    True when Slack refused some for good."""
    from datetime import timedelta

    from bot.app import make_outbox_sender
    from bot.outbox import StormPolicy
    from jobs.worker import WorkerRefused, leadership_for

    leadership = leadership_for(ops.db)
    try:
        leads = leadership.acquire(block=False)
    except WorkerRefused:
        leads = False
    if not leads:
        click.echo(f"{alerts} new alert(s) queued for the worker, which is running and sends them to Slack")
        return False
    try:
        if (refusal := _token_refused(settings)) is not None:  # sending would fail each message for good
            raise Failure(f"{refusal}; the {alerts} new alert(s) stay queued for the worker")
        # The check is over: its alerts need not wait for more of the cycle before a storm is decided.
        storm = StormPolicy(window=timedelta(0), threshold=settings.storm_threshold)
        with quiet_slack_sdk():  # an outage is said once below, not in a log line per attempt
            report = make_outbox_sender(settings, ops, storm=storm).send_now(before)
    finally:
        leadership.release()
    if report.queued == 0 and report.failed == 0:
        click.echo(f"{alerts} new alert(s) sent to Slack")
        return False
    parts = [f"{report.sent} message(s) sent"] if report.sent else []
    if report.queued:
        parts.append(f"{report.queued} queued for the worker (`flywheel worker` sends them once Slack answers)")
    if report.failed:
        parts.append(f"{report.failed} refused by Slack")
    click.echo(f"{alerts} new alert(s) for Slack: {', '.join(parts)}; Slack said: {report.error}")
    return report.failed > 0


def _token_refused(settings) -> str | None:
    """What Slack says of the bot token when it refuses it (auth.test); None when it takes it or cannot be
    reached (an outage: the sender waits it out). Installed per workspace (OAuth), each has its own token: a
    workspace without an installation gets its messages marked undeliverable instead."""
    if settings.oauth:
        return None
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from bot.cli.common import slack_refusal

    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                       timeout=15)
    try:
        with quiet_slack_sdk():
            client.auth_test()
    except SlackApiError as exc:
        return slack_refusal(str(exc.response.get("error")))
    except OSError:
        return None
    return None


@click.command()
def models() -> None:
    """List registered models with their production version and latest verdicts."""
    from store import monitoring, registry
    from store.models import CheckKind

    db = open_database(load_settings())
    with db.session() as s:
        rows = []
        for model in registry.list_models(session=s):
            production = registry.production_version(session=s, model=model)
            latest = []
            for kind in CheckKind:
                history = monitoring.check_history(session=s, model=model, kind=kind, limit=1)
                if history:
                    latest.append(f"{kind.value} {history[-1].verdict.value}")
            others = [f"{v.label} {v.status.value}" for v in model.versions if v.status.value != "production"]
            rows.append((model.key, model.project.key, production.label if production else "-",
                         ", ".join(others) or "-", ", ".join(latest) or "not checked yet"))
    if not rows:
        click.echo("No models registered: run `flywheel apply SPEC.yml` first.")
        return
    print_table(["model", "project", "production", "other versions", "latest checks"], rows)
