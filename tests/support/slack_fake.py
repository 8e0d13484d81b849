"""A local Slack for tests: a real HTTP server speaking the part of the Web API Flywheel uses, and
helpers that build requests to the app signed exactly as Slack signs them.

    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.api_url)

Every call is recorded (`calls`, `calls_to`), every Block Kit payload is parsed back with slack_sdk's
models (refusals land in `invalid`), and `fail` injects rate limits, server errors, late answers and
Slack error codes.

Socket Mode too: `apps.connections.open` with the app-level token (`app_token`) hands out a one-use
WebSocket URL served by `socket_mode`, which says hello, carries envelopes to the app and collects
its acks:

    ack = fake.socket_mode.request("slash_commands", command_payload("/flywheel", "help", ...))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import mimetypes
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.support.waiting import wait_until

TEAM_ID = "T0TEST"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0FLYWHEEL"
JSON_FIELDS = ("blocks", "view", "attachments", "files", "metadata")  # JSON strings in form bodies


@dataclass(frozen=True)
class Call:
    method: str  # a Web API method, "upload" (file bytes) or "response" (a response URL)
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    peer: tuple[str, int] | None = None  # the client's address and port: one per connection it opened


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    alt_txt: str | None = None
    content: bytes | None = None  # None until the bytes are POSTed to the upload URL
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class _Failure:
    method: str
    status: int
    retry_after: int | None
    error: str | None
    delay: float
    times: int


@dataclass
class _Answer:
    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    def __init__(self, *, token: str = "xoxb-test", users: dict[str, dict[str, Any]] | None = None,
                 channels: dict[str, dict[str, Any]] | None = None, app_token: str = "xapp-1-A0FLYWHEEL-1-test"):
        self.token = token
        self.app_token = app_token  # the app-level token apps.connections.open accepts
        self.socket_mode = SocketModeServer()
        self.users = dict(users or {})
        self.channels = dict(channels or {})  # unknown ids answer as a public channel named after the id
        self.calls: list[Call] = []
        self.invalid: list[tuple[str, str]] = []  # (method, why Slack would refuse the payload)
        self.warnings: list[str] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.ephemeral: list[dict[str, Any]] = []
        self.unfurled: list[dict[str, Any]] = []  # chat.unfurl calls Slack accepted: channel/ts or unfurl_id, unfurls
        self.views: dict[str, dict[str, Any]] = {}  # view id -> view, modals and home tabs alike
        self.home: dict[str, dict[str, Any]] = {}  # user id -> published home view
        self.uploads: dict[str, Upload] = {}
        self.responses: dict[str, list[dict[str, Any]]] = {}  # response URL -> bodies POSTed to it
        self._failures: list[_Failure] = []
        # OAuth v2 (oauth.v2.access): the app's credentials, the codes Slack would hand the browser, and the
        # bot tokens issued so far (token -> team id), which every other method accepts like `token`.
        self.client_id, self.client_secret = "1111.2222", "client-secret"
        self.codes: dict[str, dict[str, str]] = {}
        self.installed: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> team id
        self.token_lifetime: int | None = None  # seconds; set, tokens expire and come with a refresh token
        self._late: dict[str, float] = {}  # method -> seconds its answers wait after the call took effect
        self.holding: list[dict[str, Any]] = []  # params of calls done but not yet answered (see answer_late)
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._base = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        host, port = self._server.server_address[:2]
        self._base = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-slack",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.socket_mode.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started; use it as a context manager or call start()")
        return self._base

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # -- test controls -----------------------------------------------------------------------

    def response_url(self) -> str:
        url = f"{self.base_url}/response/{next(self._ids)}"
        self.responses[url] = []
        return url

    def fail(self, method: str, *, status: int = 200, retry_after: int | None = None, error: str | None = None,
             delay: float = 0.0, times: int = 1) -> None:
        """Answer the next `times` calls of `method` badly: a status (429 gets Retry-After and
        "ratelimited"), `ok: false` with `error`, or late by `delay` seconds and otherwise normally.
        `method` is a Web API method, "upload" (the bytes of files_upload_v2) or "response" (response URLs)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.append(_Failure(method, status, retry_after, error, delay, times))

    def answer_late(self, method: str, seconds: float) -> None:
        """Every call of `method` takes effect at once (a message is posted) and is answered `seconds`
        later: a client killed meanwhile never hears that it succeeded. `holding` lists those waiting."""
        with self._lock:
            self._late[method] = seconds

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return [m for (ch, _), m in self.messages.items() if ch == channel and m.get("thread_ts") == ts]

    # -- request handling (called from the server's threads) ---------------------------------

    def _handle(self, path: str, params: dict[str, Any], headers: dict[str, str], raw: bytes,
                peer: tuple[str, int] | None = None) -> _Answer:
        kind, _, name = path.strip("/").partition("/")
        method = {"api": name, "upload": "upload", "response": "response"}.get(kind, path)
        with self._lock:
            self.calls.append(Call(method, params, headers, time.time(), peer))
            failure = self._take_failure(method)
        if failure and failure.delay:
            time.sleep(failure.delay)
        if failure and failure.status != 200:
            error = "ratelimited" if failure.status == 429 else failure.error or "fatal_error"
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return _Answer(failure.status, {"ok": False, "error": error}, extra)
        if failure and failure.error:
            return _Answer(body={"ok": False, "error": failure.error})
        with self._lock:
            if kind == "upload":
                return self._upload(name, raw)
            if kind == "response":
                return self._respond(f"{self._base}{path}", params)
            if kind != "api":
                return _Answer(404, "not found")
            if name == "apps.connections.open":  # the one method that takes the app-level token
                return _Answer(body=self._open_connection(_token_of(params, headers)))
            if name == "oauth.v2.access":  # the one method that takes the app's client id and secret
                return _Answer(body=self._oauth_v2_access(params, headers))
            if not self._authorized(params, headers):
                return _Answer(body={"ok": False, "error": "invalid_auth"})
            handler = getattr(self, "_api_" + name.replace(".", "_"), None)
            if handler is None:
                return _Answer(404, {"ok": False, "error": "unknown_method"})
            answer = _Answer(body=handler(params))
            late = self._late.get(method, 0.0)
            if late:
                self.holding.append(params)
        if late:
            time.sleep(late)
            with self._lock:
                self.holding.remove(params)
        return answer

    def _take_failure(self, method: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.times > 0:
                failure.times -= 1
                return failure
        return None

    def _authorized(self, params: dict[str, Any], headers: dict[str, str]) -> bool:
        bearer = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        given = bearer.removeprefix("Bearer ").strip() if bearer else params.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode()) or given in self.installed

    def _ts(self) -> str:
        # Slack's ts is the Unix time of the message, unique in its channel: `oldest` filters on it.
        self._last_ts = max(round(time.time(), 6), round(self._last_ts + 0.000001, 6))
        return f"{self._last_ts:.6f}"

    def _refused(self, method: str, problem: str | None) -> dict[str, Any] | None:
        if problem is None:
            return None
        self.invalid.append((method, problem))
        return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": [problem]}}

    def _message_problem(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        if params.get("blocks") and not params.get("text") and method == "chat.postMessage":
            self.warnings.append(f"{method} to {params['channel']} has blocks but no text fallback")
        return self._refused(method, blocks_problem(params.get("blocks")))

    # -- Web API methods ---------------------------------------------------------------------

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://flywheel-test.slack.com/", "team": "Flywheel Test", "user": "flywheel",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if refused := self._message_problem("chat.postMessage", params):
            return refused
        ts = self._ts()
        if params.get("metadata") is not None and metadata_problem(params["metadata"]):
            return self._refused("chat.postMessage", metadata_problem(params["metadata"]))
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                   **{k: params[k] for k in ("text", "blocks", "attachments", "thread_ts", "metadata")
                      if params.get(k)}}
        self.messages[(params["channel"], ts)] = message
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": _shown(message, False)}

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages newest first (a thread's replies are not in the history), `oldest` and
        `latest` exclusive, metadata only with `include_all_metadata`; pages through `cursor`."""
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        found = [m for (ch, ts), m in self.messages.items() if ch == channel and
                 (not m.get("thread_ts") or m["thread_ts"] == ts) and _within(ts, params)]
        return _page(sorted(found, key=lambda m: float(m["ts"]), reverse=True), params)

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """The thread's parent then its replies, oldest first; as conversations.history otherwise."""
        channel, parent = params.get("channel"), params.get("ts", "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if (channel, parent) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        replies = [m for (ch, ts), m in self.messages.items() if ch == channel and m.get("thread_ts") == parent
                   and ts != parent and _within(ts, params)]
        return _page([self.messages[(channel, parent)]] + sorted(replies, key=lambda m: float(m["ts"])), params)

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if refused := self._message_problem("chat.update", params):
            return refused
        message = self.messages.get((params["channel"], params.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update({k: params[k] for k in ("text", "blocks", "attachments") if k in params},
                       edited={"user": BOT_USER_ID, "ts": self._ts()})
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": message.get("text", ""),
                "message": message}

    def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if refused := self._message_problem("chat.postEphemeral", params):
            return refused
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        ts = self._ts()
        self.ephemeral.append({**params, "message_ts": ts})
        return {"ok": True, "message_ts": ts}

    def _api_chat_unfurl(self, params: dict[str, Any]) -> dict[str, Any]:
        """Accepted for a posted message (channel and ts) or one being written (unfurl_id and source), with
        each link's blocks valid; its message is not looked up (links posted by people are not in the fake)."""
        if not ((params.get("channel") and params.get("ts")) or (params.get("unfurl_id") and params.get("source"))):
            return {"ok": False, "error": "invalid_arguments"}
        unfurls = params.get("unfurls")
        if isinstance(unfurls, str):
            unfurls = json.loads(unfurls)
        if not isinstance(unfurls, dict) or not unfurls:
            return {"ok": False, "error": "invalid_unfurls"}
        for url, unfurl in unfurls.items():
            if refused := self._refused("chat.unfurl", blocks_problem((unfurl or {}).get("blocks"))):
                return refused
        self.unfurled.append({**params, "unfurls": unfurls})
        return {"ok": True}

    def _api_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.messages.pop((params.get("channel", ""), params.get("ts", "")), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": params["channel"], "ts": params["ts"]}

    def _api_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel", ""), params.get("message_ts", "")
        message = self.messages.get((channel, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        thread = f"?thread_ts={message['thread_ts']}&cid={channel}" if message.get("thread_ts") else ""
        return {"ok": True, "channel": channel,
                "permalink": f"https://flywheel-test.slack.com/archives/{channel}/p{ts.replace('.', '')}{thread}"}

    def _store_view(self, method: str, view: Any, view_id: str | None = None) -> dict[str, Any]:
        if refused := self._refused(method, view_problem(view)):
            return refused
        view_id = view_id or f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID,
                  "hash": f"{time.time():.6f}.{view_id}", "state": {"values": {}},
                  "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", "")}
        self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return self._store_view("views.open", params.get("view"))

    def _api_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id") or next(
            (i for i, v in self.views.items() if params.get("external_id") and v.get("external_id") ==
             params["external_id"]), None)
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        return self._store_view("views.update", params.get("view"), view_id)

    def _api_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        answer = self._store_view("views.publish", params.get("view"))
        if answer["ok"]:
            self.home[params["user_id"]] = answer["view"]
        return answer

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = Upload(file_id, params["filename"], int(params["length"]), params.get("alt_txt"))
        return {"ok": True, "upload_url": f"{self._base}/upload/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, data: bytes) -> _Answer:
        upload = self.uploads.get(file_id)
        if upload is None:
            return _Answer(404, "no such upload")
        upload.content = data
        return _Answer(body=f"OK - {len(data)}")

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("files")
        if not isinstance(wanted, list) or not wanted:
            return {"ok": False, "error": "invalid_arguments"}
        uploads = [self.uploads.get(f.get("id", "")) for f in wanted]
        if any(u is None or u.content is None for u in uploads):
            return {"ok": False, "error": "file_not_found"}
        files = []
        for upload, asked in zip(uploads, wanted):
            upload.title = asked.get("title") or upload.filename
            upload.channel, upload.thread_ts = params.get("channel_id"), params.get("thread_ts")
            upload.initial_comment, upload.completed = params.get("initial_comment"), True
            mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
            files.append({"id": upload.file_id, "name": upload.filename, "title": upload.title, "mimetype": mimetype,
                          "filetype": upload.filename.rpartition(".")[2], "size": len(upload.content or b""),
                          "url_private": f"{self._base}/files/{upload.file_id}/{upload.filename}",
                          "permalink": f"https://flywheel-test.slack.com/files/{BOT_USER_ID}/{upload.file_id}"})
        return {"ok": True, "files": files}

    def _api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(params.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": params["user"], "team_id": TEAM_ID, **user}}

    def _api_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        default = {"name": channel.lower(), "is_channel": True, "is_private": False, "is_member": True}
        return {"ok": True, "channel": {"id": channel, **self.channels.get(channel, default)}}

    def _respond(self, url: str, params: dict[str, Any]) -> _Answer:
        if url not in self.responses:
            return _Answer(404, "no_service")
        if self._refused("response", blocks_problem(params.get("blocks"))):
            return _Answer(400, "invalid_blocks")
        self.responses[url].append(params)
        return _Answer(body="ok")

    def authorize_code(self, team_id: str, *, team_name: str = "", user_id: str = "U0INSTALLER") -> str:
        """The code Slack puts in the redirect after someone of `team_id` approves the install."""
        code = f"code-{team_id}-{next(self._ids)}"
        self.codes[code] = {"team_id": team_id, "team_name": team_name or team_id, "user_id": user_id}
        return code

    def _oauth_v2_access(self, params: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        # Slack's answer (api.slack.com/methods/oauth.v2.access): the bot token at the top level, the team,
        # the installing user under authed_user; with token rotation, expires_in and a refresh_token.
        basic = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic.removeprefix("Basic ")).decode().partition(":")
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        if client_id != self.client_id or not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            return {"ok": False, "error": "invalid_client_id" if client_id != self.client_id else "bad_client_secret"}
        if params.get("grant_type") == "refresh_token":
            team_id = self.refresh_tokens.pop(params.get("refresh_token", ""), None)
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            grant = {"team_id": team_id, "team_name": team_id, "user_id": "U0INSTALLER"}
        else:
            grant = self.codes.pop(params.get("code", ""), None)
            if grant is None:
                return {"ok": False, "error": "invalid_code"}
        token = f"xoxb-{grant['team_id']}-{next(self._ids)}"
        self.installed[token] = grant["team_id"]
        answer: dict[str, Any] = {
            "ok": True, "access_token": token, "token_type": "bot", "scope": "chat:write,commands",
            "bot_user_id": BOT_USER_ID, "app_id": APP_ID, "team": {"id": grant["team_id"], "name": grant["team_name"]},
            "enterprise": None, "is_enterprise_install": False,
            "authed_user": {"id": grant["user_id"], "scope": "", "token_type": "user"}}
        if self.token_lifetime is not None:
            refresh = f"xoxe-1-{grant['team_id']}-{next(self._ids)}"
            self.refresh_tokens[refresh] = grant["team_id"]
            answer |= {"expires_in": self.token_lifetime, "refresh_token": refresh}
        return answer

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working."""
        for token in [t for t, team in self.installed.items() if team == team_id]:
            del self.installed[token]

    def _open_connection(self, token: str) -> dict[str, Any]:
        # Slack answers apps.connections.open only for an app-level token (xapp-) of the app.
        if not token:
            return {"ok": False, "error": "not_authed"}
        if not token.startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if not hmac.compare_digest(token.encode(), self.app_token.encode()):
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.socket_mode.new_url()}


def _within(ts: str, params: dict[str, Any]) -> bool:
    inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
    oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")
    at = float(ts)
    return (oldest <= at if inclusive else oldest < at) and (at <= latest if inclusive else at < latest)


def _shown(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    return message if with_metadata else {k: v for k, v in message.items() if k != "metadata"}


def _page(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    start, limit = int(params.get("cursor") or 0), min(int(params.get("limit") or 100), 999)
    with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
    page = [_shown(m, with_metadata) for m in messages[start:start + limit]]
    more = start + limit < len(messages)
    return {"ok": True, "messages": page, "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def metadata_problem(raw: Any) -> str | None:
    """Why Slack would refuse a message's `metadata`: it needs an event_type and an event_payload object."""
    if not isinstance(raw, dict):
        return f"metadata must be an object, got {type(raw).__name__}"
    if not isinstance(raw.get("event_type"), str) or not raw["event_type"]:
        return "metadata needs an event_type"
    if not isinstance(raw.get("event_payload"), dict):
        return "metadata needs an event_payload object"
    return None


def _token_of(params: dict[str, Any], headers: dict[str, str]) -> str:
    bearer = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    return bearer.removeprefix("Bearer ").strip() if bearer else params.get("token", "")


def blocks_problem(raw: Any) -> str | None:
    """Why Slack would refuse these blocks, or None when slack_sdk's models accept every one."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        return f"blocks must be a list, got {type(raw).__name__}"
    if len(raw) > 50:
        return f"{len(raw)} blocks, Slack allows 50 in a message"
    for index, block in enumerate(raw):
        try:
            parsed = Block.parse(block)
            if parsed is None:
                return f"block {index} has an unknown type: {block!r:.200}"
            parsed.validate_json()
        except Exception as exc:  # any failure to build or validate the model is Slack's invalid_blocks
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            return f"block {index} ({kind}): {exc}"
    return None


def view_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return f"view must be an object, got {type(raw).__name__}"
    try:
        View(**raw).validate_json()
    except Exception as exc:  # as above: a view slack_sdk cannot build or validate is refused
        return f"view: {exc}"
    return blocks_problem(raw.get("blocks"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up before a late answer; that is the point of `delay`.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle's algorithm a kept-alive client would wait
        # for its delayed ACK (40 ms) before the body, a stall Slack's servers don't have.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def do_GET(self) -> None:
            self._serve(b"")

        def _serve(self, raw: bytes) -> None:
            url = urlsplit(self.path)
            try:
                uploading = url.path.startswith("/upload/")  # raw bytes, whatever the Content-Type says
                params = {} if uploading else _parse(raw, self.headers.get("Content-Type", ""), url.query)
                answer = fake._handle(url.path, params, dict(self.headers.items()), raw, self.client_address[:2])
            except Exception as exc:  # a bug in the fake: answer it loudly rather than drop the connection
                traceback.print_exc()
                answer = _Answer(500, {"ok": False, "error": "fake_slack_bug", "detail": repr(exc)})
            is_json = isinstance(answer.body, dict)
            payload = (json.dumps(answer.body) if is_json else answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8" if is_json
                             else "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _parse(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if content_type.startswith("application/json"):
        params.update(json.loads(raw or b"{}"))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    for key in JSON_FIELDS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                pass  # left a string, which the payload checks then refuse by name
    return params


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


# -- requests to the app, as Slack sends them ---------------------------------------------------

def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": ts}


def _user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


_TRIGGERS = itertools.count(1)


def new_trigger_id() -> str:
    """A fresh trigger_id: Slack gives every command and click its own, and a retry carries the same one."""
    return f"{time.time():.0f}.{next(_TRIGGERS)}.{uuid.uuid4().hex[:10]}"


def command_body(command: str, text: str, *, user_id: str, channel_id: str = "C0ML", response_url: str,
                 trigger_id: str | None = None) -> bytes:
    trigger_id = trigger_id or new_trigger_id()
    return urlencode({
        "token": "verification_token", "team_id": TEAM_ID, "team_domain": "flywheel-test", "channel_id": channel_id,
        "channel_name": channel_id.lower(), "user_id": user_id, "user_name": user_id.lower(), "command": command,
        "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id,
    }).encode()


def action_body(payload: dict[str, Any]) -> bytes:
    return b"payload=" + quote(json.dumps(payload), safe="").encode()


def _element(action_id: str, blocks: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        for element in block.get("elements", []) + [block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return block.get("block_id", "actions"), element
    return "actions", {"type": "button"}


def block_action(action_id: str, value: str, *, user_id: str, channel_id: str, message_ts: str, response_url: str,
                 message_blocks: list[dict[str, Any]] | None = None, ephemeral: bool = False,
                 action_ts: str | None = None) -> dict[str, Any]:
    """A click on `action_id` in a posted message; its block id and type come from the message's blocks.
    On an `ephemeral` message Slack sends no `message` (../shared/slack-payloads/block_actions.json)."""
    blocks = message_blocks or []
    block_id, element = _element(action_id, blocks)
    action: dict[str, Any] = {"type": element["type"], "action_id": action_id, "block_id": block_id,
                              "action_ts": action_ts or f"{time.time():.6f}"}
    if element["type"] == "static_select":
        chosen = next((o for o in element.get("options", []) if o.get("value") == value), None)
        action["selected_option"] = chosen or {"text": {"type": "plain_text", "text": value}, "value": value}
    else:
        action.update(value=value, text=element.get("text") or {"type": "plain_text", "text": action_id})
    payload = {
        "type": "block_actions", "user": _user(user_id), "api_app_id": APP_ID, "token": "verification_token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                      "is_ephemeral": ephemeral},
        "trigger_id": f"{message_ts}.trigger", "team": {"id": TEAM_ID, "domain": "flywheel-test"},
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": message_ts, "text": "",
                    "blocks": blocks},
        "state": {"values": {}}, "response_url": response_url, "actions": [action],
    }
    if ephemeral:
        del payload["message"]
    return payload


def message_action(callback_id: str, message: dict[str, Any], *, user_id: str, channel_id: str,
                   response_url: str) -> dict[str, Any]:
    """A message shortcut chosen on `message` (as conversations.history shows it: ts, text, blocks...)."""
    return {
        "type": "message_action", "token": "verification_token", "action_ts": f"{time.time():.6f}",
        "team": {"id": TEAM_ID, "domain": "flywheel-test"}, "user": _user(user_id),
        "channel": {"id": channel_id, "name": channel_id.lower()}, "is_enterprise_install": False,
        "enterprise": None, "callback_id": callback_id, "trigger_id": f"{message['ts']}.trigger",
        "response_url": response_url, "message_ts": message["ts"], "message": message,
    }


def view_submission(callback_id: str, values: dict[str, dict[str, Any]], *, user_id: str,
                    private_metadata: str = "") -> dict[str, Any]:
    """A modal submitted with `values` ({block_id: {action_id: state}}); a plain string state stands
    for what was typed into a plain_text_input."""
    state = {block: {action: {"type": "plain_text_input", "value": v} if isinstance(v, str) else v
                     for action, v in actions.items()} for block, actions in values.items()}
    return {
        "type": "view_submission", "team": {"id": TEAM_ID, "domain": "flywheel-test"}, "user": _user(user_id),
        "api_app_id": APP_ID, "token": "verification_token", "trigger_id": "1700000000.222.trigger",
        "view": {"id": "V0SUBMIT", "team_id": TEAM_ID, "type": "modal", "blocks": [],
                 "private_metadata": private_metadata, "callback_id": callback_id, "state": {"values": state},
                 "hash": "1700000000.hash", "title": {"type": "plain_text", "text": "Flywheel"},
                 "clear_on_close": False, "notify_on_close": False, "previous_view_id": None,
                 "root_view_id": "V0SUBMIT", "app_id": APP_ID, "external_id": "", "app_installed_team_id": TEAM_ID,
                 "bot_id": BOT_ID},
        "response_urls": [],
    }


def event_body(event: dict[str, Any]) -> bytes:
    return json.dumps({
        "token": "verification_token", "team_id": TEAM_ID, "api_app_id": APP_ID, "type": "event_callback",
        "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }).encode()


# -- Socket Mode ------------------------------------------------------------------------------------

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")


@dataclass
class SocketLink:
    """One WebSocket connection the app opened with a URL from apps.connections.open."""
    number: int
    ticket: str
    connection: Any  # websockets.sync.server.ServerConnection
    received: list[dict[str, Any]] = field(default_factory=list)  # the app's frames, in order
    open: bool = True


class SocketModeServer:
    """Slack's end of Socket Mode (https://docs.slack.dev/apis/events-api/using-socket-mode) on the
    `websockets` library's threaded server, started by the first apps.connections.open.

    Each URL works once. On connect the app gets `hello`; `send` pushes an envelope to the newest
    open connection, `wait_for_ack` returns the app's `{"envelope_id", "payload"?}`; `disconnect`
    asks the app to reconnect as Slack does before it refreshes a connection, `close` drops it."""

    def __init__(self) -> None:
        self.links: list[SocketLink] = []
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> the app's ack
        self.refused: list[str] = []  # paths presented with an unknown or already used ticket
        self._tickets: set[str] = set()
        self._changed = threading.Condition()
        self._server: Any = None
        self._base = ""

    def new_url(self) -> str:
        if self._server is None:
            self._start()
        ticket = uuid.uuid4().hex
        with self._changed:
            self._tickets.add(ticket)
        return f"{self._base}/link/?ticket={ticket}&app_id={APP_ID}"

    def _start(self) -> None:
        from websockets.sync.server import serve  # imported here: only Socket Mode tests need it

        self._server = serve(self._serve, "127.0.0.1", 0, process_request=self._admit, compression=None,
                             close_timeout=1)
        host, port = self._server.socket.getsockname()[:2]
        self._base = f"ws://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, name="fake-slack-socket-mode", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self.close()
            self._server.shutdown()
            self._server = None

    # -- the app's side of the wire (server threads) -----------------------------------------

    def _admit(self, connection: Any, request: Any) -> Any:
        ticket = _ticket(request.path)
        with self._changed:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return None
            self.refused.append(request.path)
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")

    def _serve(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._changed:
            link = SocketLink(len(self.links) + 1, _ticket(connection.request.path), connection)
            live = 1 + sum(other.open for other in self.links)
        try:
            connection.send(json.dumps({
                "type": "hello", "num_connections": live, "connection_info": {"app_id": APP_ID},
                "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            }))
            with self._changed:
                self.links.append(link)
                self._changed.notify_all()
            for raw in connection:
                try:
                    frame = json.loads(raw)
                except (TypeError, ValueError):
                    frame = {"not_json": raw}
                with self._changed:
                    link.received.append(frame)
                    if isinstance(frame, dict) and isinstance(frame.get("envelope_id"), str):
                        self.acks[frame["envelope_id"]] = frame
                    self._changed.notify_all()
        except ConnectionClosed:
            pass  # the app hung up, as it does when it replaces a connection
        finally:
            with self._changed:
                link.open = False
                self._changed.notify_all()

    # -- test controls -----------------------------------------------------------------------

    def open_links(self) -> list[SocketLink]:
        with self._changed:
            return [link for link in self.links if link.open]

    def _wait(self, ready: Callable[[], Any], what: str, timeout: float) -> Any:
        return wait_until(ready, timeout, f"Socket Mode: {what}", changed=self._changed,
                          detail=lambda: f"{len(self.links)} connection(s) so far, refused {self.refused}")

    def wait_for_link(self, number: int = 1, *, timeout: float = 30) -> SocketLink:
        """The newest open connection, once the app has opened at least `number` in all."""
        def ready() -> SocketLink | None:
            live = [link for link in self.links if link.open]
            return live[-1] if len(self.links) >= number and live else None
        return self._wait(ready, f"the app to have had connection {number} open", timeout)

    def send(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool | None = None,
             envelope_id: str | None = None) -> str:
        """Push an envelope to the newest open connection; returns its envelope id."""
        if kind not in ENVELOPE_TYPES:
            raise ValueError(f"envelope type {kind!r} is not one of {ENVELOPE_TYPES}")
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()), "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api" if accepts_response_payload is None
            else accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        self.wait_for_link().connection.send(json.dumps(envelope))
        return envelope["envelope_id"]

    def wait_for_ack(self, envelope_id: str, *, timeout: float = 30) -> dict[str, Any]:
        return self._wait(lambda: self.acks.get(envelope_id), f"an ack for envelope {envelope_id}", timeout)

    def request(self, kind: str, payload: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Send an envelope and return the app's ack."""
        timeout = options.pop("timeout", 30)
        return self.wait_for_ack(self.send(kind, payload, **options), timeout=timeout)

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every open connection it is going away; the app should open a new one."""
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})
        for link in self.open_links():
            link.connection.send(message)

    def close(self, code: int = 1001, reason: str = "") -> None:
        """Close every open connection with a close frame, without warning the app first."""
        for link in self.open_links():
            link.connection.close(code, reason)


def _ticket(path: str) -> str:
    return dict(parse_qsl(urlsplit(path).query)).get("ticket", "")


def command_payload(command: str, text: str, *, user_id: str, channel_id: str = "C0ML", response_url: str,
                    trigger_id: str | None = None) -> dict[str, str]:
    """A slash command as a Socket Mode envelope carries it: the fields of `command_body` as JSON."""
    body = command_body(command, text, user_id=user_id, channel_id=channel_id, response_url=response_url,
                        trigger_id=trigger_id)
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def event_payload(event: dict[str, Any]) -> dict[str, Any]:
    """An Events API callback as a Socket Mode envelope carries it: the body of `event_body`."""
    return json.loads(event_body(event))
