"""Biometric samples and the batches they arrived in.

A sample is identified by (patient, stream, time, source): that key is the table's primary
key, so the database itself refuses duplicates (ingestion inserts with ``ON CONFLICT DO
NOTHING``), and its leading columns serve "one patient, one stream, a time range".

On PostgreSQL the sample table is partitioned by month on ``ts`` (migration 0005 creates
the partitions, in the ``biometric_partitions`` schema, and a default partition for
anything outside them); SQLite has the same table unpartitioned.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class BiometricBatch(UUIDPrimaryKey, TenantScoped, Base):
    """One accepted upload; its receipt is returned again when the same batch is resent."""

    __tablename__ = "biometric_batches"
    __table_args__ = (
        UniqueConstraint("patient_id", "client_batch_id"),
        Index("ix_biometric_batches_patient_last_ts", "patient_id", "last_ts"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    client_batch_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Time range of the samples it stored (None when it stored none): cached analytics
    # for a patient are stale when a batch overlapping their range arrives after them.
    first_ts: Mapped[datetime | None] = mapped_column(default=None)
    last_ts: Mapped[datetime | None] = mapped_column(default=None)


class BiometricSample(TenantScoped, Base):
    __tablename__ = "biometric_samples"
    __table_args__ = {"postgresql_partition_by": "RANGE (ts)"}

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    batch_id: Mapped[uuid.UUID] = mapped_column()
