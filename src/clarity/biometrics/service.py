"""Biometric ingestion: parse a batch, validate each row, store exactly once, audit, publish.

Exactly once, twice over: a batch is known by its client batch id (the same id returns the
original receipt and writes nothing), and a sample by (patient, stream, ts, source), the
table's primary key. Duplicates are discarded by the database (``ON CONFLICT DO NOTHING``),
through its bulk path: COPY into a temporary table on PostgreSQL, executemany on SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.biometrics.models import BiometricBatch, BiometricSample
from clarity.biometrics.schemas import MAX_LISTED_REJECTIONS, MAX_SAMPLES, Receipt, RejectionOut
from clarity.biometrics.streams import Rejection, Sample, check_sample
from clarity.consent.service import has_consent
from clarity.database import utcnow
from clarity.errors import AppError
from clarity.logging import get_logger
from clarity.outbox.relay import OutboxRelay
from clarity.outbox.service import enqueue
from clarity.patients.access import PatientContext

log = get_logger(__name__)

BATCH_ACCEPTED_TOPIC = "biometrics.batch_accepted"
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_COLUMNS = ("organization_id", "patient_id", "stream", "ts", "value", "source", "batch_id")


@dataclass(frozen=True)
class Upload:
    client_batch_id: str
    rows: list[Any]


def _bad_body(detail: str) -> AppError:
    return AppError(422, "invalid_batch", detail)


def _client_batch_id(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise _bad_body("client_batch_id must be a string of 1 to 128 characters.")
    return value


def _checked_size(rows: list[Any]) -> list[Any]:
    if len(rows) > MAX_SAMPLES:
        raise AppError(
            413, "batch_too_large", f"A batch holds at most {MAX_SAMPLES} samples; split it."
        )
    return rows


def parse_json(body: bytes) -> Upload:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _bad_body("The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise _bad_body("The body must be an object with client_batch_id and samples.")
    samples = document.get("samples")
    if not isinstance(samples, list):
        raise _bad_body("samples must be a list.")
    return Upload(_client_batch_id(document.get("client_batch_id")), _checked_size(samples))


def parse_ndjson(body: bytes) -> Upload:
    """First line ``{"client_batch_id": ...}``, then one sample per line; a line that is not
    JSON becomes a rejected row (bad_format), not a failed batch."""
    lines = body.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise _bad_body("The body is empty.")
    try:
        header = orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise _bad_body('The first line must be {"client_batch_id": ...}.')
    rows: list[Any] = []
    for line in lines[1:]:
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            rows.append(None)
    return Upload(_client_batch_id(header.get("client_batch_id")), _checked_size(rows))


def parse_upload(content_type: str, body: bytes) -> Upload:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return parse_ndjson(body)
    if media in JSON_TYPES or media.endswith("+json"):
        return parse_json(body)
    raise AppError(
        415,
        "unsupported_media_type",
        "Send application/json or application/x-ndjson.",
    )


def _audit(
    session: AsyncSession,
    ctx: PatientContext,
    patient_id: uuid.UUID,
    action: str,
    details: dict[str, object],
    *,
    outcome: str = "success",
) -> None:
    extra = dict(details)
    if ctx.via_break_glass:
        extra["break_glass"] = True
    record(
        session,
        action,
        outcome=outcome,
        resource_type="patient",
        resource_id=patient_id,
        severity="high" if ctx.via_break_glass else ("warning" if outcome != "success" else "info"),
        details=extra,
    )


async def _existing(
    session: AsyncSession, patient_id: uuid.UUID, client_batch_id: str
) -> BiometricBatch | None:
    batch: BiometricBatch | None = await session.scalar(
        select(BiometricBatch).where(
            BiometricBatch.patient_id == patient_id,
            BiometricBatch.client_batch_id == client_batch_id,
        )
    )
    return batch


async def _store_sqlite(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    statement = sqlite_insert(cast(Table, BiometricSample.__table__)).on_conflict_do_nothing()
    result = await session.execute(statement, rows)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _store_postgres(session: AsyncSession, records: list[tuple[Any, ...]]) -> int:
    stage = f"biometric_stage_{uuid.uuid4().hex}"
    await session.execute(
        text(f"CREATE TEMPORARY TABLE {stage} (LIKE biometric_samples) ON COMMIT DROP")
    )
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        stage, records=records, columns=list(_COLUMNS)
    )
    columns = ", ".join(_COLUMNS)
    result = await session.execute(
        text(
            f"INSERT INTO biometric_samples ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
    )
    await session.execute(text(f"DROP TABLE {stage}"))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def store_samples(
    session: AsyncSession,
    organization_id: uuid.UUID,
    patient_id: uuid.UUID,
    batch_id: uuid.UUID,
    samples: list[Sample],
) -> int:
    """Insert the samples, skipping any already stored; returns how many were new."""
    if not samples:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return await _store_postgres(
            session,
            [
                (organization_id, patient_id, s.stream, s.ts, s.value, s.source, batch_id)
                for s in samples
            ],
        )
    return await _store_sqlite(
        session,
        [
            {
                "organization_id": organization_id,
                "patient_id": patient_id,
                "stream": s.stream,
                "ts": s.ts,
                "value": s.value,
                "source": s.source,
                "batch_id": batch_id,
            }
            for s in samples
        ],
    )


def event_payload(
    organization_id: uuid.UUID,
    patient_id: uuid.UUID,
    batch: BiometricBatch,
    samples: list[Sample],
) -> dict[str, Any]:
    """The ``biometrics.batch_accepted`` event: ids, streams, time range and counts; no values."""
    return {
        "organization_id": str(organization_id),
        "patient_id": str(patient_id),
        "batch_id": str(batch.id),
        "client_batch_id": batch.client_batch_id,
        "streams": sorted({s.stream for s in samples}),
        "start": min(s.ts for s in samples).isoformat(),
        "end": max(s.ts for s in samples).isoformat(),
        "received": batch.received,
        "accepted": batch.accepted,
        "duplicate": batch.duplicate,
        "rejected": batch.rejected,
    }


@dataclass
class StoredBatch:
    """What :func:`store_batch` did: the batch row, its receipt and the samples it kept."""

    batch: BiometricBatch
    receipt: Receipt
    samples: list[Sample]
    created: bool  # False: the batch id was known; ``receipt`` is the original one


async def store_batch(
    session: AsyncSession,
    organization_id: uuid.UUID,
    patient_id: uuid.UUID,
    client_batch_id: str,
    rows: Sequence[Any],
) -> StoredBatch:
    """Validate and store one batch of raw rows, exactly once; the caller audits and commits.

    Used by the ingestion API and by file imports (whose chunks are batches). A batch id
    already stored for the patient returns its original receipt and stores nothing.
    """
    existing = await _existing(session, patient_id, client_batch_id)
    if existing is not None:
        return StoredBatch(existing, _receipt_of(existing), [], created=False)

    now = utcnow()
    samples: list[Sample] = []
    rejections: list[Rejection] = []
    for index, row in enumerate(rows):
        checked = check_sample(index, row, now)
        if isinstance(checked, Sample):
            samples.append(checked)
        else:
            rejections.append(checked)

    batch = BiometricBatch(
        patient_id=patient_id,
        client_batch_id=client_batch_id,
        received_at=now,
        received=len(rows),
        rejected=len(rejections),
        first_ts=min((s.ts for s in samples), default=None),
        last_ts=max((s.ts for s in samples), default=None),
    )
    session.add(batch)
    try:
        await session.flush()
    except IntegrityError:
        # The same batch id arrived concurrently and was stored first: answer as a resend.
        await session.rollback()
        existing = await _existing(session, patient_id, client_batch_id)
        if existing is None:
            raise
        return StoredBatch(existing, _receipt_of(existing), [], created=False)

    accepted = await store_samples(session, organization_id, patient_id, batch.id, samples)
    receipt = Receipt(
        batch_id=batch.id,
        client_batch_id=client_batch_id,
        received=len(rows),
        accepted=accepted,
        duplicate=len(samples) - accepted,
        rejected=len(rejections),
        rejections=[
            RejectionOut(index=r.index, reason=r.reason.value, field=r.field)
            for r in rejections[:MAX_LISTED_REJECTIONS]
        ],
        rejections_truncated=len(rejections) > MAX_LISTED_REJECTIONS,
    )
    batch.accepted = receipt.accepted
    batch.duplicate = receipt.duplicate
    batch.receipt = receipt.model_dump(mode="json", exclude={"replayed"})
    return StoredBatch(batch, receipt, samples, created=True)


def _receipt_of(batch: BiometricBatch) -> Receipt:
    return Receipt.model_validate({**batch.receipt, "replayed": True})


def enqueue_accepted(
    session: AsyncSession, organization_id: uuid.UUID, patient_id: uuid.UUID, stored: StoredBatch
) -> None:
    """Write ``biometrics.batch_accepted`` to the outbox in the batch's transaction (call
    before committing it); nothing for a resend or a batch that stored no new sample."""
    if not stored.receipt.accepted or not stored.created:
        return
    enqueue(
        session,
        BATCH_ACCEPTED_TOPIC,
        event_payload(organization_id, patient_id, stored.batch, stored.samples),
        key=str(patient_id),
    )


async def check_consent(session: AsyncSession, ctx: PatientContext) -> None:
    """Refuse (403, audited) when the patient has not consented to wearable data."""
    patient_id = ctx.patient.id
    if await has_consent(session, patient_id, "wearable_data"):
        return
    _audit(
        session,
        ctx,
        patient_id,
        "biometrics.ingest",
        {"reason": "no_wearable_consent"},
        outcome="denied",
    )
    await session.commit()
    raise AppError(
        403,
        "consent_required",
        "The patient has not consented to wearable data collection; nothing was stored.",
    )


async def ingest(
    outbox: OutboxRelay, session: AsyncSession, ctx: PatientContext, upload: Upload
) -> tuple[Receipt, bool]:
    """Store one batch. Returns the receipt and whether this call created the batch
    (False: the batch id was already received and its original receipt is returned)."""
    patient_id = ctx.patient.id
    await check_consent(session, ctx)
    stored = await store_batch(
        session, ctx.patient.organization_id, patient_id, upload.client_batch_id, upload.rows
    )
    if not stored.created:
        _audit(
            session,
            ctx,
            patient_id,
            "biometrics.batch_replayed",
            {"batch_id": str(stored.batch.id)},
        )
        await session.commit()
        return stored.receipt, False
    receipt = stored.receipt
    _audit(
        session,
        ctx,
        patient_id,
        "biometrics.ingest",
        {
            "batch_id": str(stored.batch.id),
            "received": receipt.received,
            "accepted": receipt.accepted,
            "duplicate": receipt.duplicate,
            "rejected": receipt.rejected,
        },
    )
    enqueue_accepted(session, ctx.principal.organization_id, patient_id, stored)
    await session.commit()
    outbox.notify()
    return receipt, True
