"""What every part of the notifier posts through: the registry, the settings, the delivery (Slack, the
outbox table or the folder), where charts are drawn, and the App Home refresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block

from bot.blocks.common import Message
from bot.config import Settings
from bot.delivery import Delivery
from jobs.incidents import ChartRef, ModelRef
from store import registry
from store.db import Database
from store.models import Model, ModelVersion

if TYPE_CHECKING:  # drawn by bot.charts, which loads matplotlib only when a chart is drawn
    from bot.charts import Chart


@dataclass
class Outlet:
    db: Database
    settings: Settings
    delivery: Delivery
    charts_dir: Path
    on_change: Callable[[], None] | None = None  # refreshes App Homes when what they show changed
    respond: Callable[[str, str, Sequence[Block]], None] | None = None  # answers through a Slack response URL

    def chart_ref(self, chart: Chart) -> ChartRef:
        return ChartRef(path=str(chart.path), title=chart.title, alt_text=chart.alt_text)

    def model_ref(self, model: Model, version: ModelVersion | None, alert_id: int | None = None) -> ModelRef:
        return ModelRef(key=model.key, version=version.label if version else "(no production version)",
                        project_key=model.project.key, project_name=model.project.name, owner=model.owner,
                        alert_id=alert_id, version_number=version.number if version else None,
                        retrainable=bool((model.spec or {}).get("retrain")))

    def post(self, message: Message, channel: str | None) -> str:
        return self.delivery.post(replace(message, channel=channel))

    def refresh_home(self) -> None:
        """What App Homes show changed. Through the outbox (the app and the worker alike) everyone who
        opened theirs lately gets it published again by the sender; otherwise the app's own callback."""
        refresh = getattr(self.delivery, "refresh_homes", None)
        if refresh is not None:
            refresh()
        elif self.on_change is not None:
            self.on_change()

    def channel(self, model_key: str, persona: str) -> str | None:
        with self.db.session() as s:
            return registry.get_model(session=s, key=model_key).project.channel_for(persona)
