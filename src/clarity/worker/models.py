"""Who consumes which event partition: worker heartbeats and partition leases.

A partition belongs to the worker named in its lease until ``expires_at``; the holder
renews it on every heartbeat, so a dead worker's partitions become free one lease later.
``instance`` tells two processes started with the same ``--id`` apart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, utcnow


class EventWorker(Base):
    __tablename__ = "event_workers"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    instance: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventPartitionLease(Base):
    __tablename__ = "event_partition_leases"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    worker_id: Mapped[str | None] = mapped_column(String(128), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
