"""SIGKILL in the middle of a burst of Slack posts: every outbox message reaches Slack exactly once.

The fake Slack posts each message at once and answers 0.4 s later, so a worker killed while it waits
leaves a row that Slack has but the outbox does not know was sent. The next worker finds it by the row's
id in the message metadata (conversations.history for posts, conversations.replies for thread replies)
and records it instead of posting it again."""

from __future__ import annotations

import os
import signal
from collections import Counter

from slack_sdk import WebClient
from sqlalchemy import select

from bot.blocks.common import Message
from bot.outbox import OUTBOX_EVENT, OutboxDelivery
from store.models import OutboxMessage, OutboxState
from tests.support.slack_fake import FakeSlack
from tests.support.waiting import wait_until
from tests.support.workers import start_worker, stop, worker_output

CHANNELS = ["C0KILL1", "C0KILL2", "C0KILL3", "C0KILL4"]
POSTS, REPLIES = 16, 6


def _rows(db) -> dict[int, tuple[OutboxState, object, str | None]]:
    with db.read() as s:
        return {r.id: (r.state, r.send_attempt_at, r.sent_ref) for r in s.execute(select(OutboxMessage)).scalars()}


def _held(fake: FakeSlack, *, reply: bool):
    """A chat.postMessage Slack has done but not answered yet: a post, or a thread reply."""
    with fake._lock:
        return next((p for p in fake.holding if bool(p.get("thread_ts")) == reply), None)


def _outbox_ids(fake: FakeSlack) -> Counter:
    return Counter(m["metadata"]["event_payload"]["id"] for m in fake.messages.values()
                   if (m.get("metadata") or {}).get("event_type") == OUTBOX_EVENT)


def test_a_worker_killed_mid_post_sends_each_message_once(db, tmp_path):
    logs = [tmp_path / f"worker{n}.log" for n in range(3)]
    with FakeSlack() as fake:
        parent = WebClient(token=fake.token, base_url=fake.api_url).chat_postMessage(channel="C0KILL1", text="thread")
        thread = f"C0KILL1:{parent['ts']}"
        outbox = OutboxDelivery(db)
        for n in range(POSTS):
            outbox.post(Message(kind="deployment", persona="ops", model_key="m", text=f"post {n}", blocks=(),
                                channel=CHANNELS[n % len(CHANNELS)]))
        for n in range(REPLIES):
            outbox.reply(thread, f"reply {n}")
        fake.answer_late("chat.postMessage", 0.4)
        env = {**os.environ, "FLYWHEEL_DATABASE_URL": db.url, "SLACK_BOT_TOKEN": fake.token,
               "FLYWHEEL_SLACK_API_URL": fake.api_url, "FLYWHEEL_OUTBOX": str(tmp_path / "outbox"),
               "FLYWHEEL_ARTIFACTS": str(tmp_path / "artifacts")}
        workers = []
        try:
            killed = {}
            for n, reply in enumerate((False, True)):  # killed in a post, then (the next worker) in a reply
                workers.append(start_worker(env, logs[n]))
                held = wait_until(lambda reply=reply: _held(fake, reply=reply), 120,
                                  f"worker {n} to be waiting on Slack's answer to a {'reply' if reply else 'post'}",
                                  detail=worker_output(logs))
                workers[-1].send_signal(signal.SIGKILL)
                workers[-1].wait(timeout=30)
                row_id = held["metadata"]["event_payload"]["id"]
                state, attempted, _ = _rows(db)[row_id]
                # The kill landed in the window: Slack has the message, the outbox still has it pending.
                assert state == OutboxState.pending and attempted is not None, (state, attempted)
                assert _outbox_ids(fake)[row_id] == 1
                killed[row_id] = reply
            workers.append(start_worker(env, logs[2]))
            wait_until(lambda: all(state == OutboxState.sent for state, _, _ in _rows(db).values()), 120,
                       "every outbox row to be sent", detail=worker_output(logs), poll=0.2)
            workers[-1].send_signal(signal.SIGTERM)
            assert workers[-1].wait(timeout=60) == 0
        finally:
            stop(*workers)
        rows = _rows(db)
        assert len(rows) == POSTS + REPLIES
        sent = _outbox_ids(fake)
        assert sent == Counter({row_id: 1 for row_id in rows}), "a message reached Slack twice (or never)"
        for row_id, (state, attempted, ref) in rows.items():
            channel, _, ts = ref.partition(":")
            assert fake.messages[(channel, ts)]["metadata"]["event_payload"]["id"] == row_id
            assert attempted is None
        # The killed rows were found in Slack, not posted again: by the history for the post, by the
        # thread's replies for the reply.
        assert len(killed) == 2 and sorted(killed.values()) == [False, True]
        assert fake.calls_to("conversations.history") and fake.calls_to("conversations.replies")
        assert all(c.params.get("include_all_metadata") in ("1", "true", True)
                   for c in fake.calls_to("conversations.history") + fake.calls_to("conversations.replies"))
        assert fake.invalid == []
