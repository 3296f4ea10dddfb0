"""The outbox tail that feeds the alert stream and the webhook deliveries: each alert event
is handed out once, in order, in batches, a transaction that commits late (below events
already handed out) is not skipped, and the cursor only moves past what has settled."""

from __future__ import annotations

import uuid

from clarity.alerts.delivery.feed import AlertEvent, Broadcaster, OutboxTail
from clarity.database import utcnow
from clarity.outbox.models import OutboxEvent
from tests.conftest import Harness


async def add(h: Harness, seq: int, topic: str = "alert.raised") -> None:
    """An outbox row with a chosen seq (as a transaction holding that seq would commit)."""
    event_id = uuid.uuid4()
    async with h.runtime.db.session(system=True) as session:
        session.add(
            OutboxEvent(
                seq=seq,
                event_id=event_id,
                topic=topic,
                key="k",
                payload={"event_id": str(event_id), "event_type": topic},
                created_at=utcnow(),
            )
        )
        await session.commit()


def seqs(events: list[AlertEvent]) -> list[int]:
    return [e.seq for e in events]


async def test_each_alert_event_once_late_commits_included(h: Harness) -> None:
    await h.runtime.outbox.stop()  # these rows are not for the bus
    await add(h, 5)
    await add(h, 6, topic="biometrics.batch_accepted")
    now = [0.0]
    tail = OutboxTail(h.runtime.db, settle_seconds=30, backlog=100, batch=2, clock=lambda: now[0])
    await tail.start()
    assert tail.start_seq == 6
    assert seqs(await tail.poll()) == [5]  # the look-back at start
    for seq in (10, 11, 12):
        await add(h, seq)
    assert seqs(await tail.poll()) == [10, 11]
    assert tail.more  # a full batch: more is waiting
    assert seqs(await tail.poll()) == [12]
    assert not tail.more
    assert await tail.poll() == []

    await add(h, 8)  # a transaction that took seq 8 commits after 12 was seen
    assert seqs(await tail.poll()) == [8]
    assert await tail.poll() == []
    assert tail.cursor == 0  # nothing has settled yet

    now[0] = 31.0
    assert await tail.poll() == []
    assert tail.cursor == 12  # every seq up to 12 existed 30 s ago: all committed since
    await add(h, 13)
    assert seqs(await tail.poll()) == [13]


async def test_a_slow_stream_is_dropped_not_waited_for() -> None:
    broadcaster = Broadcaster(queue_size=2)
    fast, slow = broadcaster.subscribe(), broadcaster.subscribe()
    events = [
        AlertEvent(n, uuid.uuid4(), "alert.raised", utcnow(), {"alert_id": str(uuid.uuid4())})
        for n in range(3)
    ]
    broadcaster.publish(events[0])
    broadcaster.publish(events[1])
    assert fast.queue.get_nowait() is events[0]
    broadcaster.publish(events[2])  # the slow one's queue is full: it is let go
    assert slow.overflowed
    assert broadcaster.listeners == 1
    assert fast.queue.get_nowait() is events[1]
    assert fast.queue.get_nowait() is events[2]
