"""The event bus on a real RabbitMQ: readiness sees it; an event lands, persistent and with
its id, in the queue of its partition; an event no queue takes is refused (so the outbox
keeps it); one partition feeds one consumer at a time and a closed consumer hands over
exactly where it stopped; an unanswering broker leaves no half-made connection behind."""

from __future__ import annotations

import asyncio
import gc
import socket
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed, PublishError

from clarity.events import RabbitBus, partition_of
from tests.conftest import Harness
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


@pytest.fixture
async def bus() -> AsyncIterator[RabbitBus]:
    bus = RabbitBus(SHARED_RABBIT_URL, prefix=unique_prefix(), partitions=PARTITIONS)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
        await delete_topology(SHARED_RABBIT_URL, bus.prefix, PARTITIONS)


async def test_readiness_reports_rabbitmq(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    prefix = unique_prefix()
    h = await harness_factory(broker_url=SHARED_RABBIT_URL, broker_prefix=prefix)
    try:
        body = (await h.client.get("/health/ready")).json()
        assert body["checks"]["broker"] == {
            **body["checks"]["broker"],
            "status": "up",
            "backend": "rabbitmq",
        }
    finally:
        await delete_topology(SHARED_RABBIT_URL, prefix, h.runtime.settings.event_partitions)


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(50):
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("the event never reached its queue")


async def test_an_event_lands_in_its_partition_persistent_with_its_id(bus: RabbitBus) -> None:
    event_id = str(uuid.uuid4())
    key = str(uuid.uuid4())
    await bus.publish("probe.event", {"event_id": event_id, "partition_key": key, "n": 1})
    connection = await aio_pika.connect(SHARED_RABBIT_URL)
    try:
        channel = await connection.channel()
        name = f"{bus.prefix}.events.p{partition_of(key, PARTITIONS)}"
        queue = await channel.declare_queue(name, passive=True)
        message = await _get(queue)
        assert message.message_id == event_id
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers["topic"] == "probe.event"
        assert orjson.loads(message.body) == {
            "event_id": event_id,
            "partition_key": key,
            "n": 1,
            "event_type": "probe.event",
        }
        # Durable, with single active consumer: declaring it without that is refused.
        with pytest.raises(ChannelPreconditionFailed):
            await channel.declare_queue(name, durable=True)
    finally:
        await connection.close()


async def test_an_event_no_queue_takes_is_refused(bus: RabbitBus) -> None:
    key = "patient-without-a-queue"
    connection = await aio_pika.connect(SHARED_RABBIT_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(f"{bus.prefix}.events.p{partition_of(key, PARTITIONS)}")
    finally:
        await connection.close()
    with pytest.raises(PublishError, match="NO_ROUTE"):
        await bus.publish("probe.event", {"event_id": str(uuid.uuid4()), "partition_key": key})


async def test_a_partition_feeds_one_consumer_and_hands_over_in_order(bus: RabbitBus) -> None:
    other = RabbitBus(SHARED_RABBIT_URL, prefix=bus.prefix, partitions=PARTITIONS)
    await other.start()
    key = "one-patient"
    partition = partition_of(key, PARTITIONS)
    seen: dict[str, list[int]] = {"first": [], "second": []}
    progress = asyncio.Condition()

    def recorder(name: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def record(payload: dict[str, Any]) -> None:
            await asyncio.sleep(0.01)
            seen[name].append(int(payload["n"]))
            async with progress:
                progress.notify_all()

        return record

    async def until(check: Callable[[], bool]) -> None:
        async with asyncio.timeout(20), progress:
            await progress.wait_for(check)

    try:
        first = await bus.consume(partition, recorder("first"))
        second = await other.consume(partition, recorder("second"))  # waits: not active
        for n in range(40):
            await bus.publish(
                "probe.event", {"event_id": str(uuid.uuid4()), "partition_key": key, "n": n}
            )
        await until(lambda: len(seen["first"]) >= 10)
        assert seen["second"] == []
        await first.close()
        handed_over = len(seen["first"])
        await until(lambda: len(seen["first"]) + len(seen["second"]) >= 40)
        await asyncio.sleep(0.2)
        assert seen["first"] == list(range(handed_over))
        assert seen["second"] == list(range(handed_over, 40))
        await second.close()
    finally:
        await other.stop()


async def test_an_unanswering_broker_leaves_nothing_behind() -> None:
    """It accepts TCP and never speaks AMQP: every attempt times out, and stopping the bus
    leaves no pending task, unawaited coroutine or open socket of the driver behind."""
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: problems.append(str(context["message"])))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bus = RabbitBus(url, prefix=unique_prefix(), partitions=2, connect_timeout=0.3)
            await bus.start()
            assert await bus.ping() is False
            with pytest.raises(TimeoutError):
                await bus.publish("probe.event", {"event_id": str(uuid.uuid4())})
            await bus.stop()
            del bus
            await asyncio.sleep(0.1)
            gc.collect()
            await asyncio.sleep(0.1)
        leftovers = [
            str(w.message) for w in caught if w.category in (RuntimeWarning, ResourceWarning)
        ]
    loop.set_exception_handler(None)
    assert leftovers == []
    assert problems == []
