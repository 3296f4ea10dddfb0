"""Partition leases and worker heartbeats in the database, by conditional updates.

Every change is one ``UPDATE ... WHERE <the state it expects> RETURNING``: two workers
racing for a partition both run it, the database serializes them, and only the first still
finds the partition free (PostgreSQL re-checks the condition on the row it waited for).
So a partition never has two holders in the table. Times are the workers' clocks (UTC),
which must agree to well within a lease.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from clarity.database import Database
from clarity.worker.models import EventPartitionLease, EventWorker

# Heartbeat rows of workers silent this many leases are deleted (a dead worker's row).
FORGET_AFTER_LEASES = 10


class LeaseStore:
    def __init__(self, db: Database, worker_id: str, instance: str, lease_seconds: float) -> None:
        self.db = db
        self.worker_id = worker_id
        self.instance = instance
        self.lease = timedelta(seconds=lease_seconds)

    def _free(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            EventPartitionLease.worker_id.is_(None),
            EventPartitionLease.expires_at.is_(None),
            EventPartitionLease.expires_at < now,
        )

    async def ensure_partitions(self, partitions: int) -> int:
        """Create the lease rows 0..partitions-1 that are missing; return how many rows
        there are in all (more than ``partitions`` means another partition count is in use)."""
        async with self.db.session(system=True) as session:
            existing = set(await session.scalars(select(EventPartitionLease.partition)))
            missing = [p for p in range(partitions) if p not in existing]
            if missing:
                session.add_all(EventPartitionLease(partition=p) for p in missing)
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()  # another worker made them at the same time
            total = await session.scalar(select(func.count()).select_from(EventPartitionLease))
            return int(total or 0)

    async def register(self, now: datetime) -> bool:
        """Announce this worker; False while a live process of another instance holds the
        same worker id (a dead one's id is taken over once its heartbeat is a lease old)."""
        async with self.db.session(system=True) as session:
            row = await session.get(EventWorker, self.worker_id)
            if row is None:
                session.add(
                    EventWorker(
                        worker_id=self.worker_id,
                        instance=self.instance,
                        started_at=now,
                        heartbeat_at=now,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return False
                return True
            if row.instance != self.instance and row.heartbeat_at >= now - self.lease:
                return False
            taken = await session.scalar(
                update(EventWorker)
                .where(
                    EventWorker.worker_id == self.worker_id,
                    EventWorker.instance == row.instance,
                )
                .values(instance=self.instance, started_at=now, heartbeat_at=now)
                .returning(EventWorker.worker_id)
            )
            await session.commit()
            return taken is not None

    async def heartbeat(self, now: datetime) -> bool:
        """Refresh this worker's heartbeat; False if its id was taken over meanwhile."""
        async with self.db.session(system=True) as session:
            found = await session.scalar(
                update(EventWorker)
                .where(EventWorker.worker_id == self.worker_id)
                .where(EventWorker.instance == self.instance)
                .values(heartbeat_at=now)
                .returning(EventWorker.worker_id)
            )
            await session.commit()
            return found is not None

    async def live_workers(self, now: datetime) -> int:
        async with self.db.session(system=True) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(EventWorker)
                .where(EventWorker.heartbeat_at >= now - self.lease)
            )
            return max(1, int(count or 0))

    async def renew(self, held: Collection[int], now: datetime) -> set[int]:
        """Extend this worker's leases on ``held``; returns those it still holds."""
        if not held:
            return set()
        async with self.db.session(system=True) as session:
            kept = await session.scalars(
                update(EventPartitionLease)
                .where(EventPartitionLease.partition.in_(list(held)))
                .where(EventPartitionLease.worker_id == self.worker_id)
                .values(expires_at=now + self.lease)
                .returning(EventPartitionLease.partition)
            )
            result = set(kept)
            await session.commit()
            return result

    async def claim(self, count: int, now: datetime) -> list[int]:
        """Take up to ``count`` free or expired partitions, lowest first."""
        if count <= 0:
            return []
        free = (
            select(EventPartitionLease.partition)
            .where(self._free(now))
            .order_by(EventPartitionLease.partition)
            .limit(count)
            .scalar_subquery()
        )
        async with self.db.session(system=True) as session:
            taken = await session.scalars(
                update(EventPartitionLease)
                .where(EventPartitionLease.partition.in_(free))
                .where(self._free(now))
                .values(worker_id=self.worker_id, expires_at=now + self.lease)
                .returning(EventPartitionLease.partition)
            )
            result = sorted(taken)
            await session.commit()
            return result

    async def release(self, partitions: Collection[int]) -> None:
        if not partitions:
            return
        async with self.db.session(system=True) as session:
            await session.execute(
                update(EventPartitionLease)
                .where(EventPartitionLease.partition.in_(list(partitions)))
                .where(EventPartitionLease.worker_id == self.worker_id)
                .values(worker_id=None, expires_at=None)
            )
            await session.commit()

    async def retire(self) -> None:
        """Leave for good: remove the heartbeat and release every lease (unless another
        process has taken this worker id over: the leases are its own then)."""
        async with self.db.session(system=True) as session:
            mine = await session.scalar(
                delete(EventWorker)
                .where(EventWorker.worker_id == self.worker_id)
                .where(EventWorker.instance == self.instance)
                .returning(EventWorker.worker_id)
            )
            if mine is not None:
                await session.execute(
                    update(EventPartitionLease)
                    .where(EventPartitionLease.worker_id == self.worker_id)
                    .values(worker_id=None, expires_at=None)
                )
            await session.commit()

    async def forget_dead(self, now: datetime) -> None:
        async with self.db.session(system=True) as session:
            await session.execute(
                delete(EventWorker).where(
                    EventWorker.heartbeat_at < now - self.lease * FORGET_AFTER_LEASES
                )
            )
            await session.commit()
