"""`flywheel evidence MODEL VERSION`: one version's evidence pack for a reviewer, as a self-contained HTML file
and its JSON."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.acting import as_option, operations, version_number
from bot.cli.common import Failure


@click.command()
@click.argument("model")
@click.argument("version")
@click.option("--out", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write MODEL-vN-evidence.html and .json into (made if missing).")
@as_option
def evidence(model: str, version: str, out: str, who: str) -> None:
    """Write MODEL VERSION's evidence pack: its model card, the comparison with the version it would replace
    (metrics, money at stake, charts), the training and evaluation windows, which features it relies on, every
    sign-off with its reason, its audit records with their hashes, and the artifact's SHA-256. Needs the ML
    engineer, risk manager or IT operations role on the model's project; the pack is audited."""
    from bot.dashboard.evidence_pack import file_names, pack_html

    number = version_number(version)
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Failure(f"cannot make the folder {folder}: {exc.strerror}") from None
    with operations() as ops:
        pack = ops.evidence.pack(ops.people.named(who), model, number)
        html_name, json_name = file_names(pack)
        for name, text in ((html_name, pack_html(pack, dashboard_url=ops.settings.public_url)),
                           (json_name, pack.to_json())):
            partial = folder / f".{name}.partial"
            partial.write_text(text, encoding="utf-8")
            partial.replace(folder / name)
    click.echo(f"Wrote {folder / html_name} and {json_name} ({len(pack.records)} audit records, "
               f"{pack.records_check.problem}).")
