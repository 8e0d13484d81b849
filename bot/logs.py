"""Logs for every entry point (serve, worker, Socket Mode, demo, the CLI), set up once by `configure`.

`FLYWHEEL_LOG_FORMAT=json` writes one JSON object a line (timestamp in ISO-8601 UTC, level, logger, event and
the context bound with structlog's contextvars: request id, Slack team and user, model, version, check, work
item, outbox row); the default `text` reads as before at a terminal. The standard library's `logging` calls
come out the same way: structlog's ProcessorFormatter sits on the root handler.

A request id is made for each HTTP request (or taken from a well-formed `X-Request-Id`), recorded on the work
items (`stamp_request_ids`) and outbox rows (bot/outbox.py) written while it is bound, and bound again by the
worker when it runs that item and sends those rows, so one incident can be followed from the app into the worker.

Secrets never reach a log line or a Sentry event: `Redactor` replaces the values of the secret settings and
anything shaped like a Slack token, a signed dashboard link or a password in a database URL.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

import structlog
from pydantic import SecretStr, ValidationError
from sqlalchemy import event
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

from bot.config import LogSettings, Settings
from store.errors import FlywheelError
from store.models import WorkItem

REDACTED = "[redacted]"
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")  # anything else from a caller is replaced, never logged
_SHAPES = (
    (re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]+"), REDACTED),  # Slack tokens of every kind
    (re.compile(r"([?&]t=)[^&#\s\"'<>]+"), rf"\1{REDACTED}"),  # a signed dashboard link's token
    (re.compile(r"\b[UW][A-Z0-9]{2,20}\.[0-9]{9,12}\.[A-Za-z0-9_-]{40,}"), REDACTED),  # the same token alone
    (re.compile(r"(flywheel_session=)[^;\s\"']+"), rf"\1{REDACTED}"),  # the dashboard's session cookie
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # a password in a database or DSN URL
)
_QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes every few seconds: no line each
_HANDLER = "flywheel"
# What every line gets, whether structlog or the standard library logged it.
_SHARED: list[Any] = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
                      structlog.stdlib.add_logger_name,
                      structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")]
# structlog's loggers hand their events to the standard library's handlers, whose formatter renders them
# (configure); set once here, so a logger used before `configure` is already routed the same way.
structlog.configure(
    processors=[structlog.stdlib.filter_by_level, *_SHARED, structlog.processors.StackInfoRenderer(),
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(), wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True)


class LogSetupError(FlywheelError):
    pass


def secret_values(settings: Settings | None = None, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every secret setting's value: from `settings`, or read from the environment by name without
    validating the rest (logs are set up before the settings are checked)."""
    found = []
    for name, field in Settings.model_fields.items():
        if settings is not None:
            value = getattr(settings, name)
            found.append(value.get_secret_value() if isinstance(value, SecretStr) else "")
        elif "SecretStr" in str(field.annotation):
            found.append(environ.get(field.alias or name, ""))
    return [value for value in found if value]


class Redactor:
    """Replaces known secret values and secret-shaped text in strings, dicts and lists, as a structlog
    processor (`__call__`) and for Sentry's events (`value`)."""

    MIN_CHARS = 6  # a shorter "secret" would blank out ordinary words

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        known = set(self._secrets) | {s for s in secrets if s and len(s) >= self.MIN_CHARS}
        self._secrets = sorted(known, key=len, reverse=True)  # longest first: one secret may hold another

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, replacement in _SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def __call__(self, _logger: object, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {key: self.value(value) for key, value in event_dict.items()}


def _text_line(_logger: object, _method: str, event_dict: dict[str, Any]) -> str:
    """`LEVEL logger: event key=value ...`, as the CLI printed before, with the bound context after it."""
    event_dict = dict(event_dict)
    level, logger = event_dict.pop("level", "info").upper(), event_dict.pop("logger", "")
    message = str(event_dict.pop("event", ""))
    event_dict.pop("timestamp", None)
    trace = event_dict.pop("exception", "")
    context = " ".join(f"{key}={value}" for key, value in sorted(event_dict.items()))
    line = f"{level} {logger}: {message}" + (f" [{context}]" if context else "")
    return f"{line}\n{trace}" if trace else line


def _redacted(redactor: Redactor, render: Callable[..., str]) -> Callable[..., str]:
    """The renderer's output redacted once more: text a value's own repr or escaping may have joined up."""
    return lambda logger, method, event_dict: redactor.text(render(logger, method, event_dict))


def load_log_settings(environ: Mapping[str, str] = os.environ) -> LogSettings:
    try:
        return LogSettings(**{k: v for k, v in environ.items() if k in LogSettings.aliases()})
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = problem["loc"][0] if problem.get("loc") else "a log setting"
        raise LogSetupError(f"{name} is {problem.get('input')!r}: {problem['msg'].lower()}") from None


def configure(settings: Settings | None = None, *, verbose: bool = False, stream: TextIO | None = None,
              environ: Mapping[str, str] = os.environ) -> Redactor:
    """Set up logging for this process: the root handler's format and level, the redaction of secrets, and
    Sentry when SENTRY_DSN is set. Returns the redactor (more secrets can be added to it)."""
    log_settings = settings or load_log_settings(environ)
    redactor = Redactor(secret_values(settings, environ))
    renderer = structlog.processors.JSONRenderer() if log_settings.log_format == "json" else _text_line
    render = [structlog.processors.format_exc_info, redactor, _redacted(redactor, renderer)]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render]))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # set up again: replaced, not doubled
        root.removeHandler(old)
    root.addHandler(handler)
    default = "INFO" if verbose or log_settings.log_format == "json" else "WARNING"
    root.setLevel(log_settings.log_level or default)
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
    stamp_request_ids()
    init_sentry(log_settings, redactor)
    return redactor


def init_sentry(log_settings: LogSettings, redactor: Redactor) -> bool:
    """Error reporting when SENTRY_DSN is set and the `sentry` extra is installed; every event redacted."""
    dsn = log_settings.sentry_dsn.get_secret_value() if log_settings.sentry_dsn else ""
    if not dsn:
        return False
    try:
        import sentry_sdk
    except ImportError:
        logging.getLogger("flywheel.logs").warning(
            "SENTRY_DSN is set but the Sentry SDK is not installed: pip install 'flywheel[sentry]'")
        return False
    redactor.add([dsn])
    sentry_sdk.init(dsn=dsn, environment=log_settings.sentry_environment, send_default_pii=False,
                    before_send=lambda event, _hint: redactor.value(event),
                    before_breadcrumb=lambda crumb, _hint: redactor.value(crumb))
    return True


# -- context ------------------------------------------------------------------------------------------

def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_of(header: str | None) -> str:
    """The caller's X-Request-Id when it is a plain id, else a new one."""
    return header if header is not None and _REQUEST_ID.fullmatch(header) else new_request_id()


def current_request_id() -> str | None:
    return get_contextvars().get("request_id")


def slack_ids(body: object) -> dict[str, str]:
    """The Slack team and user ids of a request body (command, click, view or event), when it has them."""
    if not isinstance(body, dict):
        return {}
    team, user = body.get("team_id"), body.get("user_id")
    if isinstance(body.get("team"), dict):
        team = body["team"].get("id", team)
    if isinstance(body.get("user"), dict):
        user = body["user"].get("id", user)
    if isinstance(body.get("event"), dict):
        user = body["event"].get("user", user)
    return {key: value for key, value in (("slack_team", team), ("slack_user", user)) if isinstance(value, str)}


def bind_slack(body: object) -> None:
    """Bind the team and user of the Slack request being handled, for the rest of the request."""
    bind_contextvars(**slack_ids(body))


def socket_mode_context(body: dict, next: Callable[[], None]) -> None:  # noqa: A002: Bolt passes `next` by name
    """Bolt middleware for Socket Mode, where no HTTP request carries an id: one per request. Bolt's `next()`
    only lets the chain go on (the listener runs after every middleware has returned, in this thread), so the
    context stays bound until the thread's next request replaces it."""
    clear_contextvars()
    bind_contextvars(request_id=new_request_id(), **slack_ids(body))
    next()


def _stamp(_mapper: object, _connection: object, target: WorkItem) -> None:
    if target.request_id is None:
        target.request_id = current_request_id()


def stamp_request_ids() -> None:
    """Work items queued while a request id is bound carry it, for the worker to bind when it runs them.
    (Outbox rows are a Core insert, which no ORM event sees: bot/outbox.py passes the id itself.)"""
    if not event.contains(WorkItem, "before_insert", _stamp):
        event.listen(WorkItem, "before_insert", _stamp)


class RequestLog:
    """ASGI middleware: a request id for each HTTP request, bound while it is handled and returned as
    X-Request-Id, and one line for it when it is done (none for the probes)."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app
        self.log = structlog.stdlib.get_logger("flywheel.web")

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode())
        request_id = request_id_of(header.decode("latin-1") if header is not None else None)
        status = 500
        started = time.perf_counter()

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        clear_contextvars()
        bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, sending)
        finally:
            if scope["path"] not in _QUIET_PATHS:
                self.log.info("http request", method=scope["method"], path=scope["path"], status=status,
                              ms=round((time.perf_counter() - started) * 1000, 1))
            clear_contextvars()
