"""A model's outside registry: `registry: {kind: mlflow, tracking_uri: ..., name: ..., alias: champion}`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from jobs.spec.values import Cron


class RegistrySpec(BaseModel):
    """An outside model registry the model's versions live in: MLflow's, read and written with MlflowClient.

    `name` is the registered model in MLflow; `alias` the alias a Flywheel deploy or rollback moves there."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["mlflow"]
    tracking_uri: str | None = None
    name: str | None = None
    alias: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,255}$")] = "champion"
    schedule: Cron = "*/5 * * * *"  # how often the worker reads MLflow's new versions

    @model_validator(mode="after")
    def _complete(self) -> RegistrySpec:
        if not self.tracking_uri:
            raise ValueError("an MLflow registry needs 'tracking_uri': the tracking server's URL, like "
                             "http://mlflow.internal:5000")
        if not re.match(r"https?://[^/\s]+", self.tracking_uri):
            raise ValueError(f"'tracking_uri' must be the tracking server's http(s) URL, like "
                             f"http://mlflow.internal:5000, not {self.tracking_uri!r}")
        if not self.name:
            raise ValueError("an MLflow registry needs 'name': the registered model's name in MLflow")
        if re.search(r"[/'\"]", self.name):
            raise ValueError(f"'name' {self.name!r} can't name a registered model in MLflow: it holds a slash or a "
                             "quote; use the name MLflow shows for the model")
        return self
