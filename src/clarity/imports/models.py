"""File import jobs: one row per file being imported into a patient's biometric streams.

A job is resumable because its work is cut into numbered chunks, each stored as a biometric
batch whose client batch id is ``import:<job id>:<chunk>``: a chunk committed before an
interruption is recognised and skipped (its batch already exists), so a resumed job ends
with exactly the samples an uninterrupted one would have stored. Progress counters are
updated in the same transaction as each chunk.

No file name is kept (names of exported files often carry the patient's name): the job
holds the file's size, SHA-256 and where the server keeps its copy.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clarity.database import Base, TenantScoped, UUIDPrimaryKey, utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ACTIVE = (JobStatus.queued, JobStatus.running)


class ImportJob(UUIDPrimaryKey, TenantScoped, Base):
    __tablename__ = "import_jobs"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(32))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued, index=True)
    file_path: Mapped[str] = mapped_column(String(1024))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the worker running it last reported; a running job silent for long is resumable.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    # Seconds spent running, summed over resumptions (for rows/s).
    seconds_running: Mapped[float] = mapped_column(default=0.0)
    # The first rejected records: {"record": n, "reason": ..., "field": ...}; never values.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # What the file held that maps to no stream, by kind (record types, schemas): set when
    # the file has been read to its end, so that nothing is dropped silently.
    skipped: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    failure: Mapped[str | None] = mapped_column(String(512), default=None)
