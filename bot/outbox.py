"""Slack through the outbox: the notifier writes rows; the worker's sender delivers them.

Each row is sent once and marked sent in the same step. Rate limits wait for Retry-After, server
errors and timeouts back off exponentially, and a reply or update waits for the message it belongs
to, so threads keep their order through an outage. Posts to one channel go out at most about once a
second.

Each post and reply is sent at most once. Before Slack is called the row records the attempt, and the
message carries the row's id as Slack message metadata; a worker killed between Slack's answer and
marking the row sent leaves it pending with that attempt, and the next sender looks the id up in the
channel's history (or the thread's replies) since the attempt before posting again, recording the
found ts as it marks the row sent. Updates and App Home publishes are idempotent and simply repeated.

Alert posts are held for a gather window. When the window has passed with no new alert for the
channel, more than `threshold` models among the held posts become one storm digest (the posts are
never sent on their own); otherwise they go out one by one as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from sqlalchemy.orm import Session
from structlog.contextvars import bound_contextvars

from bot import metrics
from bot.blocks import digest as digest_blocks
from bot.blocks.common import Message, validate_payload
from bot.config import Settings
from bot.logs import current_request_id
from bot.services import home
from bot.slack_delivery import DeliveryError, SlackDelivery
from jobs.incidents import ChartRef
from store import digests, outbox
from store.clock import utcnow
from store.db import Database

log = logging.getLogger("flywheel.outbox")

OUTBOX_EVENT = "flywheel_outbox"  # the Slack message metadata type that carries an outbox row's id
POSTED_ONCE = ("post", "reply")  # new messages; an update or an App Home publish can simply be done again
CLOCK_SKEW = timedelta(seconds=30)  # looked-up history starts this much before the attempt: our clock vs Slack's
PACE = timedelta(seconds=1)  # Slack's posting limit is about one message a second per channel
MAX_BACKOFF = timedelta(minutes=5)
UNINSTALLED = ("not sent: Flywheel is not installed in workspace {team} (uninstalled, or the project names no "
               "workspace); kept, and visible in the outbox table")
REFRESH_WAIT = timedelta(seconds=30)  # a workspace token that could not be refreshed is tried again after this
MAX_HOLD_WINDOWS = 5  # a cycle that keeps alerting holds its first posts at most this many windows


@dataclass(frozen=True)
class StormPolicy:
    """How long alert posts wait for the rest of their check cycle, and how many models make a storm."""

    window: timedelta = timedelta(seconds=60)
    threshold: int = 5  # more models than this in one channel: one digest

    @classmethod
    def from_settings(cls, settings: Settings) -> StormPolicy:
        return cls(timedelta(seconds=settings.storm_window), settings.storm_threshold)

    def gathered(self, created: list[datetime], now: datetime) -> bool:
        """Quiet for a window since the last alert, or the first has waited long enough."""
        return now >= max(created) + self.window or now >= min(created) + self.window * MAX_HOLD_WINDOWS


def _payload(message: Message) -> dict:
    return {"kind": message.kind, "persona": message.persona, "model_key": message.model_key,
            "text": message.text, "blocks": [b.to_dict() for b in message.blocks],
            "charts": [{"path": c.path, "title": c.title, "alt_text": c.alt_text, "url": c.url}
                       for c in message.charts]}


def _message(payload: dict, channel: str | None) -> Message:
    return Message(kind=payload["kind"], persona=payload["persona"], model_key=payload["model_key"],
                   text=payload["text"], blocks=tuple(Block.parse_all(payload["blocks"])), channel=channel,
                   charts=tuple(ChartRef(**c) for c in payload["charts"]))


@dataclass
class OutboxDelivery:
    """The `Delivery` protocol, writing rows instead of calling Slack. References are `outbox:N`."""

    edits_in_unit_of_work = True  # an edit is a row: it commits with the change it shows, or not at all

    db: Database
    clock: Callable[[], datetime] = utcnow
    charts_on_update = False  # the sender edits through SlackDelivery, which keeps the thread's uploads

    def post(self, message: Message) -> str:
        """An alert's post (`metadata["alert_id"]`) is held, so a storm can become one digest."""
        validate_payload(message.payload())
        alert_id = message.metadata.get("alert_id")
        with self.db.session() as s:
            return outbox.ref_of(outbox.enqueue(
                session=s, kind="post", channel=message.channel, payload=_payload(message), now=self.clock(),
                alert_id=alert_id, held=alert_id is not None and message.channel is not None,
                request_id=current_request_id()))

    def reply(self, thread: str, text: str) -> str:
        with self.db.session() as s:
            return outbox.ref_of(outbox.enqueue(session=s, kind="reply", channel=None, payload={"text": text},
                                                thread=thread, now=self.clock(), request_id=current_request_id()))

    def reply_message(self, thread: str, message: Message) -> str:
        """A whole message (blocks, charts) as a reply in a thread."""
        validate_payload(message.payload())
        with self.db.session() as s:
            return outbox.ref_of(outbox.enqueue(session=s, kind="reply", channel=None, payload=_payload(message),
                                                thread=thread, now=self.clock(), request_id=current_request_id()))

    def update(self, ref: str, message: Message, *, session: Session | None = None) -> None:
        """Edit a message; one not posted yet (held, or kept by a digest) just takes the new content.

        With `session`, the row is written in the caller's unit of work: a change and the edit that shows
        it commit together."""
        validate_payload(message.payload())
        self._edit(ref, message.channel, _payload(message), session)

    def edit(self, ref: str, *, channel: str | None, text: str, blocks: list[dict[str, Any]],
             session: Session | None = None) -> None:
        """`update` with Block Kit JSON the caller has checked (a clicked message's settled blocks)."""
        self._edit(ref, channel, {"kind": "settled", "persona": "", "model_key": "", "text": text,
                                  "blocks": blocks, "charts": []}, session)

    def refresh_homes(self) -> int:
        """Queue a publish of the App Home of everyone who opened it lately; the sender renders each
        when it sends it, so a burst of changes costs one publish per person."""
        now = self.clock()
        with self.db.session() as s:
            viewers = home.recent_viewers(session=s, now=now)
            return outbox.enqueue_home_refresh(session=s, slack_ids=viewers, now=now)

    def _edit(self, ref: str, channel: str | None, payload: dict[str, Any], session: Session | None) -> None:
        with self._unit(session) as s:
            if outbox.replace_unsent(session=s, ref=ref, payload=payload):
                return
            outbox.enqueue(session=s, kind="update", channel=channel, payload=payload, thread=ref,
                           now=self.clock(), request_id=current_request_id())

    @contextmanager
    def _unit(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
        else:
            with self.db.session() as s:
                yield s


@dataclass(frozen=True)
class SentNow:
    """What `OutboxSender.send_now` did with the rows it was given."""

    sent: int
    queued: int  # still pending: the worker sends them
    failed: int  # Slack refused them for good
    error: str  # the last error Slack gave, if any


@dataclass
class OutboxSender:
    db: Database
    slack: SlackDelivery  # a client without the SDK's retry handlers: the outbox does its own retrying
    clock: Callable[[], datetime] = utcnow
    storm: StormPolicy = field(default_factory=StormPolicy)
    # renders and publishes one person's App Home, as seen from the row's workspace (None: no workspace rule)
    publish_home: Callable[[str, SlackDelivery, str | None], None] | None = None
    # Installed in several workspaces (OAuth): the Slack of a row's workspace, None when it has no installation
    # (bot/oauth.py). Unset, every row goes out through `slack`, the one workspace's.
    workspaces: Callable[[str | None], SlackDelivery | None] | None = None
    _last_post: dict[str, datetime] = field(default_factory=dict)

    def send_due(self) -> int:
        """One pass over what is due; returns how many rows were sent."""
        now, sent = self.clock(), 0
        self.gather(now)
        with self.db.session() as s:
            rows = [(r.id, r.kind, r.channel) for r in outbox.due(session=s, now=now)]
        for row_id, kind, channel in rows:
            if kind == "post" and channel and now - self._last_post.get(channel, datetime.min) < PACE:
                continue  # paced: the next pass takes it
            if self._send(row_id, now):
                sent += 1
                if kind == "post" and channel:
                    self._last_post[channel] = now
        return sent

    def send_now(self, after_id: int, *, patience: timedelta = timedelta(seconds=60),
                 sleep: Callable[[float], None] = time.sleep) -> SentNow:
        """Send the rows queued after `after_id` (a manual check's alerts and their threads) now, paced as
        usual. Stops once none is pending, when Slack keeps failing them (they stay queued, and the worker's
        sender takes them up), or after `patience`. Only for a sender that is the only one running."""
        deadline = time.monotonic() + patience.total_seconds()
        while True:
            self.send_due()
            with self.db.read() as s:
                rows = outbox.rows_after(session=s, after_id=after_id)
                pending = [r for r in rows if r.state == outbox.OutboxState.pending]
                waiting = [r for r in pending if r.attempts and r.next_attempt_at > self.clock() + PACE]
                report = SentNow(sent=sum(r.state == outbox.OutboxState.sent for r in rows), queued=len(pending),
                                 failed=sum(r.state == outbox.OutboxState.failed for r in rows),
                                 error=next((r.last_error for r in reversed(rows) if r.last_error), ""))
            if not pending or waiting or time.monotonic() >= deadline:
                return report
            sleep(0.2)

    def gather(self, now: datetime) -> list[int]:
        """Release held alert posts whose cycle is over, or fold a storm of them into one digest.

        Returns the ids of the digests made. Each channel is decided in its own unit of work: the
        digest's post is queued in the same one that marks the alert posts digested.
        """
        with self.db.session() as s:
            digests.adopt_children(session=s)
            channels = [c for c, rows in outbox.held_by_channel(session=s).items()
                        if self.storm.gathered([r.created_at for r in rows], now)]
        made = []
        for channel in channels:
            try:
                if (digest_id := self._gather_channel(channel, now)) is not None:
                    made.append(digest_id)
            except Exception:  # a digest that cannot be built must not keep the alerts from going out
                log.exception("the storm digest for %s failed; its alerts go out one by one", channel)
                with self.db.session() as s:
                    outbox.release(session=s, rows=outbox.held_by_channel(session=s).get(channel, []))
        return made

    def _gather_channel(self, channel: str, now: datetime) -> int | None:
        with self.db.session() as s:
            rows = outbox.held_by_channel(session=s).get(channel, [])
            if not rows:
                return None
            if len(digests.held_models(session=s, rows=rows)) <= self.storm.threshold:
                outbox.release(session=s, rows=rows)
                return None
            digest = digests.fold_storm(session=s, channel=channel, rows=rows, now=now)
            message = digest_blocks.storm_digest(digests.storm_lines(session=s, digest=digest), gathered_at=now)
            validate_payload(message.payload())
            post = outbox.enqueue(session=s, kind="post", channel=channel, payload=_payload(message), now=now)
            digest.message_ref = outbox.ref_of(post)
            digests.adopt_children(session=s)
            log.info("storm: %d alerts for %s folded into digest %s", len(rows), channel, digest.id)
            return digest.id

    def _send(self, row_id: int, now: datetime) -> bool:
        slack = self._slack_for(row_id)
        if slack is None:
            return False
        with self.db.session() as s:
            row = s.get(outbox.OutboxMessage, row_id)
            if row.state != outbox.OutboxState.pending or outbox.pending_before(session=s, row=row):
                return False
            where = outbox.target(session=s, row=row)
            if row.kind not in ("post", "home") and where is None:
                return False  # its message is not in Slack yet
            kind, channel, payload, attempts = row.kind, row.channel, dict(row.payload), row.attempts
            team = row.team_id
            attempted, context = row.send_attempt_at, _log_context(row)
            if kind in POSTED_ONCE:
                # Committed before Slack is called: whoever finds the row pending with this set knows the
                # message may be in Slack already, and looks before posting again.
                outbox.begin_attempt(session=s, row_id=row_id, now=utcnow())
        with bound_contextvars(**context):
            return self._deliver(row_id, now, kind, channel, where, payload, attempts, attempted, slack, team)

    def _slack_for(self, row_id: int) -> SlackDelivery | None:
        """The Slack of the row's workspace; None when it has no installation (the row marked undeliverable) or
        its token could not be refreshed (the row put off). Looked up before the row's unit of work: the
        installation store has connections of its own."""
        if self.workspaces is None:
            return self.slack
        with self.db.read() as s:
            team = s.get(outbox.OutboxMessage, row_id).team_id
        try:
            slack = self.workspaces(team)
        except DeliveryError as exc:  # its token could not be refreshed now: the next pass tries again
            with self.db.session() as s:
                outbox.retry_later(session=s, row_id=row_id, error=str(exc), at=self.clock() + REFRESH_WAIT)
            log.warning("outbox %s waits: %s", row_id, exc)
            return None
        if slack is None:  # never sent with another workspace's token: kept, marked, nothing lost
            with self.db.session() as s:
                outbox.mark_undeliverable(session=s, row_id=row_id, error=UNINSTALLED.format(team=team))
            log.warning("outbox %s undeliverable: no installation for workspace %s", row_id, team)
        return slack

    def _deliver(self, row_id: int, now: datetime, kind: str, channel: str | None, where: str | None,
                 payload: dict[str, Any], attempts: int, attempted: datetime | None, slack: SlackDelivery,
                 team: str | None = None) -> bool:
        key = {"event_type": OUTBOX_EVENT, "event_payload": {"id": row_id}}
        try:
            found = self._already_posted(row_id, kind, channel, where, key, attempted, slack) if attempted else None
            if found is not None:
                ref = found
            elif kind == "home":
                if self.publish_home is None:
                    raise DeliveryError("this sender cannot publish App Homes")
                self.publish_home(channel, slack, team)
                ref = None
            elif kind == "post":
                ref = slack.post(_message(payload, channel), metadata=key)
            elif kind == "reply" and payload.get("blocks"):
                ref = slack.reply_message(where, _message(payload, None), metadata=key)
            elif kind == "reply":
                ref = slack.reply(where, payload["text"], metadata=key)
            else:  # an update: editing a message twice leaves it as editing it once
                slack.update(where, _message(payload, channel))
                ref = where
        except DeliveryError as exc:
            with self.db.session() as s:
                if exc.ref:  # the message went out, only a chart upload failed: never post it twice
                    outbox.mark_sent(session=s, row_id=row_id, sent_ref=exc.ref, now=now)
                    log.warning("outbox %s sent without a chart: %s", row_id, exc)
                    return True
                if exc.transient:  # the attempt stays recorded: a timed-out post may have gone out
                    if exc.retry_after:
                        metrics.rate_limited("outbox", exc.retry_after)
                    wait = timedelta(seconds=exc.retry_after) if exc.retry_after else \
                        min(MAX_BACKOFF, timedelta(seconds=2 ** min(attempts, 10)))
                    outbox.retry_later(session=s, row_id=row_id, error=str(exc), at=now + wait)
                else:
                    outbox.mark_failed(session=s, row_id=row_id, error=str(exc))
                    log.error("outbox %s failed for good: %s", row_id, exc)
            return False
        with self.db.session() as s:
            outbox.mark_sent(session=s, row_id=row_id, sent_ref=ref, now=now)
        log.info("outbox %s sent (%s)", row_id, kind)
        return True

    def _already_posted(self, row_id: int, kind: str, channel: str | None, where: str | None, key: dict[str, Any],
                        attempted: datetime, slack: SlackDelivery) -> str | None:
        """Where an earlier attempt's message is, when Slack has it: a worker that died (or lost the
        database) between Slack's answer and recording it left the row pending with its attempt time."""
        if kind not in POSTED_ONCE:
            return None
        oldest = attempted.replace(tzinfo=UTC).timestamp() - CLOCK_SKEW.total_seconds()
        try:
            if kind == "post":
                found = slack.find(channel or "", key, oldest=oldest)
            else:
                found = slack.find(_split_channel(where), key, oldest=oldest, thread=where)
        except DeliveryError as exc:
            if exc.transient:
                raise
            # A refused lookup (an install without the history scopes) must not keep the message from going
            # out: post it, at the risk of a second copy.
            log.warning("outbox %s: could not look for an earlier attempt (%s); posting it again", row_id, exc)
            return None
        if found is not None:
            log.warning("outbox %s was already in Slack (%s) from an attempt whose answer was lost; "
                        "recorded, not posted again", row_id, found)
        return found


def _log_context(row: outbox.OutboxMessage) -> dict[str, object]:
    """What a row's send logs carry: the row, its model, and the request that caused it."""
    model_key = row.payload.get("model_key") if isinstance(row.payload, dict) else None
    return {"outbox": row.id, **({"model": model_key} if model_key else {}),
            **({"request_id": row.request_id} if row.request_id else {})}


def _split_channel(ref: str | None) -> str:
    return (ref or "").partition(":")[0]
