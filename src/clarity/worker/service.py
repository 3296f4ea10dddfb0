"""The worker loop: heartbeat, rebalance, consume the partitions held, run periodic jobs.

Every heartbeat the worker renews its leases, computes its fair share and takes free
partitions or gives extra ones back. It consumes exactly the partitions it holds. Giving
one back closes its consumer first (the event in the handler finishes and is settled,
anything delivered meanwhile goes back to the head of the queue) and only then releases
the lease, so the next holder starts where this one stopped; that happens in the
background, so heartbeats and renewals never wait for a slow handler. If the leases cannot be
renewed (the database is unreachable) for most of a lease, the worker stops consuming
before they can expire under it; should two consumers still overlap briefly, the
queue's single-active-consumer setting feeds only one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from clarity.database import utcnow
from clarity.events import PartitionedBus, Subscription
from clarity.logging import get_logger
from clarity.worker.balance import fair_share, plan
from clarity.worker.dead_letters import set_aside
from clarity.worker.leases import LeaseStore
from clarity.worker.registry import PeriodicJob, Registry

if TYPE_CHECKING:
    from clarity.runtime import Runtime

log = get_logger(__name__)

# Stop consuming when the leases have gone unrenewed for this fraction of a lease.
UNRENEWED_LIMIT = 0.8
FORGET_EVERY_TICKS = 20
CONSUME_TIMEOUT = 10.0  # seconds to start consuming a partition before leaving it to others


class WorkerError(RuntimeError):
    """The worker cannot run with this configuration; the message says why, in one line."""


class Worker:
    def __init__(
        self, runtime: Runtime, registry: Registry, *, worker_id: str, concurrency: int = 8
    ) -> None:
        bus = runtime.bus
        if not isinstance(bus, PartitionedBus):
            raise WorkerError(
                "clarity worker needs a broker (CLARITY_BROKER_URL=amqp://...); "
                "without one the server handles events in-process"
            )
        if concurrency < 1:
            raise WorkerError("concurrency must be at least 1")
        settings = runtime.settings
        if settings.worker_heartbeat_seconds * 2 > settings.worker_lease_seconds:
            raise WorkerError(
                "CLARITY_WORKER_HEARTBEAT_SECONDS must be at most half of "
                "CLARITY_WORKER_LEASE_SECONDS (leases are renewed every heartbeat)"
            )
        self.worker_id = worker_id
        self.db = runtime.db
        self.max_attempts = settings.worker_max_attempts
        # Failures in a row per (handler, event id): past max_attempts, a dead letter.
        self._failures: dict[tuple[str, str], int] = {}
        self.bus: PartitionedBus = bus
        self.registry = registry
        self.store = LeaseStore(
            runtime.db, worker_id, uuid.uuid4().hex, settings.worker_lease_seconds
        )
        self.lease_seconds = settings.worker_lease_seconds
        self.heartbeat_seconds = settings.worker_heartbeat_seconds
        self._consumers: dict[int, Subscription] = {}
        self._draining: set[int] = set()  # given back, closing: leased until released
        self._closing: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._registered = False
        self._renewed_at: float | None = None
        self._ticks = 0

    @property
    def held(self) -> list[int]:
        """The partitions this worker consumes now."""
        return sorted(self._consumers)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then hand every partition back."""
        rows = await self.store.ensure_partitions(self.bus.partitions)
        if rows > self.bus.partitions:
            raise WorkerError(
                f"the lease table has {rows} partitions but CLARITY_EVENT_PARTITIONS is "
                f"{self.bus.partitions}: every server and worker must use the same count"
            )
        jobs = [
            asyncio.create_task(self._repeat(job), name=f"job:{job.name}")
            for job in self.registry.jobs
        ]
        try:
            while not stop.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.heartbeat_seconds)
        finally:
            for task in jobs:
                task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            self._close_later(self._consumers, release=False)  # retire releases them all
            await asyncio.gather(*self._closing, return_exceptions=True)
            try:
                await self.store.retire()
            except Exception as exc:  # the leases expire by themselves
                log.warning("worker.retire_failed", error=type(exc).__name__)
            log.info("worker.stopped", worker=self.worker_id)

    async def tick(self) -> None:
        """One heartbeat: announce, renew, rebalance. Failures are logged, never raised."""
        try:
            await self._tick()
        except Exception as exc:
            log.warning("worker.tick_failed", worker=self.worker_id, error=type(exc).__name__)
            loop = asyncio.get_running_loop()
            unrenewed = self._renewed_at is None or (
                loop.time() - self._renewed_at > self.lease_seconds * UNRENEWED_LIMIT
            )
            if self._consumers and unrenewed:
                log.error("worker.leases_unrenewed", worker=self.worker_id, held=self.held)
                self._close_later(self._consumers, release=False)

    async def _tick(self) -> None:
        now = utcnow()
        if not self._registered:
            self._registered = await self.store.register(now)
            if not self._registered:
                log.warning("worker.id_in_use", worker=self.worker_id)
                return
            log.info("worker.registered", worker=self.worker_id)
        elif not await self.store.heartbeat(now):
            log.error("worker.id_taken_over", worker=self.worker_id)
            self._registered = False
            self._close_later(self._consumers, release=False)
            return
        live = await self.store.live_workers(now)
        kept = await self.store.renew([*self._consumers, *self._draining], now)
        self._renewed_at = asyncio.get_running_loop().time()
        before = self.held
        lost = set(self._consumers) - kept
        if lost:
            log.warning("worker.partitions_lost", worker=self.worker_id, partitions=sorted(lost))
            self._close_later(lost, release=False)
        share = fair_share(self.bus.partitions, live)
        step = plan(self._consumers, share)
        if step.give_back:
            self._close_later(step.give_back, release=True)
        elif step.take:
            if await self.bus.ping():
                await self._open(await self.store.claim(step.take, utcnow()))
            else:  # what this worker cannot consume is left to the others
                log.warning("worker.broker_unreachable", worker=self.worker_id)
        if self.held != before:
            log.info(
                "worker.partitions",
                worker=self.worker_id,
                held=self.held,
                share=share,
                live_workers=live,
            )
        self._ticks += 1
        if self._ticks % FORGET_EVERY_TICKS == 0:
            await self.store.forget_dead(now)

    async def _open(self, partitions: Iterable[int]) -> None:
        failed: list[int] = []
        errors: set[str] = set()
        for partition in partitions:
            try:
                self._consumers[partition] = await asyncio.wait_for(
                    self.bus.consume(partition, partial(self._handle, partition)),
                    CONSUME_TIMEOUT,
                )
            except Exception as exc:
                failed.append(partition)
                errors.add(type(exc).__name__)
        if failed:
            # A partition this worker cannot consume (the broker is down) is left to others.
            log.warning(
                "worker.consume_failed",
                worker=self.worker_id,
                partitions=failed,
                errors=sorted(errors),
            )
            await self.store.release(failed)

    def _close_later(self, partitions: Iterable[int], *, release: bool) -> None:
        """Stop consuming ``partitions`` now, and close them in the background (each waits
        for the event in its handler), so that heartbeats and renewals go on meanwhile;
        ``release``: then give the leases back (renewed until then)."""
        closing = {p: self._consumers.pop(p) for p in list(partitions) if p in self._consumers}
        if not closing:
            return
        if release:
            self._draining.update(closing)
        task = asyncio.create_task(self._drain(closing, release), name="worker-drain")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _drain(self, closing: dict[int, Subscription], release: bool) -> None:
        await asyncio.gather(*(consumer.close() for consumer in closing.values()))
        if not release:
            return
        try:
            await self.store.release(closing)
        except Exception as exc:  # the leases expire by themselves
            log.warning("worker.release_failed", worker=self.worker_id, error=type(exc).__name__)
        finally:
            self._draining.difference_update(closing)

    async def _handle(self, partition: int, payload: dict[str, Any]) -> None:
        """Run the event's handlers in order. A handler's failure makes the bus deliver the
        event again (after a growing delay, before any later one of its partition) until
        it has failed :attr:`max_attempts` times in a row: then it is set aside as a dead
        letter (:mod:`clarity.worker.dead_letters`) and the next handler and the next
        event go on."""
        topic = str(payload.get("event_type", ""))
        routes = self.registry.routes_for(topic)
        if not routes:
            return
        event_id = str(payload.get("event_id", ""))
        async with self._slots:
            for route in routes:
                key = (route.name, event_id)
                try:
                    await route.handler(payload)
                except Exception as exc:
                    attempts = self._failures.get(key, 0) + 1
                    log.error(
                        "worker.handler_failed",
                        handler=route.name,
                        topic=topic,
                        partition=partition,
                        event_id=event_id,
                        attempt=attempts,
                        error=type(exc).__name__,
                    )
                    if attempts < self.max_attempts:
                        if len(self._failures) > 10_000:  # events that moved elsewhere
                            self._failures.clear()
                        self._failures[key] = attempts
                        raise
                    # Raises while the database is down: the event then stays and returns.
                    await set_aside(self.db, route.name, payload, type(exc).__name__, attempts)
                    log.error(
                        "worker.event_dead_lettered",
                        handler=route.name,
                        topic=topic,
                        partition=partition,
                        event_id=event_id,
                        attempts=attempts,
                    )
                self._failures.pop(key, None)

    async def _repeat(self, job: PeriodicJob) -> None:
        while True:
            try:
                await job.run()
            except Exception as exc:
                log.error("worker.job_failed", job=job.name, error=type(exc).__name__)
            await asyncio.sleep(job.seconds)
