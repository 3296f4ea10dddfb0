"""The alert service inside a server process: the in-process consumer and the sweep.

**Consumer (in-process bus only).** The bus calls :meth:`AlertRunner.receive` while the
outbox relay holds its database session, so the handler only queues the event: one task
then processes the queue in order (which keeps each patient's events in order) with
:func:`clarity.alerts.consumer.handle_events`, retrying a failure a few times. An event
could still be lost between the relay marking it published and its processing (a crash),
so a catch-up pass, at start and with every sweep, queues the published events of the
last :data:`CATCH_UP_WINDOW` that the consumer has not marked processed. With RabbitMQ the
workers consume instead and this process only sweeps.

Queued events of one patient are evaluated together (:func:`take_group`), so that a burst
of batches (an import) costs one evaluation rather than one per batch.

**Sweep**: :func:`clarity.alerts.sweep.sweep` every :attr:`sweep_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import deque
from typing import Any, Final

from sqlalchemy import and_, select

from clarity.alerts.consumer import CONSUMER, TOPICS, handle_events
from clarity.alerts.models import ProcessedEvent
from clarity.alerts.sweep import sweep
from clarity.database import utcnow
from clarity.events import InProcessBus
from clarity.logging import get_logger
from clarity.outbox.models import OutboxEvent
from clarity.runtime import Runtime

log = get_logger(__name__)

CATCH_UP_WINDOW: Final = dt.timedelta(days=2)
#: Events published less than this long ago are left to the bus delivery in flight.
CATCH_UP_GRACE: Final = dt.timedelta(minutes=2)
CATCH_UP_BATCH: Final = 1000
RETRY_DELAYS: Final = (0.5, 2.0, 5.0)
#: At most this many queued events of one patient are evaluated together.
MAX_GROUP: Final = 100


def _subject(payload: dict[str, Any]) -> tuple[str, str] | None:
    org, patient = payload.get("organization_id"), payload.get("patient_id")
    return (org, patient) if isinstance(org, str) and isinstance(patient, str) else None


def take_group(backlog: deque[dict[str, Any]]) -> list[dict[str, Any]]:
    """Take the oldest event and the later queued events of the same patient (in order,
    at most :data:`MAX_GROUP`): one evaluation serves them all, and each patient's events
    still go in order. Other patients' events stay, in order."""
    first = backlog.popleft()
    key = _subject(first)
    group, rest = [first], deque[dict[str, Any]]()
    while backlog:
        payload = backlog.popleft()
        if key is not None and len(group) < MAX_GROUP and _subject(payload) == key:
            group.append(payload)
        else:
            rest.append(payload)
    backlog.extend(rest)
    return group


class AlertRunner:
    def __init__(self, runtime: Runtime, *, sweep_seconds: float = 60.0) -> None:
        self.runtime = runtime
        self.sweep_seconds = sweep_seconds
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sweep: dt.datetime | None = None
        # Subscribed before the relay starts, so that no event published at start-up is missed.
        bus = runtime.bus
        if isinstance(bus, InProcessBus):
            for topic in TOPICS:
                bus.subscribe(topic, self.receive)

    @property
    def consuming(self) -> bool:
        """Whether this process consumes events itself (the embedded, in-process bus)."""
        return isinstance(self.runtime.bus, InProcessBus)

    async def receive(self, payload: dict[str, Any]) -> None:
        """The bus handler: queue and return at once (see the module doc)."""
        event_id = str(payload.get("event_id", ""))
        if event_id and event_id in self._queued:
            return
        self._queued.add(event_id)
        self._queue.put_nowait(payload)

    def start(self) -> None:
        if self._tasks:
            return
        if self.consuming:
            self._tasks.append(asyncio.create_task(self._consume(), name="alerts.consumer"))
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="alerts.sweep"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until every queued event has been processed (tests, orderly shutdown)."""
        await self._queue.join()

    async def _consume(self) -> None:
        backlog: deque[dict[str, Any]] = deque()
        while True:
            if not backlog:
                backlog.append(await self._queue.get())
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    backlog.append(self._queue.get_nowait())
            group = take_group(backlog)
            try:
                await self._handle(group)
            finally:
                for payload in group:
                    self._queued.discard(str(payload.get("event_id", "")))
                    self._queue.task_done()

    async def _handle(self, group: list[dict[str, Any]]) -> None:
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                await handle_events(self.runtime, group)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "alerts.event_failed",
                    error=type(exc).__name__,
                    attempt=attempt + 1,
                    events=len(group),
                    event_id=str(group[0].get("event_id", "")),
                )
                if delay is None:
                    return  # the catch-up pass offers them again
                await asyncio.sleep(delay)

    async def catch_up(self, now: dt.datetime | None = None) -> int:
        """Queue published events this consumer has not processed; returns how many."""
        if not self.consuming:
            return 0
        now = now or utcnow()
        marker = and_(
            ProcessedEvent.consumer == CONSUMER, ProcessedEvent.event_id == OutboxEvent.event_id
        )
        async with self.runtime.db.session(system=True) as session:
            payloads = (
                await session.scalars(
                    select(OutboxEvent.payload)
                    .outerjoin(ProcessedEvent, marker)
                    .where(
                        OutboxEvent.topic.in_(TOPICS),
                        OutboxEvent.published_at.is_not(None),
                        OutboxEvent.published_at < now - CATCH_UP_GRACE,
                        OutboxEvent.created_at >= now - CATCH_UP_WINDOW,
                        ProcessedEvent.event_id.is_(None),
                    )
                    .order_by(OutboxEvent.seq)
                    .limit(CATCH_UP_BATCH)
                )
            ).all()
        before = self._queue.qsize()
        for payload in payloads:
            await self.receive(dict(payload))
        return self._queue.qsize() - before

    async def sweep_once(self, now: dt.datetime | None = None) -> None:
        now = now or utcnow()
        await self.catch_up(now)
        report = await sweep(self.runtime, now=now, since=self._last_sweep)
        if report.ran:
            self._last_sweep = now
        if report.gap_alerts or report.cooldown_alerts or report.escalated:
            log.info(
                "alerts.sweep",
                gap_alerts=report.gap_alerts,
                cooldown_alerts=report.cooldown_alerts,
                escalated=report.escalated,
            )

    async def _sweep_forever(self) -> None:
        try:
            await self.catch_up()
        except Exception as exc:
            log.warning("alerts.catch_up_failed", error=type(exc).__name__)
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("alerts.sweep_failed", error=type(exc).__name__)
