"""Every action_id, block_id and callback_id Flywheel uses, defined once."""

from __future__ import annotations

import enum
import json

from pydantic import BaseModel, ConfigDict, Field


class ActionId(enum.StrEnum):
    retrain = "flywheel.retrain"
    acknowledge = "flywheel.acknowledge"
    snooze = "flywheel.snooze"
    view_details = "flywheel.view_details"
    ask_ml_team = "flywheel.ask_ml_team"
    submit_for_signoff = "flywheel.submit_for_signoff"
    compare_again = "flywheel.compare_again"  # a failed comparison with production, run again
    approve = "flywheel.approve"
    reject = "flywheel.reject"
    model_card = "flywheel.model_card"
    deploy = "flywheel.deploy"
    rollback = "flywheel.rollback"
    useful = "flywheel.feedback.useful"
    noise = "flywheel.feedback.noise"
    catalog_more = "flywheel.catalog.more"
    catalog_previous = "flywheel.catalog.previous"
    catalog_share = "flywheel.catalog.share"
    digest_thread = "flywheel.digest.thread"  # a storm digest's "Open thread": the model's full alert
    threshold_accept = "flywheel.threshold.accept"  # a threshold suggested from noise feedback
    threshold_dismiss = "flywheel.threshold.dismiss"


class BlockId(enum.StrEnum):
    alert_actions = "flywheel.alert_actions"
    candidate_actions = "flywheel.candidate_actions"
    comparison_failed_actions = "flywheel.comparison_failed_actions"
    signoff_actions = "flywheel.signoff_actions"
    deployment_actions = "flywheel.deployment_actions"
    kpi_actions = "flywheel.kpi_actions"
    reject_reason = "flywheel.reject_reason"
    threshold_actions = "flywheel.threshold_actions"
    # App Home lists many items: each block gets one of these plus ":<model>:<version>", since Slack
    # wants block ids unique within a view. Match clicks on the action_id.
    home_project = "flywheel.home.project"
    home_model = "flywheel.home.model"
    home_signoff = "flywheel.home.signoff"
    home_deployment = "flywheel.home.deployment"
    # A catalog reply lists several results: each gets this plus ":<position>".
    catalog_result = "flywheel.catalog.result"
    catalog_pages = "flywheel.catalog.pages"
    # A digest has a line per model: each gets one of these plus ":<model>".
    digest_line = "flywheel.digest.line"
    digest_model = "flywheel.digest.model"
    # An unfurled dashboard link: this plus ":<model>" or ":<project>".
    unfurl_model = "flywheel.unfurl.model"
    unfurl_project = "flywheel.unfurl.project"


class CallbackId(enum.StrEnum):
    reject_modal = "flywheel.reject_modal"
    ask_owner = "flywheel.ask_owner"  # the message shortcut "Ask the model's owner" (manifest.yml)


SNOOZE_CHOICES = {"1h": "1 hour", "4h": "4 hours", "24h": "24 hours", "7d": "7 days"}


class ActionContext(BaseModel):
    """What a click needs to find its subject again: ids only, never a secret or a query."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    model: str = Field(alias="m")
    version: int | None = Field(None, alias="v")
    alert: int | None = Field(None, alias="a")
    choice: str | None = Field(None, alias="c")
    # A Roll back button: `version` is the one live when it was drawn, `to` the one it returns to; a click
    # after production moved is refused with what changed, and one after the rollback happened says so.
    to: int | None = Field(None, alias="t")
    # A threshold suggestion's buttons: the suggestion they were drawn for.
    suggestion: int | None = Field(None, alias="s")

    def encode(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True), separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> ActionContext:
        return cls.model_validate_json(value)


class CatalogContext(BaseModel):
    """What a catalog button needs: the search as typed and where its page starts, or the asset to share."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    query: str | None = Field(None, alias="q")
    offset: int = Field(0, alias="o", ge=0)
    asset: str | None = Field(None, alias="k")

    def encode(self) -> str:
        # Unescaped: Slack counts a button value's 2,000 characters, not its JSON escapes.
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True),
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, value: str) -> CatalogContext:
        return cls.model_validate_json(value)
