"""Alert delivery in one running process: follow alert events, feed the streams, send webhooks.

Two background tasks, started and stopped by the app's lifespan:

* the **feed** polls the outbox for committed alert events (:class:`OutboxTail`), hands the
  new ones to this process's SSE streams and records their webhook deliveries; the
  in-process bus wakes it as soon as the relay publishes an alert event, otherwise it polls
  every ``CLARITY_ALERT_POLL_SECONDS``;
* the **sender** runs :func:`deliver_due` when woken (new deliveries, a manual retry) and
  at the same interval, so retries go out when they fall due.

A failure of either is logged and retried after a pause; it never stops the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx

from clarity.alerts.delivery.feed import ALERT_TOPICS, AlertEvent, Broadcaster, OutboxTail
from clarity.alerts.delivery.webhooks import deliver_due, record_deliveries
from clarity.events import InProcessBus
from clarity.logging import get_logger
from clarity.runtime import Runtime

log = get_logger(__name__)

MAX_BACKOFF: Final = 30.0
SEND_BATCH: Final = 100
MAX_UNRECORDED: Final = 10_000


async def _wait(wake: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()


class AlertDelivery:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tail = OutboxTail(runtime.db)
        self.broadcaster = Broadcaster()
        self._feed_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._unrecorded: list[AlertEvent] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    @property
    def poll_seconds(self) -> float:
        return self.runtime.settings.alert_poll_seconds

    def wake_feed(self) -> None:
        self._feed_wake.set()

    def wake_sender(self) -> None:
        self._send_wake.set()

    async def _on_alert_event(self, _payload: dict[str, Any]) -> None:
        """Bus handler: only a wake-up (the relay holds the database connection while it
        publishes, so the feed reads the committed event itself, right after)."""
        self.wake_feed()

    async def start(self) -> None:
        await self.tail.start()
        if isinstance(self.runtime.bus, InProcessBus):
            for topic in ALERT_TOPICS:
                self.runtime.bus.subscribe(topic, self._on_alert_event)
        self._client = httpx.AsyncClient(
            timeout=self.runtime.settings.webhook_timeout_seconds, follow_redirects=False
        )
        self._tasks = [
            asyncio.create_task(self._run(self._feed_once, self._feed_wake), name="alert-feed"),
            asyncio.create_task(self._run(self._send_once, self._send_wake), name="webhooks"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _feed_once(self) -> bool:
        """One poll; True when more events are waiting."""
        events = await self.tail.poll()
        for event in events:
            if event.seq > self.tail.start_seq:  # the start-up look-back is for webhooks only
                self.broadcaster.publish(event)
        pending = self._unrecorded + events
        self._unrecorded = []
        try:
            if pending and await record_deliveries(self.runtime.db, pending):
                self.wake_sender()
        except Exception:
            self._unrecorded = pending[-MAX_UNRECORDED:]  # tried again at the next poll
            raise
        return self.tail.more

    async def _send_once(self) -> bool:
        return await deliver_due(self.runtime, client=self._client, limit=SEND_BATCH) >= SEND_BATCH

    async def _run(self, step: Callable[[], Awaitable[bool]], wake: asyncio.Event) -> None:
        backoff = 0.0
        while True:
            try:
                more = await step()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                log.warning(
                    "alerts.delivery_failed",
                    step=getattr(step, "__name__", "step"),
                    error=type(exc).__name__,
                )
                await asyncio.sleep(backoff)
                continue
            if not more:
                await _wait(wake, self.poll_seconds)
