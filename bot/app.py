"""The composition root: settings -> database, Slack client, delivery, notifier, operations, Bolt app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from slack_bolt import App
from slack_sdk import WebClient

from bot.alerts import Notifier
from bot.blocks.common import escape_mrkdwn
from bot.config import Settings
from bot.delivery import FolderOutbox
from bot.outbox import OutboxDelivery, OutboxSender, StormPolicy
from bot.operations import Operations, Runner
from bot.response_urls import ResponseUrls
from bot.slack_delivery import SlackDelivery, make_client
from store.clock import utcnow
from store.db import Database, unreachable
from store.errors import FlywheelError
from store.models import CheckKind, Person, Verdict


class SetupError(FlywheelError):
    pass


def missing_settings(settings: Settings, *, socket: bool = False) -> list[str]:
    needed = {"SLACK_BOT_TOKEN": settings.slack_bot_token, "SLACK_SIGNING_SECRET": settings.slack_signing_secret}
    if socket:
        needed["SLACK_APP_TOKEN"] = settings.slack_app_token
    return [name for name, value in needed.items() if value is None or not value.get_secret_value()]


def make_notifier(settings: Settings, db: Database, *, client: WebClient | None = None,
                  queued: bool = False, clock: Callable[[], datetime] = utcnow,
                  responses: ResponseUrls | None = None) -> Notifier:
    """Slack when a bot token is set (through the outbox table when `queued`, for the worker to
    send), otherwise the outbox folder and its HTML preview."""
    if client is None and settings.slack_bot_token is None:
        with db.session() as s:
            people = {p.slack_id: p.name for p in s.query(Person)}
        delivery = FolderOutbox(settings.outbox, people=people)
    elif queued:
        delivery = OutboxDelivery(db, clock)
    else:
        delivery = SlackDelivery(client or make_client(settings))
    return Notifier(db=db, settings=settings, delivery=delivery, charts_dir=settings.artifacts / "charts",
                    respond=(responses or ResponseUrls()).say)


def build(settings: Settings, *, db: Database | None = None, client: WebClient | None = None,
          clock: Callable[[], datetime] = utcnow, socket: bool = False,
          inline_work: bool = False, queued: bool = False) -> tuple[App, Operations]:
    """Build the Bolt app and what it works with; refuse to start without the secrets it needs."""
    if missing := missing_settings(settings, socket=socket):
        raise SetupError(f"can't start the Slack app: {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not set")
    db = db or Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()
    client = client or make_client(settings)
    responses = ResponseUrls()
    notifier = make_notifier(settings, db, client=client, queued=queued, clock=clock, responses=responses)
    ops = Operations(settings=settings, db=db, notifier=notifier, runner=Runner() if inline_work else None,
                     clock=clock)
    # process_before_response: listeners only parse, authorize, record and ack, so the HTTP answer
    # can wait for them; slow work and Slack follow-ups run on the operations' background threads.
    # The web endpoint (bot/web.py) checks Slack's signature on the raw bytes before anything parses them, and
    # Socket Mode needs none: Bolt's own check would be a second HMAC of every request.
    app = App(signing_secret=settings.slack_signing_secret.get_secret_value(), client=client,
              process_before_response=True, request_verification_enabled=False)
    from handlers import register  # handlers import bot modules; import here to keep the root acyclic

    register(app, ops)
    return app, ops


AUTO_RETRAIN_ON = (CheckKind.drift, CheckKind.performance, CheckKind.kpi)
_BREACHES = {CheckKind.drift: "input drift on", CheckKind.performance: "performance below its line on",
             CheckKind.kpi: "a business KPI breach on"}


def breach_reason(kind: CheckKind, subjects: tuple[str, ...]) -> str:
    """Why Flywheel retrained on its own, as the candidate and sign-off messages say it."""
    return f"retrained automatically after {_BREACHES[kind]} {', '.join(subjects) or 'the model'}"


def build_worker(settings: Settings, *, db: Database | None = None, client: WebClient | None = None,
                 clock: Callable[[], datetime] = utcnow, poll_seconds: float = 2.0):
    """The worker: scheduled checks and queued work, delivering through Slack or the outbox folder."""
    from bot.blocks.home import home_view
    from jobs.monitor import check_model
    from jobs.worker import Worker
    from store.home import home_for

    db = db or Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        db.ensure_schema()
    notifier = make_notifier(settings, db, client=client, queued=True, clock=clock)
    ops = Operations(settings=settings, db=db, notifier=notifier, runner=None, clock=clock)
    sender = None
    if settings.slack_bot_token is not None or client is not None:
        # The outbox retries on its own schedule; the SDK's retry handlers would sleep inside a pass.
        plain = client or WebClient(token=settings.slack_bot_token.get_secret_value(),
                                    base_url=settings.slack_api_url, timeout=15)
        slack = SlackDelivery(plain)

        def publish_home(slack_id: str) -> None:
            with db.read() as s:
                data = home_for(session=s, slack_id=slack_id, now=clock())
            slack.publish_home(slack_id, home_view(data, public_url=settings.public_url))

        sender = OutboxSender(db, slack, clock, storm=StormPolicy.from_settings(settings), publish_home=publish_home)

    def check(model_key: str, kind) -> None:
        try:
            checked = check_model(db=db, model_key=model_key, as_of=clock(), kinds={kind}, now=clock())
            notifier.on_checks(checked)
            for result in checked.results:
                if result.outcome.verdict == Verdict.breach and result.kind in AUTO_RETRAIN_ON:
                    ops.auto_retrain(model_key, breach_reason(result.kind, result.outcome.subjects),
                                     alert_id=result.alert_id)
        except Exception as exc:  # a job failure goes to the people who can fix it, then to the log
            if unreachable(exc):  # the database is away: the worker runs this firing again once it is back
                raise
            notifier.job_failed(model_key, f"The scheduled {kind.value.replace('_', ' ')} check of {model_key} "
                                           f"failed: {escape_mrkdwn(exc)}")
            raise

    return Worker(db=db, check=check, run_work=ops.work.run, poll_seconds=poll_seconds,
                  send_outbox=sender.send_due if sender else None, sweep=ops.work.expire_overdue,
                  daily_digest=lambda: notifier.daily_digest(clock()), digest_hour=settings.digest_hour), ops
