"""The event bus on a real RabbitMQ: readiness sees it, and a published event arrives."""

from __future__ import annotations

import asyncio
import os
import uuid

import aio_pika

from clarity.events import RabbitBus
from tests.conftest import Harness

RABBIT_URL = os.environ.get("CLARITY_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def test_readiness_reports_rabbitmq(harness_factory: object) -> None:
    h: Harness = await harness_factory(broker_url=RABBIT_URL)  # type: ignore[operator]
    body = (await h.client.get("/health/ready")).json()
    assert body["checks"]["broker"] == {
        **body["checks"]["broker"],
        "status": "up",
        "backend": "rabbitmq",
    }


async def test_published_event_reaches_a_rabbitmq_queue() -> None:
    queue_name = f"clarity.test.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(RABBIT_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, auto_delete=True)
        bus = RabbitBus(RABBIT_URL)
        await bus.start()
        try:
            await bus.publish(queue_name, {"kind": "test.event", "n": 1})
        finally:
            await bus.stop()
        message = None
        for _ in range(50):
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None, "the event never reached the queue"
        assert b'"test.event"' in message.body
    finally:
        await connection.close()
