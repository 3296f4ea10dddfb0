"""The transactional outbox: an event exists exactly when its data was committed, the relay
publishes in order and marks what it published, a failing broker delays events without
losing or reordering them, and on PostgreSQL only one relay publishes at a time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import func, select

from clarity.events import InProcessBus
from clarity.outbox.models import OutboxEvent
from clarity.outbox.relay import OutboxRelay
from tests.api.test_biometrics_ingest import minutes, new_patient, send
from tests.conftest import BACKEND, Harness


class FlakyBus(InProcessBus):
    """Refuses the first ``failures`` publishes, like a broker that is down for a while."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.published: list[dict[str, Any]] = []

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker down")
        self.published.append(payload)


async def _events(h: Harness) -> list[OutboxEvent]:
    async with h.runtime.db.session(system=True) as session:
        return list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))


async def test_event_is_written_with_its_batch_and_published_once(h: Harness) -> None:
    await h.runtime.outbox.stop()  # no background relay: this test publishes by hand
    token = await h.token_for()
    patient_id = await new_patient(h, token)
    assert (await send(h, token, patient_id, "b-1", minutes(0, 5))).status_code == 201
    # A batch of nothing but bad rows stores nothing, so it has no event.
    assert (await send(h, token, patient_id, "b-2", [{"stream": "nope"}])).status_code == 201

    (event,) = await _events(h)
    assert event.topic == "biometrics.batch_accepted"
    assert event.key == patient_id
    assert event.published_at is None

    bus = FlakyBus(failures=0)
    relay = OutboxRelay(h.runtime.db, bus)
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    assert [m["event_id"] for m in bus.published] == [str(event.event_id)]
    assert bus.published[0]["partition_key"] == patient_id
    (event,) = await _events(h)
    assert event.published_at is not None


async def test_a_broker_outage_delays_events_in_order_and_loses_none(h: Harness) -> None:
    await h.runtime.outbox.stop()
    token = await h.token_for()
    patient_id = await new_patient(h, token)
    for n in range(5):
        response = await send(h, token, patient_id, f"b-{n}", minutes(n * 10, 10))
        assert response.status_code == 201  # the API keeps accepting data

    bus = FlakyBus(failures=3)
    relay = OutboxRelay(h.runtime.db, bus)
    for _ in range(3):
        with contextlib.suppress(ConnectionError):
            await relay.publish_pending()
    events = await _events(h)
    assert [e.published_at for e in events] == [None] * 5
    assert events[0].attempts == 3
    assert events[0].last_error == "ConnectionError"

    assert await relay.publish_pending() == 5
    batch_ids = [m["client_batch_id"] for m in bus.published]
    assert batch_ids == [f"b-{n}" for n in range(5)]
    async with h.runtime.db.session(system=True) as session:
        unpublished = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    assert unpublished == 0


class KeyedFlakyBus(FlakyBus):
    """A broker client that may have several publishes in flight and refuses one key's."""

    max_in_flight = 8

    def __init__(self, refused: str) -> None:
        super().__init__(failures=0)
        self.refused = refused

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a confirm round trip: the other keys' publishes overlap
        if payload["partition_key"] == self.refused:
            raise ConnectionError("refused")
        self.published.append(payload)


async def test_one_patients_refused_event_holds_back_only_that_patient(h: Harness) -> None:
    await h.runtime.outbox.stop()
    token = await h.token_for()
    first, second = await new_patient(h, token), await new_patient(h, token)
    for n in range(3):
        for patient_id in (first, second):
            response = await send(h, token, patient_id, f"b-{n}", minutes(n * 10, 10))
            assert response.status_code == 201

    bus = KeyedFlakyBus(refused=first)
    relay = OutboxRelay(h.runtime.db, bus)
    with contextlib.suppress(ConnectionError):
        await relay.publish_pending()
    # The other patient's first event went out while the refused one was in flight; the
    # refused patient's events all wait, in order, with the attempt recorded on the first.
    assert [m["partition_key"] for m in bus.published] == [second]
    events = await _events(h)
    held = [e for e in events if e.key == first]
    assert [e.published_at for e in held] == [None] * 3
    assert [e.attempts for e in held] == [1, 0, 0]

    bus.refused = ""
    assert await relay.publish_pending() == 5
    for patient_id in (first, second):
        mine = [m["client_batch_id"] for m in bus.published if m["partition_key"] == patient_id]
        assert mine == ["b-0", "b-1", "b-2"]  # each patient's events in order, once


async def test_the_running_relay_delivers_without_being_asked(h: Harness) -> None:
    bus = h.runtime.bus
    assert isinstance(bus, InProcessBus)
    received: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> None:
        received.append(payload)

    bus.subscribe("biometrics.batch_accepted", handler)
    token = await h.token_for()
    patient_id = await new_patient(h, token)
    assert (await send(h, token, patient_id, "b-1", minutes(0, 5))).status_code == 201
    for _ in range(100):
        if received:
            break
        await h.runtime.outbox._wake.wait()

        await asyncio.sleep(0.02)
    assert len(received) == 1


async def test_only_one_relay_leads_on_postgresql(h: Harness) -> None:
    if BACKEND != "postgres":
        return
    first = OutboxRelay(h.runtime.db, FlakyBus(0))
    second = OutboxRelay(h.runtime.db, FlakyBus(0))
    await h.runtime.outbox.stop()  # the app's own relay holds the lock: let it go
    try:
        assert await first._lead()
        assert not await second._lead()
        await first._release()
        assert await second._lead()
    finally:
        await first._release()
        await second._release()
