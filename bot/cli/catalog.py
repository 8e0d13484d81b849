"""`flywheel catalog`: find models, datasets, notebooks, repositories and who owns them."""

from __future__ import annotations

import click

from bot.cli.common import Failure, load_settings, open_database, print_table
from store.errors import FlywheelError


@click.group()
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

    database = open_database(load_settings())
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

    database = open_database(load_settings())
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

    database = open_database(load_settings())
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
    database = open_database(load_settings())
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
    print_table(["title", "kind", "project", "owner", "status", "changed", "key"],
           [(a.title, a.kind_label, a.project_key or "-", a.owner_name or a.owner, a.status_text or "-",
             f"{a.changed_at:%Y-%m-%d}", a.key) for a in found.assets])
    if found.has_more:
        click.echo(f"More results: add --limit {limit * 2}.")
