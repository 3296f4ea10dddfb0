"""Committed alert events, read from the outbox by each process, and fanned out to streams.

Every API process must see every alert event (each holds its own SSE clients), and the
outbox rows persist, so each process follows the outbox itself (:class:`OutboxTail`)
instead of relying on the broker to fan out: the bus only wakes the tail early (in
embedded mode the relay's publish does; otherwise the tail polls). The same reading feeds
the webhook deliveries, so nothing depends on which broker runs.

**Not missing a late commit.** On PostgreSQL a transaction can commit after another one
that took a higher ``seq``, so "everything above the last seq seen" would skip it. The
tail therefore keeps re-reading the last :attr:`OutboxTail.settle_seconds` of the outbox
(it remembers which rows it handed out) and only moves its cursor up to the highest
``seq`` that existed that long ago, by when every transaction that held a lower one has
ended. On start it looks back :attr:`OutboxTail.backlog` events, so that a crash between
publication and recording the webhook deliveries loses none (recording is idempotent).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select

from clarity.database import Database
from clarity.outbox.models import OutboxEvent

ALERT_TOPICS: Final = ("alert.raised", "alert.acknowledged", "alert.resolved", "alert.escalated")


@dataclass(frozen=True)
class AlertEvent:
    seq: int
    event_id: uuid.UUID
    topic: str
    created_at: datetime
    payload: dict[str, Any]

    def _uuid(self, name: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(str(self.payload.get(name)))
        except ValueError:
            return None

    @property
    def organization_id(self) -> uuid.UUID | None:
        return self._uuid("organization_id")

    @property
    def patient_id(self) -> uuid.UUID | None:
        return self._uuid("patient_id")

    @property
    def alert_id(self) -> uuid.UUID | None:
        return self._uuid("alert_id")

    @property
    def severity(self) -> str:
        return str(self.payload.get("severity", ""))

    @classmethod
    def from_row(cls, row: Any) -> AlertEvent:
        return cls(row.seq, row.event_id, row.topic, row.created_at, dict(row.payload))


def alert_events_after(seq: int, limit: int) -> Any:
    """The query of alert events above ``seq``, oldest first."""
    return (
        select(
            OutboxEvent.seq,
            OutboxEvent.event_id,
            OutboxEvent.topic,
            OutboxEvent.created_at,
            OutboxEvent.payload,
        )
        .where(OutboxEvent.seq > seq, OutboxEvent.topic.in_(ALERT_TOPICS))
        .order_by(OutboxEvent.seq)
        .limit(limit)
    )


@dataclass
class OutboxTail:
    """Hands out each committed alert event once per process, in ``seq`` order per poll."""

    db: Database
    settle_seconds: float = 30.0
    backlog: int = 10_000
    batch: int = 500
    clock: Callable[[], float] = time.monotonic
    cursor: int = 0  # every alert event at or below it has been handed out
    high: int = 0  # the highest seq handed out (or the cursor)
    start_seq: int = 0  # the highest seq when the tail started: above it, events are new
    more: bool = False  # the last poll stopped at ``batch``: poll again at once
    _handed: set[int] = field(default_factory=set)  # handed out, above the cursor
    _marks: deque[tuple[float, int]] = field(default_factory=deque)

    async def start(self) -> None:
        async with self.db.session(system=True) as session:
            top = await session.scalar(select(func.max(OutboxEvent.seq))) or 0
        self.start_seq = top
        self.cursor = self.high = max(0, top - self.backlog)

    async def poll(self) -> list[AlertEvent]:
        """The alert events committed since the last poll (late commits included)."""
        now = self.clock()
        async with self.db.session(system=True) as session:
            top = await session.scalar(select(func.max(OutboxEvent.seq))) or 0
            rows = list((await session.execute(alert_events_after(self.high, self.batch))).all())
            self.more = len(rows) == self.batch
            if self.high > self.cursor:
                # Only seqs first: events committed late, below ones already handed out.
                seen = await session.scalars(
                    select(OutboxEvent.seq).where(
                        OutboxEvent.seq > self.cursor,
                        OutboxEvent.seq <= self.high,
                        OutboxEvent.topic.in_(ALERT_TOPICS),
                    )
                )
                late = [s for s in seen if s not in self._handed]
                if late:
                    query = alert_events_after(self.cursor, len(late))
                    rows += (await session.execute(query.where(OutboxEvent.seq.in_(late)))).all()
        fresh = sorted((AlertEvent.from_row(r) for r in rows), key=lambda e: e.seq)
        self._handed.update(e.seq for e in fresh)
        if fresh:
            self.high = max(self.high, fresh[-1].seq)
        self._settle(now, top)
        return fresh

    def _settle(self, now: float, top: int) -> None:
        """Move the cursor up to the highest seq that existed ``settle_seconds`` ago."""
        self._marks.append((now, top))
        settled = self.cursor
        while self._marks and now - self._marks[0][0] >= self.settle_seconds:
            settled = max(settled, self._marks.popleft()[1])
        if self.more:
            settled = min(settled, self.high)  # events above the batch are still unread
        if settled > self.cursor:
            self.cursor = settled
            self.high = max(self.high, settled)
            self._handed = {s for s in self._handed if s > settled}


class Subscription:
    """One stream's queue of events; closed when it falls too far behind."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[AlertEvent] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, event: AlertEvent) -> bool:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True


class Broadcaster:
    """Fan-out of alert events to the streams open in this process.

    A stream that does not keep up (its queue is full) is dropped rather than allowed to
    hold memory or slow the others; its client reconnects with ``Last-Event-ID`` and
    catches up from the outbox."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscriptions: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self.queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def listeners(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: AlertEvent) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.offer(event):
                self._subscriptions.discard(subscription)
