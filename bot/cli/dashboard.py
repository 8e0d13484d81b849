"""`flywheel link` and `dashboard`: a signed dashboard link for one person, and the dashboard served on its
own (no Slack app, no Slack settings)."""

from __future__ import annotations

import sys

import click

from bot.blocks.dates import when_text
from bot.cli.acting import as_option, operations
from bot.cli.common import Failure, load_settings, open_database
from store.errors import FlywheelError

PAGES = {"model": "models/{}", "project": "projects/{}", "alert": "alerts/{}"}
PAGE_HELP = ("PAGE is a dashboard page: model:KEY, project:KEY, alert:ID, card:MODEL:VERSION (the model card), "
             "portfolio, home; or its path (models/fraud-detector) or full URL.")


def page_path(page: str) -> str:
    """The dashboard path (or URL) a PAGE argument names."""
    kind, _, rest = page.partition(":")
    if kind in PAGES and rest and not rest.startswith("//"):
        return "/" + PAGES[kind].format(rest.strip("/"))
    if kind == "card" and rest:
        model, _, version = rest.rpartition(":")
        number = version.lower().removeprefix("v")
        if not (model and number.isdigit()):
            raise Failure(f"{page!r} is not a model card: use card:MODEL:VERSION, e.g. card:fraud-detector:v2")
        return f"/models/{model}/versions/{int(number)}/card"
    if page in ("portfolio", "home"):
        return "/projects" if page == "portfolio" else "/"
    if page.startswith(("http://", "https://", "/")):
        return page
    if ":" in page:
        raise Failure(f"{page!r} is not a dashboard page. {PAGE_HELP}")
    return "/" + page


@click.command(help="Print a signed dashboard link to PAGE for the person named with --as: the link Slack's "
                    "View details button would give them, opening what their roles on its project allow. "
                    + PAGE_HELP)
@click.argument("page")
@as_option
def link(page: str, who: str) -> None:
    from bot.dashboard.access import Signer, describe
    from store.clock import utcnow

    path = page_path(page)
    with operations(inline=False) as ops:
        actor = ops.people.named(who)
        signer = Signer(ops.settings)
        url, expires = signer.link(path, slack_id=actor.slack_id, now=utcnow())
        what = describe(signer.page_path(path))
    click.echo(url)
    click.echo(f"Opens {what} for {actor.name} until {when_text(expires)}.", err=True)


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=3000, show_default=True,
              help="Port to listen on (0: any free one; the address printed is the real one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
def dashboard(port: int, host: str) -> None:
    """Serve the dashboard alone: its pages behind signed links (`flywheel link`), without the Slack app or
    any SLACK_* setting. Links point at FLYWHEEL_PUBLIC_URL, so set it to where this is reached."""
    import socket

    import uvicorn

    from bot.dashboard.app import build_dashboard

    settings = load_settings()
    db = open_database(settings)
    try:
        app = build_dashboard(settings, db)
    except FlywheelError as exc:
        db.dispose()
        raise Failure(str(exc)) from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        db.dispose()
        raise Failure(f"can't listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    click.echo(f"Flywheel dashboard listening on http://{where}:{bound}/ (links from `flywheel link` point at "
               f"{settings.public_url})")
    sys.stdout.flush()
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None)).run(sockets=[sock])
    finally:
        db.dispose()
