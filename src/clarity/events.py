"""The one way to reach the event broker: in-process by default, FastStream when configured.

Code publishes domain events by topic with a JSON payload and never names the broker, so
the same code runs embedded (handlers called in this process) or on RabbitMQ through
FastStream (``CLARITY_BROKER_URL=amqp://...``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from clarity.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class EventBus(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool: ...

    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class InProcessBus:
    """Delivers each event to the handlers subscribed in this process, in order."""

    name = "in-process"

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Call each handler in turn. A failing handler is logged and does not stop the
        others or the publisher (the outbox relay would otherwise retry the event forever,
        holding back every later event): in-process handlers do their own retries."""
        for handler in self._handlers.get(topic, []):
            try:
                await handler(payload)
            except Exception as exc:
                log.error(
                    "events.handler_failed",
                    topic=topic,
                    handler=getattr(handler, "__qualname__", "handler"),
                    error=type(exc).__name__,
                )


class RabbitBus:
    """RabbitMQ through FastStream; topics are routing keys on the default exchange."""

    name = "rabbitmq"

    def __init__(self, url: str) -> None:
        from faststream.rabbit import RabbitBroker

        self._broker = RabbitBroker(url, logger=None)
        self._started = False

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._broker.connect(), timeout=5)
            self._started = True
        except (TimeoutError, OSError, ConnectionError) as exc:
            # Not fatal: readiness reports the broker down until it answers.
            log.warning("broker.connect_failed", error=type(exc).__name__)

    async def stop(self) -> None:
        await self._broker.stop()

    async def ping(self) -> bool:
        if not self._started:
            await self.start()
        try:
            return bool(await self._broker.ping(timeout=2))
        except (TimeoutError, OSError, ConnectionError):
            return False

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self._broker.publish(payload, routing_key=topic)


def create_bus(broker_url: str | None) -> EventBus:
    if not broker_url:
        return InProcessBus()
    if broker_url.startswith(("amqp://", "amqps://")):
        return RabbitBus(broker_url)
    raise ValueError("CLARITY_BROKER_URL must be amqp:// or amqps:// (or unset for in-process)")
