"""The composition root: settings -> database, Slack client, delivery, notifier, operations, Bolt app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from slack_bolt import App
from slack_sdk import WebClient

from bot.notifier import Notifier
from bot.oauth import WorkspaceClients, installation_store, mode_problem, oauth_settings
from bot.config import Settings
from bot.delivery import Delivery, FolderOutbox
from bot.metrics import CountingWebClient, count_listener_calls
from bot.logs import stamp_request_ids
from bot.outbox import OutboxDelivery, OutboxSender, StormPolicy
from bot.services.common import Runner
from bot.services.operations import Operations
from bot.response_urls import ResponseUrls
from bot.slack_delivery import SlackDelivery, make_client
from store import authority
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError
from store.models import Person


class SetupError(FlywheelError):
    pass


def missing_settings(settings: Settings, *, socket: bool = False) -> list[str]:
    needed = {"SLACK_SIGNING_SECRET": settings.slack_signing_secret}
    if not settings.oauth:  # OAuth mode: each workspace's token comes from its install (bot/oauth.py)
        needed = {"SLACK_BOT_TOKEN": settings.slack_bot_token, **needed}
    if socket:
        needed["SLACK_APP_TOKEN"] = settings.slack_app_token
    return [name for name, value in needed.items() if value is None or not value.get_secret_value()]


def check_settings(settings: Settings, *, socket: bool = False) -> None:
    """Refuse, naming every setting at fault, before anything is opened or Slack is asked: the Slack secrets,
    and over HTTP the dashboard's signing key."""
    if (problem := mode_problem(settings)) is not None:
        raise SetupError(f"can't start the Slack app: {problem}")
    if missing := missing_settings(settings, socket=socket):
        raise SetupError(f"can't start the Slack app: {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set")
    if not socket:
        from bot.dashboard.access import secret_of

        secret_of(settings)


def make_notifier(settings: Settings, db: Database, *, client: WebClient | None = None,
                  queued: bool = False, clock: Callable[[], datetime] = utcnow,
                  responses: ResponseUrls | None = None, delivery: Delivery | None = None,
                  charts_dir: Path | None = None) -> Notifier:
    """Slack when a bot token is set (through the outbox table when `queued`, for the worker to
    send), otherwise the outbox folder and its HTML preview; or the `delivery` given (the demo's)."""
    if settings.oauth:  # each message goes out with its workspace's token, which only the outbox's sender picks
        queued = True
    if delivery is None and client is None and settings.slack_bot_token is None and not settings.oauth:
        with db.session() as s:
            people = {p.slack_id: p.name for p in s.query(Person)}
        delivery = FolderOutbox(settings.outbox, people=people)
    elif delivery is None:
        delivery = OutboxDelivery(db, clock) if queued else SlackDelivery(client or make_client(settings))
    return Notifier(db=db, settings=settings, delivery=delivery, charts_dir=charts_dir or settings.artifacts / "charts",
                    respond=(responses or ResponseUrls()).say)


def make_operations(settings: Settings, db: Database, notifier: object, *, inline_work: bool = False,
                    clock: Callable[[], datetime] = utcnow) -> Operations:
    """Every use case, sharing one database, notifier and clock. `inline_work` runs retrains and
    deploys in this process (tests, the demo) instead of leaving them to the worker."""
    return Operations(settings=settings, db=db, notifier=notifier, runner=Runner() if inline_work else None,
                      clock=clock)


def build(settings: Settings, *, db: Database | None = None, client: WebClient | None = None,
          clock: Callable[[], datetime] = utcnow, socket: bool = False,
          inline_work: bool = False, queued: bool = False) -> tuple[App, Operations]:
    """Build the Bolt app and what it works with; refuse to start without the secrets it needs."""
    if (problem := mode_problem(settings)) is not None:
        raise SetupError(f"can't start the Slack app: {problem}")
    if missing := missing_settings(settings, socket=socket):
        raise SetupError(f"can't start the Slack app: {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set")
    db = db or Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()
    stamp_request_ids()  # work and messages a request causes carry its id to the worker's logs
    if settings.oauth:  # no token of its own: Bolt gives each request its workspace's
        client = client or CountingWebClient(base_url=settings.slack_api_url, timeout=15)
    client = client or make_client(settings)
    responses = ResponseUrls()
    notifier = make_notifier(settings, db, client=client, queued=queued, clock=clock, responses=responses)
    ops = make_operations(settings, db, notifier, inline_work=inline_work, clock=clock)
    # process_before_response: listeners only parse, authorize, record and ack, so the HTTP answer
    # can wait for them; slow work and Slack follow-ups run on the operations' background threads.
    # The web endpoint (bot/web.py) checks Slack's signature on the raw bytes before anything parses them, and
    # Socket Mode needs none: Bolt's own check would be a second HMAC of every request.
    oauth: dict[str, object] = {}
    if settings.oauth:
        store = installation_store(settings, db)
        oauth = {"installation_store": store, "installation_store_bot_only": True,
                 "oauth_settings": oauth_settings(settings, db, store)}
    app = App(signing_secret=settings.slack_signing_secret.get_secret_value(), client=client,
              process_before_response=True, request_verification_enabled=False, **oauth)
    count_listener_calls(app)
    if settings.oauth:  # app_uninstalled and tokens_revoked delete the workspace's installation
        app.enable_token_revocation_listeners()
    from handlers import register  # handlers import bot modules; import here to keep the root acyclic

    register(app, ops)
    return app, ops


def make_outbox_sender(settings: Settings, ops: Operations, *, client: WebClient | None = None,
                       clock: Callable[[], datetime] = utcnow, storm: StormPolicy | None = None) -> OutboxSender:
    """What sends the outbox to Slack: the worker's, or `flywheel check`'s for the alerts it just queued."""
    from bot.blocks.home import home_view

    workspaces = None
    if settings.oauth:  # no token of its own: each row goes out with its workspace's (bot/oauth.py)
        workspaces = WorkspaceClients(installation_store(settings, ops.db), settings)
        client = client or CountingWebClient(base_url=settings.slack_api_url, timeout=15)
    # The outbox retries on its own schedule; the SDK's retry handlers would sleep inside a pass.
    plain = client or CountingWebClient(token=settings.slack_bot_token.get_secret_value(),
                                        base_url=settings.slack_api_url, timeout=15)

    def publish_home(slack_id: str, slack: SlackDelivery, team: str | None) -> None:
        # The worker serves no request: the home is read as its workspace's person would see it.
        with authority.acting_in(team):
            home = ops.people.home(slack_id)
        slack.publish_home(slack_id, home_view(home, public_url=settings.public_url))

    return OutboxSender(ops.db, SlackDelivery(plain), clock, storm=storm or StormPolicy.from_settings(settings),
                        publish_home=publish_home, workspaces=workspaces)


def build_worker(settings: Settings, *, db: Database | None = None, client: WebClient | None = None,
                 clock: Callable[[], datetime] = utcnow, poll_seconds: float = 2.0):
    """The worker: scheduled checks and queued work, delivering through Slack or the outbox folder."""
    from jobs.worker import Worker

    db = db or Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()
    stamp_request_ids()
    notifier = make_notifier(settings, db, client=client, queued=True, clock=clock)
    ops = make_operations(settings, db, notifier, clock=clock)
    sender = None
    if settings.slack_bot_token is not None or client is not None or settings.oauth:
        sender = make_outbox_sender(settings, ops, client=client, clock=clock)
    return Worker(db=db, check=ops.checks.scheduled, run_work=ops.work.run, poll_seconds=poll_seconds,
                  send_outbox=sender.send_due if sender else None, sweep=ops.work.expire_overdue,
                  daily_digest=lambda: notifier.daily_digest(clock()), digest_hour=settings.digest_hour,
                  sync_registry=ops.mlflow.scheduled), ops
