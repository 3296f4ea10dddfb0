"""A broker outage during ingestion, on a private RabbitMQ node stopped and started again:
the API keeps accepting biometric batches and assessments (the outbox holds their events),
and once the broker is back every event is delivered to the worker, each handled once by
the alert consumer, with one PHQ-9 alert per patient: none lost, none twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clarity.alerts.models import Alert, ProcessedEvent
from clarity.auth.models import Role
from clarity.outbox.models import OutboxEvent
from clarity.worker.registry import build_registry
from clarity.worker.service import Worker
from tests.api.test_assessments_api import phq9, submit
from tests.api.test_biometrics_ingest import minutes, new_patient, send
from tests.conftest import BACKEND, Harness
from tests.support.rabbitmq import RABBITMQ_SERVER, RabbitServer

pytestmark = [
    pytest.mark.skipif(
        BACKEND != "postgres",
        reason="a broker outage is tested on PostgreSQL: SQLite is the embedded "
        "single-process mode, where the server handles events in-process",
    ),
    pytest.mark.skipif(RABBITMQ_SERVER is None, reason="rabbitmq-server is not installed"),
]

PARTITIONS = 4
TOPICS = ("assessment.submitted", "biometrics.batch_accepted")


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[RabbitServer]:
    workdir = tmp_path / "rabbitmq"
    workdir.mkdir()
    server = RabbitServer(workdir)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"a private rabbitmq-server could not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
async def h(rabbit: RabbitServer, harness_factory: Callable[..., Awaitable[Harness]]) -> Harness:
    return await harness_factory(
        broker_url=rabbit.url,
        event_partitions=PARTITIONS,
        worker_heartbeat_seconds=0.3,
        worker_lease_seconds=3.0,
    )


async def _outbox(h: Harness) -> list[tuple[str, str, bool]]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.execute(
            select(OutboxEvent.event_id, OutboxEvent.topic, OutboxEvent.published_at)
        )
        return [(str(e), t, p is not None) for e, t, p in rows]


async def _until(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> float:
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < limit, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def test_a_broker_outage_delays_events_and_loses_none(
    h: Harness, rabbit: RabbitServer
) -> None:
    delivered: Counter[str] = Counter()

    async def count(payload: dict[str, Any]) -> None:
        delivered[str(payload["event_id"])] += 1

    registry = build_registry(h.runtime)  # the alert consumer
    registry.on("*", count, name="count")  # after it: counts events it has handled
    worker = Worker(h.runtime, registry, worker_id="outage-test")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))

    async def holds_all() -> bool:
        return worker.held == list(range(PARTITIONS))

    await _until(holds_all, 15, "the worker to hold every partition")
    clinician = await h.token_for(Role.clinician)
    patients = [await new_patient(h, clinician) for _ in range(4)]
    latencies: list[float] = []

    async def ingest(phase: str, patient: int, batches: int) -> None:
        for n in range(batches):
            began = time.monotonic()
            samples = minutes(60 * n + 1000 * patient, 30)
            response = await send(h, clinician, patients[patient], f"{phase}-{n}", samples)
            latencies.append(time.monotonic() - began)
            assert response.status_code == 201, response.text
        answers = phq9(1, 1, 0, 1, 0, 0, 1, 0, 2)  # item 9 endorsed: one critical alert
        response = await submit(h, clinician, patients[patient], "phq9", answers)
        assert response.status_code == 201, response.text

    async def all_handled() -> bool:
        events = await _outbox(h)
        return all(published for _, _, published in events) and all(
            delivered[event_id] for event_id, topic, _ in events if topic in TOPICS
        )

    await ingest("up", 0, 3)
    await _until(all_handled, 30, "events published before the outage")

    stopped_in = rabbit.stop()
    for patient in (1, 2):
        await ingest("down", patient, 4)
    held_back = [e for e, t, published in await _outbox(h) if t in TOPICS and not published]
    assert len(held_back) == 2 * 5, "the outbox holds what the broker could not take"
    ready = (await h.client.get("/health/ready")).json()
    assert ready["checks"]["broker"]["status"] == "down"

    started_in = rabbit.start()
    restarted = time.monotonic()
    await ingest("back", 3, 2)
    caught_up = await _until(all_handled, 60, "every event after the outage")
    recovery = time.monotonic() - restarted

    events = [(e, t) for e, t, _ in await _outbox(h) if t in TOPICS]
    assert len(events) == 3 + 1 + 2 * (4 + 1) + 2 + 1
    async with h.runtime.db.session(system=True) as session:
        marked = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(
                ProcessedEvent.consumer == "alerts",
                ProcessedEvent.event_id.in_([uuid.UUID(e) for e, _ in events]),
            )
        )
        alerts = Counter(
            str(p)
            for p in await session.scalars(
                select(Alert.patient_id).where(Alert.rule_id == "phq9-item9-positive")
            )
        )
    assert marked == len(events)  # each event processed by the alert consumer, once
    assert alerts == Counter({p: 1 for p in patients})  # no alert lost, none twice
    assert set(delivered) >= {e for e, _ in events}

    stop.set()
    await running
    slowest = max(latencies)
    print(
        f"\nbroker stopped in {stopped_in:.1f}s, restarted in {started_in:.1f}s; "
        f"{len(held_back)} events held back, all handled {recovery:.1f}s after the restart "
        f"(caught up in {caught_up:.1f}s); slowest API call {slowest:.2f}s; "
        f"duplicate deliveries {sum(n - 1 for n in delivered.values())}"
    )
