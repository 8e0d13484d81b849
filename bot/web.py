"""HTTP surface: Slack's requests on POST /slack/events, liveness on GET /healthz, readiness on GET /readyz
(bot/readiness.py), Prometheus metrics on GET /metrics (bot/metrics.py), the trainers' API under /api
(bot/api.py) and the dashboard's pages (bot/dashboard) on every other path, when given."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from bot import metrics
from bot.config import Settings
from bot.logs import RequestLog, bind_slack
from bot.readiness import TIMEOUT_SECONDS, Readiness
from bot.request_body import AddressGuard, BodyRefused, read_body
from store.db import Database

# Slack's biggest request is a click on a message of 50 blocks, sent back whole: a few hundred KB at most.
MAX_SLACK_BODY = 1_000_000
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
UNSIGNED = "This endpoint answers Slack only: the request has no valid Slack signature."
MALFORMED = "The request is signed but is not a Slack request Flywheel can read."


class SlackSignature:
    """Slack's request signature (HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret), checked on the
    raw bytes before anything parses them. A check never raises: missing or malformed headers, a timestamp
    outside Slack's five minutes or a body that is not UTF-8 are simply not signed."""

    def __init__(self, signing_secret: str | None):
        self._verifier = SignatureVerifier(signing_secret) if signing_secret and signing_secret.strip() else None

    def headers_usable(self, headers: Mapping[str, str]) -> bool:
        """Whether the headers could carry a signature at all; checked before the body is read."""
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        return (self._verifier is not None and timestamp is not None and signature is not None
                and _TIMESTAMP.fullmatch(timestamp) is not None and _SIGNATURE.fullmatch(signature) is not None)

    def valid(self, headers: Mapping[str, str], body: bytes) -> bool:
        if not self.headers_usable(headers):
            return False
        try:
            text = body.decode("utf-8")
            return self._verifier.is_valid(body=text, timestamp=headers["x-slack-request-timestamp"],
                                           signature=headers["x-slack-signature"])
        except (UnicodeError, ValueError, TypeError):
            return False


def build_web(app: App, *, dashboard: ASGIApp | None = None, api: ASGIApp | None = None,
              on_shutdown: Callable[[], None] | None = None, readiness: Readiness | None = None,
              signing_secret: str | None = None) -> Starlette:
    """`signing_secret` defaults to the one the Bolt app was built with."""
    signature = SlackSignature(signing_secret if signing_secret is not None else getattr(app, "_signing_secret", None))

    async def slack_events(request: Request) -> Response:
        arrived = time.perf_counter()
        # Refused before anything parses the body: no signature, a body too big, or a signature that is wrong.
        if not signature.headers_usable(request.headers):
            return PlainTextResponse(UNSIGNED, status_code=401)
        try:
            body = await read_body(request, MAX_SLACK_BODY)
        except BodyRefused as refused:
            return PlainTextResponse(str(refused), status_code=refused.status)
        if not signature.valid(request.headers, body):
            return PlainTextResponse(UNSIGNED, status_code=401)
        try:
            parsed = bolt_request(request, body)
        except (ValueError, UnicodeError, RecursionError, AttributeError, TypeError, KeyError):
            # JSON Bolt can't read, or a payload that is no object, even though it was signed
            return PlainTextResponse(MALFORMED, status_code=400)
        if (problem := shape_problem(parsed.body)) is not None:
            return PlainTextResponse(f"{MALFORMED} {problem}", status_code=400)
        bind_slack(parsed.body)  # team and user on this request's log lines (bot/logs.py)
        # Bolt's App is synchronous: dispatch in a worker thread so one slow request never holds the loop.
        response = to_starlette_response(await run_in_threadpool(app.dispatch, parsed))
        metrics.acknowledged(parsed.body, time.perf_counter() - arrived)
        return response

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})  # alive: answers without touching the database

    scraped = metrics.registry_for(readiness.db if readiness is not None else None)

    async def prometheus(_: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.exposition, scraped)
        return Response(body, media_type=content_type)

    async def readyz(_: Request) -> Response:
        if readiness is None:
            return JSONResponse({"status": "unavailable", "reason": "this process has no database to check"}, 503)
        try:
            ready, body = await asyncio.wait_for(run_in_threadpool(readiness.check), TIMEOUT_SECONDS)
        except TimeoutError:
            ready, body = False, {"status": "unavailable",
                                  "reason": f"the database did not answer within {TIMEOUT_SECONDS:.0f} s"}
        return JSONResponse(body, 200 if ready else 503, headers={"Cache-Control": "no-store"})

    oauth_flow = app.oauth_flow

    async def install(request: Request) -> Response:  # Bolt's OAuth v2 flow (bot/oauth.py)
        return to_starlette_response(await run_in_threadpool(oauth_flow.handle_installation,
                                                             to_bolt_request(request, b"")))

    async def oauth_redirect(request: Request) -> Response:
        return to_starlette_response(await run_in_threadpool(oauth_flow.handle_callback,
                                                             to_bolt_request(request, b"")))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    routes: list[BaseRoute] = [Route("/slack/events", slack_events, methods=["POST"]),
                               Route("/healthz", healthz, methods=["GET"]),
                               Route("/readyz", readyz, methods=["GET"]),
                               Route("/metrics", prometheus, methods=["GET"])]
    if oauth_flow is not None:
        routes += [Route(oauth_flow.install_path, install, methods=["GET"]),
                   Route(oauth_flow.redirect_uri_path, oauth_redirect, methods=["GET"])]
    if api is not None:
        routes.append(Mount("/api", app=api))
    if dashboard is not None:
        routes.append(Mount("", app=dashboard))
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(RequestLog), Middleware(AddressGuard)])


def _is(value: object, kind: type) -> bool:
    return isinstance(value, kind)


def shape_problem(body: object) -> str | None:
    """What keeps a signed body from being a Slack request the listeners can read, in the few fields Bolt and
    the middleware read before any listener checks more; None when it has the shape. A handful of lookups."""
    if not _is(body, dict):
        return "The body is not an object."
    if "command" in body:
        missing = [k for k in ("command", "user_id", "text") if not _is(body.get(k, ""), str)]
        missing += [] if body.get("user_id") else ["user_id"]
        return f"A slash command needs {', '.join(dict.fromkeys(missing))} as text." if missing else None
    kind = body.get("type")
    if kind is None:
        return None  # not a request Flywheel listens to: Bolt answers 404
    if not _is(kind, str):
        return "`type` is not text."
    if kind == "event_callback":
        event = body.get("event")
        return None if _is(event, dict) and _is(event.get("type"), str) else "`event` is not an event object."
    if kind == "url_verification":
        return None if _is(body.get("challenge"), str) else "`challenge` is not text."
    user = body.get("user")
    if not _is(user, dict) or not _is(user.get("id"), str):
        return "`user` is not a user object with an id."
    for name in ("view", "container", "message", "channel", "team", "state"):
        if name in body and body[name] is not None and not _is(body[name], dict):
            return f"`{name}` is not an object."
    actions = body.get("actions", [])
    if not _is(actions, list) or not all(_is(a, dict) and _is(a.get("action_id", ""), str) for a in actions):
        return "`actions` is not a list of actions."
    if kind in ("block_actions", "interactive_message") and not actions:
        return "A click carries no action."
    if kind.startswith("view_") and not _is(body.get("view"), dict):
        return "A view submission carries no view."
    return None


# Kept: what it buys during a check cycle at 50 concurrent clicks (p99 and server CPU a click; bench_ack
# --with-cycle --cycle-nice 0 --requests 2000 on SQLite, 2 cores shared, 5-6 alternating runs each, 2026-12-05):
# View details 83-182 ms, 0.90-1.11 ms with it; 135-274 ms, 1.20-1.33 ms without; Acknowledge 1.71-1.81 ms
# against 1.87-2.02 ms of CPU.
def bolt_request(request: Request, body: bytes) -> BoltRequest:
    """Starlette's request as Bolt's, as Bolt's own adapter makes it, but for the decoding of a click.

    A click arrives as one form field, `payload=` and the URL-encoded JSON of the whole clicked message,
    which Bolt decodes with the standard library's pure-Python parse_qsl: 0.2 to 0.3 ms of the app's CPU
    per click on the 2-core VM, a fifth of a click's cost. Decoded here in C, then Bolt is given the JSON
    and, as the raw body, the bytes Slack signed, which its request verification checks as always."""
    payload = form_payload(body)
    if payload is None:
        return to_bolt_request(request, body)
    bolt = BoltRequest(body=payload, query=request.query_params, headers=request.headers)  # type: ignore[arg-type]
    bolt.raw_body = body.decode("utf-8")
    return bolt


def form_payload(body: bytes) -> str | None:
    """The `payload` of a form body holding only that field, as parse_qsl would decode it; None when the
    body is anything else or does not decode cleanly (Bolt's own parsing then has the last word)."""
    if not body.startswith(b"payload=") or b"&" in body or b"\\" in body:
        return None
    # %XX becomes \xXX for Python's unicode_escape codec (no backslash is left to misread: checked above),
    # which gives each byte as a code point; Latin-1 turns those back into bytes, then UTF-8 into text.
    escaped = body[len(b"payload="):].replace(b"+", b" ").replace(b"%", b"\\x")
    try:
        payload = escaped.decode("unicode_escape").encode("latin-1").decode("utf-8")
    except UnicodeError:  # a "%" without two hex digits after it, or bytes that are not UTF-8
        return None
    return payload if payload.startswith("{") else None  # Bolt reads a body starting "{" as JSON


def build_server(settings: Settings, *, db: Database | None = None) -> tuple[Starlette, Callable[[], None]]:
    """What one `flywheel serve` process runs: the Slack app, the trainers' API and the dashboard; and how to
    let it go without serving (a check before starting several). Raises FlywheelError when a setting is
    missing or unusable, naming it, before Slack is asked whether the token is good."""
    from bot.api import build_api
    from bot.app import build, check_settings
    from bot.dashboard.app import build_dashboard

    check_settings(settings)
    app, ops = build(settings, db=db, queued=True)
    try:
        dashboard = build_dashboard(settings, ops.db)
    except Exception:
        ops.db.dispose()
        raise
    # On a clean stop the last follow-ups and queued audit events are written.
    web = build_web(app, dashboard=dashboard, api=build_api(ops), on_shutdown=ops.join,
                    readiness=Readiness(ops.db))
    steady_collections()
    return web, ops.db.dispose


FULL_COLLECTION_EVERY = 100  # gen-1 collections per full one; CPython's default is 10


# Kept: what it buys during a check cycle at 50 concurrent (p99; bench_ack --with-cycle --cycle-nice 0
# --requests 2000 on SQLite, 2 cores shared, 3 alternating runs, 2026-12-05): the five mixes interleaved
# 71-108 ms with it, 215-427 ms without; Acknowledge 85-158 against 237-485, View details 83-114 against 338-523.
def steady_collections() -> None:
    """Fewer, shorter garbage-collection pauses for a serving process, where every request in flight waits
    out each one. The objects built so far (the app, its caches, imported modules) are frozen: no collection
    walks them again. That also switches off CPython's own brake on full collections (none while the old
    generation's new objects are under a quarter of it), since frozen objects no longer count as old; with
    the default, every tenth gen-1 collection became a full one, 9 to 13 per 2,000 clicks at 50 in flight,
    each 20 to 40 ms. What grows old here is requests in flight and writes queued for the group commit,
    which reference counting frees, not cycles: a full collection every hundredth gen-1 one is plenty."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
