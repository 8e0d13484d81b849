"""The `flywheel` command. Each subcommand fails with a non-zero exit and a one-line reason."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from bot.config import Settings
from store.errors import FlywheelError


class Failure(click.ClickException):
    def format_message(self) -> str:
        return self.message


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise Failure(f"bad setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None


def _database(settings: Settings):
    from store.db import Database

    db = Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()  # an embedded file gets its schema on first use
    elif db.current_revision() != db.head_revision():
        raise Failure(f"the database at {db.describe()} is not migrated: run `flywheel db upgrade`")
    return db


def _as_of(text: str | None) -> datetime:
    from store.clock import to_utc_naive, utcnow

    if not text:
        return utcnow()
    try:
        return to_utc_naive(datetime.fromisoformat(text))
    except ValueError:
        raise Failure(f"--as-of {text!r} is not a time; use ISO 8601, e.g. 2026-11-23 or 2026-11-23T06:00") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what is happening.")
def main(verbose: bool) -> None:
    """Flywheel: chat-ops for the models your team runs in production."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("flywheel-demo"),
              show_default=True, help="Folder for the demo's data, registry and preview (replaced).")
@click.option("--rows-per-week", type=click.IntRange(min=5_000), default=100_000, show_default=True,
              help="Synthetic transactions per week.")
def demo(out: Path, rows_per_week: int) -> None:
    """Run the fraud story offline: checks, alerts, retrain, sign-off, deploy; write an HTML preview."""
    from bot.demo import run_demo

    settings = _settings()
    try:
        report = run_demo(out, rows_per_week=rows_per_week, public_url=settings.public_url)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"\nDone in {report.seconds:.0f} s: {len(report.messages)} messages for four people.")
    click.echo(f"Preview:  {report.preview}")
    click.echo(f"Registry: {report.database_url}")
    click.echo(f"Try:      FLYWHEEL_DATABASE_URL={report.database_url} flywheel models")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--actor", default="flywheel", show_default=True, help="Who is applying, for the audit log.")
def apply(paths: tuple[Path, ...], actor: str) -> None:
    """Validate project spec files and write them to the registry (all or nothing)."""
    from bot.services.specs import apply_spec
    from jobs.spec import SpecError, load_specs

    try:
        loaded = load_specs(list(paths))
    except SpecError as exc:
        click.echo(str(exc), err=True)
        raise Failure(f"{len(exc.issues)} problem(s) found; nothing was applied") from None
    db = _database(_settings())
    try:
        with db.session() as s:
            results = [apply_spec(session=s, loaded=one, actor=actor) for one in loaded]
    except FlywheelError as exc:
        raise Failure(f"{exc}; nothing was applied") from None
    for result in results:
        if result.changed:
            click.echo(f"{result.project}: {len(result.changes)} change(s)")
            for line in result.changes:
                click.echo(f"  {line}")
        else:
            click.echo(f"{result.project}: no change")


@main.command()
@click.argument("model", required=False)
@click.option("--as-of", help="End of the window to check (ISO 8601, UTC). Default: now.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["drift", "performance", "kpi", "data_quality"]),
              help="Only these checks (repeatable).")
def check(model: str | None, as_of: str | None, kinds: tuple[str, ...]) -> None:
    """Run the checks now for one model or all, and print their verdicts."""
    from bot.app import make_notifier, make_operations
    from store.models import CheckKind, Verdict

    settings = _settings()
    db = _database(settings)
    try:
        ops = make_operations(settings, db, make_notifier(settings, db))
        results, posted = ops.checks.run(as_of=_as_of(as_of), model_key=model,
                                         kinds={CheckKind(k) for k in kinds} or None)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    rows = [(r.model_key, r.version or "-", res.kind.value, res.outcome.verdict.value, res.outcome.message)
            for r in results for res in r.results]
    _table(["model", "version", "check", "verdict", "details"], rows)
    if posted:
        where = "Slack" if settings.slack_bot_token else f"{settings.outbox / 'index.html'}"
        click.echo(f"{len(posted)} new alert(s) sent to {where}")
    if not rows:
        click.echo("No models registered: run `flywheel apply SPEC.yml` first.")
    if any(res.outcome.verdict == Verdict.error for r in results for res in r.results):
        sys.exit(1)


@main.command()
def models() -> None:
    """List registered models with their production version and latest verdicts."""
    from store import monitoring, registry
    from store.models import CheckKind

    db = _database(_settings())
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
    _table(["model", "project", "production", "other versions", "latest checks"], rows)


def _socket_mode_refusal(error: str) -> str:
    where = "Basic Information > App-Level Tokens"
    if error == "not_allowed_token_type":
        return (f"SLACK_APP_TOKEN is not an app-level token ({error}): use the xapp-... token from {where}, "
                "not the bot token")
    if error == "missing_scope":
        return f"SLACK_APP_TOKEN lacks the connections:write scope ({error}): add it under {where}"
    if error in ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"):
        return (f"Slack refused SLACK_APP_TOKEN ({error}): create an app-level token with the "
                f"connections:write scope under {where} and set SLACK_APP_TOKEN to it")
    return (f"Slack refused to open a Socket Mode connection ({error}): check SLACK_APP_TOKEN and that "
            "Socket Mode is enabled in the app's settings")


@main.command()
@click.option("--port", type=int, default=3000, show_default=True, help="HTTP port for Slack's requests.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; put a TLS proxy in front, Slack only calls https URLs.")
@click.option("--socket", is_flag=True, help="Socket Mode (SLACK_APP_TOKEN): no public URL needed.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP processes answering on the port: one per core uses them all (Python runs one "
                   "request's code at a time per process).")
@click.option("--fd", type=int, hidden=True, help="Serve on this inherited listening socket (one of --processes).")
def serve(port: int, host: str, socket: bool, processes: int, fd: int | None) -> None:
    """Run the Slack app: commands, buttons, modals and App Home."""
    settings = _settings()
    if socket:
        if processes != 1:
            raise Failure("Socket Mode runs in one process: drop --processes, or serve over HTTP")
        _serve_socket_mode(settings)
        return
    import uvicorn

    from bot.web import build_server

    try:
        web, release = build_server(settings)  # with several processes each builds its own; this one checks
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    if fd is not None:
        import socket as sockets

        # A socket object of the inherited descriptor's own family (uvicorn's --fd takes it for a Unix socket).
        uvicorn.Server(uvicorn.Config(web, log_level="warning")).run(sockets=[sockets.socket(fileno=fd)])
        return
    if processes == 1:
        click.echo(f"Flywheel listening on http://{host}:{port}/slack/events, pages under {settings.public_url}")
        uvicorn.run(web, host=host, port=port, log_level="warning")
        return
    release()
    _serve_processes(host, port, processes, settings.public_url)


def _serve_processes(host: str, port: int, processes: int, public_url: str) -> None:
    """Several `serve` processes, each on its own socket bound to the port with SO_REUSEPORT: the kernel
    spreads new connections across them evenly. (On one shared socket, whichever process woke first took
    most of a burst: 41 of 50 connections in some trials, and kept-alive connections stay where they land.)"""
    import socket as sockets
    import subprocess

    bound = []
    try:
        for _ in range(processes):
            sock = sockets.socket(sockets.AF_INET6 if ":" in host else sockets.AF_INET, sockets.SOCK_STREAM)
            sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEPORT, 1)
            bound.append(sock)
            sock.bind((host, port))
    except OSError as exc:
        for sock in bound:
            sock.close()
        raise Failure(f"can't listen on {host}:{port}: {exc.strerror}") from None
    click.echo(f"Flywheel listening on http://{host}:{port}/slack/events, pages under {public_url} "
               f"({processes} processes)")
    children = [subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--fd", str(sock.fileno())],
                                 pass_fds=[sock.fileno()]) for sock in bound]
    for sock in bound:
        sock.close()  # each child holds its own
    _supervise(children)


def _supervise(children: list) -> None:
    """Wait for the child processes; Ctrl-C or SIGTERM stops them all, and so does one of them stopping."""
    import signal
    import time

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        stop()
        codes = [child.wait(timeout=30) for child in children]
    if any(code not in (0, -signal.SIGTERM) for code in codes):
        raise Failure(f"a process stopped unexpectedly (exit codes {codes})")


def _serve_socket_mode(settings) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    from bot.app import build
    from bot.web import steady_collections

    try:
        app, _ = build(settings, socket=True, queued=True)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    steady_collections()
    # slack_sdk's built-in client; it asks app.client (FLYWHEEL_SLACK_API_URL) for each WebSocket URL.
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    try:
        handler.start()  # connects, then blocks; reconnects on its own when Slack refreshes the link
    except SlackApiError as exc:
        raise Failure(_socket_mode_refusal(str(exc.response.get("error")))) from None
    except KeyboardInterrupt:
        handler.close()


@main.command()
@click.option("--standby/--no-standby", default=True, show_default=True,
              help="On PostgreSQL, wait to take over when another worker leads (instead of exiting).")
def worker(standby: bool) -> None:
    """Fire each model's checks on its schedule and run queued work (retraining)."""
    import signal

    from bot.app import build_worker
    from jobs.worker import WorkerRefused, leadership_for, lower_priority

    settings = _settings()
    lower_priority(settings.worker_nice)  # before any thread: `flywheel serve` beside it answers Slack first
    runner, _ = build_worker(settings, db=_database(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    click.echo("Flywheel worker starting")
    try:
        runner.run(leadership_for(runner.db), block=standby)
    except WorkerRefused as exc:
        raise Failure(str(exc)) from None
    click.echo("Flywheel worker stopped")


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="HTTP processes of the Slack app (see `flywheel serve --help`).")
def run(port: int, host: str, processes: int) -> None:
    """Start the Slack app and a worker together (small installs); Ctrl-C or SIGTERM stops both."""
    import subprocess

    _supervise([subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--host", host,
                                  "--processes", str(processes)]),
                subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"])])


@main.group()
def report() -> None:
    """Reports for tuning Flywheel."""


@report.command("noise")
def report_noise() -> None:
    """How often each model's alerts, per feature or KPI, were marked noise in Slack."""
    from store import monitoring

    database = _database(_settings())
    with database.session() as s:
        rows = monitoring.noise_report(session=s)
    if not rows:
        click.echo("No alerts yet.")
        return
    _table(["model", "check", "feature / KPI", "alerts", "noise", "useful", "noise share"],
           [(r.model, r.kind, r.subject, r.alerts, r.noise, r.useful,
             f"{r.noise_share:.0%}" if r.noise + r.useful else "-") for r in rows])


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to FLYWHEEL_DATABASE_URL."""
    from store.db import Database

    database = Database(_settings().database_url)
    try:
        database.upgrade()
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"{database.describe()} is at revision {database.current_revision()}")


@main.group()
def audit() -> None:
    """Audit log commands."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain and report the first broken link."""
    from store import audit as audit_log

    database = _database(_settings())
    with database.session() as s:
        report = audit_log.verify(session=s)
    if not report.whole:
        raise Failure(f"audit chain broken: {report.problem}")
    click.echo(report.problem)


@main.group()
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
    settings = _settings()
    try:
        digest = pin_artifact(db=_database(settings), model_key=model, number=int(number),
                              artifacts_dir=settings.artifacts, actor=actor)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"Recorded SHA-256 {digest} for {model} v{int(number)}")


@main.group()
def catalog() -> None:
    """The catalog: find models, datasets, notebooks, repositories and who owns them."""


@catalog.command("add")
@click.option("--kind", required=True, type=click.Choice(["project", "model", "model_version", "dataset", "notebook",
                                                          "repository", "dashboard", "plugin"]))
@click.option("--title", required=True, help="What people will search for.")
@click.option("--owner", required=True, help="Slack id (or name) of the person to ask about it.")
@click.option("--project", help="Key of the project it belongs to.")
@click.option("--description", default="", help="A sentence or two: what it is, what it is for.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--link", "links", multiple=True, help="An http(s) URL (repeatable); the first is the one shown.")
@click.option("--status", help="Its status, e.g. active or deprecated.")
@click.option("--key", help="A slug to refer to it by; default: the title made a slug.")
@click.option("--actor", default="flywheel", show_default=True, help="Who is adding it, for the audit log.")
def catalog_add(kind: str, title: str, owner: str, project: str | None, description: str, tags: tuple[str, ...],
                links: tuple[str, ...], status: str | None, key: str | None, actor: str) -> None:
    """Add an asset the registry doesn't know, or update one added before (same key)."""
    from bot.services import catalog as catalog_service

    database = _database(_settings())
    try:
        with database.session() as s:
            asset, done = catalog_service.add_asset(session=s, kind=kind, title=title, owner=owner, project=project,
                                                  description=description, tags=tags, links=links, status=status,
                                                  key=key, actor=actor)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"{done.capitalize()} {asset.kind_label} {asset.title!r} owned by {asset.owner_name} "
               f"(key {asset.key})")


@catalog.command("remove")
@click.argument("key")
@click.option("--actor", default="flywheel", show_default=True, help="Who is removing it, for the audit log.")
def catalog_remove(key: str, actor: str) -> None:
    """Remove an asset added with `flywheel catalog add`."""
    from store import catalog_writes

    database = _database(_settings())
    try:
        with database.session() as s:
            catalog_writes.remove_asset(session=s, key=key, actor=actor)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"Removed {key}")


@catalog.command("sync")
def catalog_sync() -> None:
    """Bring every project's models, versions and datasets into the catalog (after an upgrade)."""
    from store import catalog_writes

    database = _database(_settings())
    with database.session() as s:
        projects = catalog_writes.sync_registry(session=s)
    click.echo(f"Synced the registry assets of {projects} project(s)")


@catalog.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True, help="Results to show.")
def catalog_search(words: tuple[str, ...], limit: int) -> None:
    """Search the catalog: free words plus kind:, tag:, owner:@name, project: and status: filters."""
    from store import catalog as catalog_store

    query = " ".join(words)
    database = _database(_settings())
    try:
        with database.read() as s:
            found = catalog_store.search(session=s, query=query, limit=limit)
    except FlywheelError as exc:
        raise Failure(str(exc)) from None
    if found.empty:
        hint = ", ".join(f"tag:{x.text}" if x.kind == "tag" else repr(x.text) for x in found.suggestions)
        click.echo(f"Nothing in the catalog matches {query!r}." + (f" Closest known: {hint}." if hint else ""))
        if found.unfiltered_matches:
            click.echo(f"Without the filters there are results: try {found.query.without_filters()!r}.")
        return
    if found.partial:
        click.echo("No asset holds every word; these hold some of them.")
    _table(["title", "kind", "project", "owner", "status", "changed", "key"],
           [(a.title, a.kind_label, a.project_key or "-", a.owner_name or a.owner, a.status_text or "-",
             f"{a.changed_at:%Y-%m-%d}", a.key) for a in found.assets])
    if found.has_more:
        click.echo(f"More results: add --limit {limit * 2}.")


def _table(headers: list[str], rows: list[tuple]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    widths[-1] = min(widths[-1], 100)
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(x)[:w].ljust(w) for x, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
