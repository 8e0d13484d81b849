"""Signed links and sessions: who may open a dashboard page, without a login of its own.

A link is `PAGE?t=USER.EXPIRY.MAC`, where USER is the Slack user, with `~TEAM` when the link was made for a
request from a Slack workspace (an OAuth install serves several: the pages then show that workspace's
projects only, see store.authority), and MAC is HMAC-SHA256 under FLYWHEEL_SECRET_KEY of the Slack user,
the page's path and the expiry. It opens that page only, for that user only, until it expires. The first
visit trades it for a session cookie (same secret, its own purpose label) and redirects to the bare URL,
so the token leaves the address bar and the history. The session opens, for SESSION_HOURS, the pages of
the project the link was about (a later link to another project adds that one); a link to a page across
projects (the portfolio, the index, the catalog) opens every project the person holds a role on. What a
page shows is still cut to the person's roles on its project.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bot.blocks.dates import when_text
from bot.config import Settings
from store.errors import FlywheelError

MIN_SECRET_CHARS = 32
SESSION_HOURS = 12
SESSION_COOKIE = "flywheel_session"
TOKEN_PARAM = "t"
_LINK, _SESSION = "flywheel-link", "flywheel-session"


class DashboardSetupError(FlywheelError):
    pass


class Refusal(enum.StrEnum):
    missing = "missing"
    forged = "forged"
    expired = "expired"
    wrong_user = "wrong_user"


class LinkRefused(FlywheelError):
    def __init__(self, reason: Refusal, message: str):
        super().__init__(message)
        self.reason = reason


def secret_of(settings: Settings) -> bytes:
    """The signing key, or a refusal that says how to set one."""
    key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not key:
        raise DashboardSetupError(
            "can't serve or link dashboard pages: FLYWHEEL_SECRET_KEY is not set. Set it to a long random "
            "value, e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
    if len(key) < MIN_SECRET_CHARS:
        raise DashboardSetupError(f"FLYWHEEL_SECRET_KEY is {len(key)} characters; use at least "
                                  f"{MIN_SECRET_CHARS} random ones.")
    return key.encode()


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _split(value: str) -> tuple[str, int, str] | None:
    user, _, rest = value.partition(".")
    expiry, _, mac = rest.partition(".")
    if not (user and expiry.isascii() and expiry.isdigit() and len(expiry) <= 12 and mac and mac.isascii()):
        return None  # compare_digest refuses non-ASCII text, and a longer expiry is no date
    return user, int(expiry), mac


_TEAM_MARK = "~"


def principal(slack_id: str, team: str | None) -> str:
    """Who a link or a session is for: the Slack user, and their workspace when they asked from one."""
    return f"{slack_id}{_TEAM_MARK}{team}" if team else slack_id


def person_of(who: str) -> tuple[str, str | None]:
    """The Slack user and workspace (None: none) of a link's or a session's principal."""
    slack_id, _, team = who.partition(_TEAM_MARK)
    return slack_id, team or None


ALL_PROJECTS = "*"
MAX_SCOPED_PROJECTS = 40  # beyond this a cookie would grow past what browsers keep: the session opens all


@dataclass(frozen=True)
class Session:
    slack_id: str  # the principal the link was made for: the Slack user, and workspace when any (`person_of`)
    expires: datetime
    projects: frozenset[str] | None  # project keys whose pages it opens; None: all the person's projects

    def opens(self, project_key: str | None) -> bool:
        return project_key is None or self.projects is None or project_key in self.projects

    def widened(self, project_key: str | None) -> frozenset[str] | None:
        """Its scope with one more link's added (None for a link to a page across projects)."""
        if project_key is None or self.projects is None:
            return None
        return self.projects | {project_key}


def _scope_text(projects: frozenset[str] | None) -> str:
    if projects is None or len(projects) > MAX_SCOPED_PROJECTS:
        return ALL_PROJECTS
    return base64.urlsafe_b64encode("\n".join(sorted(projects)).encode()).rstrip(b"=").decode()


def _scope_of(text: str) -> frozenset[str] | None:
    if text == ALL_PROJECTS:
        return None
    return frozenset(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split("\n"))


class Signer:
    def __init__(self, settings: Settings):
        self._key = secret_of(settings)
        self.public_url = settings.public_url.rstrip("/")
        self.link_lifetime = timedelta(days=settings.link_days)
        self.secure = self.public_url.startswith("https://")

    def page_path(self, url: str) -> str:
        """'/alerts/12' for an absolute dashboard URL or a path; a URL elsewhere is refused."""
        if url.startswith(("http://", "https://")):
            if not (url == self.public_url or url.startswith(self.public_url + "/")):
                raise LinkRefused(Refusal.forged, f"{url} is not a page of this Flywheel ({self.public_url}).")
            url = url[len(self.public_url):]
        return "/" + urlsplit(url).path.strip("/")

    def link(self, url: str, *, slack_id: str, now: datetime, team: str | None = None) -> tuple[str, datetime]:
        """The page's URL signed for one person (of one workspace, when `team`), and when it stops working."""
        path = self.page_path(url)
        expires = now + self.link_lifetime
        who = principal(slack_id, team)
        token = f"{who}.{_epoch(expires)}.{_mac(self._key, _LINK, who, path, str(_epoch(expires)))}"
        query = urlsplit(url).query
        return f"{self.public_url}{path}?{query + '&' if query else ''}{TOKEN_PARAM}={token}", expires

    def check_link(self, token: str, *, path: str, now: datetime) -> str:
        """Whom a link was made for (`principal`: see `person_of`), or LinkRefused saying why it can't be used."""
        parts = _split(token)
        if parts is None:
            raise LinkRefused(Refusal.forged, "This link is damaged: part of it is missing.")
        user, expiry, mac = parts
        if not hmac.compare_digest(mac, _mac(self._key, _LINK, user, self.page_path(path), str(expiry))):
            raise LinkRefused(Refusal.forged, "This link isn't valid for this page: it was changed, or it "
                                              "was made by another Flywheel.")
        if _epoch(now) >= expiry:
            raise LinkRefused(Refusal.expired, f"This link expired {when_text(_moment(expiry))}. Ask Flywheel for a new one: click the button again in Slack, or run `flywheel dashboard`.")
        return user

    def session_cookie(self, slack_id: str, *, now: datetime,
                       projects: frozenset[str] | None) -> tuple[str, int]:
        """A cookie value for this person and the projects it opens, and its lifetime in seconds."""
        expiry = _epoch(now + timedelta(hours=SESSION_HOURS))
        scope = _scope_text(projects)
        mac = _mac(self._key, _SESSION, slack_id, str(expiry), scope)
        return f"{slack_id}.{expiry}.{scope}.{mac}", SESSION_HOURS * 3600

    def check_session(self, value: str | None, *, now: datetime) -> Session | None:
        """The signed-in person, or None for a missing, altered or expired cookie."""
        user, _, rest = (value or "").partition(".")
        expiry, _, rest = rest.partition(".")
        scope, _, mac = rest.partition(".")
        if not (user and expiry.isdigit() and scope and mac):
            return None
        if not hmac.compare_digest(mac, _mac(self._key, _SESSION, user, expiry, scope)) or \
                _epoch(now) >= int(expiry):
            return None
        try:
            projects = _scope_of(scope)
        except (ValueError, UnicodeDecodeError):
            return None
        return Session(user, _moment(int(expiry)), projects)


def describe(path: str) -> str:
    """What a page is, in words: 'alert 12', 'fraud-detector v2 model card'."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["alerts"] and len(parts) >= 2:
        return f"alert {parts[1]}"
    if parts[:1] == ["models"] and len(parts) >= 4:
        return f"{parts[1]} v{parts[3]}" + (" model card" if parts[4:5] in (["card"], ["card.md"]) else "")
    if parts[:1] == ["models"] and len(parts) >= 2:
        return parts[1]
    if parts[:1] == ["projects"]:
        return f"project {parts[1]}" if len(parts) >= 2 else "your portfolio"
    if parts[:1] == ["catalog"]:
        return "the catalog"
    return "the Flywheel dashboard"


def model_of(path: str) -> str | None:
    """The model a page is about, to name in the way to get a fresh link."""
    parts = [p for p in path.strip("/").split("/") if p]
    return parts[1] if parts[:1] == ["models"] and len(parts) >= 2 else None
