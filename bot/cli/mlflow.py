"""`flywheel mlflow sync MODEL`: read the model's versions from MLflow now, as the worker does on its tick."""

from __future__ import annotations

import click

from bot.cli.acting import as_option, operations, plain


@click.group()
def mlflow() -> None:
    """Models whose spec names an MLflow registry (`registry: {kind: mlflow, ...}`)."""


@mlflow.command()
@click.argument("model")
@as_option
def sync(model: str, who: str) -> None:
    """Register MLflow's new versions of MODEL in Flywheel (each once), with their run's metrics, tags and
    aliases (needs the ML engineer role on its project)."""
    with operations() as ops:
        click.echo(plain(ops.mlflow.sync(ops.people.named(who), model), ops))
