"""The one way to reach the event broker: in-process by default, FastStream when configured.

Code publishes domain events by topic with a JSON payload and never names the broker, so
the same code runs embedded (handlers called in this process) or on RabbitMQ through
FastStream (``CLARITY_BROKER_URL=amqp://...``).

On a broker, events are split into ``N`` partitions (``CLARITY_EVENT_PARTITIONS``) by a
stable hash of the message's ``partition_key`` (the patient), so that one patient's events
stay in one ordered queue; ``clarity worker`` processes (:mod:`clarity.worker`) share the
partitions between them. The worker needs only :class:`PartitionedBus`: another broker
(Kafka, NATS, Redis streams, which FastStream also speaks) plugs in by implementing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from clarity.logging import get_logger

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
    from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue

log = get_logger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

CONNECT_TIMEOUT = 5.0  # seconds for one connection attempt (TCP + AMQP handshake)
RECONNECT_INTERVAL = 1.0  # seconds between attempts once connected (robust connection)
DRAIN_TIMEOUT = 30.0  # seconds a closing partition waits for the event in its handler
MAX_RETRY_DELAY = 30.0  # seconds, the longest wait before a failed event is retried
CLOSE_TIMEOUT = 5.0  # seconds to close a partition's channel (the broker may be gone)


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key``: CRC-32 of its UTF-8 bytes modulo ``partitions``.

    CRC-32 rather than Python's ``hash()``, which is salted per process: every publisher
    and worker must put the same key in the same partition."""
    return zlib.crc32(key.encode()) % partitions


class EventBus(Protocol):
    name: str
    max_in_flight: int

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool: ...

    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class Subscription(Protocol):
    async def close(self) -> None:
        """Stop consuming: wait for the event in hand, hand back the undelivered ones."""
        ...


@runtime_checkable
class PartitionedBus(EventBus, Protocol):
    """A broker whose events can be consumed one partition at a time, in order."""

    partitions: int

    async def consume(self, partition: int, handler: Handler) -> Subscription:
        """Deliver ``partition``'s events to ``handler`` one at a time, in order, at least
        once: an event is settled only when the handler returns; if it raises, the event
        is delivered again (after a growing delay) before any later one."""
        ...


class InProcessBus:
    """Delivers each event to the handlers subscribed in this process, in order."""

    name = "in-process"
    #: Publishes the relay may have in flight at once (handlers here run inline, in order).
    max_in_flight = 1

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
    """RabbitMQ through FastStream: a durable direct exchange ``<prefix>.events`` and one
    durable queue per partition, ``<prefix>.events.p<k>`` bound to key ``p.<k>``.

    Publishing waits for the broker's confirm (persistent messages, ``mandatory``: an
    unroutable one is an error), so the outbox marks an event published only once the
    broker has stored it. Each queue has ``x-single-active-consumer``: if two workers ever
    consume one partition, the broker still feeds only one of them, in order.
    """

    name = "rabbitmq"
    #: Publishes the outbox relay may await at once, of different partition keys (each
    #: waits for its own confirm; one key's events are still published one at a time).
    max_in_flight = 64

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "clarity",
        partitions: int = 16,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        from faststream.rabbit import Channel, ExchangeType, RabbitBroker, RabbitExchange

        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.partitions = partitions
        self.prefix = prefix
        self._broker: RabbitBroker = RabbitBroker(
            url,
            logger=None,
            timeout=connect_timeout,
            reconnect_interval=RECONNECT_INTERVAL,
            apply_types=False,
            # A message no queue takes is an error, not a silent loss.
            default_channel=Channel(on_return_raises=True),
        )
        self.exchange: RabbitExchange = RabbitExchange(
            f"{prefix}.events", type=ExchangeType.DIRECT, durable=True
        )
        self._connected = False
        self._connecting: asyncio.Task[None] | None = None
        self._subscriptions: set[RabbitPartition] = set()

    def queue(self, partition: int) -> RabbitQueue:
        from faststream.rabbit import RabbitQueue

        return RabbitQueue(
            f"{self.prefix}.events.p{partition}",
            durable=True,
            routing_key=f"p.{partition}",
            arguments={"x-single-active-consumer": True},
        )

    async def start(self) -> None:
        try:
            await self._ensure_connected()
        except Exception as exc:
            # Not fatal: readiness reports the broker down, publishing retries connecting.
            log.warning("broker.connect_failed", error=type(exc).__name__)

    async def _ensure_connected(self) -> None:
        """Connect and declare the exchange and queues, once; concurrent callers share one
        attempt, which runs to its end even when a caller stops waiting (a connection
        cancelled half-way leaves aio-pika tasks and sockets behind)."""
        if self._connected:
            return
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._connect(), name="broker-connect")
            self._connecting.add_done_callback(_retrieve)
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        try:
            await self._broker.connect()
            await self._declare()
        except BaseException:
            # Close whatever was opened, so the next attempt starts from nothing.
            with contextlib.suppress(Exception):
                await self._broker.stop()
            raise
        self._connected = True

    async def _declare(self) -> None:
        """The exchange and every partition queue, so that no event is published before
        the queue that keeps it exists (the API may run before any worker)."""
        exchange = await self._broker.declare_exchange(self.exchange)
        for partition in range(self.partitions):
            queue = self.queue(partition)
            declared = await self._broker.declare_queue(queue)
            await declared.bind(exchange, routing_key=queue.routing_key)

    async def stop(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        if self._connecting is not None and not self._connecting.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connecting
        self._connected = False
        await self._broker.stop()

    async def ping(self) -> bool:
        try:
            await self._ensure_connected()
            return bool(await self._broker.ping(timeout=2))
        except Exception:
            return False

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish to the partition of ``payload["partition_key"]`` (else of the topic) and
        return once the broker has confirmed it; raise if it refuses or cannot route it."""
        await self._ensure_connected()
        body = payload if "event_type" in payload else {**payload, "event_type": topic}
        key = str(payload.get("partition_key") or topic)
        await self._broker.publish(
            body,
            exchange=self.exchange,
            routing_key=f"p.{partition_of(key, self.partitions)}",
            persist=True,
            mandatory=True,
            message_id=str(payload.get("event_id") or uuid.uuid4()),
            headers={"topic": topic},
        )

    async def consume(self, partition: int, handler: Handler) -> RabbitPartition:
        """Consume one partition queue on a channel of its own (prefetch 1).

        The consumer side speaks aio-pika, FastStream's driver, on FastStream's connection,
        because FastStream 0.7's subscribers do not fit a partition that moves between
        workers: they cache a declared queue whatever its channel (a partition consumed
        again would use the closed channel), and stopping one leaves a message delivered
        while it stops unacknowledged on a channel that stays open, which holds the
        partition back until the process exits."""
        if not 0 <= partition < self.partitions:
            raise ValueError("no such partition")
        await self._ensure_connected()
        connection = await self._broker.connect()
        if not connection.connected.is_set():
            raise ConnectionError("the broker is unreachable (reconnecting)")
        channel = await connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=1)
            spec = self.queue(partition)
            queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
            await queue.bind(self.exchange.name, routing_key=spec.routing_key)
            subscription = RabbitPartition(partition, channel, queue, handler, self._subscriptions)
            await subscription.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        return subscription


class RabbitPartition:
    """One partition queue consumed on its own channel, one event at a time."""

    def __init__(
        self,
        partition: int,
        channel: AbstractRobustChannel,
        queue: AbstractQueue,
        handler: Handler,
        registry: set[RabbitPartition],
    ) -> None:
        self.partition = partition
        self._channel = channel
        self._queue = queue
        self._handler = handler
        self._registry = registry
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._handling: asyncio.Task[Any] | None = None
        self._failures = 0

    async def start(self) -> None:
        await self._queue.consume(self._on_message)
        self._registry.add(self)

    async def close(self) -> None:
        """Stop taking events, let the one in the handler finish and settle, then close the
        channel. Closing (rather than cancelling the consumer first) makes the broker put
        back any event delivered meanwhile at the head of the queue in the same step that
        removes this consumer, so the next consumer starts exactly where this one ended.
        A handler still busy after :data:`DRAIN_TIMEOUT` is cancelled (its transaction
        rolls back) and its event is delivered again, to whoever consumes next."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT)
        except TimeoutError:
            if self._handling is not None:
                self._handling.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._channel.close(), CLOSE_TIMEOUT)
        self._registry.discard(self)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._closing.is_set():
            return  # left unacknowledged: closing the channel puts it back in place
        self._idle.clear()
        self._handling = asyncio.current_task()
        try:
            await self._process(message)
        finally:
            self._handling = None
            self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            payload = orjson.loads(message.body)
            if not isinstance(payload, dict):
                raise TypeError("event body is not a JSON object")
        except (orjson.JSONDecodeError, TypeError) as exc:
            # Not an event of ours; it can never be handled, so it must not block the queue.
            log.error(
                "events.malformed_message",
                partition=self.partition,
                message_id=message.message_id,
                error=type(exc).__name__,
            )
            await _settle(message.reject(requeue=False))
            return
        try:
            await self._handler(payload)
        except Exception as exc:
            self._failures += 1
            delay = min(MAX_RETRY_DELAY, 0.5 * 2 ** (self._failures - 1))
            log.error(
                "events.handler_failed",
                partition=self.partition,
                topic=payload.get("event_type"),
                event_id=payload.get("event_id"),
                attempt=self._failures,
                retry_in=delay,
                error=type(exc).__name__,
            )
            # Hold the partition (later events of the patient must wait), then put it back.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            if not self._closing.is_set():
                await _settle(message.nack(requeue=True))
            return
        self._failures = 0
        await _settle(message.ack())


async def _settle(action: Awaitable[Any]) -> None:
    """Ack/nack/reject; on a lost channel the broker requeues the event by itself."""
    try:
        await action
    except Exception as exc:
        log.warning("events.settle_failed", error=type(exc).__name__)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a background attempt's failure as seen (its waiters got or logged it)."""
    if not task.cancelled():
        task.exception()


def create_bus(
    broker_url: str | None, *, prefix: str = "clarity", partitions: int = 16
) -> EventBus:
    if not broker_url:
        return InProcessBus()
    if broker_url.startswith(("amqp://", "amqps://")):
        return RabbitBus(broker_url, prefix=prefix, partitions=partitions)
    raise ValueError("CLARITY_BROKER_URL must be amqp:// or amqps:// (or unset for in-process)")
