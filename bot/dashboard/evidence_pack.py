"""One version's evidence pack as a single HTML file: styles and charts inline, nothing fetched, so it opens
from a disk or an email for a reviewer who has no access to Flywheel."""

from __future__ import annotations

from bot.dashboard import svg
from bot.dashboard.card import score_name
from bot.dashboard.templating import environment
from bot.services.evidence import EvidencePack


def pack_html(pack: EvidencePack, *, dashboard_url: str | None = None) -> str:
    names = {**pack.card.names, pack.generated_by: pack.generated_by_name, "flywheel": "Flywheel"}
    return environment().get_template("evidence_pack.html").render(
        p=pack, c=pack.card, svg=svg, names=lambda slack_id: names.get(slack_id, slack_id or "nobody"),
        dashboard_url=(dashboard_url or "").rstrip("/"), score=score_name(pack.card.importance_metric))


def file_names(pack: EvidencePack) -> tuple[str, str]:
    stem = f"{pack.card.model_key}-{pack.card.version.label}-evidence"
    return f"{stem}.html", f"{stem}.json"
