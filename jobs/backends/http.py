"""One HTTP call to a team's system, with retries for what is worth retrying and messages fit for people.

Connection failures, timeouts, 429 and 5xx are retried with exponential backoff (honouring Retry-After);
other 4xx answers fail at once. Error messages name the system and what it answered, never a header,
token or secret, and show URLs without credentials or query strings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

from store.errors import FlywheelError

TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 60.0
EXCERPT_CHARS = 200


class BackendError(FlywheelError):
    """A backend call failed; the message is safe to show in Slack."""


@dataclass(frozen=True)
class HttpPolicy:
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_settings(cls, settings) -> HttpPolicy:
        return cls(timeout=settings.backend_timeout, attempts=settings.backend_attempts,
                   backoff=settings.backend_backoff)


def shown_url(url: str) -> str:
    """The URL as people may see it: no user:password, no query string, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text


def _excerpt(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text
    else:
        found = next((body[k] for k in ("message", "detail", "error", "title")
                      if isinstance(body, dict) and isinstance(body.get(k), str)), None)
        text = found if found is not None else json.dumps(body)
    text = " ".join(text.split())
    if not text:
        return ""
    return f": {text[:EXCERPT_CHARS]}{'...' if len(text) > EXCERPT_CHARS else ''}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER_SECONDS)
    except (KeyError, ValueError):
        return None


def send(what: str, url: str, *, content: bytes, headers: dict[str, str], policy: HttpPolicy,
         secrets: Iterable[str] = (), sign: Callable[[bytes], dict[str, str]] | None = None,
         auth: httpx.Auth | None = None, also_fine: Collection[int] = (),
         hints: dict[int, str] | None = None) -> httpx.Response:
    """POST `content` to `url`; return the answer or raise BackendError saying what went wrong.

    `what` names the system in messages ("The retrain webhook at https://..."). `sign` is called before
    each attempt so a retry carries a fresh timestamp. Statuses in `also_fine` count as success (Airflow
    answers 409 when the run already exists: a repeat of the same request).
    """
    secrets = [s for s in secrets if s]
    problem = "was not tried"
    with httpx.Client(timeout=policy.timeout, follow_redirects=False) as client:
        for attempt in range(1, policy.attempts + 1):
            wait = policy.backoff * 2 ** (attempt - 1)
            try:
                response = client.post(url, content=content, auth=auth,
                                       headers={**headers, **(sign(content) if sign else {})})
            except httpx.TimeoutException:
                problem = f"did not answer within {policy.timeout:g} seconds"
            except httpx.TransportError as exc:
                problem = f"could not be reached ({exc.__class__.__name__}: {exc})"
            else:
                if response.is_success or response.status_code in also_fine:
                    return response
                problem = f"answered {response.status_code} {response.reason_phrase}{_excerpt(response)}"
                hint = (hints or {}).get(response.status_code)
                if hint:
                    problem = f"{problem}. {hint}"
                if response.status_code not in TRANSIENT:
                    raise BackendError(scrub(f"{what} {problem}", secrets))
                wait = _retry_after(response) or wait
            if attempt < policy.attempts:
                policy.sleep(wait)
    tries = f" ({policy.attempts} attempts)" if policy.attempts > 1 else ""
    raise BackendError(scrub(f"{what} {problem}{tries}", secrets))
