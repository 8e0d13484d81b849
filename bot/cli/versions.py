"""`flywheel versions list` and `versions register`: a model's versions, and a model file the team already
has brought under Flywheel (as a candidate, or adopted as the version serving today)."""

from __future__ import annotations

from pathlib import Path

import click

from bot.blocks.dates import day_text, when_text
from bot.cli.acting import WORK_SECONDS, as_option, operations
from bot.cli.common import print_table

KEY_METRICS = ("recall", "precision", "roc_auc", "f1", "accuracy", "rmse", "mae", "r2")


def _figure(value: object) -> str:
    """Three decimals for scores (0.755), thousands separators for errors in the label's unit (48,356)."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def metrics_text(metrics: dict[str, object], limit: int = 3) -> str:
    """The key metrics first (classification, then regression), three at most."""
    names = [m for m in KEY_METRICS if m in metrics] + sorted(m for m in metrics if m not in KEY_METRICS)
    shown = [f"{m} {_figure(metrics[m])}" for m in names[:limit]]
    return ", ".join(shown) or "-"


@click.group()
def versions() -> None:
    """A model's versions: list them, or register a model file you already have."""


@versions.command("list")
@click.argument("model")
def versions_list(model: str) -> None:
    """MODEL's versions, newest first: stage, training window, key metrics (on the latest labelled window
    they were evaluated on; the trainer's own when never evaluated), sign-offs, and who did what when."""
    with operations(inline=False) as ops:
        lines = ops.releases.versions(model)
    if not lines:
        click.echo(f"{model} has no versions yet: `flywheel versions register {model} --artifact PATH` or "
                   f"`flywheel retrain {model}`.")
        return
    rows = []
    for v in lines:
        def name(slack_id: str | None, names: dict[str, str] = v.names) -> str:
            return names.get(slack_id or "", slack_id or "-")

        trained = f"{day_text(v.train_start)} to {day_text(v.train_end)}" if v.train_start and v.train_end else \
            (f"to {day_text(v.train_end)}" if v.train_end else "-")
        metrics = metrics_text(v.metrics) + ("" if v.evaluated or not v.metrics else " (trainer's)")
        who = f"registered by {name(v.created_by)} {when_text(v.created_at)}"
        if v.deployed_at:
            who += f"; in production since {when_text(v.deployed_at)} by {name(v.deployed_by)}" \
                if v.stage.value == "production" else f"; served from {when_text(v.deployed_at)}"
        rows.append((f"v{v.number}", v.stage.value.replace("_", " "), trained, metrics, v.sign_off, who))
    print_table(["version", "stage", "trained on", "metrics", "sign-off", "who / when"], rows)


@versions.command("register")
@click.argument("model")
@click.option("--artifact", required=True, metavar="PATH",
              help="The model file: under FLYWHEEL_ARTIFACTS or the spec's artifact_roots (a path or a file:// URI).")
@click.option("--production", is_flag=True,
              help="Adopt it as the version serving today: its metrics are computed on the latest labelled "
                   "window. Only while MODEL has no production version; after that, versions reach production "
                   "through submit, approve and deploy.")
@as_option
def versions_register(model: str, artifact: str, production: bool, who: str) -> None:
    """Register a model file the team already has as MODEL's next version (needs the ML engineer role). The
    file's SHA-256 is recorded without loading it; from then on Flywheel loads it only while its bytes still
    have that digest. Without --production it is a candidate, compared with production here (as a retrain's
    is)."""
    uri = artifact if artifact.startswith("file://") else Path(artifact).absolute().as_uri()
    with operations() as ops:
        done = ops.retraining.register_file(ops.people.named(who), model, uri, production=production)
        if not production:
            ops.runner.join(timeout=WORK_SECONDS)
            lines = {v.number: v for v in ops.releases.versions(model)}
    if done.adopted:
        click.echo(f"Adopted {model} v{done.number} as the version in production (SHA-256 {done.sha256[:12]}...).")
        if done.window is not None:
            start, end = done.window
            click.echo(f"Its metrics on the labelled window {when_text(start)} to {when_text(end)}: "
                       f"{metrics_text(done.metrics)}.")
        else:
            click.echo(f"Its metrics could not be computed: {done.problem}")
        return
    click.echo(f"Registered {model} v{done.number} as a candidate (SHA-256 {done.sha256[:12]}...).")
    line = lines.get(done.number)
    if line is not None and line.evaluated:
        click.echo(f"Compared with production on the latest labelled window: {metrics_text(line.metrics)}. "
                   f"Next: `flywheel submit {model} v{done.number}`.")
    else:
        click.echo("It could not be compared with production yet; the reason went to the ML engineers. "
                   f"`flywheel versions list {model}` shows its metrics once it is.")
