"""Slack requests claimed once: the database remembers which requests already acted, so a retry from
Slack or the same payload sent twice is recognised by whichever process receives it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import SlackRequest

# Slack retries within minutes and a payload replayed later fails its signature's 5-minute window:
# a day of claims is plenty, and keeps the table small.
KEPT = timedelta(days=1)


def claim(*, session: Session, key: str, now: datetime) -> bool:
    """True for the first request with this identity; False when one already claimed it."""
    session.flush()  # pending changes first: the savepoint below must hold only this insert
    try:
        with session.begin_nested():
            session.add(SlackRequest(key=key if len(key) <= 200 else hashlib.sha256(key.encode()).hexdigest(),
                                     received_at=now))
            session.flush()
    except IntegrityError:
        return False
    session.execute(delete(SlackRequest).where(SlackRequest.received_at < now - KEPT))
    return True
