"""Settings from the environment. Secrets are SecretStr so they never print by accident."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogSettings(BaseSettings):
    """What logging reads (bot/logs.py), set up before the rest of the settings are checked."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # text: one readable line each, for a terminal; json: one JSON object a line, for a log pipeline.
    log_format: Literal["text", "json"] = Field("text", alias="FLYWHEEL_LOG_FORMAT")
    # Empty: INFO for json, WARNING for text (INFO with --verbose).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", ""] = Field("", alias="FLYWHEEL_LOG_LEVEL")
    # Error reporting (pip install 'flywheel[sentry]'); off while unset.
    sentry_dsn: SecretStr | None = Field(None, alias="SENTRY_DSN")
    sentry_environment: str = Field("production", alias="SENTRY_ENVIRONMENT")

    @classmethod
    def aliases(cls) -> set[str]:
        return {field.alias for field in cls.model_fields.values() if field.alias}


class Settings(LogSettings):

    database_url: str = Field("sqlite:///flywheel.db", alias="FLYWHEEL_DATABASE_URL")
    public_url: str = Field("http://localhost:3000", alias="FLYWHEEL_PUBLIC_URL")
    artifacts: Path = Field(Path("artifacts"), alias="FLYWHEEL_ARTIFACTS")
    outbox: Path = Field(Path("outbox"), alias="FLYWHEEL_OUTBOX")
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="FLYWHEEL_SLACK_API_URL")
    # OAuth v2 (bot/oauth.py): set both to install Flywheel in any workspace through /slack/install, instead
    # of one workspace's SLACK_BOT_TOKEN. Tokens are kept encrypted with a key from FLYWHEEL_SECRET_KEY.
    slack_client_id: str | None = Field(None, alias="FLYWHEEL_SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="FLYWHEEL_SLACK_CLIENT_SECRET")
    # Signs the dashboard's links and session cookies (bot/dashboard/access.py); rotating it revokes them all.
    secret_key: SecretStr | None = Field(None, alias="FLYWHEEL_SECRET_KEY")
    link_days: float = Field(7, alias="FLYWHEEL_LINK_DAYS", gt=0, le=90)
    # Alert posts to a channel wait this many seconds for others of the same check cycle; more than
    # `storm_threshold` models among them go out as one digest message (bot/outbox.py).
    storm_window: float = Field(60, alias="FLYWHEEL_STORM_WINDOW", ge=0, le=3600)
    storm_threshold: int = Field(5, alias="FLYWHEEL_STORM_THRESHOLD", ge=1)
    # Hour (UTC) the daily digest of business channels subscribed with `digest` goes out.
    digest_hour: int = Field(9, alias="FLYWHEEL_DIGEST_HOUR", ge=0, le=23)
    # Alerts carry PNG charts (bot/charts/). Off, they go without: a test run that never looks at them.
    charts: bool = Field(True, alias="FLYWHEEL_CHARTS")
    # The worker's scheduling priority (Unix niceness): checks, training and charts are batch work, and
    # on a machine shared with `flywheel serve` the kernel runs Slack's requests first. 0 keeps it even.
    worker_nice: int = Field(10, alias="FLYWHEEL_WORKER_NICE", ge=0, le=19)

    # Retrain and deploy backends (jobs/backends). The worker signs webhooks with the secret; trainers
    # call POST /api/versions on the web process with the API token.
    api_token: SecretStr | None = Field(None, alias="FLYWHEEL_API_TOKEN")
    webhook_secret: SecretStr | None = Field(None, alias="FLYWHEEL_WEBHOOK_SECRET")
    github_token: SecretStr | None = Field(None, alias="FLYWHEEL_GITHUB_TOKEN")
    github_api_url: str = Field("https://api.github.com", alias="FLYWHEEL_GITHUB_API_URL")
    airflow_username: str | None = Field(None, alias="FLYWHEEL_AIRFLOW_USERNAME")
    airflow_password: SecretStr | None = Field(None, alias="FLYWHEEL_AIRFLOW_PASSWORD")
    airflow_token: SecretStr | None = Field(None, alias="FLYWHEEL_AIRFLOW_TOKEN")
    backend_timeout: float = Field(10, alias="FLYWHEEL_BACKEND_TIMEOUT", gt=0, le=300)
    backend_attempts: int = Field(3, alias="FLYWHEEL_BACKEND_ATTEMPTS", ge=1, le=10)
    backend_backoff: float = Field(1.0, alias="FLYWHEEL_BACKEND_BACKOFF", ge=0, le=60)
    # A dispatched retrain that never called back stops blocking new ones after this long.
    training_timeout_hours: float = Field(24, alias="FLYWHEEL_TRAINING_TIMEOUT_HOURS", gt=0)

    @property
    def oauth(self) -> bool:
        """Installed per workspace through OAuth, rather than with one bot token."""
        return bool(self.slack_client_id) or self.slack_client_secret is not None

    @property
    def callback_url(self) -> str:
        return self.link("api/versions")

    def link(self, path: str) -> str:
        return f"{self.public_url.rstrip('/')}/{path.lstrip('/')}"
