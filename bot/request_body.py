"""Reading a request's body without trusting it: a declared length over the limit is refused before a byte
is read, and a chunked body (no length) is read only up to the limit."""

from __future__ import annotations

from starlette.requests import Request


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
