"""The alert stream (Server-Sent Events, https://html.spec.whatwg.org/multipage/server-sent-events.html).

Each event is ``id:`` (the event id), ``event:`` (``alert.raised``, ...) and ``data:`` (the
event's public JSON, :func:`clarity.alerts.delivery.schemas.alert_message`). A comment
line is sent when the stream opens and after every quiet ``CLARITY_SSE_HEARTBEAT_SECONDS``
(proxies close idle connections). A client reconnecting with ``Last-Event-ID`` first gets
the alert events committed after that one, from the outbox, then the live ones.

Who sees what: the caller's organization only; a clinician only patients on whose care
team they are (asked of the database per patient, remembered :data:`ACCESS_TTL` seconds);
an admin every patient of the clinic. The stream ends when the access token expires or
its session is revoked (the client reconnects with a fresh token and ``Last-Event-ID``).
No database session is held while the stream is open: each look-up opens and closes its
own (on SQLite every session shares one connection).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import orjson
from sqlalchemy import select

from clarity.alerts.delivery.feed import ALERT_TOPICS, AlertEvent, Broadcaster, alert_events_after
from clarity.alerts.delivery.schemas import alert_message
from clarity.auth.dependencies import Principal, revoked_key
from clarity.auth.patient_access import may_reach_patient
from clarity.cache import Cache
from clarity.database import Database, utcnow
from clarity.outbox.models import OutboxEvent
from clarity.patients.access import care_team_ids

ACCESS_TTL: Final = 30.0
REPLAY_MAX: Final = 1000
REPLAY_PAGE: Final = 500
RETRY_MS: Final = 5000


def format_event(event: AlertEvent) -> bytes:
    data = orjson.dumps(alert_message(event.payload))  # one line: orjson never indents
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        str(event.event_id).encode(),
        event.topic.encode(),
        data,
    )


def comment(text: str) -> bytes:
    return b": " + text.encode() + b"\n\n"


@dataclass
class StreamAccess:
    """Whether the principal may see an event's patient (see the module doc)."""

    db: Database
    principal: Principal
    ttl: float = ACCESS_TTL
    clock: Callable[[], float] = time.monotonic
    _known: dict[uuid.UUID, tuple[float, bool]] = field(default_factory=dict)

    async def allows(self, event: AlertEvent) -> bool:
        patient_id = event.patient_id
        if event.organization_id != self.principal.organization_id or patient_id is None:
            return False
        known = self._known.get(patient_id)
        now = self.clock()
        if known is not None and now - known[0] < self.ttl:
            return known[1]
        team: set[uuid.UUID] = set()
        if self.principal.role != "admin":
            async with self.db.session(self.principal.organization_id) as session:
                team = await care_team_ids(session, patient_id)
        allowed = may_reach_patient(
            role=self.principal.role,
            user_id=self.principal.user_id,
            own_patient_id=None,
            patient_id=patient_id,
            care_team=team,
        )
        self._known[patient_id] = (now, allowed)
        return allowed


async def replay_after(
    db: Database, organization_id: uuid.UUID, last_event_id: uuid.UUID
) -> tuple[list[AlertEvent], bool] | None:
    """The organization's alert events after ``last_event_id`` (at most :data:`REPLAY_MAX`)
    and whether there were more; None when that event is not one of its alert events."""
    found: list[AlertEvent] = []
    async with db.session(system=True) as session:
        anchor = (
            await session.execute(
                select(OutboxEvent.seq, OutboxEvent.payload).where(
                    OutboxEvent.event_id == last_event_id, OutboxEvent.topic.in_(ALERT_TOPICS)
                )
            )
        ).first()
        if anchor is None or anchor.payload.get("organization_id") != str(organization_id):
            return None
        after = anchor.seq
        while True:
            rows = (await session.execute(alert_events_after(after, REPLAY_PAGE))).all()
            for row in rows:
                event = AlertEvent.from_row(row)
                if event.organization_id == organization_id:
                    if len(found) == REPLAY_MAX:
                        return found, True
                    found.append(event)
            if len(rows) < REPLAY_PAGE:
                return found, False
            after = rows[-1].seq


@dataclass
class AlertStream:
    """One client's stream: replay, then live events, heartbeats, and the end of access."""

    db: Database
    cache: Cache
    broadcaster: Broadcaster
    principal: Principal
    expires_at: datetime
    heartbeat_seconds: float
    last_event_id: uuid.UUID | None = None
    access: StreamAccess = field(init=False)

    def __post_init__(self) -> None:
        self.access = StreamAccess(self.db, self.principal)

    def _ended(self) -> bool:
        revoked, _ = self.cache.get_mirrored(revoked_key(self.principal.session_id))
        return revoked is not None or utcnow() >= self.expires_at

    async def _replay(self) -> AsyncIterator[tuple[AlertEvent | None, bytes]]:
        if self.last_event_id is None:
            return
        replayed = await replay_after(self.db, self.principal.organization_id, self.last_event_id)
        if replayed is None:
            yield None, comment("replay unavailable: unknown Last-Event-ID")
            return
        events, truncated = replayed
        for event in events:
            if await self.access.allows(event):
                yield event, format_event(event)
        if truncated:
            yield None, comment(f"replay truncated after {REPLAY_MAX} events")

    async def events(self) -> AsyncIterator[bytes]:
        # Subscribe before reading the replay, so that nothing committed in between is lost
        # (an event in both is sent once).
        subscription = self.broadcaster.subscribe()
        try:
            yield f"retry: {RETRY_MS}\n".encode() + comment("connected")
            sent: set[uuid.UUID] = set()
            async for event, chunk in self._replay():
                if event is not None:
                    sent.add(event.event_id)
                yield chunk
            loop = asyncio.get_running_loop()
            beat = loop.time() + self.heartbeat_seconds
            while not self._ended():
                if subscription.overflowed and subscription.queue.empty():
                    return  # fell behind: the client reconnects with Last-Event-ID
                until_end = (self.expires_at - utcnow()).total_seconds()
                wait = max(0.0, min(beat - loop.time(), until_end))
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), wait)
                except TimeoutError:
                    if loop.time() >= beat:
                        yield comment("heartbeat")
                        beat = loop.time() + self.heartbeat_seconds
                    continue
                if event.event_id in sent or not await self.access.allows(event):
                    continue
                yield format_event(event)
                beat = loop.time() + self.heartbeat_seconds
        finally:
            self.broadcaster.unsubscribe(subscription)
