"""Install in any workspace: Bolt's OAuth v2 flow on GET /slack/install and GET /slack/oauth_redirect, the
installations and one-use states in the registry database (store/installations.py), tokens encrypted at rest
and rotated by Bolt before they expire.

OAuth mode is on when FLYWHEEL_SLACK_CLIENT_ID and FLYWHEEL_SLACK_CLIENT_SECRET are set; otherwise the app
runs in one workspace with SLACK_BOT_TOKEN, as an internal app does. Both at once is refused: which token a
message goes out with must never be a guess.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation.rotator import TokenRotator

from bot.config import Settings
from bot.metrics import CountingWebClient
from bot.slack_delivery import DeliveryError, SlackDelivery
from store.db import Database
from store.errors import FlywheelError
from store.installations import InstallationStore, TokenCipher, state_store

# The manifest's bot scopes (manifest.yml, oauth_config); an install asks for exactly these.
BOT_SCOPES = ("chat:write", "channels:history", "groups:history", "commands", "files:write", "users:read",
              "im:write", "links:read", "links:write")
INSTALL_PATH, REDIRECT_PATH = "/slack/install", "/slack/oauth_redirect"
# Bolt refreshes a rotating token this long before it expires (Slack's tokens live 12 hours).
TOKEN_ROTATION_MINUTES = 120

BOTH_MODES = ("SLACK_BOT_TOKEN and FLYWHEEL_SLACK_CLIENT_ID are both set: unset SLACK_BOT_TOKEN to install "
              "in any workspace through OAuth, or the client id and secret to run in one workspace.")


class OAuthSetupError(FlywheelError):
    pass


def mode_problem(settings: Settings) -> str | None:
    """Why the Slack settings don't name one mode, or None."""
    if not settings.oauth:
        return None
    if settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value():
        return BOTH_MODES
    missing = [name for name, value in (("FLYWHEEL_SLACK_CLIENT_ID", settings.slack_client_id),
                                        ("FLYWHEEL_SLACK_CLIENT_SECRET", settings.slack_client_secret)) if not value]
    if missing:
        return f"{missing[0]} is not set: OAuth needs both the app's client id and secret (Basic Information)."
    return None


def cipher_of(settings: Settings) -> TokenCipher:
    from bot.dashboard.access import secret_of

    return TokenCipher(secret_of(settings))


def installation_store(settings: Settings, db: Database) -> InstallationStore:
    if (problem := mode_problem(settings)) is not None:
        raise OAuthSetupError(f"can't start the Slack app: {problem}")
    return InstallationStore(client_id=settings.slack_client_id, engine=db.engine, cipher=cipher_of(settings))


def oauth_settings(settings: Settings, db: Database, store: InstallationStore) -> OAuthSettings:
    return OAuthSettings(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES), redirect_uri=settings.link(REDIRECT_PATH), install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH, installation_store=store, installation_store_bot_only=True,
        state_store=state_store(db.engine), token_rotation_expiration_minutes=TOKEN_ROTATION_MINUTES,
        install_page_rendering_enabled=False)


class WorkspaceClients:
    """The outbox's Slack per workspace (bot/outbox.py): the installation's bot token, refreshed first when it
    expires within TOKEN_ROTATION_MINUTES; None for a workspace with no installation, so nothing is ever
    sent there with another workspace's token."""

    def __init__(self, store: InstallationStore, settings: Settings,
                 make: Callable[[str], SlackDelivery] | None = None):
        self.store = store
        self._make = make or (lambda token: SlackDelivery(
            CountingWebClient(token=token, base_url=settings.slack_api_url, timeout=15)))
        self._rotator = TokenRotator(client_id=settings.slack_client_id,
                                     client_secret=settings.slack_client_secret.get_secret_value(),
                                     client=WebClient(base_url=settings.slack_api_url, timeout=15))
        self._made: dict[str, SlackDelivery] = {}
        self._lock = threading.Lock()

    def __call__(self, team_id: str | None) -> SlackDelivery | None:
        if not team_id:
            return None
        bot = self.store.bot_for(team_id)
        if bot is None or not bot.bot_token:
            return None
        if bot.bot_refresh_token:
            bot = self._refreshed(team_id, bot)
        with self._lock:
            if bot.bot_token not in self._made:
                self._made[bot.bot_token] = self._make(bot.bot_token)
            return self._made[bot.bot_token]

    def _refreshed(self, team_id: str, bot: Bot) -> Bot:
        """The bot with a fresh token when it expires soon. Refused, the token may have been refreshed by the
        app's process meanwhile (a refresh token is good once): the stored one is read again, and when it is
        still the old one the row waits for the next pass (DeliveryError, transient)."""
        try:
            rotated = self._rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=TOKEN_ROTATION_MINUTES)
        except (SlackTokenRotationError, SlackApiError, OSError) as exc:
            again = self.store.bot_for(team_id)
            if again is not None and again.bot_token != bot.bot_token:
                return again
            refused = exc.api_error if isinstance(exc, SlackTokenRotationError) else exc
            reason = refused.response.get("error") if isinstance(refused, SlackApiError) else exc.__class__.__name__
            raise DeliveryError(f"the token of workspace {team_id} could not be refreshed ({reason})",
                                transient=True) from exc
        if rotated is None:
            return bot
        self.store.save_bot(rotated)
        return rotated
