"""HTTP surface: Slack's requests on POST /slack/events, a health check on GET /healthz, the trainers' API
under /api (bot/api.py) and the dashboard's pages (bot/dashboard) on every other path, when given."""

from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp


def build_web(app: App, *, dashboard: ASGIApp | None = None, api: ASGIApp | None = None) -> Starlette:
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt's App is synchronous: dispatch in a worker thread so one slow request never holds the loop.
        response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    routes: list[BaseRoute] = [Route("/slack/events", slack_events, methods=["POST"]),
                               Route("/healthz", healthz, methods=["GET"])]
    if api is not None:
        routes.append(Mount("/api", app=api))
    if dashboard is not None:
        routes.append(Mount("", app=dashboard))
    return Starlette(routes=routes)
