"""Delivery to real Slack: persona messages with chat.postMessage, their charts uploaded into the
message's thread, thread replies and in-place updates. References are "CHANNEL:TS"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.web import SlackResponse

from bot.blocks.common import Message, validate_payload
from bot.config import Settings
from bot.metrics import CountingRateLimitHandler, CountingWebClient
from jobs.incidents import ChartRef
from store.errors import FlywheelError

TIMEOUT_SECONDS = 15


class DeliveryError(FlywheelError):
    """Slack refused a call or could not be reached. `ref` is set when the message itself was posted
    and only something after it (a chart upload) failed, so the caller must not post it again."""

    def __init__(self, message: str, *, ref: str | None = None, transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.ref = ref
        self.transient = transient  # worth trying again later: rate limits, 5xx, timeouts, no connection
        self.retry_after = retry_after  # what Slack asked for with a 429


def make_client(settings: Settings, *, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    if settings.slack_bot_token is None:
        raise DeliveryError("SLACK_BOT_TOKEN is not set, so Flywheel cannot post to Slack")
    return CountingWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url,
                             timeout=timeout, retry_handlers=[
                                 CountingRateLimitHandler(max_retry_count=3),  # sleeps for Retry-After
                                 ServerErrorRetryHandler(max_retry_count=2),
                                 # Refused or reset connections only; a read timeout is not retried, since
                                 # Slack may have posted the message already.
                                 ConnectionErrorRetryHandler(max_retry_count=2),
                             ])


class SlackDelivery:
    """The `Delivery` protocol over the Web API. With `public_charts` False, Slack cannot fetch chart
    URLs (a laptop, a private network), so image blocks of the message's charts are dropped and every
    chart is uploaded instead; with it True only charts without a URL are uploaded."""

    def __init__(self, client: WebClient, *, public_charts: bool = False):
        self.client = client
        self.public_charts = public_charts

    def post(self, message: Message, *, metadata: dict[str, Any] | None = None) -> str:
        """`metadata` is Slack message metadata ({"event_type", "event_payload"}), found again by `find`."""
        if not message.channel:
            raise DeliveryError(f"the {message.kind} message for {message.model_key} has no channel to go to")
        message, uploads = self._prepare(message)
        posted = self._call("chat.postMessage", message.channel, lambda: self.client.chat_postMessage(
            channel=message.channel, **message.payload(), **_with(metadata)))
        ref = f"{posted['channel']}:{posted['ts']}"
        for chart in uploads:
            self._upload(chart, posted["channel"], posted["ts"], ref)
        return ref

    def reply(self, thread: str, text: str, *, metadata: dict[str, Any] | None = None) -> str:
        channel, ts = _split(thread)
        posted = self._call("chat.postMessage", channel, lambda: self.client.chat_postMessage(
            channel=channel, thread_ts=ts, text=text, **_with(metadata)))
        return f"{posted['channel']}:{posted['ts']}"

    def reply_message(self, thread: str, message: Message, *, metadata: dict[str, Any] | None = None) -> str:
        """A whole message (blocks, charts) as a reply in a thread: a storm digest's per-model alert."""
        channel, ts = _split(thread)
        message, uploads = self._prepare(message)
        posted = self._call("chat.postMessage", channel, lambda: self.client.chat_postMessage(
            channel=channel, thread_ts=ts, **message.payload(), **_with(metadata)))
        ref = f"{posted['channel']}:{posted['ts']}"
        for chart in uploads:
            self._upload(chart, posted["channel"], ts, ref)
        return ref

    def find(self, channel: str, metadata: dict[str, Any], *, oldest: float, thread: str | None = None) -> str | None:
        """The "CHANNEL:TS" of a message posted with this `metadata` since `oldest` (Unix seconds), in the
        channel's history or, given `thread` ("CHANNEL:TS" of its parent), among that thread's replies.
        Slack returns metadata only when asked (`include_all_metadata`); replies are not in the history."""
        parent = _split(thread)[1] if thread else None
        cursor = None
        while True:
            if parent is None:
                page = self._call("conversations.history", channel, lambda: self.client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200, cursor=cursor))
            else:
                page = self._call("conversations.replies", channel, lambda: self.client.conversations_replies(
                    channel=channel, ts=parent, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200,
                    cursor=cursor))
            for found in page.get("messages") or []:
                if _same_metadata(found.get("metadata"), metadata) and (parent is None or found["ts"] != parent):
                    return f"{channel}:{found['ts']}"
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    @property
    def charts_on_update(self) -> bool:
        return self.public_charts  # uploaded charts stay in the thread; only served ones can change

    def update(self, ref: str, message: Message) -> None:
        """Replace the message's text and blocks; charts already in its thread stay where they are."""
        channel, ts = _split(ref)
        message, _ = self._prepare(message)
        self._call("chat.update", channel, lambda: self.client.chat_update(channel=channel, ts=ts, **message.payload()))

    def publish_home(self, slack_id: str, view: dict) -> None:
        self._call("views.publish", slack_id, lambda: self.client.views_publish(user_id=slack_id, view=view))

    def _prepare(self, message: Message) -> tuple[Message, list[ChartRef]]:
        validate_payload(message.payload())
        if self.public_charts:
            return message, [c for c in message.charts if not c.url]
        urls = {c.url for c in message.charts if c.url}
        blocks = tuple(b for b in message.blocks if getattr(b, "image_url", None) not in urls)
        return replace(message, blocks=blocks), list(message.charts)

    def _upload(self, chart: ChartRef, channel: str, ts: str, ref: str) -> None:
        path = Path(chart.path)
        if not path.is_file():
            raise DeliveryError(f"chart {chart.title!r} was not uploaded: {path} does not exist "
                                f"(message {ref} was posted without it)", ref=ref)
        try:
            self._call("files.upload_v2", channel, lambda: self.client.files_upload_v2(
                file=str(path), filename=path.name, title=chart.title, alt_txt=chart.alt_text,
                channel=channel, thread_ts=ts))
        except DeliveryError as exc:
            raise DeliveryError(f"{exc}; chart {chart.title!r} is missing from message {ref}", ref=ref) from None

    def _call(self, method: str, channel: str, call: Callable[[], SlackResponse]) -> SlackResponse:
        # The SDK's exception is not chained into ours: it holds the request, Authorization header included.
        transient, retry_after = True, None
        try:
            return call()
        except SlackApiError as exc:
            response = exc.response
            method = response.api_url.rsplit("/", 1)[-1].split("?")[0] or method
            code = response.get("error") or f"HTTP {response.status_code}"
            details = (response.get("response_metadata") or {}).get("messages") or []
            reason = f"{code} ({'; '.join(details)})" if details else code
            transient = response.status_code == 429 or response.status_code >= 500
            if response.status_code == 429:
                retry_after = float((response.headers or {}).get("Retry-After")
                                    or (response.headers or {}).get("retry-after") or 1)
        except TimeoutError:
            reason = f"no answer within {self.client.timeout} s (the message may have been posted)"
        except (SlackClientError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        raise DeliveryError(self._redact(f"{method} to {channel} failed: {reason}"), transient=transient,
                            retry_after=retry_after) from None

    def _redact(self, text: str) -> str:
        return text.replace(self.client.token, "[token]") if self.client.token else text


def _with(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": metadata} if metadata else {}


def _same_metadata(found: Any, wanted: dict[str, Any]) -> bool:
    if not isinstance(found, dict) or found.get("event_type") != wanted["event_type"]:
        return False
    payload = found.get("event_payload") or {}
    return {k: str(v) for k, v in payload.items()} == {k: str(v) for k, v in wanted["event_payload"].items()}


def _split(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    if not channel or not ts:
        raise DeliveryError(f"{ref!r} is not a Slack message reference; expected CHANNEL:TS as post() returns")
    return channel, ts
