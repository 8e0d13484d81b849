"""The dashboard's routes: read-only pages behind signed links, served next to Slack's endpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings
from bot.dashboard import evidence, svg
from bot.dashboard.access import (
    SESSION_COOKIE,
    TOKEN_PARAM,
    LinkRefused,
    Refusal,
    Signer,
    describe,
    model_of,
    person_of,
)
from bot.dashboard.card import card_markdown, score_name
from bot.dashboard.templating import environment as _environment
from bot.services import pages
from store.authority import NO_WORKSPACE, acting_in
from store.clock import utcnow
from store.db import Database
from store.errors import FlywheelError, Forbidden, NotFound

Handler = Callable[[Request, pages.Viewer, Session], Response]
CATALOG_PAGE = 20
HEADERS = {
    # No script at all; tokens ride in URLs, so no page may leak them in a Referer or a cache.
    "content-security-policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer", "cache-control": "no-store", "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.encode(), v.encode()) for k, v in HEADERS.items())]
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def build_dashboard(settings: Settings, db: Database, *, clock: Callable[[], datetime] = utcnow,
                    charts_dir: Path | None = None) -> ASGIApp:
    """The dashboard app; refuses (DashboardSetupError) without a usable FLYWHEEL_SECRET_KEY."""
    signer = Signer(settings)
    env = _environment()
    posted_dir = Path(charts_dir) if charts_dir else settings.artifacts / "charts"
    cache_dir = settings.artifacts / "dashboard"
    catalog = _catalog_search()

    def render(template: str, viewer: pages.Viewer | None, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(viewer=viewer, catalog=catalog is not None, **context)
        return HTMLResponse(html, status_code=status)

    def refused(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        model = model_of(request.url.path)
        response = render("refused.html", None, status, title=title, message=message,
                          command=f"/flywheel status {model or 'MODEL'}", page=describe(request.url.path),
                          days=f"{settings.link_days:g}")
        if status == 401:
            response.headers["www-authenticate"] = 'Signed-Link realm="Flywheel"'
        return response

    def page(handler: Handler) -> Callable[[Request], Response]:
        """Who is asking: a signed link (traded for a session) or the session cookie; then their roles."""
        def endpoint(request: Request) -> Response:
            now = clock()
            token = request.query_params.get(TOKEN_PARAM)
            session = signer.check_session(request.cookies.get(SESSION_COOKIE), now=now)
            try:
                if token is not None:
                    user = signer.check_link(token, path=request.url.path, now=now)
                    if session is not None and session.slack_id != user:
                        with db.session() as s:
                            names = {u: (pages.viewer(session=s, slack_id=person_of(u)[0]) or u)
                                     for u in (user, session.slack_id)}
                        raise LinkRefused(Refusal.wrong_user, _wrong_user(names[user], names[session.slack_id]))
                elif session is None:
                    raise LinkRefused(Refusal.missing, "Dashboard pages open from the links Flywheel sends you in "
                                                       "Slack, and this browser has none.")
                else:
                    user = session.slack_id
            except LinkRefused as refusal:
                missing = refusal.reason == Refusal.missing
                title = "Open this page from Slack" if missing else "This link can't be opened"
                return refused(request, 401, title, str(refusal))
            slack_id, team = person_of(user)
            if team is None and settings.oauth:  # a link made before links named their workspace: fails closed
                team = NO_WORKSPACE
            with acting_in(team), db.session() as s:  # a link made in one workspace opens its projects only
                viewer = pages.viewer(session=s, slack_id=slack_id)
                if viewer is None:
                    return refused(request, 403, "You're not set up in Flywheel",
                                   f"{slack_id} is not a Flywheel user: an admin adds people in a project spec.")
                project = pages.project_of_page(session=s, path=request.url.path)
                if token is not None:
                    scope = session.widened(project) if session is not None else \
                        (frozenset({project}) if project is not None else None)
                    return _trade(request, signer.session_cookie(user, now=now, projects=scope), signer.secure)
                if not session.opens(project):
                    return refused(request, 403, "Open this page from Slack",
                                   f"This browser's Flywheel session opens the projects whose links you followed, "
                                   f"and {project} is not one of them yet: open this page from its link in Slack.")
                try:
                    return handler(request, viewer, s)
                except NotFound as exc:
                    return render("message.html", viewer, 404, title="Not found", message=str(exc))
                except Forbidden as exc:
                    return render("message.html", viewer, 403, title="Not for your roles", message=str(exc))
                except ValueError as exc:
                    return render("message.html", viewer, 400, title="Can't show that", message=str(exc))
        return endpoint

    def home(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        return render("index.html", viewer, models=pages.index(session=s, viewer=viewer))

    def model(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        days = request.query_params.get("days", str(pages.DEFAULT_DAYS))
        if not (days.isascii() and days.isdigit() and len(days) <= 4):
            raise ValueError(f"days={days[:20]} is not a number of days; use one of "
                             f"{', '.join(map(str, pages.RANGES))}.")
        data = pages.model_page(session=s, key=request.path_params["key"], viewer=viewer, days=int(days), now=clock())
        return render("model.html", viewer, m=data, svg=svg, ranges=pages.RANGES, names=_names(data.names, viewer))

    def alert(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.alert_page(session=s, alert_id=request.path_params["alert_id"], viewer=viewer)
        found = evidence.alert_charts(data, posted_dir=posted_dir, cache_dir=cache_dir)
        return render("alert.html", viewer, a=data, charts=found, svg=svg, names=_names(data.names, viewer))

    def alert_chart(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.alert_page(session=s, alert_id=request.path_params["alert_id"], viewer=viewer)
        found = {c.name: c for c in evidence.alert_charts(data, posted_dir=posted_dir, cache_dir=cache_dir)}
        chart = found.get(request.path_params["name"])
        if chart is None:
            raise NotFound(f"Alert {data.alert.id} has no chart called {request.path_params['name']}.")
        return FileResponse(chart.path, media_type="image/png")

    def card(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.model_card(session=s, key=request.path_params["key"], number=request.path_params["number"],
                                viewer=viewer, now=clock())
        return render("card.html", viewer, c=data, svg=svg, names=_names(data.names, viewer),
                      score=score_name(data.importance_metric))

    def card_md(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.model_card(session=s, key=request.path_params["key"], number=request.path_params["number"],
                                viewer=viewer, now=clock())
        name = f"{data.model_key}-{data.version.label}-model-card.md"
        return PlainTextResponse(card_markdown(data), media_type="text/markdown; charset=utf-8",
                                 headers={"content-disposition": f'attachment; filename="{name}"'})

    def evidence_download(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        from bot.dashboard.evidence_pack import file_names, pack_html
        from bot.services.evidence import evidence_pack

        pack = evidence_pack(s, viewer.slack_id, request.path_params["key"], request.path_params["number"],
                             now=clock())
        return HTMLResponse(pack_html(pack, dashboard_url=settings.public_url), headers={
            "content-disposition": f'attachment; filename="{file_names(pack)[0]}"'})

    def project(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.project_page(session=s, key=request.path_params["key"], viewer=viewer)
        return render("project.html", viewer, p=data, svg=svg, names=_names(data.names, viewer))

    def portfolio(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        data = pages.portfolio(session=s, viewer=viewer, now=clock())
        return render("portfolio.html", viewer, lines=data.lines, names=_names(data.names, viewer),
                      overdue_days=pages.OVERDUE.days)

    def search(request: Request, viewer: pages.Viewer, s: Session) -> Response:
        query = request.query_params.get("q", "").strip()
        offset = request.query_params.get("offset", "0")
        if not (offset.isascii() and offset.isdigit() and len(offset) <= 6):
            raise ValueError(f"offset={offset[:20]} is not a number of results to skip (at most 999999).")
        try:
            found = catalog(session=s, query=query, limit=CATALOG_PAGE, offset=int(offset),
                            viewer=viewer.slack_id) if query else None
            problem = ""
        except FlywheelError as exc:  # a query the catalog can't run says why
            found, problem = None, str(exc)
        return render("catalog.html", viewer, query=query, found=found, problem=problem, page_of=_asset_page,
                      more=f"/catalog?{urlencode({'q': query, 'offset': int(offset) + CATALOG_PAGE})}")

    routes = [
        Route("/", page(home)),
        Route("/models/{key}", page(model)),
        Route("/models/{key}/versions/{number:int}", page(card)),
        Route("/models/{key}/versions/{number:int}/card", page(card)),
        Route("/models/{key}/versions/{number:int}/card.md", page(card_md)),
        Route("/models/{key}/versions/{number:int}/evidence.html", page(evidence_download)),
        Route("/alerts/{alert_id:int}", page(alert)),
        Route("/alerts/{alert_id:int}/charts/{name}", page(alert_chart)),
        Route("/projects", page(portfolio)),
        Route("/projects/{key}", page(project)),
    ]
    if catalog is not None:
        routes.append(Route("/catalog", page(search)))
    return SecurityHeaders(Starlette(routes=routes))


def _trade(request: Request, cookie: tuple[str, int], secure: bool) -> Response:
    """Swap a link for a session cookie, and reload the page without the token in its address."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
    response = RedirectResponse(request.url.path + (f"?{urlencode(kept)}" if kept else ""), status_code=303)
    value, max_age = cookie
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, httponly=True, secure=secure, samesite="lax")
    return response


def _wrong_user(owner: pages.Viewer | str, current: pages.Viewer | str) -> str:
    def named(who: pages.Viewer | str) -> str:
        return who.name if isinstance(who, pages.Viewer) else who

    return (f"This link was made for {named(owner)}, and this browser is signed in as {named(current)}. "
            "Links work only for the person they were sent to.")


def _names(names: dict[str, str], viewer: pages.Viewer) -> Callable[[str], str]:
    known = {**names, viewer.slack_id: viewer.name, "flywheel": "Flywheel"}
    return lambda slack_id: known.get(slack_id, slack_id or "nobody")


def _asset_page(asset) -> str | None:
    """The dashboard page of a catalog asset the registry holds."""
    kind = str(getattr(asset.kind, "value", asset.kind))
    if kind == "project" and asset.project_key:
        return f"/projects/{asset.project_key}"
    if kind == "model_version" and asset.model_key and asset.version_number is not None:
        return f"/models/{asset.model_key}/versions/{asset.version_number}/card"
    return f"/models/{asset.model_key}" if asset.model_key else None


def _catalog_search():
    """store.catalog.search when the catalog exists in this build; the page is left out otherwise."""
    try:
        from store import catalog
    except ImportError:
        return None
    return getattr(catalog, "search", None)
