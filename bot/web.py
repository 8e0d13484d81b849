"""HTTP surface: Slack's requests on POST /slack/events, liveness on GET /healthz, readiness on GET /readyz
(bot/readiness.py), the trainers' API under /api (bot/api.py) and the dashboard's pages (bot/dashboard) on
every other path, when given."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from bot.config import Settings
from bot.readiness import TIMEOUT_SECONDS, Readiness


def build_web(app: App, *, dashboard: ASGIApp | None = None, api: ASGIApp | None = None,
              on_shutdown: Callable[[], None] | None = None, readiness: Readiness | None = None) -> Starlette:
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt's App is synchronous: dispatch in a worker thread so one slow request never holds the loop.
        response = await run_in_threadpool(app.dispatch, bolt_request(request, body))
        return to_starlette_response(response)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")  # alive: answers without touching the database

    async def readyz(_: Request) -> Response:
        if readiness is None:
            return JSONResponse({"status": "unavailable", "reason": "this process has no database to check"}, 503)
        try:
            ready, body = await asyncio.wait_for(run_in_threadpool(readiness.check), TIMEOUT_SECONDS)
        except TimeoutError:
            ready, body = False, {"status": "unavailable",
                                  "reason": f"the database did not answer within {TIMEOUT_SECONDS:.0f} s"}
        return JSONResponse(body, 200 if ready else 503, headers={"Cache-Control": "no-store"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    routes: list[BaseRoute] = [Route("/slack/events", slack_events, methods=["POST"]),
                               Route("/healthz", healthz, methods=["GET"]),
                               Route("/readyz", readyz, methods=["GET"])]
    if api is not None:
        routes.append(Mount("/api", app=api))
    if dashboard is not None:
        routes.append(Mount("", app=dashboard))
    return Starlette(routes=routes, lifespan=lifespan)


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


def build_server(settings: Settings) -> tuple[Starlette, Callable[[], None]]:
    """What one `flywheel serve` process runs: the Slack app, the trainers' API and the dashboard; and how to
    let it go without serving (a check before starting several). Raises FlywheelError when a setting is
    missing or unusable, naming it."""
    from bot.api import build_api
    from bot.app import build
    from bot.dashboard.app import build_dashboard

    app, ops = build(settings, queued=True)
    try:
        dashboard = build_dashboard(settings, ops.db)
    except Exception:
        ops.db.dispose()
        raise
    # On a clean stop the last follow-ups and queued audit events are written.
    web = build_web(app, dashboard=dashboard, api=build_api(settings, ops.db), on_shutdown=ops.join,
                    readiness=Readiness(ops.db))
    steady_collections()
    return web, ops.db.dispose


FULL_COLLECTION_EVERY = 100  # gen-1 collections per full one; CPython's default is 10


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
