"""Settings from the environment. Secrets are SecretStr so they never print by accident."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///flywheel.db", alias="FLYWHEEL_DATABASE_URL")
    public_url: str = Field("http://localhost:3000", alias="FLYWHEEL_PUBLIC_URL")
    artifacts: Path = Field(Path("artifacts"), alias="FLYWHEEL_ARTIFACTS")
    outbox: Path = Field(Path("outbox"), alias="FLYWHEEL_OUTBOX")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="FLYWHEEL_SLACK_API_URL")
    # Signs the dashboard's links and session cookies (bot/dashboard/access.py); rotating it revokes them all.
    secret_key: SecretStr | None = Field(None, alias="FLYWHEEL_SECRET_KEY")
    link_days: float = Field(7, alias="FLYWHEEL_LINK_DAYS", gt=0, le=90)

    def link(self, path: str) -> str:
        return f"{self.public_url.rstrip('/')}/{path.lstrip('/')}"
