"""The transactional outbox: domain events written in the same transaction as their data.

A service adds an :class:`OutboxEvent` to the session that stores what the event describes;
both commit or neither does, so no event is ever published for data that was rolled back
and no committed data lacks its event. The relay (:mod:`clarity.outbox.relay`) publishes
unpublished events in ``seq`` order and marks them published; a crash between the two
publishes the event again, so delivery is at least once and consumers deduplicate by
``event_id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        # The relay's only query: unpublished events in order.
        Index(
            "ix_outbox_events_unpublished",
            "seq",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        # Each process following one kind of event (the alert feed) above a cursor.
        Index("ix_outbox_events_topic_seq", "topic", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    topic: Mapped[str] = mapped_column(String(64))
    # Events with the same key (the patient) are delivered in order, to one consumer.
    key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
