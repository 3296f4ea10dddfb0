"""Dead letters: events a handler kept failing on, set aside so their partition goes on.

A handler that raises gets the event again, after a growing delay, before any later event
of its partition (per-patient order). An event that fails ``CLARITY_WORKER_MAX_ATTEMPTS``
times in a row for one handler would hold its partition back forever, so the worker
records it here and moves on (the event is kept, not lost); ``clarity events dead`` lists
them and ``clarity events retry`` hands them to the handler again once the cause is fixed
(handlers are idempotent by event id). Setting an event aside needs the database: while
it is unreachable the event simply stays at the head of its partition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clarity.database import Database, utcnow
from clarity.logging import get_logger
from clarity.worker.models import DeadEvent
from clarity.worker.registry import Registry

log = get_logger(__name__)


def _event_id(payload: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(payload.get("event_id")))
    except ValueError:
        return uuid.uuid4()  # not one of ours: keep it under an id of its own


async def set_aside(
    db: Database, handler: str, payload: dict[str, Any], error: str, attempts: int
) -> None:
    """Record the dead letter (once per handler and event; a repeat refreshes it)."""
    event_id = _event_id(payload)
    topic = str(payload.get("event_type", ""))[:64]
    async with db.session(system=True) as session:
        session.add(
            DeadEvent(
                handler=handler,
                event_id=event_id,
                topic=topic,
                payload=payload,
                error=error[:200],
                attempts=attempts,
            )
        )
        try:
            await session.commit()
            return
        except IntegrityError:
            await session.rollback()
        known = await session.scalar(
            select(DeadEvent).where(DeadEvent.handler == handler, DeadEvent.event_id == event_id)
        )
        if known is not None:
            known.attempts += attempts
            known.error = error[:200]
            known.dead_at = utcnow()
            known.retried_at = None
            await session.commit()


async def dead_events(db: Database, *, include_retried: bool = False) -> list[DeadEvent]:
    async with db.session(system=True) as session:
        query = select(DeadEvent).order_by(DeadEvent.dead_at)
        if not include_retried:
            query = query.where(DeadEvent.retried_at.is_(None))
        return list(await session.scalars(query))


@dataclass
class RetryReport:
    retried: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)  # dead letter id -> why


async def retry(
    db: Database, registry: Registry, ids: list[uuid.UUID] | None = None
) -> RetryReport:
    """Hand the dead letters (all open ones, or ``ids``) to their handler again, oldest
    first; each that succeeds is marked retried, each that fails stays with its error."""
    report = RetryReport()
    for dead in await dead_events(db):
        if ids is not None and dead.id not in ids:
            continue
        routes = [r for r in registry.routes_for(dead.topic) if r.name == dead.handler]
        if not routes:
            report.failed[dead.id] = f"no handler named {dead.handler!r} takes {dead.topic!r}"
            continue
        try:
            await routes[0].handler(dict(dead.payload))
        except Exception as exc:
            report.failed[dead.id] = type(exc).__name__
            async with db.session(system=True) as session:
                row = await session.get(DeadEvent, dead.id)
                if row is not None:
                    row.attempts += 1
                    row.error = type(exc).__name__
                    await session.commit()
            continue
        async with db.session(system=True) as session:
            row = await session.get(DeadEvent, dead.id)
            if row is not None:
                row.retried_at = utcnow()
                await session.commit()
        report.retried.append(dead.id)
        log.info("worker.dead_letter_retried", handler=dead.handler, topic=dead.topic)
    return report
