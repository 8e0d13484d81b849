"""Threshold suggestions from alert feedback, and the overrides people accepted from them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.clock import utcnow
from store.models.base import Base, _enum
from store.models.enums import CheckKind
from store.models.registry import Model


class SuggestionState(enum.StrEnum):
    open = "open"  # posted, waiting for an ML engineer
    accepted = "accepted"  # in force: checks use `proposed` instead of the spec's value
    dismissed = "dismissed"
    adopted = "adopted"  # the spec now says the same: the override is no longer needed
    replaced = "replaced"  # a later accepted suggestion for the same threshold took its place


class ThresholdSuggestion(Base):
    """A proposed threshold for one model's check on one subject (a feature), with the evidence behind it.
    Accepted, it overrides the spec's value until the spec adopts it."""

    __tablename__ = "threshold_suggestions"
    __table_args__ = (
        # One suggestion waiting per threshold: more noise marks update nothing until it is decided.
        Index("uq_threshold_suggestions_one_open", "model_id", "kind", "subject", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[CheckKind] = mapped_column(_enum(CheckKind))
    subject: Mapped[str] = mapped_column(String(200))
    current: Mapped[float] = mapped_column(Float)  # the threshold in force when it was suggested
    proposed: Mapped[float] = mapped_column(Float)
    state: Mapped[SuggestionState] = mapped_column(_enum(SuggestionState), default=SuggestionState.open)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message_ref: Mapped[str | None] = mapped_column(String(64))  # where it was posted: settled in place
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(500), default="")

    model: Mapped[Model] = relationship()
