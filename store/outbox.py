"""The Slack outbox: rows written in the caller's unit of work, sent later by the worker.

Alert posts are written `held`: the sender waits a moment for the rest of the check cycle, then
releases them one by one or folds them into a storm digest (store/digests.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from store.clock import utcnow
from store.models import (
    Alert, Digest, Grant, Model, ModelVersion, OutboxMessage, OutboxState, PersonaChannel, Person, Project,
)

REF_PREFIX = "outbox:"


def ref_of(row_id: int) -> str:
    return f"{REF_PREFIX}{row_id}"


def row_id_of(ref: str) -> int | None:
    return int(ref.removeprefix(REF_PREFIX)) if ref.startswith(REF_PREFIX) else None


_INSERT = insert(OutboxMessage.__table__)


def enqueue(*, session: Session, kind: str, channel: str | None, payload: dict[str, Any],
            thread: str | None = None, now: datetime | None = None, alert_id: int | None = None,
            held: bool = False, request_id: str | None = None, team: str | None = None) -> int:
    """Queue a post, or a reply/update to `thread` (an outbox ref or a CHANNEL:TS already sent); returns
    the row's id.

    A `held` post (an alert's) waits for the sender to release it or fold it into a digest. `request_id` is
    the request that caused the message, for the sender's logs. `team`: the workspace it goes to, when the
    caller knows it (else found by `team_of`).
    """
    parent = row_id_of(thread) if thread else None
    now = now or utcnow()
    team = team or team_of(session=session, kind=kind, channel=channel, parent_id=parent,
                           target_ref=None if parent else thread, model_key=payload.get("model_key"))
    # A Core insert: every click that updates its message writes one, inside Slack's ack.
    return session.connection().execute(_INSERT, {
        "kind": kind, "channel": channel, "payload": payload, "parent_id": parent,
        "target_ref": None if parent else thread, "state": OutboxState.pending, "next_attempt_at": now,
        "created_at": now, "alert_id": alert_id, "held": held, "request_id": request_id,
        "team_id": team}).inserted_primary_key[0]


def team_of(*, session: Session, kind: str, channel: str | None, parent_id: int | None, target_ref: str | None,
            model_key: str | None) -> str | None:
    """The workspace a message goes to: its thread's, else its model's project's, else the one workspace whose
    projects use its channel (a digest) or grant the person roles (an App Home). None when that is not one
    workspace: such a message goes nowhere when Flywheel is installed in several (bot/outbox.py)."""
    if parent_id is not None:
        return session.execute(select(OutboxMessage.team_id).where(OutboxMessage.id == parent_id)).scalar()
    if model_key:
        found = session.execute(select(Project.team_id).join(Model, Model.project_id == Project.id)
                                .where(Model.key == model_key)).first()
        if found is not None:
            return found[0]
    if kind == "home":
        teams = select(Project.team_id).join(Grant, Grant.project_id == Project.id).join(
            Person, Person.id == Grant.person_id).where(Person.slack_id == channel)
    else:
        where = channel or (target_ref or "").partition(":")[0]
        teams = select(Project.team_id).join(PersonaChannel, PersonaChannel.project_id == Project.id).where(
            PersonaChannel.channel == where)
    found_teams = set(session.execute(teams.distinct()).scalars())
    return found_teams.pop() if len(found_teams) == 1 else None


def enqueue_home_refresh(*, session: Session, slack_ids: list[str], now: datetime | None = None) -> int:
    """Queue a publish of each person's App Home (kind `home`, the person in `channel`), one for each
    workspace whose projects grant them a role, unless one is already waiting: the sender renders the home
    when it sends, in that workspace alone, so one refresh shows every change before it. Returns how many
    were queued."""
    if not slack_ids:
        return 0
    waiting = set(session.execute(select(OutboxMessage.channel, OutboxMessage.team_id).where(
        OutboxMessage.kind == "home", OutboxMessage.state == OutboxState.pending,
        OutboxMessage.channel.in_(slack_ids))).tuples())
    granted: dict[str, set[str]] = {}
    for slack_id, team in session.execute(
            select(Person.slack_id, Project.team_id).distinct().join(Grant, Grant.person_id == Person.id)
            .join(Project, Project.id == Grant.project_id)
            .where(Person.slack_id.in_(slack_ids), Project.team_id.is_not(None))):
        granted.setdefault(slack_id, set()).add(team)
    queued = 0
    for slack_id in dict.fromkeys(slack_ids):
        # Projects of no workspace (one token) are everyone's: one home, as before.
        for team in sorted(granted.get(slack_id, ())) or [None]:
            if (slack_id, team) not in waiting:
                enqueue(session=session, kind="home", channel=slack_id, payload={}, now=now, team=team)
                queued += 1
    return queued


def due(*, session: Session, now: datetime, limit: int = 200) -> list[OutboxMessage]:
    return list(session.execute(
        select(OutboxMessage).where(OutboxMessage.state == OutboxState.pending, OutboxMessage.held.is_(False),
                                    OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id).limit(limit)).scalars())


def last_id(*, session: Session) -> int:
    """The newest row's id (0 when empty): rows queued after this moment have larger ones."""
    return session.execute(select(func.max(OutboxMessage.id))).scalar() or 0


def rows_after(*, session: Session, after_id: int) -> list[OutboxMessage]:
    return list(session.execute(select(OutboxMessage).where(OutboxMessage.id > after_id)
                                .order_by(OutboxMessage.id)).scalars())


def held_by_channel(*, session: Session) -> dict[str, list[OutboxMessage]]:
    """Alert posts still held, per channel, oldest first."""
    found: dict[str, list[OutboxMessage]] = {}
    for row in session.execute(select(OutboxMessage).where(
            OutboxMessage.state == OutboxState.pending, OutboxMessage.held.is_(True)).order_by(OutboxMessage.id)
            ).scalars():
        found.setdefault(row.channel or "", []).append(row)
    return found


def release(*, session: Session, rows: list[OutboxMessage]) -> None:
    """Held posts go out on their own, in the order they were written."""
    for row in rows:
        row.held = False
    session.flush()


def replace_unsent(*, session: Session, ref: str, payload: dict[str, Any]) -> bool:
    """An update to a message not posted yet (held, or kept by a digest to post on demand) replaces
    what will be posted, keeping the charts it was written with when the update brings none (an edit
    is not drawn again: Slack keeps the charts uploaded with the post). Conditional, so a row the
    sender released meanwhile gets a normal update."""
    row_id = row_id_of(ref)
    if row_id is None:
        return False
    unsent = ((OutboxMessage.state == OutboxState.pending) & OutboxMessage.held.is_(True)) | \
        (OutboxMessage.state == OutboxState.digested)
    row = session.execute(select(OutboxMessage).where(OutboxMessage.id == row_id, unsent)
                          .with_for_update()).scalar_one_or_none()
    if row is None:
        return False
    row.payload = {**payload, "charts": payload.get("charts") or row.payload.get("charts", [])}
    session.flush()
    return True


def pending_before(*, session: Session, row: OutboxMessage) -> bool:
    """Is an earlier row of the same thread still unsent? Then this one waits, to keep the order."""
    thread = OutboxMessage.parent_id == row.parent_id if row.parent_id else \
        OutboxMessage.target_ref == row.target_ref
    if row.kind in ("post", "home"):
        return False
    return session.execute(select(OutboxMessage.id).where(
        thread, OutboxMessage.id < row.id, OutboxMessage.state == OutboxState.pending).limit(1)).first() is not None


def target(*, session: Session, row: OutboxMessage) -> str | None:
    """Where a reply or update goes: its parent's CHANNEL:TS once sent, else None (wait)."""
    if row.parent_id is None:
        return row.target_ref
    parent = session.get(OutboxMessage, row.parent_id)
    return parent.sent_ref if parent is not None and parent.state == OutboxState.sent else None


def begin_attempt(*, session: Session, row_id: int, now: datetime) -> None:
    """The row goes to Slack once this commits. The first attempt's time is kept: a message Slack took
    without our hearing back is searched for from then on."""
    session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id, OutboxMessage.send_attempt_at.is_(None))
                    .values(send_attempt_at=now))


def mark_sent(*, session: Session, row_id: int, sent_ref: str | None, now: datetime) -> bool:
    """Record where the message went; False (and nothing changed) when the row was settled meanwhile."""
    row = session.execute(select(OutboxMessage).where(OutboxMessage.id == row_id).with_for_update()).scalar_one()
    if row.state != OutboxState.pending:
        return False
    row.state, row.sent_ref, row.sent_at, row.attempts = OutboxState.sent, sent_ref, now, row.attempts + 1
    row.send_attempt_at = None
    if row.kind == "post" and sent_ref:
        # Alerts and digests remember the outbox ref until their message exists; then where it is.
        _, _, ts = sent_ref.partition(":")
        session.execute(update(Alert).where(Alert.message_ts == ref_of(row_id)).values(message_ts=ts))
        session.execute(update(Digest).where(Digest.message_ref == ref_of(row_id)).values(message_ref=sent_ref))
        session.execute(update(ModelVersion).where(ModelVersion.signoff_ref == ref_of(row_id))
                        .values(signoff_ref=sent_ref))
    if row.kind == "reply" and sent_ref:
        session.execute(update(Alert).where(Alert.digest_thread_ref == ref_of(row_id))
                        .values(digest_thread_ref=sent_ref))
    session.flush()
    return True


def retry_later(*, session: Session, row_id: int, error: str, at: datetime) -> None:
    row = session.get(OutboxMessage, row_id)
    row.attempts, row.last_error, row.next_attempt_at = row.attempts + 1, error, at
    session.flush()


def mark_undeliverable(*, session: Session, row_id: int, error: str) -> None:
    """Kept, never sent: its workspace has no installation (the app was uninstalled there)."""
    row = session.execute(select(OutboxMessage).where(OutboxMessage.id == row_id).with_for_update()).scalar_one()
    if row.state != OutboxState.pending:
        return
    row.state, row.last_error, row.send_attempt_at = OutboxState.undeliverable, error, None
    session.flush()


def mark_failed(*, session: Session, row_id: int, error: str) -> None:
    row = session.get(OutboxMessage, row_id)
    row.state, row.last_error, row.attempts = OutboxState.failed, error, row.attempts + 1
    row.send_attempt_at = None
    session.flush()
