"""The outbox relay: publishes committed events to the bus, in order, at least once.

One relay runs in each server and worker process, but only one publishes at a time: on
PostgreSQL the leader holds an advisory lock on its own connection (released by the
database if the process dies, so a standby takes over); SQLite is single-process anyway.
The leader publishes unpublished events in ``seq`` order and marks them published: each
key's (patient's) events one after another, different keys concurrently where the bus
allows (:meth:`OutboxRelay._publish_events`). When the broker refuses an event, the relay
stops publishing (later events of that key wait behind it), records the attempt and
retries with exponential backoff, so a broker outage delays events and loses none.
Services call :meth:`notify` after committing, which wakes the relay at once; otherwise it
polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clarity.database import Database, utcnow
from clarity.events import EventBus
from clarity.logging import get_logger
from clarity.outbox.models import OutboxEvent

log = get_logger(__name__)

_LEADER_LOCK = 0x6F75_7462  # "outb"
PUBLISH_TIMEOUT = 5.0  # seconds; a broker that neither accepts nor refuses counts as down


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leader: AsyncConnection | None = None
        # One publishing pass at a time in this process (the loop and explicit drains).
        self._publishing = asyncio.Lock()

    def notify(self) -> None:
        """Something was committed to the outbox: publish now rather than at the next poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish unpublished events, oldest first, until none is left or one fails.

        Returns how many were published; raises the bus's error after recording it on the
        event that failed (the events before it stay published)."""
        async with self._publishing:
            return await self._publish_pending()

    async def _publish_pending(self) -> int:
        total = 0
        while True:
            async with self.db.session(system=True) as session:
                events = list(
                    await session.scalars(
                        select(OutboxEvent)
                        .where(OutboxEvent.published_at.is_(None))
                        .order_by(OutboxEvent.seq)
                        .limit(self.batch_size)
                    )
                )
                if not events:
                    return total
                published, failure = await self._publish_events(events)
                if published:
                    await session.execute(
                        update(OutboxEvent)
                        .where(OutboxEvent.seq.in_(published))
                        .values(published_at=utcnow())
                    )
                await session.commit()
                total += len(published)
                if failure is not None:
                    raise failure
                if len(events) < self.batch_size:
                    return total

    async def _publish_events(
        self, events: list[OutboxEvent]
    ) -> tuple[list[int], BaseException | None]:
        """Publish ``events`` (in ``seq`` order): one key's events one after another, each
        only once the previous one is confirmed, and different keys' events concurrently
        where the bus allows it (``max_in_flight``), so a broker's confirm round trip does
        not cap the whole relay; a bus that takes one at a time gets them all in ``seq``
        order. A key whose event fails stops there (its later events wait for the next
        pass); publishes already in flight for other keys complete, and none starts after
        a failure. Returns the seqs published and the first failure."""
        concurrent = self.bus.max_in_flight > 1
        chains: dict[str | None, list[OutboxEvent]] = {}
        for event in events:
            chains.setdefault(event.key if concurrent else None, []).append(event)
        slots = asyncio.Semaphore(max(1, self.bus.max_in_flight))
        published: list[int] = []
        failures: list[BaseException] = []

        async def publish_chain(chain: list[OutboxEvent]) -> None:
            async with slots:
                for event in chain:
                    if failures:
                        return  # the broker refused one: leave the rest to the next pass
                    try:
                        await asyncio.wait_for(
                            self.bus.publish(event.topic, _message(event)), PUBLISH_TIMEOUT
                        )
                    except Exception as exc:
                        failures.append(exc)
                        event.attempts += 1
                        event.last_error = type(exc).__name__
                        return
                    published.append(event.seq)

        await asyncio.gather(*(publish_chain(chain) for chain in chains.values()))
        return published, (failures[0] if failures else None)

    async def _lead(self) -> bool:
        """Become (or stay) the publishing relay; always true on SQLite."""
        if self.db.engine.dialect.name != "postgresql":
            return True
        if self._leader is not None and not self._leader.closed:
            return True
        connection = await self.db.engine.connect()
        try:
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _LEADER_LOCK}
            )
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._leader = connection
        return True

    async def _release(self) -> None:
        """Give up leadership: unlock, then return the connection to the pool (a pooled
        connection keeps session-level locks, so a failed unlock discards it instead)."""
        if self._leader is None:
            return
        connection, self._leader = self._leader, None
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LEADER_LOCK})
            await connection.commit()
        except Exception:
            with contextlib.suppress(Exception):
                await connection.invalidate()
        with contextlib.suppress(Exception):
            await connection.close()

    async def run(self) -> None:
        backoff = 0.0
        while True:
            try:
                if await self._lead():
                    await self.publish_pending()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(self.max_backoff_seconds, max(0.25, backoff * 2))
                log.warning("outbox.publish_failed", error=type(exc).__name__, retry_in=backoff)
                await self._release()
            self._wake.clear()
            if backoff:
                await asyncio.sleep(backoff)  # an outage: requests must not hammer the broker
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release()


def _message(event: OutboxEvent) -> dict[str, Any]:
    """The published message: the payload, which carries event_id, event_type and the key."""
    return {**event.payload, "partition_key": event.key}
