"""Who consumes which event partition: worker heartbeats and partition leases; and the
events a handler kept failing on (dead letters).

A partition belongs to the worker named in its lease until ``expires_at``; the holder
renews it on every heartbeat, so a dead worker's partitions become free one lease later.
``instance`` tells two processes started with the same ``--id`` apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
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


class DeadEvent(Base):
    """An event one handler failed on ``attempts`` times in a row: set aside so that the
    partition's later events go on, kept until ``clarity events retry`` handles it.
    Payloads carry ids, never PHI (domain events are built that way)."""

    __tablename__ = "dead_events"
    __table_args__ = (UniqueConstraint("handler", "event_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    handler: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[uuid.UUID]
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer)
    dead_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(default=None)
