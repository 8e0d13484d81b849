"""Requests read without trusting them. A body: a declared length over the limit is refused before a byte is
read, and a chunked body (no length) is read only up to the limit. An address: a path or query string that
can't be ours is refused before any route sees it."""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class BodyRefused(Exception):
    """The body can't be read as a request: `status` is 400 (a length that is no number) or 413 (too big)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def declared_length(request: Request, limit: int) -> int | None:
    """Content-Length, checked: BodyRefused when it is no number or over `limit`; None when absent."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BodyRefused(400, "Content-Length is not a number of bytes.")
    if int(raw) > limit:
        raise BodyRefused(413, f"The body is over {limit:,} bytes.")
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyRefused otherwise."""
    declared_length(request, limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyRefused(413, f"The body is over {limit:,} bytes.")
    return bytes(received)


MAX_PATH = 2_000
MAX_QUERY = 4_000
MAX_DIGITS = 18  # a bigger number in a path is no id of Flywheel's, and would overflow the database's integers
_CONTROL = frozenset(chr(c) for c in range(32)) | {"\x7f"}


def address_problem(path: str, query: bytes) -> str | None:
    """Why a request's path or query string can't name a page or a parameter, or None: too long, a control
    character (a NUL reaches PostgreSQL as an error), or a number in the path too big to be an id."""
    if len(path) > MAX_PATH:
        return f"The path is over {MAX_PATH:,} characters."
    if len(query) > MAX_QUERY:
        return f"The query string is over {MAX_QUERY:,} characters."
    if not _CONTROL.isdisjoint(path):
        return "The path holds a control character."
    if b"%" in query or not _CONTROL.isdisjoint(query.decode("latin-1")):
        text = unquote_plus(query.decode("latin-1"), encoding="utf-8", errors="replace")
        if not _CONTROL.isdisjoint(text.replace("\t", " ")):
            return "The query string holds a control character."
    if any(len(part) > MAX_DIGITS and part.isdigit() for part in path.split("/")):
        return f"A number in the path is over {MAX_DIGITS} digits."
    return None


class AddressGuard:
    """ASGI middleware: a request whose address can't be one of ours is answered 400 before any route
    sees it (a few string checks per request)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := address_problem(scope.get("path", ""),
                                                                     scope.get("query_string", b""))):
            await PlainTextResponse(problem, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)
