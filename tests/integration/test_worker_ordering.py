"""Workers on the real RabbitMQ, in this process: each patient's events are handled in
order and exactly once, through the outbox, a failing handler (the event comes back before
any later one of its partition) and a rebalance when a second worker joins; an event that
keeps failing is set aside as a dead letter, its partition goes on, and a retry handles it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete

from clarity.events import RabbitBus, partition_of
from clarity.outbox.models import OutboxEvent
from clarity.outbox.service import enqueue
from clarity.runtime import Runtime
from clarity.worker.dead_letters import dead_events, retry
from clarity.worker.models import DeadEvent, EventPartitionLease, EventWorker
from clarity.worker.registry import Registry
from clarity.worker.service import Worker
from tests.conftest import make_settings
from tests.support.cli import run_clarity
from tests.support.rabbitmq import (
    SHARED_RABBIT_URL,
    delete_topology,
    rabbit_reachable,
    unique_prefix,
)

pytestmark = pytest.mark.skipif(
    not rabbit_reachable(), reason=f"RabbitMQ is not reachable at {SHARED_RABBIT_URL}"
)

PARTITIONS = 4
PATIENTS = 8
EVENTS_PER_PATIENT = 25


async def _clean(runtime: Runtime) -> None:
    async with runtime.db.session(system=True) as session:
        for model in (OutboxEvent, EventPartitionLease, EventWorker, DeadEvent):
            await session.execute(delete(model))
        await session.commit()


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    prefix = unique_prefix()
    settings = make_settings(
        database_url,
        broker_url=SHARED_RABBIT_URL,
        broker_prefix=prefix,
        event_partitions=PARTITIONS,
        worker_heartbeat_seconds=0.2,
        worker_lease_seconds=3.0,
    )
    runtime = Runtime.build(settings)
    await _clean(runtime)
    await runtime.start(relay=True)
    try:
        yield runtime
    finally:
        await runtime.stop()
        await _clean(runtime)
        await runtime.db.dispose()
        await delete_topology(SHARED_RABBIT_URL, prefix, PARTITIONS)


async def _running(worker: Worker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(worker.run(stop))


async def _wait(condition: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_each_patients_events_are_handled_in_order_once(runtime: Runtime) -> None:
    bus = runtime.bus
    assert isinstance(bus, RabbitBus)
    keys = [str(uuid.uuid4()) for _ in range(PATIENTS)]
    assert len({partition_of(k, PARTITIONS) for k in keys}) > 1  # more than one queue in play
    handled: dict[str, list[int]] = defaultdict(list)
    deliveries: dict[str, int] = defaultdict(int)
    failing = (keys[0], 7)  # this event fails on its first delivery

    handlers_of: dict[int, set[str]] = defaultdict(set)  # partition -> workers that handled

    def registry(worker: str) -> Registry:
        async def record(payload: dict[str, Any]) -> None:
            key, n = payload["partition_key"], int(payload["n"])
            deliveries[payload["event_id"]] += 1
            await asyncio.sleep(0.002 * (n % 3))  # uneven handling times across partitions
            if (key, n) == failing and deliveries[payload["event_id"]] == 1:
                raise RuntimeError("first delivery fails")
            handled[key].append(n)
            handlers_of[partition_of(key, PARTITIONS)].add(worker)

        registry = Registry()
        registry.on("probe.*", record, name="record")
        return registry

    first = Worker(runtime, registry("first"), worker_id="first", concurrency=4)
    second = Worker(runtime, registry("second"), worker_id="second", concurrency=4)
    stop_first, run_first = await _running(first)
    await _wait(lambda: len(first.held) == PARTITIONS, 10, "the first worker to hold all")

    async def produce(start: int, stop: int) -> None:
        for n in range(start, stop):
            async with runtime.db.session(system=True) as session:
                for key in keys:  # one transaction per round: patients interleaved
                    enqueue(session, "probe.event", {"n": n}, key=key)
                await session.commit()
            runtime.outbox.notify()

    began = time.monotonic()
    await produce(0, 10)
    await _wait(lambda: sum(map(len, handled.values())) >= PATIENTS * 10, 30, "the first half")
    stop_second, run_second = await _running(second)  # joins between halves: a rebalance
    await _wait(lambda: len(second.held) == PARTITIONS // 2, 10, "the second worker's share")
    await produce(10, EVENTS_PER_PATIENT)
    total = PATIENTS * EVENTS_PER_PATIENT
    await _wait(lambda: sum(map(len, handled.values())) >= total, 60, "every event")
    elapsed = time.monotonic() - began

    for key in keys:
        assert handled[key] == list(range(EVENTS_PER_PATIENT)), key
    assert sorted(deliveries.values()).count(2) == 1  # only the failed one came twice
    assert len(deliveries) == total
    assert sorted(first.held + second.held) == list(range(PARTITIONS))
    # The partitions that moved were handled by both workers, each patient still in order:
    # the first half by the first worker, the rest by the second.
    moved = [p for p in second.held if p in handlers_of]
    assert moved, handlers_of
    assert all(handlers_of[p] == {"first", "second"} for p in moved), handlers_of
    print(f"\n{total} events through outbox, RabbitMQ and two workers in {elapsed:.2f}s")

    stop_first.set()
    stop_second.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(run_first, run_second)
    assert first.held == []
    assert second.held == []


async def test_periodic_jobs_run_in_the_worker_until_it_stops(runtime: Runtime) -> None:
    runs: list[float] = []

    async def job() -> None:
        runs.append(time.monotonic())
        if len(runs) == 2:
            raise RuntimeError("a failing round is logged; the job keeps its schedule")

    registry = Registry()
    registry.every(0.1, job, name="tick")
    worker = Worker(runtime, registry, worker_id="jobs")
    stop, running = await _running(worker)
    await _wait(lambda: len(runs) >= 4, 10, "four rounds of the job")
    stop.set()
    await running
    done = len(runs)
    await asyncio.sleep(0.3)
    assert len(runs) == done  # stopped with the worker
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(runs))


async def test_an_event_that_keeps_failing_is_set_aside_and_retried_later(
    runtime: Runtime, database_url: str
) -> None:
    key = str(uuid.uuid4())
    handled: list[int] = []
    broken = True

    async def record(payload: dict[str, Any]) -> None:
        if payload["n"] == 1 and broken:
            raise RuntimeError("this event cannot be handled (yet)")
        handled.append(int(payload["n"]))

    registry = Registry()
    registry.on("probe.*", record, name="record")
    worker = Worker(runtime, registry, worker_id="solo", concurrency=2)
    worker.max_attempts = 2
    stop, running = await _running(worker)
    await _wait(lambda: len(worker.held) == PARTITIONS, 10, "the worker to hold every partition")
    for n in range(4):
        async with runtime.db.session(system=True) as session:
            enqueue(session, "probe.event", {"n": n}, key=key)
            await session.commit()
    runtime.outbox.notify()

    # Event 1 fails twice and is set aside; the patient's later events then go on, in order.
    await _wait(lambda: handled == [0, 2, 3], 30, "the events after the dead letter")
    (dead,) = await dead_events(runtime.db)
    assert (dead.handler, dead.topic, dead.attempts, dead.error) == (
        "record",
        "probe.event",
        2,
        "RuntimeError",
    )
    assert dead.payload["n"] == 1

    code, output = await asyncio.to_thread(run_clarity, database_url, "events", "dead")
    assert code == 0, output
    assert str(dead.id) in output
    assert "RuntimeError" in output
    # The CLI's worker has only the configured handlers, not this test's: it says so.
    code, output = await asyncio.to_thread(run_clarity, database_url, "events", "retry", "--all")
    assert code == 1, output
    assert "no handler named 'record'" in output

    broken = False  # the cause is fixed
    report = await retry(runtime.db, registry)
    assert report.retried == [dead.id]
    assert report.failed == {}
    assert handled == [0, 2, 3, 1]
    assert await dead_events(runtime.db) == []
    assert len(await dead_events(runtime.db, include_retried=True)) == 1

    stop.set()
    await running
