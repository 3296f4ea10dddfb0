"""Writing events to the outbox, inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clarity.database import utcnow
from clarity.outbox.models import OutboxEvent


def enqueue(session: AsyncSession, topic: str, payload: dict[str, Any], *, key: str) -> uuid.UUID:
    """Add an event to ``session``; it is published after, and only if, the session commits.

    The payload gets ``event_id``, ``event_type`` and ``occurred_at`` when it lacks them;
    ``key`` orders delivery (events with one key reach consumers in the order enqueued)."""
    event_id = uuid.UUID(payload["event_id"]) if "event_id" in payload else uuid.uuid4()
    now = utcnow()
    body = {
        "event_id": str(event_id),
        "event_type": topic,
        "occurred_at": now.isoformat(),
        **payload,
    }
    session.add(OutboxEvent(event_id=event_id, topic=topic, key=key, payload=body, created_at=now))
    return event_id
